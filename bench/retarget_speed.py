"""Retargeting speed on one core: offline frames/s onto Atlas, H1 and G1, and streaming latency per frame.

Offline: every shipped clip, at its own frame rate, retargeted onto each robot
(``Retargeter.retarget`` without the quality report: scaling, contacts, IK, ground
clearance), on one pinned core; frames/s over all clips.  Streaming: the same clips
fed frame by frame to ``StreamingRetargeter`` (what ``retarget_node`` runs per
message), one stream per clip; latency per frame, p50 and p99, and apart from them
the first frame of each stream (its IK starts from scratch: two starts, 30
iterations).  Peer in the same run: pink (Pinocchio-based differential IK with a QP
per step, the library this IK would otherwise use) solving the same per-frame targets
with the same task weights and as many steps per frame as mimic's IK takes on
average, frames/s; it needs ``pip install -e .[bench]``.  Targets:
1000 frames/s offline (GMR reports 35-70 on desktop CPUs), streaming p99 under 5 ms.

Usage:  python bench/retarget_speed.py [--robots atlas,h1,g1] [--no-record]
Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time

import numpy as np
from benchlib import record_section

TARGET_FPS = 1000.0
TARGET_P99_MS = 5.0


def pink_rate(retargeter, positions: np.ndarray, rotations: np.ndarray, steps: int) -> float:
    """Frames/s of pink solving the same per-frame targets (``steps`` QP steps per frame)."""
    import pink
    import pinocchio
    from pink.tasks import FrameTask, PostureTask

    ik = retargeter.ik
    model = ik.pin.model  # has the IK's target frames (ik<i>:<link>), unique names as pink needs
    configuration = pink.Configuration(model, model.createData(), ik.pin.configuration(retargeter._zero))
    tasks = [FrameTask(model.frames[f].name, position_cost=float(w), orientation_cost=float(o))
             for f, w, o in zip(ik.frames, ik.position_weight, ik.orientation_weight, strict=True)]
    posture = PostureTask(cost=1e-3)
    posture.set_target(configuration.q)
    dt = 1.0
    start = time.perf_counter()
    for frame_positions, frame_rotations in zip(positions, rotations, strict=True):
        for task, p, r in zip(tasks, frame_positions, frame_rotations, strict=True):
            task.set_target(pinocchio.SE3(r, p))
        for _ in range(steps):
            velocity = pink.solve_ik(configuration, [*tasks, posture], dt, solver="daqp", safety_break=False)
            configuration.integrate_inplace(velocity, dt)
    return len(positions) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--robots", default="atlas,h1,g1")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from mimic_retarget.human import keypoints_from_clip
    from mimic_retarget.retarget import Retargeter, StreamingRetargeter
    from mimic_sim.character import load_character
    from mimic_sim.deepmimic_format import shipped_clips

    sources = {clip: keypoints_from_clip(clip) for clip in shipped_clips()}
    frames = sum(h.num_frames for h in sources.values())
    has_pink = importlib.util.find_spec("pink") is not None
    results: dict[str, dict] = {}
    for robot in args.robots.split(","):
        retargeter = Retargeter(load_character(robot))
        retargeter.retarget(sources["walk"], "walk", report=False)  # warm-up
        start = time.perf_counter()
        for clip, human in sources.items():
            retargeter.retarget(human, clip, report=False)
        offline = frames / (time.perf_counter() - start)
        latencies, first = [], []  # a stream's first frame (two IK starts, 30 iterations) apart
        for human in sources.values():
            stream = StreamingRetargeter(retargeter)
            for k, (t, points) in enumerate(zip(human.times, human.positions, strict=True)):
                begin = time.perf_counter()
                stream.step(float(t), human.names, points)
                (first if k == 0 else latencies).append(time.perf_counter() - begin)
        figures = {"offline_fps": offline, "stream_p50_ms": 1e3 * float(np.percentile(latencies, 50)),
                   "stream_p99_ms": 1e3 * float(np.percentile(latencies, 99)),
                   "stream_max_ms": 1e3 * float(np.max(latencies)),
                   "stream_first_frame_max_ms": 1e3 * float(np.max(first)), "frames": frames}
        if has_pink:
            walk = sources["walk"]
            before = retargeter.ik.iterations_run
            retargeter.retarget(walk, "walk", report=False)
            # as many pink steps per frame as mimic's Gauss-Newton iterations per frame on the walk
            steps = max(1, round((retargeter.ik.iterations_run - before) / walk.num_frames))
            positions, rotations, _ = retargeter.targets(walk, retargeter.scale_for(walk))
            figures["pink_fps"] = pink_rate(retargeter, positions, rotations, steps)
            figures["pink_steps_per_frame"] = steps
            figures["mimic_vs_pink"] = offline / figures["pink_fps"]
        figures["offline_vs_target"] = offline / TARGET_FPS
        results[robot] = figures
        print(f"{robot:6s} offline {offline:7.0f} frames/s ({offline / TARGET_FPS:.2f}x target)  stream p50 "
              f"{figures['stream_p50_ms']:.2f} ms p99 {figures['stream_p99_ms']:.2f} ms"
              + (f"  pink {figures['pink_fps']:.0f} frames/s" if has_pink else ""), flush=True)
    if not args.no_record:
        record_section("retarget_speed", "python bench/retarget_speed.py", [
            f"One pinned core; all {len(sources)} shipped clips at their own frame rates ({frames} frames) per robot.",
            "", "| robot | offline frames/s | vs 1000 target | stream p50 | stream p99 | stream max | a stream's first "
            "frame, max | pink frames/s |",
            "|---|---|---|---|---|---|---|---|",
            *(f"| {r} | {f['offline_fps']:.0f} | {f['offline_vs_target']:.2f}x | {f['stream_p50_ms']:.2f} ms | "
              f"{f['stream_p99_ms']:.2f} ms | {f['stream_max_ms']:.2f} ms | {f['stream_first_frame_max_ms']:.1f} ms | "
              f"{f['pink_fps']:.0f} ({f['pink_steps_per_frame']} steps/frame) |" if "pink_fps" in f else "n/a |"
              for r, f in results.items()),
        ])
    print(json.dumps({"benchmark": "retarget_speed", "target_fps": TARGET_FPS, "target_p99_ms": TARGET_P99_MS,
                      **{f"{r}_{k}": v for r, f in results.items() for k, v in f.items()}}))


if __name__ == "__main__":
    main()
