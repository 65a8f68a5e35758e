"""Reconstruction speed on one core: a 10 s, 30 fps pose track to a humanoid clip (issue 15 target: <= 60 s).

The track is synthetic (no estimator in the timing): the shipped walk, looped for 10 s,
walking away from a camera 3 m behind its start (so it stays in view), projected with
2 px noise and given hip-relative 3D landmarks with 3 cm noise, as MediaPipe reports
them.  The camera is estimated.  One torch thread; prints seconds, the optimizer's
iteration budget and the root-relative keypoint error against the clip (MPJPE, mm).

Usage:  python bench/video_speed.py [--seconds 10] [--fps 30]
Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from mimic_retarget.pose_track import TRACK_KEYPOINTS, PoseTrack
from mimic_retarget.reconstruction import Camera, HumanoidKinematics, ReconstructionConfig, reconstruct
from mimic_sim import rotations as rot
from mimic_sim.character import load_character
from mimic_sim.motion_file import load_clip
from mimic_sim.reference import ReferenceMotion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    character = load_character("humanoid")
    motion = load_clip("walk")
    times = np.arange(0.0, args.seconds, 1.0 / args.fps)
    qpos, _ = ReferenceMotion(motion, character).states(times)
    heading = rot.heading(qpos[0, 3:7])
    turn = np.array([[np.cos(-heading), -np.sin(-heading), 0.0], [np.sin(-heading), np.cos(-heading), 0.0],
                     [0.0, 0.0, 1.0]])  # walking along +x: away from the camera
    root = (qpos[:, :3] - [qpos[0, 0], qpos[0, 1], 0.0]) @ turn.T + [3.0, 0.0, 0.0]
    names = list(TRACK_KEYPOINTS)
    turned = torch.tensor(turn @ rot.quat_to_mat(qpos[:, 3:7]))
    points = HumanoidKinematics(character).points(torch.tensor(root), turned, torch.tensor(qpos[:, 7:]), names).numpy()
    camera = Camera(1000.0, 1.3, float(np.radians(8.0)), (1280, 720))
    rng = np.random.default_rng(0)
    hips = points[:, [names.index("left_hip"), names.index("right_hip")]].mean(axis=1, keepdims=True)
    track = PoseTrack(names, times, camera.project(points) + rng.normal(0.0, 2.0, (*points.shape[:2], 2)),
                      np.full(points.shape[:2], 0.9), camera.image_size,
                      (points - hips) @ camera.rotation().T + rng.normal(0.0, 0.03, points.shape), "synthetic")
    config = ReconstructionConfig()
    start = time.perf_counter()
    result = reconstruct(track, config)
    seconds = time.perf_counter() - start
    est = result.points - result.points[:, [names.index("left_hip"), names.index("right_hip")]].mean(1, keepdims=True)
    mpjpe = float(1000 * np.linalg.norm(est - (points - hips), axis=-1).mean())
    figures = {"frames": len(times), "seconds": round(seconds, 2), "target_seconds": 60.0,
               "iterations": config.iterations(track), "mpjpe_mm": round(mpjpe, 1),
               "reprojection_error_px": round(result.report["reprojection_error_px"], 2)}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
