"""Reference frames at 1 kHz across processes over DDS: lost messages and latency.

A publisher process sends a 30-joint ``mimic_msgs/ReferenceFrame`` (positions,
velocities, two preview frames) every millisecond, paced by a loop on the monotonic
clock (rclpy timers reach only ~960-995 Hz); a subscriber process in the same DDS
domain (localhost) receives them.  Lost = sent minus received; latency = receive
time minus ``header.stamp`` (same machine, same clock).  The peer, in the same run,
is ``sensor_msgs/JointState`` with the same 30 joints: the standard message the
reference stream replaces.

Usage:  python bench/ros_stream.py [--seconds 60] [--rate 1000] [--no-record]
Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time

from benchlib import record_section

JOINTS = [f"joint_{i:02d}" for i in range(30)]


def _ros_env(domain: int) -> None:
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_DOMAIN_ID"] = str(domain)


def _message(kind: str, seq: int):
    if kind == "reference":
        from mimic_msgs.msg import FutureFrame, ReferenceFrame

        msg = ReferenceFrame(clip="bench", joint_names=JOINTS, positions=[0.1 * i for i in range(30)],
                             velocities=[0.01 * i for i in range(30)])
        msg.future = [FutureFrame(positions=[0.1] * 30), FutureFrame(positions=[0.2] * 30)]
    else:
        from sensor_msgs.msg import JointState

        msg = JointState(name=JOINTS, position=[0.1 * i for i in range(30)], velocity=[0.01 * i for i in range(30)],
                         effort=[0.0] * 30)
    msg.header.frame_id = str(seq)
    return msg


def _msg_type(kind: str):
    if kind == "reference":
        from mimic_msgs.msg import ReferenceFrame

        return ReferenceFrame
    from sensor_msgs.msg import JointState

    return JointState


def publisher(kind: str, domain: int, rate: float, seconds: float, ready, go, done) -> None:
    _ros_env(domain)
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    rclpy.init()
    node = rclpy.create_node("bench_publisher")
    qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    pub = node.create_publisher(_msg_type(kind), "stream", qos)
    deadline = time.monotonic() + 10.0
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.01)
    ready.set()
    go.wait(10.0)
    period = 1.0 / rate
    count = int(seconds * rate)
    start = time.monotonic()
    clock = node.get_clock()
    for seq in range(count):
        target = start + seq * period
        while True:  # sleep most of the wait, spin the last 0.2 ms for an exact period
            left = target - time.monotonic()
            if left <= 0:
                break
            if left > 3e-4:
                time.sleep(left - 2e-4)
        msg = _message(kind, seq)
        msg.header.stamp = clock.now().to_msg()
        pub.publish(msg)
    done.put({"sent": count, "publish_seconds": time.monotonic() - start})
    # keep the writer alive until the reader has drained
    time.sleep(1.0)
    node.destroy_node()
    rclpy.shutdown()


def subscriber(kind: str, domain: int, seconds: float, ready, sent_queue, done) -> None:
    _ros_env(domain)
    import numpy as np
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    rclpy.init()
    node = rclpy.create_node("bench_subscriber")
    clock = node.get_clock()
    latencies = np.zeros(int(seconds * 2000) + 10)
    seen = np.zeros(int(seconds * 2000) + 10, dtype=bool)
    state = {"n": 0}

    def on_msg(msg) -> None:
        now = clock.now().nanoseconds
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        i = state["n"]
        if i < len(latencies):
            latencies[i] = (now - stamp) * 1e-9
        seq = int(msg.header.frame_id)
        if seq < len(seen):
            seen[seq] = True
        state["n"] = i + 1

    node.create_subscription(_msg_type(kind), "stream", on_msg,
                             QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))
    ready.set()
    deadline = time.monotonic() + seconds + 15.0
    expected = None
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.01)
        if expected is None and not sent_queue.empty():
            expected = sent_queue.get()
        if expected is not None and (state["n"] >= expected["sent"] or time.monotonic() > deadline - 13.0):
            break
    n = min(state["n"], len(latencies))
    lat = latencies[:n] * 1e3
    result = {"received": state["n"], "unique": int(seen.sum()),
              "latency_ms": {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
                             "max": float(lat.max())} if n else {}}
    result.update(expected or {})
    done.put(result)
    node.destroy_node()
    rclpy.shutdown()


def run(kind: str, domain: int, rate: float, seconds: float) -> dict:
    ctx = mp.get_context("spawn")
    sub_ready, pub_ready, go = ctx.Event(), ctx.Event(), ctx.Event()
    from_pub, to_sub, from_sub = ctx.Queue(), ctx.Queue(), ctx.Queue()
    sub = ctx.Process(target=subscriber, args=(kind, domain, seconds, sub_ready, to_sub, from_sub))
    sub.start()
    sub_ready.wait(30)
    pub = ctx.Process(target=publisher, args=(kind, domain, rate, seconds, pub_ready, go, from_pub))
    pub.start()
    pub_ready.wait(30)
    go.set()
    to_sub.put(from_pub.get(timeout=seconds + 60))
    result = from_sub.get(timeout=60)
    pub.join(30)
    sub.join(30)
    result["lost"] = result["sent"] - result["unique"]
    result["achieved_rate_hz"] = result["sent"] / result["publish_seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    domain = 100 + os.getpid() % 100
    results = {}
    for kind in ("reference", "joint_state"):
        results[kind] = run(kind, domain, args.rate, args.seconds)
        r = results[kind]
        lat = r["latency_ms"]
        print(f"{kind:12s} sent {r['sent']} at {r['achieved_rate_hz']:.1f} Hz, lost {r['lost']}, latency p50 "
              f"{lat['p50']:.3f} ms p99 {lat['p99']:.3f} ms max {lat['max']:.3f} ms", flush=True)
    ratio = results["reference"]["latency_ms"]["p99"] / results["joint_state"]["latency_ms"]["p99"]
    print(f"reference p99 latency = {ratio:.2f}x JointState's")
    command = "python bench/ros_stream.py" + ("" if args.seconds == 60 else f" --seconds {args.seconds:g}")
    if not args.no_record:
        lines = ["| message | sent | rate | lost | latency p50 | p99 | max |", "|---|---|---|---|---|---|---|"]
        for kind, r in results.items():
            lat = r["latency_ms"]
            lines.append(f"| {kind} | {r['sent']} | {r['achieved_rate_hz']:.1f} Hz | {r['lost']} | "
                         f"{lat['p50']:.3f} ms | {lat['p99']:.3f} ms | {lat['max']:.3f} ms |")
        record_section("ros_stream", command, lines)
    print(json.dumps({"benchmark": "ros_stream", "seconds": args.seconds, "rate_hz": args.rate, **results,
                      "reference_p99_vs_joint_state": round(ratio, 3)}))


if __name__ == "__main__":
    main()
