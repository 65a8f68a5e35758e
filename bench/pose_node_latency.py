"""pose_node latency per frame at 640x480 on one core (issue 15 target: p99 <= 50 ms), over DDS and in-process.

Frames: the shipped walk rendered at 640x480 (a person-like figure that MediaPipe finds),
cycled.  Over DDS: ``pose_node`` runs in its own process pinned to one core; this process
(on another core where there is one) publishes a ``sensor_msgs/Image`` stamped with the
time it is sent and waits for the ``HumanFrame`` carrying that stamp: latency = receive
time - stamp, one image in flight at a time (the node's own time per image, with the
transport, not a queue's).  The camera stand-in publishes as ``video_player`` does, through
its Fast DDS profile (:func:`mimic_retarget.nodes.video_player.use_image_transport_profile`: a
shared-memory segment that holds whole images; the node itself runs with the caller's
environment).  ``--fastdds-defaults``: as a camera driver left at Fast DDS's defaults, whose
512 kB segment holds less than one 921.6 kB image, so each image waits for the reliable
protocol's repair (~12 ms more per image, measured).  Peer, in the same run: the same
estimator (``LivePoseEstimator.estimate``: MediaPipe, conversion, filter) called in-process
on the same core, without ROS.  Images without a person (no answer) are counted, not timed.

Usage:  python bench/pose_node_latency.py [--frames 300] [--fastdds-defaults] [--no-record]
Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchlib import record_section

WIDTH, HEIGHT = 640, 480
WARMUP = 20  # frames: MediaPipe's first detection, allocations, DDS matching


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1e3
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "max_ms": round(float(ms.max()), 2), "timed": len(ms)}


def walk_frames() -> list[np.ndarray]:
    """Three seconds of the walk at 30 frames/s, 640x480 RGB."""
    from mimic_sim.character import load_character
    from mimic_sim.motion_file import load_clip
    from mimic_sim.reference import ReferenceMotion
    from mimic_sim.render import CharacterRenderer

    character = load_character("humanoid")
    reference = ReferenceMotion(load_clip("walk"), character)
    with CharacterRenderer(character, WIDTH, HEIGHT, distance=3.0) as renderer:
        return [renderer.render(reference.state(t)[0]) for t in np.arange(0.0, 3.0, 1 / 30)]


def exchange(node, frames: list[np.ndarray], count: int, log) -> tuple[list[float], int]:
    """Publish each image, wait for its HumanFrame (2 s at most): the latencies of the answered ones (s)
    and the number unanswered, warm-up excluded."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from mimic_msgs.msg import HumanFrame

    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    publisher = node.create_publisher(Image, "image", qos)
    answers: dict[int, int] = {}
    node.create_subscription(HumanFrame, "human",
                             lambda m: answers.setdefault(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec,
                                                          time.time_ns()), qos)
    deadline = time.monotonic() + 60.0
    while (publisher.get_subscription_count() == 0 or node.count_publishers("human") == 0) \
            and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    if publisher.get_subscription_count() == 0:
        log.seek(0)
        raise SystemExit(f"pose_node did not start:\n{log.read()}")
    latencies, unanswered = [], 0
    for i in range(WARMUP + count):
        msg = Image(height=HEIGHT, width=WIDTH, encoding="rgb8", step=3 * WIDTH)
        msg.data = frames[i % len(frames)].tobytes()
        sent = time.time_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(sent, 10**9)
        publisher.publish(msg)
        wait = time.monotonic() + 2.0
        while sent not in answers and time.monotonic() < wait:
            rclpy.spin_once(node, timeout_sec=0.01)
        if i < WARMUP:
            continue
        if sent in answers:
            latencies.append((answers[sent] - sent) * 1e-9)
        else:
            unanswered += 1
    return latencies, unanswered


def over_dds(frames: list[np.ndarray], count: int, core: int, other: int, domain: int, fastdds_defaults: bool) -> dict:
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    import rclpy

    from mimic_retarget.nodes.video_player import use_image_transport_profile

    os.sched_setaffinity(0, {other})
    node_bin = Path(sys.executable).parent / "pose_node"
    node_env = dict(os.environ)  # the node as deployed: the camera's transport profile is the camera's own
    if not fastdds_defaults:
        use_image_transport_profile()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen([str(node_bin)], stdout=log, stderr=subprocess.STDOUT, env=node_env,
                                   preexec_fn=lambda: os.sched_setaffinity(0, {core}))  # all its threads on one core
        rclpy.init()
        node = rclpy.create_node("bench_camera")
        try:
            latencies, unanswered = exchange(node, frames, count, log)
        finally:
            node.destroy_node()
            rclpy.shutdown()
            process.terminate()
            process.wait(timeout=30)
    return {**percentiles(latencies), "no_person": unanswered}


def in_process(frames: list[np.ndarray], count: int, core: int) -> dict:
    from mimic_retarget.live_pose import LivePoseEstimator

    os.sched_setaffinity(0, {core})
    samples, missed = [], 0
    with LivePoseEstimator() as estimator:
        for i in range(WARMUP + count):
            start = time.perf_counter()
            found = estimator.estimate(frames[i % len(frames)], i / 30)
            seconds = time.perf_counter() - start
            if i >= WARMUP:
                if found is None:
                    missed += 1
                else:
                    samples.append(seconds)
    return {**percentiles(samples), "no_person": missed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300, help="timed frames per measurement")
    parser.add_argument("--fastdds-defaults", action="store_true",
                        help="the camera publishes with Fast DDS's default transports, not video_player's profile")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    core, other = cores[0], cores[-1]  # the node on one core, the camera stand-in on another where there is one
    frames = walk_frames()
    ros = over_dds(frames, args.frames, core, other, 100 + os.getpid() % 100, args.fastdds_defaults)
    local = in_process(frames, args.frames, core)
    ratio = ros["p99_ms"] / local["p99_ms"]
    for name, r in (("pose_node over DDS", ros), ("estimator in-process", local)):
        print(f"{name:22s} p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  max {r['max_ms']:.1f} ms  "
              f"({r['timed']} frames, {r['no_person']} without a person)", flush=True)
    print(f"pose_node p99 = {ratio:.2f}x the in-process estimator's; target p99 <= 50 ms: "
          f"{'met' if ros['p99_ms'] <= 50 else 'not met'}")
    if not args.no_record:
        command = "python bench/pose_node_latency.py" + ("" if args.frames == 300 else f" --frames {args.frames}") \
            + (" --fastdds-defaults" if args.fastdds_defaults else "")
        camera = "Fast DDS's default transports" if args.fastdds_defaults else "video_player's Fast DDS profile"
        lines = [f"{WIDTH}x{HEIGHT} images of the rendered walk, published with {camera}; pose_node pinned to one "
                 "core, one image in flight.",
                 "", "| | p50 | p99 | max | frames timed | without a person |", "|---|---|---|---|---|---|"]
        for name, r in (("pose_node over DDS", ros), ("estimator in-process", local)):
            lines.append(f"| {name} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | {r['max_ms']:.1f} ms | "
                         f"{r['timed']} | {r['no_person']} |")
        lines.append(f"\npose_node p99 = {ratio:.2f}x the in-process estimator's (target p99 <= 50 ms).")
        record_section("pose_node_latency", command, lines)
    print(json.dumps({"benchmark": "pose_node_latency", "image": [WIDTH, HEIGHT], "frames": args.frames,
                      "fastdds_defaults": args.fastdds_defaults,
                      "core": core, "pose_node": ros, "in_process": local,
                      "p99_ratio_vs_in_process": round(ratio, 3), "target_p99_ms": 50.0}))


if __name__ == "__main__":
    main()
