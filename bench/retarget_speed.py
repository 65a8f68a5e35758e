"""Retargeting speed on one core: offline frames/s onto Atlas, H1 and G1, and streaming latency per frame.

Offline: every shipped clip, at its own frame rate, retargeted onto each robot
(``Retargeter.retarget`` without the quality report: scaling, contacts, IK, ground
clearance), on one pinned core; frames/s over all clips.  Streaming: the same clips
fed frame by frame to ``StreamingRetargeter`` (what ``retarget_node`` runs per
message), one stream per clip; latency per frame, p50 and p99, and apart from them
the first frame of each stream (its IK starts from scratch: two starts, 30
iterations).  Peer in the same run: the same clips through the same pipeline
(``Retargeter.retarget``: scaling, contacts, first-frame search, retries, ground
clearance) with its IK solved by pink instead (Pinocchio-based differential IK, one QP
per step, the library this IK would otherwise use): the same link targets and weights,
the same iteration limits and tolerance per solve, the same joint limits; offline
frames/s.  It needs ``pip install -e .[bench]``.  Targets: 1000 frames/s offline (GMR
reports 35-70 on desktop CPUs, a figure quoted from its paper, not measured here),
streaming p99 under 5 ms.

Usage:  python bench/retarget_speed.py [--robots atlas,h1,g1] [--clips walk,run] [--no-record]
Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time

import numpy as np
from benchlib import record_section

TARGET_FPS = 1000.0
TARGET_P99_MS = 5.0


class PinkIK:
    """:class:`~mimic_retarget.ik.WholeBodyIK` as the retargeter calls it, each solve done by pink.

    Kinematics, costs and target frames are the wrapped IK's; ``solve`` runs up to ``iterations``
    pink steps (a QP each, joint limits as constraints) from ``qpos``, with a posture task toward
    ``reference`` weighted by ``pull``, stopping once no coordinate moves more than ``tolerance``.
    """

    def __init__(self, ik):
        import pink
        from pink.tasks import FrameTask, PostureTask

        self._ik = ik
        self._pink = pink
        model = ik.pin.model  # has the IK's target frames (ik<i>:<link>), unique names as pink needs
        self._tasks = [FrameTask(model.frames[f].name, position_cost=float(w), orientation_cost=float(o))
                       for f, w, o in zip(ik.frames, ik.position_weight, ik.orientation_weight, strict=True)]
        self._posture = PostureTask(cost=1e-3)
        self.last_cost = float("nan")

    def __getattr__(self, name: str):
        return getattr(self._ik, name)

    def solve(self, qpos: np.ndarray, positions: np.ndarray, rotations: np.ndarray | None = None,
              reference: np.ndarray | None = None, iterations: int = 8, tolerance: float = 1e-5,
              pull: float = 1.0) -> np.ndarray:
        import pinocchio

        pin = self._ik.pin
        configuration = self._pink.Configuration(pin.model, pin.model.createData(), pin.configuration(qpos))
        for task, p, r in zip(self._tasks, positions, rotations if rotations is not None else [None] * len(positions),
                              strict=True):
            task.set_target(pinocchio.SE3(r if r is not None else np.eye(3), p))
        self._posture.cost = 1e-3 * pull
        self._posture.set_target(pin.configuration(qpos if reference is None else reference))
        for _ in range(iterations):
            velocity = self._pink.solve_ik(configuration, [*self._tasks, self._posture], 1.0, solver="daqp",
                                           safety_break=False)
            configuration.integrate_inplace(velocity, 1.0)
            if np.abs(velocity).max() < tolerance:
                break
        q = pin.qpos_of(configuration.q)
        self.last_cost = self._ik.cost(q, positions, rotations)
        return q


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--robots", default="atlas,h1,g1")
    parser.add_argument("--clips", default=None, help="comma-separated shipped clips (default: all)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from mimic_retarget.human import keypoints_from_clip
    from mimic_retarget.retarget import Retargeter, StreamingRetargeter
    from mimic_sim.character import load_character
    from mimic_sim.deepmimic_format import shipped_clips

    clips = args.clips.split(",") if args.clips else shipped_clips()
    sources = {clip: keypoints_from_clip(clip) for clip in clips}
    warm_up = "walk" if "walk" in sources else next(iter(sources))
    frames = sum(h.num_frames for h in sources.values())
    has_pink = importlib.util.find_spec("pink") is not None
    results: dict[str, dict] = {}
    for robot in args.robots.split(","):
        retargeter = Retargeter(load_character(robot))
        retargeter.retarget(sources[warm_up], warm_up, report=False)
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
        if has_pink:  # the same clips through the same pipeline, its IK solved by pink
            retargeter.ik = PinkIK(retargeter.ik)
            retargeter.retarget(sources[warm_up], warm_up, report=False)
            start = time.perf_counter()
            for clip, human in sources.items():
                retargeter.retarget(human, clip, report=False)
            figures["pink_fps"] = frames / (time.perf_counter() - start)
            figures["mimic_vs_pink"] = offline / figures["pink_fps"]
        figures["offline_vs_target"] = offline / TARGET_FPS
        results[robot] = figures
        print(f"{robot:6s} offline {offline:7.0f} frames/s ({offline / TARGET_FPS:.2f}x target)  stream p50 "
              f"{figures['stream_p50_ms']:.2f} ms p99 {figures['stream_p99_ms']:.2f} ms"
              + (f"  pink {figures['pink_fps']:.0f} frames/s" if has_pink else ""), flush=True)
    if not args.no_record:
        record_section("retarget_speed", " ".join(["python bench/retarget_speed.py", *sys.argv[1:]]), [
            f"One pinned core; {len(sources)} shipped clips at their own frame rates ({frames} frames) per robot; "
            f"pink: the same clips through the same pipeline, its IK solved by pink.",
            "", "| robot | offline frames/s | vs 1000 target | stream p50 | stream p99 | stream max | a stream's first "
            "frame, max | pink frames/s |",
            "|---|---|---|---|---|---|---|---|",
            *(f"| {r} | {f['offline_fps']:.0f} | {f['offline_vs_target']:.2f}x | {f['stream_p50_ms']:.2f} ms | "
              f"{f['stream_p99_ms']:.2f} ms | {f['stream_max_ms']:.2f} ms | {f['stream_first_frame_max_ms']:.1f} ms | "
              + (f"{f['pink_fps']:.0f} |" if "pink_fps" in f else "n/a |")
              for r, f in results.items()),
        ])
    print(json.dumps({"benchmark": "retarget_speed", "target_fps": TARGET_FPS, "target_p99_ms": TARGET_P99_MS,
                      **{f"{r}_{k}": v for r, f in results.items() for k, v in f.items()}}))


if __name__ == "__main__":
    main()
