"""``mimic video``: a monocular video (or its keypoints) to a humanoid clip, a report and a side-by-side video."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mimic_retarget.reconstruction import ReconstructionConfig

DESCRIPTION = """\
Reconstruct a person's motion in a video as a clip of the DeepMimic humanoid (SFV: pose
estimation on every frame, then one optimization over the whole clip: confidence-weighted
reprojection, the estimator's 3D landmarks as a prior, smoothness, feet on the floor
without sliding, a static camera).  Writes the clip (a mimic motion file, which 'mimic
train --clip' and 'mimic retarget' read), the per-frame keypoints (*.pose.json, so the
reconstruction can be re-run without the estimator), a report (detection rate,
reprojection error, smoothness, foot skating, ground penetration, the camera) and a video:
the input frame with the reprojected skeleton beside the reconstructed humanoid.

SOURCE is a video (MediaPipe Pose runs on it), a keypoint file (*.pose.json) or a folder
of OpenPose JSON files (give --image-size and --fps).  See docs/video.md.
"""

# Lines of the skeleton drawn over the input frame (track keypoint names).
DRAW_BONES = (
    *((f"{s}_{a}", f"{s}_{b}") for s in ("left", "right")
      for a, b in (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle"), ("ankle", "toe"),
                   ("shoulder", "hip"))),
    ("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("video", help="reconstruct a humanoid clip from a monocular video (SFV)",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SOURCE", help="video file, keypoint file (*.pose.json) or OpenPose JSON folder")
    p.add_argument("-o", "--output", type=Path, metavar="OUT",
                   help="clip file, *.motion.json (default out/<source>.motion.json)")
    p.add_argument("--focal", type=float, default=None, help="focal length in pixels (default: estimated)")
    p.add_argument("--camera-height", type=float, default=None, help="camera height in metres (default: estimated)")
    p.add_argument("--camera-pitch", type=float, default=None,
                   help="camera pitch in degrees, positive looking down (default: estimated)")
    p.add_argument("--dynamics", type=float, default=None, metavar="W",
                   help="weight of the centre-of-mass dynamics term: in the air it falls at g, on the floor within "
                        "what pushing and friction allow (default: ReconstructionConfig's, off; 1 for a flip a "
                        "character is to learn; see docs/video.md)")
    p.add_argument("--angular-momentum", type=float, default=None, metavar="W",
                   help="weight of the angular momentum term: in the air the whole body's angular momentum "
                        "about its centre of mass stays what it was at take-off (default: ReconstructionConfig's, "
                        "off; see docs/video.md)")
    p.add_argument("--start", type=float, default=0.0, metavar="SEC", help="first second of the source to use")
    p.add_argument("--end", type=float, default=None, metavar="SEC",
                   help="second of the source to stop at (default: its end)")
    p.add_argument("--region", type=int, nargs=4, default=None, metavar=("X0", "Y0", "X1", "Y1"),
                   help="box of the video frame (pixels) the person stays in: MediaPipe follows one person, "
                        "so this keeps it off anyone outside the box")
    p.add_argument("--tracking-only", action="store_true",
                   help="MediaPipe only follows the person from frame to frame, as pose_node does live, without "
                        "the second pass that detects the person afresh on every frame: half the estimator's "
                        "time, less accurate (it can lose the body in a flip for good; docs/video.md)")
    p.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"), help="image size of OpenPose input")
    p.add_argument("--fps", type=float, default=None, help="frame rate of OpenPose input")
    p.add_argument("--video", type=Path, default=None, help="side-by-side video, .mp4 or .gif (default: next to OUT, "
                                                                 "*.side_by_side.mp4)")
    p.add_argument("--no-video", action="store_true", help="skip the side-by-side video")
    p.set_defaults(func=run)


def _stem(source: str) -> str:
    name = Path(source.rstrip("/")).name
    return name.removesuffix(".pose.json").split(".")[0] or "video"


def output_paths(source: str, output: Path | None) -> dict[str, Path]:
    """Where the clip, keypoints, report and video of a source go."""
    from mimic_retarget.pose_track import SUFFIX as POSE_SUFFIX
    from mimic_sim.motion_file import SUFFIX

    output = output or Path("out") / f"{_stem(source)}{SUFFIX}"
    if not output.name.endswith(SUFFIX):
        raise SystemExit(f"mimic video: output {output} must end in {SUFFIX}")
    base = output.name.removesuffix(SUFFIX)
    paths = {"clip": output, "keypoints": output.with_name(base + ".pose.json"),
             "report": output.with_name(base + ".report.json"), "video": output.with_name(base + ".side_by_side.mp4")}
    # The files video_to_clip writes (a keypoint file as the source is read, not written again); the
    # side-by-side video, written only if asked for and perhaps elsewhere, is checked where it is chosen.
    written = ["clip", "report"] + ([] if source.endswith(POSE_SUFFIX) else ["keypoints"])
    for key in written:
        check_not_source(source, paths[key], key)
    return paths


def check_not_source(source: str, path: Path, what: str) -> None:
    """Refuse an output that is the source itself: a keypoint file re-read as its own output, or a video
    named like the side-by-side, would be overwritten."""
    if Path(source).resolve() == path.resolve():
        raise SystemExit(f"mimic video: the {what} output {path} is the source itself; choose another -o/--video")


def video_to_clip(source: str, paths: dict[str, Path], config: ReconstructionConfig,
                  image_size: tuple[int, int] | None = None, fps: float | None = None, start: float = 0.0,
                  end: float | None = None, region: tuple[int, int, int, int] | None = None,
                  second_pass: bool = True):
    """Pose estimation (or the keypoints given) and reconstruction of ``source`` from ``start`` to
    ``end`` seconds (the estimator looking inside ``region``): the keypoint file (for a video), the
    humanoid clip and the report written to ``paths``; the reconstruction."""
    from tqdm import tqdm

    from mimic_retarget.pose_estimation import load_track
    from mimic_retarget.pose_track import SUFFIX as POSE_SUFFIX
    from mimic_retarget.pose_track import PoseTrackError
    from mimic_retarget.reconstruction import reconstruct
    from mimic_sim.motion_file import save_motion
    from mimic_sim.paths import atomic_write_text

    try:
        with tqdm(unit="frame", desc=f"pose {_stem(source)}", disable=None, file=sys.stderr) as bar:
            track = load_track(source, bar.update, image_size, fps, start, end, region, second_pass)
        if not source.endswith(POSE_SUFFIX):
            track.save(paths["keypoints"], video=source)
        with tqdm(total=config.iterations(track), unit="it", desc="reconstruct",
                  disable=None, file=sys.stderr) as bar:
            result = reconstruct(track, config, name=_stem(source), progress=bar.update)
    except (PoseTrackError, ValueError) as exc:
        raise SystemExit(f"mimic video: {exc}") from exc
    save_motion(result.motion, paths["clip"], character="humanoid")
    report = {"source": source, "clip": str(paths["clip"]), "estimator": track.estimator,
              "start": float(track.times[0]), "end": float(track.times[-1] + 1 / track.fps), "region": region,
              "second_pass": second_pass,
              **result.report}
    atomic_write_text(paths["report"], json.dumps(report, indent=2))
    for key, value in result.report.items():
        if value is not None and not isinstance(value, dict):  # None: a figure the source cannot give
            print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}", file=sys.stderr)
    return result


def run(args: argparse.Namespace) -> int:
    # Import order matters for OpenGL: mimic_sim.render chooses MUJOCO_GL before mujoco loads.
    from mimic_sim.render import video_format

    # isort: split
    from mimic_retarget.reconstruction import ReconstructionConfig

    paths = output_paths(args.source, args.output)
    video = None if args.no_video else (args.video or paths["video"])
    if video is not None:
        video_format(video)  # an unknown suffix fails before any work
        check_not_source(args.source, video, "side-by-side video")
    pitch = None if args.camera_pitch is None else float(np.radians(args.camera_pitch))
    weights = {"dynamics": args.dynamics, "angular_momentum": args.angular_momentum}
    for field, weight in weights.items():
        if weight is not None and not weight >= 0:
            raise SystemExit(f"mimic video: --{field.replace('_', '-')} {weight}: a weight must be 0 or more")
    config = ReconstructionConfig(focal=args.focal, camera_height=args.camera_height, camera_pitch=pitch)
    config = replace(config, **{field: weight for field, weight in weights.items() if weight is not None})
    region = tuple(args.region) if args.region else None
    result = video_to_clip(args.source, paths, config, tuple(args.image_size) if args.image_size else None,
                           args.fps, args.start, args.end, region, not args.tracking_only)
    if video is not None:
        write_side_by_side(args.source, result, video, region=region)
        print(video)
    print(paths["report"])
    print(paths["clip"])
    return 0


def _draw_skeleton(image: np.ndarray, points: np.ndarray, names: list[str], colour: tuple[int, int, int],
                   thickness: int) -> None:
    import cv2

    for a, b in DRAW_BONES:
        if a in names and b in names:
            pa, pb = points[names.index(a)], points[names.index(b)]
            if np.isfinite(pa).all() and np.isfinite(pb).all():
                cv2.line(image, tuple(int(v) for v in pa), tuple(int(v) for v in pb), colour, thickness, cv2.LINE_AA)


def write_side_by_side(source: str, result, path: Path, height: int = 480,
                       region: tuple[int, int, int, int] | None = None) -> Path:
    """The input frame (or a grey canvas for keypoint input) with the estimator's points (white), the
    reprojected humanoid (orange: left, blue: right) and the estimator's ``region`` (grey box) | the
    reconstructed humanoid."""
    import cv2

    from mimic_retarget.pose_estimation import read_video
    from mimic_sim.character import load_character
    from mimic_sim.reference import ReferenceMotion
    from mimic_sim.render import CharacterRenderer, write_video

    track, camera = result.track, result.camera
    width, image_height = track.image_size
    scale = height / image_height
    projected = camera.project(result.points)
    names = track.names
    left = [n for n in names if not n.startswith("right_")]
    right = [n for n in names if not n.startswith("left_")]
    if Path(source).is_file() and not source.endswith(".pose.json"):
        frames, _, video_fps, _ = read_video(source)
        for _ in range(round(track.times[0] * video_fps)):  # to the track's first frame
            next(frames, None)
    else:
        frames = iter(np.full((image_height, width, 3), 96, np.uint8) for _ in range(track.num_frames))
    character = load_character("humanoid")
    reference = ReferenceMotion(result.motion, character)
    times = result.motion.frame_times

    def composed(renderer: CharacterRenderer):
        for i, rgb in zip(range(track.num_frames), frames, strict=False):
            image = cv2.resize(np.ascontiguousarray(rgb), (round(width * scale), height))
            if region is not None:
                x0, y0, x1, y1 = (round(v * scale) for v in region)
                cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), (160, 160, 160), 1)
            seen = track.confidence[i] > 0.3
            for k in np.flatnonzero(seen):
                cv2.circle(image, tuple(int(v) for v in track.points[i, k] * scale), 3, (255, 255, 255), -1)
            for subset, colour in ((left, (255, 140, 0)), (right, (40, 120, 255))):
                idx = [names.index(n) for n in subset]
                _draw_skeleton(image, projected[i, idx] * scale, subset, colour, 2)
            qpos, _ = reference.state(float(times[i]))
            yield np.concatenate([image, renderer.render(qpos)], axis=1)

    with CharacterRenderer(character, height, height, distance=4.0) as renderer:
        return write_video(composed(renderer), path, track.fps)
