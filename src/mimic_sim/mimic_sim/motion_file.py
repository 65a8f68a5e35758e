"""mimic's own motion file, and one loader for every clip a character can play.

DeepMimic's format fixes the humanoid's joints by column; a robot clip (retargeted
human motion) needs joints by name.  A mimic motion file is JSON::

    {"format": "mimic.motion", "version": 1, "name": "walk", "character": "h1",
     "loop": true, "close_loop": false, "frame_times": [...], "root_pos": [[x, y, z], ...],
     "root_rot": [[w, x, y, z], ...], "joints": {"left_knee": [...], ...}}

Z up, metres, radians; a joint is a list of angles (revolute) or of w, x, y, z
quaternions (spherical).  ``character`` is informative: joints are matched by name
when the clip is played.  ``close_loop`` (default true) makes a looping clip continuous
across the wrap when read; mimic writes false, as it writes keyframes already closed.
A clip mimic stores for a character (a shipped clip retargeted onto a robot) also holds
``made_by``: what it was made from, so that a copy made by other inputs or an older
retargeter is told from a current one (``mimic_retarget.cli.ensure_robot_clip``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mimic_sim.deepmimic_format import load_deepmimic, resolve_clip
from mimic_sim.motion import Motion, MotionError
from mimic_sim.paths import atomic_write_text, cache_dir

FORMAT = "mimic.motion"
VERSION = 1
SUFFIX = ".motion.json"


def motion_to_dict(motion: Motion, character: str | None = None, made_by: dict | None = None) -> dict:
    """``motion`` as a mimic motion file's JSON content (with ``made_by`` where given).

    The keyframes are written as the motion holds them: a looping clip's are already made
    continuous (``Motion._close_loop``), so ``close_loop`` is false and reading them back
    leaves them as they are.
    """
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": motion.name,
        "character": character,
        "loop": bool(motion.loop),
        "close_loop": False,
        "frame_times": motion.frame_times.tolist(),
        "root_pos": motion.root_pos.tolist(),
        "root_rot": motion.root_rot.tolist(),
        "joints": {name: values.tolist() for name, values in motion.joints.items()},
        **({"made_by": made_by} if made_by is not None else {}),
    }


def save_motion(motion: Motion, path: str | Path, character: str | None = None, made_by: dict | None = None) -> Path:
    """Write ``motion`` as a mimic motion file (atomically: a reader sees the old file or the new one)."""
    path = Path(path)
    atomic_write_text(path, json.dumps(motion_to_dict(motion, character, made_by)))
    return path


def stored_made_by(path: str | Path) -> dict | None:
    """The ``made_by`` record of a stored motion file; None where the file has none or cannot be read."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    made_by = data.get("made_by") if isinstance(data, dict) else None
    return made_by if isinstance(made_by, dict) else None


def load_motion(path: str | Path) -> Motion:
    """Read a mimic motion file; a malformed one raises :class:`MotionError` naming the file and field."""
    path = Path(path)
    source = str(path)
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MotionError(source, f"not a JSON motion file ({exc})") from exc
    return motion_from_dict(data, source, default_name=path.name.removesuffix(SUFFIX))


def motion_from_dict(data: object, source: str, default_name: str = "clip") -> Motion:
    """A motion from a mimic motion file's JSON content (:func:`motion_to_dict`); ``source`` names it in errors."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise MotionError(source, f"not a mimic motion file (expected \"format\": \"{FORMAT}\")", field="format")
    if data.get("version") != VERSION:
        raise MotionError(source, f"version {data.get('version')!r} is not supported (this mimic reads {VERSION})",
                          field="version")
    for field in ("frame_times", "root_pos", "root_rot", "joints"):
        if field not in data:
            raise MotionError(source, "missing", field=field)
    if not isinstance(data["joints"], dict):
        raise MotionError(source, "must map joint names to value lists", field="joints")
    try:
        arrays = {field: np.asarray(data[field], dtype=float) for field in ("frame_times", "root_pos", "root_rot")}
        joints = {name: np.asarray(values, dtype=float) for name, values in data["joints"].items()}
    except (TypeError, ValueError) as exc:
        raise MotionError(source, f"values must be numbers ({exc})") from exc
    return Motion(name=str(data.get("name", default_name)), frame_times=arrays["frame_times"],
                  root_pos=arrays["root_pos"], root_rot=arrays["root_rot"], joints=joints,
                  loop=bool(data.get("loop", False)), source=source, close_loop=bool(data.get("close_loop", True)))


def retargeted_clip_path(character: str, clip: str) -> Path:
    """Where ``mimic retarget`` keeps a shipped clip retargeted onto a character."""
    return cache_dir() / "clips" / character / f"{clip}{SUFFIX}"


def load_clip(name_or_path: str | Path, character: str = "humanoid") -> Motion:
    """The motion a character plays for a clip name or file.

    A mimic motion file (``*.motion.json``) or a DeepMimic file by path; a shipped
    clip's short name (``walk``) for the humanoid; for any other character, that
    clip retargeted onto it by ``mimic retarget`` (an error says how to make it).
    """
    path = Path(name_or_path)
    if path.name.endswith(SUFFIX):
        return load_motion(path)
    if character != "humanoid" and not path.suffix:
        retargeted = retargeted_clip_path(character, str(name_or_path))
        if not retargeted.is_file():
            raise FileNotFoundError(f"no clip '{name_or_path}' for character '{character}' at {retargeted}; make it "
                                    f"with: mimic retarget {name_or_path} --robot {character}")
        return load_motion(retargeted)
    return load_deepmimic(resolve_clip(name_or_path))
