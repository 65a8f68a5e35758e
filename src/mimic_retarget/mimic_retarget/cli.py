"""``mimic retarget``: a human motion onto a robot, as a clip file, a side-by-side video and a quality report."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

DESCRIPTION = """\
Retarget a human motion onto a robot (or any character with a 'retarget' map in its
config) and write the robot clip (a mimic motion file, joints by name), a side-by-side
video (the human as a stick figure, the robot posed by the clip) and a quality report
(keypoint error after scaling, joint-limit violations, foot skating, ground penetration,
self-collisions) as JSON.

SOURCE is a shipped clip name (walk, run, ...) or a DeepMimic file, a BVH file (.bvh:
joint names, up axis and unit detected from the skeleton and printed, or given with
--bvh-map, --bvh-up, --bvh-unit), a keypoint file (.npz, mimic_retarget.keypoints), or a
video of a person (.mp4, .avi, .mov, .mkv, .webm) or its per-frame keypoints (*.pose.json):
reconstructed first as 'mimic video' does (out/<video>.motion.json, .pose.json,
.report.json), with the camera estimated.  A shipped clip retargeted without -o is
stored where 'mimic train --robot ROBOT --clip CLIP' finds it.
"""

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")

RETARGET_REVISION = 2
"""Revision of the retargeter's output, bumped whenever the same clip, character and settings retarget to
other keyframes (2: looping clips solved twice round, smoothness 1e-3), so that a clip an older mimic
stored is made again rather than trained on."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("retarget", help="retarget a clip, BVH or keypoint file onto a robot",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SOURCE", help="clip name or file (DeepMimic .txt, .bvh, keypoints .npz, "
                                                    "a video or its *.pose.json)")
    p.add_argument("--robot", required=True, help="character config name or YAML path (atlas, h1, g1, humanoid)")
    p.add_argument("-o", "--output", type=Path, metavar="OUT",
                   help="robot clip file, *.motion.json (default: the clip store for shipped clips, "
                        "else out/<source>_<robot>.motion.json)")
    p.add_argument("--rate", type=float, default=None, help="sampling rate in Hz for clip sources (default: the "
                                                            "clip's own frames)")
    p.add_argument("--bvh-map", default="auto", metavar="MAP",
                   help="BVH joint map: auto (detect the naming convention), a built-in map "
                        "(config/bvh_maps/NAME.yaml: cmu, mixamo, bandai_namco, ...) or a YAML map file "
                        "(docs/retargeting.md; default auto)")
    p.add_argument("--bvh-up", metavar="AXIS", help="BVH up axis, x, y or z (default: the axis along which the "
                                                    "head is above the feet)")
    unit = p.add_mutually_exclusive_group()
    unit.add_argument("--bvh-unit", metavar="UNIT", help="BVH length unit, m, cm, mm or in (default: the one that "
                                                         "gives the skeleton an adult's height)")
    unit.add_argument("--bvh-scale", type=float, metavar="M", help="BVH length unit in metres, instead of --bvh-unit")
    p.add_argument("--video", type=Path, default=None, help="side-by-side video, .mp4 or .gif (default: next to "
                                                            "OUT, .mp4)")
    p.add_argument("--no-video", action="store_true", help="skip the video")
    p.set_defaults(func=run)


def load_source(source: str, rate: float | None = None, bvh_map: str = "auto", bvh_unit: str | float | None = None,
                bvh_up: str | None = None):
    """(keypoints, loops) of a source given on the command line.  A BVH file's joint map, up axis and unit
    (a name or metres per file unit; None: inferred) are printed to stderr."""
    from mimic_retarget.bvh import read_bvh
    from mimic_retarget.bvh_rig import bvh_reading
    from mimic_retarget.human import keypoints_from_clip
    from mimic_retarget.keypoints import KeypointMotion
    from mimic_sim.motion_file import load_clip

    path = Path(source)
    if path.suffix.lower() in VIDEO_SUFFIXES or path.name.endswith(".pose.json"):
        from mimic_retarget.reconstruction import ReconstructionConfig
        from mimic_retarget.video_cli import output_paths, video_to_clip

        paths = output_paths(source, None)
        video_to_clip(source, paths, ReconstructionConfig())
        return keypoints_from_clip(paths["clip"], rate), False
    if path.suffix.lower() == ".npz":
        return KeypointMotion.load(path), False
    if path.suffix.lower() == ".bvh":
        reading = bvh_reading(read_bvh(path), bvh_map, bvh_up, bvh_unit)
        print(reading.summary(), file=sys.stderr)
        return reading.keypoints(), False
    return keypoints_from_clip(source, rate), load_clip(source).loop


def made_by(clip: str, character, config, rate: float | None = None) -> dict:
    """What a shipped clip retargeted onto ``character`` with ``config`` (a RetargetConfig) and sampled at
    ``rate`` is made from: the record a stored copy must match to be used (the clip file's and the
    character config's content hashes, the settings, :data:`RETARGET_REVISION`)."""
    from mimic_sim.deepmimic_format import resolve_clip
    from mimic_sim.settings import to_dict
    from mimic_sim.task import content_sha256

    return {"clip": clip, "clip_sha256": hashlib.sha256(resolve_clip(clip).read_bytes()).hexdigest(),
            "character": character.name, "character_sha256": content_sha256(character.content),
            "retarget": to_dict(config), "rate": rate, "revision": RETARGET_REVISION}


def ensure_robot_clip(clip: str, character) -> Path | None:
    """A shipped clip's retargeted file for a robot, retargeted now (and stored) if missing, or if the stored
    copy was made from another clip file, character config, settings or retargeter revision.

    None where nothing is needed: the humanoid plays shipped clips as they are, and files are
    used as given.
    """
    from mimic_retarget.retarget import RetargetConfig, Retargeter
    from mimic_sim.deepmimic_format import shipped_clips
    from mimic_sim.motion_file import load_clip, retargeted_clip_path, save_motion, stored_made_by

    if character.name == "humanoid" or clip not in shipped_clips():
        return None
    path = retargeted_clip_path(character.name, clip)
    config = RetargetConfig(loop=load_clip(clip).loop)
    record = made_by(clip, character, config)
    if path.is_file():
        stored = stored_made_by(path)
        if stored == record:
            return path
        changed = sorted(k for k in record if stored is None or stored.get(k) != record[k])
        print(f"{path} was made from another {', '.join(changed)}: retargeting '{clip}' again", file=sys.stderr)
    human, _ = load_source(clip)
    print(f"retargeting '{clip}' onto {character.name} (stored in {path})", file=sys.stderr)
    result = Retargeter(character, config).retarget(human, clip, report=False)
    save_motion(result.motion, path, character=character.name, made_by=record)
    return path


def _stem(source: str) -> str:
    path = Path(source)
    return path.name.split(".")[0].removeprefix("humanoid3d_") if path.suffix else path.name


def run(args: argparse.Namespace) -> int:
    # Import order matters for OpenGL: mimic_sim.render chooses MUJOCO_GL before mujoco loads.
    from mimic_sim.render import video_format

    # isort: split
    from dataclasses import replace

    from tqdm import tqdm

    from mimic_retarget.retarget import RetargetConfig, Retargeter
    from mimic_sim.character import load_character
    from mimic_sim.deepmimic_format import shipped_clips
    from mimic_sim.motion_file import SUFFIX, retargeted_clip_path, save_motion
    from mimic_sim.paths import atomic_write_text

    character = load_character(args.robot)
    human, loops = load_source(args.source, args.rate, args.bvh_map, args.bvh_unit or args.bvh_scale, args.bvh_up)
    stem = _stem(args.source)
    if args.output is not None:
        output = args.output
    elif args.source in shipped_clips():
        output = retargeted_clip_path(character.name, stem)
    else:
        output = Path("out") / f"{stem}_{character.name}{SUFFIX}"
    if not output.name.endswith(SUFFIX):
        raise SystemExit(f"mimic retarget: output {output} must end in {SUFFIX}")
    video = None if args.no_video else (args.video or Path("out") / f"{stem}_{character.name}.mp4")
    if video is not None:
        video_format(video)  # an unknown suffix fails before any work

    config = replace(RetargetConfig(), loop=loops)
    retargeter = Retargeter(character, config)
    with tqdm(total=human.num_frames, unit="frame", desc=f"retarget {stem} -> {character.name}", disable=None,
              file=sys.stderr) as bar:
        result = retargeter.retarget(human, stem, progress=bar.update)
    record = made_by(args.source, character, config, args.rate) if args.source in shipped_clips() else None
    save_motion(result.motion, output, character=character.name, made_by=record)
    report = {"source": str(human.source), "robot": character.name, "clip": str(output), **result.report}
    report_path = output.with_name(output.name.removesuffix(SUFFIX) + ".report.json")
    atomic_write_text(report_path, json.dumps(report, indent=2))
    if video is not None:
        write_side_by_side(character, human, result, video)
        print(video)
    for key, value in result.report.items():
        print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}", file=sys.stderr)
    print(report_path)
    print(output)
    return 0


def write_side_by_side(character, human, result, path: Path, fps: float = 30.0) -> Path:
    """The robot posed by the clip, the human's (scaled) keypoints as a stick figure beside it."""
    import numpy as np

    from mimic_retarget.keypoints import HUMAN_BONES
    from mimic_sim.reference import ReferenceMotion
    from mimic_sim.render import CharacterRenderer, write_video

    bones = [(human.index(a), human.index(b)) for a, b in HUMAN_BONES if a in human.names and b in human.names]
    # The camera looks along +y (motion along x runs across the image): the figure goes to the robot's left in
    # the image, behind it along x by more than either is wide.
    beside = np.array([-1.2 * max(1.0, result.scale), 0.0, 0.0])
    reference = ReferenceMotion(result.motion, character)
    times = np.arange(0.0, result.motion.duration + 1e-9, 1.0 / fps)

    def frames(renderer: CharacterRenderer):
        for t in times:
            points, _ = human.at(float(human.times[0] + t))
            qpos, _ = reference.state(float(t))
            yield renderer.render(qpos, skeleton=(result.scale * points + beside, bones))

    with CharacterRenderer(character, 800, 480, distance=4.0) as renderer:
        return write_video(frames(renderer), path, fps)
