"""Measuring where MediaPipe marks the humanoid's keypoints (:mod:`mimic_retarget.landmarks`).

Shipped clips are rendered with the human-like appearance (:mod:`mimic_retarget.ground_truth`)
from several cameras and MediaPipe runs on each video.  For each keypoint, the offset in its
body's frame that best moves the humanoid's true keypoint onto the estimator's image points is
found by least squares on the projection linearized at the true point (an offset of a few
centimetres moves a pixel almost linearly), made robust (Huber, 5 px) against frames where the
estimator swapped or lost a limb; a left and a right keypoint share one offset, mirrored.

The clips bench/video_reconstruction.py judges reconstruction by (walk, run, jump, cartwheel,
backflip) are left out by default, so that benchmark measures offsets it did not see.

Usage: python -m mimic_retarget.landmark_calibration [--clips dance_a,dance_b,kick,punch,spinkick,spin]
       [--cameras 0,45,90,135] [-o config/landmarks/mediapipe.yaml]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from mimic_retarget.landmarks import LANDMARKS_DIR, LandmarkOffsets
from mimic_retarget.pose_track import PoseTrack
from mimic_retarget.reconstruction import HumanoidKinematics
from mimic_sim.character import Character, load_character
from mimic_sim.paths import atomic_write_text

CLIPS = ("dance_a", "dance_b", "kick", "punch", "spinkick", "spin")
CAMERAS = (0.0, 45.0, 90.0, 135.0)  # azimuths from the clip's heading (degrees)
MIRROR = np.diag([1.0, -1.0, 1.0])  # a left body's frame offset as its right partner's
HUBER_PX = 5.0
CONFIDENCE = 0.7  # points the estimator is less sure of are left out


def linear_systems(track: PoseTrack, kin: HumanoidKinematics, qpos: np.ndarray, camera
                   ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per keypoint, ``(A, b)`` with ``A @ offset ~= b`` over its confident frames: ``A`` (N, 2, 3) the
    pixels per metre of offset in its body's frame, ``b`` (N, 2) the estimator's pixel minus the true
    keypoint's.  ``qpos`` (T, 7 + joints) is the character's true state per frame and ``camera`` the
    :class:`~mimic_retarget.ground_truth.ViewCamera` that saw it."""
    from mimic_sim import rotations as rot

    with torch.no_grad():
        args = (torch.tensor(qpos[:, :3], dtype=torch.float64),
                torch.tensor(rot.quat_to_mat(qpos[:, 3:7]), dtype=torch.float64),
                torch.tensor(qpos[:, 7:], dtype=torch.float64))
        world = kin.points(*args, list(track.names)).numpy()
        turns = kin.point_rotations(*args, list(track.names)).numpy()
    cam = camera.to_camera(world)
    uv = camera.project(world)
    x, y, z = cam[..., 0], cam[..., 1], cam[..., 2]
    jac = np.zeros((*cam.shape[:2], 2, 3))  # d pixel / d camera-axes point
    jac[..., 0, 0] = jac[..., 1, 1] = camera.focal / z
    jac[..., 0, 2], jac[..., 1, 2] = -camera.focal * x / z**2, -camera.focal * y / z**2
    a = jac @ camera.rotation() @ turns
    systems = {}
    for k, name in enumerate(track.names):
        ok = track.confidence[:, k] > CONFIDENCE
        systems[name] = (a[ok, k], track.points[ok, k] - uv[ok, k])
    return systems


def fit_offsets(systems: Sequence[dict[str, tuple[np.ndarray, np.ndarray]]], huber_px: float = HUBER_PX
                ) -> dict[str, tuple[np.ndarray, float, float]]:
    """Per keypoint of ``systems`` (one :func:`linear_systems` per video): its offset (metres), and the
    median pixel error without and with it.  A left and a right keypoint share one offset
    with y mirrored; the fit is robust (Huber at ``huber_px``)."""
    names = list(dict.fromkeys(n for s in systems for n in s))
    out = {}
    for name in names:
        if name.startswith("right_") and name.replace("right_", "left_", 1) in names:
            continue
        rows = [(a, b) for s in systems if name in s for a, b in [s[name]]]
        partner = name.replace("left_", "right_", 1) if name.startswith("left_") else None
        if partner in names:
            rows += [(a @ MIRROR, b) for s in systems if partner in s for a, b in [s[partner]]]
        a = np.concatenate([r[0] for r in rows]).reshape(-1, 3)
        b = np.concatenate([r[1] for r in rows]).reshape(-1)
        if len(b) < 3:
            continue
        weight = np.ones(len(b))
        for _ in range(5):  # iteratively reweighted least squares
            offset, *_ = np.linalg.lstsq(a * weight[:, None], b * weight, rcond=None)
            residual = np.abs(a @ offset - b)
            weight = np.sqrt(np.minimum(1.0, huber_px / np.maximum(residual, 1e-9)))
        pixels = b.reshape(-1, 2)
        before = float(np.median(np.linalg.norm(pixels, axis=1)))
        after = float(np.median(np.linalg.norm(pixels - (a @ offset).reshape(-1, 2), axis=1)))
        out[name] = (offset, before, after)
        if partner in names:
            out[partner] = (MIRROR @ offset, before, after)
    return out


def render_systems(clip: str, azimuth: float, character: Character, folder: Path
                   ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """:func:`linear_systems` of one clip rendered from one camera and estimated by MediaPipe."""
    from mimic_retarget.ground_truth import clip_states, render_clip
    from mimic_retarget.pose_estimation import load_track
    from mimic_sim.render import write_video

    fps = 30.0
    truth = render_clip(clip, character, azimuth, (640, 480), fps)
    video = write_video(truth.frames, folder / f"{clip}_{azimuth:.0f}.mp4", fps)
    track = load_track(video)
    _, qpos = clip_states(clip, character, fps)
    return linear_systems(track, HumanoidKinematics(character), qpos, truth.camera)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", default=",".join(CLIPS), help="shipped clips to render")
    parser.add_argument("--cameras", default=",".join(f"{a:.0f}" for a in CAMERAS),
                        help="camera azimuths from each clip's heading (degrees)")
    parser.add_argument("-o", "--output", type=Path, default=Path("config") / LANDMARKS_DIR / "mediapipe.yaml")
    args = parser.parse_args(argv)
    clips, cameras = args.clips.split(","), [float(a) for a in args.cameras.split(",")]
    character = load_character("humanoid")
    systems = []
    with tempfile.TemporaryDirectory() as folder:
        for clip in clips:
            for azimuth in cameras:
                systems.append(render_systems(clip, azimuth, character, Path(folder)))
                print(f"{clip} from {azimuth:.0f} degrees: estimated", flush=True)
    fitted = fit_offsets(systems)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip() or "unknown"
    lines = ["Where MediaPipe Pose marks the humanoid's keypoints: offsets (metres) in the frame of the body each",
             "keypoint moves with (x forward, y left, z up at rest).  Measured, not edited by hand:",
             f"  python -m mimic_retarget.landmark_calibration --clips {args.clips} --cameras {args.cameras}",
             f"({datetime.now(timezone.utc):%Y-%m-%d}, commit {commit}).  Median pixel error of the estimator's "
             "points against the",
             "true keypoints (640x480 renders), without -> with the offset:"]
    lines += [f"  {name}: {before:.1f} -> {after:.1f} px" for name, (_, before, after) in fitted.items()]
    found = LandmarkOffsets("mediapipe", character.name, {n: o for n, (o, _, _) in fitted.items()})
    atomic_write_text(args.output, found.to_yaml("\n".join(lines)))
    print(f"wrote {args.output}")
    for line in lines[-len(fitted):]:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
