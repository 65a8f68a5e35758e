"""Measuring where MediaPipe marks the humanoid's keypoints (:mod:`mimic_retarget.landmarks`).

Shipped clips are rendered with the human-like appearance (:mod:`mimic_retarget.ground_truth`)
from several cameras and MediaPipe runs on each video.  For each keypoint, the offset in its
body's frame that best moves the humanoid's true keypoint onto the estimator's image points is
found by least squares on the projection linearized at the true point (an offset of a few
centimetres moves a pixel almost linearly), made robust (Huber, 5 px) against frames where the
estimator swapped or lost a limb; a left and a right keypoint share one offset, mirrored.

The clips bench/video_reconstruction.py judges reconstruction by (walk, run, jump, cartwheel,
backflip) are left out by default, so that benchmark measures offsets it did not see.

Another estimator is calibrated the same way from its keypoints of the same renders: render
each clip and camera with ``python -m mimic_retarget.ground_truth CLIP --azimuth A -o
DIR/CLIP_A.mp4``, run the estimator on the videos, keep its output as ``DIR/CLIP_A.pose.json``
(or OpenPose's JSON folder ``DIR/CLIP_A/``), and pass ``--keypoints DIR``; the file is named
after the estimator the keypoints name.

Usage: python -m mimic_retarget.landmark_calibration [--clips dance_a,dance_b,kick,punch,spinkick,spin]
       [--cameras 0,45,90,135] [--keypoints DIR] [-o config/landmarks/ESTIMATOR.yaml]
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
from mimic_retarget.pose_track import PoseTrack, PoseTrackError
from mimic_retarget.reconstruction import HumanoidKinematics
from mimic_sim.character import Character, load_character
from mimic_sim.paths import atomic_write_text

CLIPS = ("dance_a", "dance_b", "kick", "punch", "spinkick", "spin")
CAMERAS = (0.0, 45.0, 90.0, 135.0)  # azimuths from the clip's heading (degrees)
MIRROR = np.diag([1.0, -1.0, 1.0])  # a left body's frame offset as its right partner's
IMAGE_SIZE = (640, 480)  # the renders' (ground_truth's default)
FPS = 30.0
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


def view_track(clip: str, azimuth: float, character: Character, folder: Path, keypoints: Path | None
               ) -> tuple[PoseTrack, np.ndarray, object]:
    """The estimator's track of one clip seen from one camera, the character's true qpos per frame and the
    camera: MediaPipe on the clip rendered into ``folder``, or the keypoints kept in ``keypoints``."""
    from mimic_retarget.ground_truth import clip_view, render_clip
    from mimic_retarget.pose_estimation import load_track
    from mimic_sim.render import write_video

    name = f"{clip}_{azimuth:.0f}"
    if keypoints is None:
        truth = render_clip(clip, character, azimuth, IMAGE_SIZE, FPS)
        track = load_track(write_video(truth.frames, folder / f"{name}.mp4", FPS))
    else:
        found = [p for p in (keypoints / f"{name}.pose.json", keypoints / name) if p.exists()]
        if not found:
            raise PoseTrackError(f"{keypoints}: no keypoints of {clip} from {azimuth:.0f} degrees ({name}.pose.json "
                                 f"or an OpenPose folder {name}/)")
        track = load_track(found[0], image_size=IMAGE_SIZE, fps=FPS)
    _, qpos, _, camera = clip_view(clip, character, azimuth, IMAGE_SIZE, FPS)
    if track.image_size != IMAGE_SIZE or track.num_frames != len(qpos):
        raise PoseTrackError(f"{track.source}: {track.num_frames} frames of {track.image_size[0]}x"
                             f"{track.image_size[1]}; the render of {clip} from {azimuth:.0f} degrees has "
                             f"{len(qpos)} of {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}")
    return track, qpos, camera


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", default=",".join(CLIPS), help="shipped clips to render")
    parser.add_argument("--cameras", default=",".join(f"{a:.0f}" for a in CAMERAS),
                        help="camera azimuths from each clip's heading (degrees)")
    parser.add_argument("--keypoints", type=Path, default=None,
                        help="folder of another estimator's keypoints of the renders (see above); default: MediaPipe "
                             "on renders made now")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="landmark file (default: config/landmarks/<estimator>.yaml)")
    args = parser.parse_args(argv)
    clips, cameras = args.clips.split(","), [float(a) for a in args.cameras.split(",")]
    character = load_character("humanoid")
    kin = HumanoidKinematics(character)
    systems, estimators = [], set()
    try:
        with tempfile.TemporaryDirectory() as folder:
            for clip in clips:
                for azimuth in cameras:
                    track, qpos, camera = view_track(clip, azimuth, character, Path(folder), args.keypoints)
                    systems.append(linear_systems(track, kin, qpos, camera))
                    estimators.add(track.estimator)
                    print(f"{clip} from {azimuth:.0f} degrees: {track.estimator}", flush=True)
    except (PoseTrackError, ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"landmark_calibration: {exc}") from exc
    if len(estimators) != 1:
        raise SystemExit(f"landmark_calibration: the keypoints name several estimators: {sorted(estimators)}")
    estimator = estimators.pop()
    output = args.output or Path("config") / LANDMARKS_DIR / f"{estimator}.yaml"
    fitted = fit_offsets(systems)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip() or "unknown"
    given = f" --keypoints {args.keypoints}" if args.keypoints else ""
    lines = [f"Where {estimator} marks the humanoid's keypoints: offsets (metres) in the frame of the body each",
             "keypoint moves with (x forward, y left, z up at rest).  Measured, not edited by hand:",
             f"  python -m mimic_retarget.landmark_calibration --clips {args.clips} --cameras {args.cameras}{given}",
             f"({datetime.now(timezone.utc):%Y-%m-%d}, commit {commit}).  Median pixel error of the estimator's "
             "points against the",
             "true keypoints (640x480 renders), without -> with the offset:"]
    lines += [f"  {name}: {before:.1f} -> {after:.1f} px" for name, (_, before, after) in fitted.items()]
    found = LandmarkOffsets(estimator, character.name, {n: o for n, (o, _, _) in fitted.items()})
    atomic_write_text(output, found.to_yaml("\n".join(lines)))
    print(f"wrote {output}")
    for line in lines[-len(fitted):]:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
