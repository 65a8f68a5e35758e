"""Reader for DeepMimic's JSON motion files (``humanoid3d_*.txt``).

Layout of one frame (44 numbers): frame duration, root position (3, Y-up), root
rotation (w, x, y, z), then chest, neck, right hip (quaternions), right knee
(angle), right ankle, right shoulder (quaternions), right elbow (angle), and the
same for the left side.  A frame's duration is the time to the next frame, so the
last frame's duration is unused (often 0).  Clips are converted to mimic's Z-up
convention on load: positions p -> C p and rotations q -> C q C^-1 with C a +90
degree turn about x, which maps the DeepMimic character's link frames onto the
Z-up humanoid built by :mod:`mimic_sim.humanoid_urdf`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from mimic_sim import rotations as rot
from mimic_sim.motion import QUAT_NORM_TOLERANCE, Motion, MotionError

# (name, number of values): spherical joints store a quaternion, revolute joints an angle.
DEEPMIMIC_JOINTS: tuple[tuple[str, int], ...] = (
    ("chest", 4),
    ("neck", 4),
    ("right_hip", 4),
    ("right_knee", 1),
    ("right_ankle", 4),
    ("right_shoulder", 4),
    ("right_elbow", 1),
    ("left_hip", 4),
    ("left_knee", 1),
    ("left_ankle", 4),
    ("left_shoulder", 4),
    ("left_elbow", 1),
)
FRAME_SIZE = 1 + 3 + 4 + sum(n for _, n in DEEPMIMIC_JOINTS)
# Largest plausible magnitude by column: frame duration (s), root position (m, three
# columns), then rotations and angles (rad or quaternion components).  Beyond these a
# clip is corrupt, and keyframe times or velocities would lose all precision.
MAX_MAGNITUDE = (3600.0, 1e4, 1e4, 1e4, 1e3)

# Y-up to Z-up: +90 degrees about x.
Y_UP_TO_Z_UP = rot.axis_angle_quat(np.array([1.0, 0.0, 0.0]), math.pi / 2)


def _field_of(column: int) -> str:
    if column == 0:
        return "duration"
    if column < 4:
        return "root_position"
    if column < 8:
        return "root_rotation"
    offset = 8
    for name, size in DEEPMIMIC_JOINTS:
        if column < offset + size:
            return name
        offset += size
    return f"column {column}"


def clip_directory() -> Path:
    """Folder of the DeepMimic clips shipped in the installed ``pybullet_data`` package."""
    import pybullet_data

    return Path(pybullet_data.getDataPath()) / "data" / "motions"


def shipped_clips() -> list[str]:
    """Names (``walk``, ``backflip``, ...) of the humanoid clips in ``pybullet_data``."""
    return sorted(p.stem.removeprefix("humanoid3d_") for p in clip_directory().glob("humanoid3d_*.txt"))


def resolve_clip(name_or_path: str | Path) -> Path:
    """A clip file from a path, or a shipped clip's short name (``walk``)."""
    path = Path(name_or_path)
    if path.suffix and path.exists():
        return path
    candidate = clip_directory() / f"humanoid3d_{name_or_path}.txt"
    if candidate.exists():
        return candidate
    if path.exists():
        return path
    raise FileNotFoundError(
        f"no motion file '{name_or_path}': not a file, and not one of the shipped clips {shipped_clips()}"
    )


def load_deepmimic(path: str | Path, close_loop: bool = True) -> Motion:
    """Load a DeepMimic JSON clip as a Z-up :class:`Motion`. Bad files raise :class:`MotionError`.

    ``close_loop=False`` keeps a wrapped clip's keyframes exactly as stored.
    """
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise MotionError(source, f"not a text file ({exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MotionError(source, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    return parse_deepmimic(data, source=source, name=path.stem.removeprefix("humanoid3d_"), close_loop=close_loop)


def parse_deepmimic(data: object, source: str = "<memory>", name: str = "clip", close_loop: bool = True) -> Motion:
    if not isinstance(data, dict):
        raise MotionError(source, "top level must be a JSON object with 'Loop' and 'Frames'")
    loop = data.get("Loop", "none")
    if loop not in ("wrap", "none"):
        raise MotionError(source, f"'Loop' must be 'wrap' or 'none', got {loop!r}", field="Loop")
    frames = data.get("Frames")
    if not isinstance(frames, list) or len(frames) < 2:
        raise MotionError(source, "'Frames' must be a list of at least 2 frames", field="Frames")
    rows = []
    for i, frame in enumerate(frames):
        if not isinstance(frame, list) or len(frame) != FRAME_SIZE:
            length = len(frame) if isinstance(frame, list) else type(frame).__name__
            raise MotionError(source, f"expected {FRAME_SIZE} numbers, got {length}", frame=i, field="Frames")
        for j, value in enumerate(frame):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise MotionError(source, f"not a number: {value!r}", frame=i, field=_field_of(j))
            try:
                number = float(value)  # JSON integers can exceed any float
            except OverflowError:
                raise MotionError(source, "number out of range", frame=i, field=_field_of(j)) from None
            if not math.isfinite(number):
                raise MotionError(source, "value is NaN or infinite", frame=i, field=_field_of(j))
            if abs(number) > MAX_MAGNITUDE[min(j, 4)]:
                raise MotionError(source, f"{number:g} is out of range (at most {MAX_MAGNITUDE[min(j, 4)]:g})",
                                  frame=i, field=_field_of(j))
        rows.append(frame)
    table = np.asarray(rows, dtype=float)
    durations = table[:, 0]
    # The last frame's duration is the time to a next frame that does not exist.
    bad = np.flatnonzero(~(durations[:-1] > 0.0))
    if bad.size:
        raise MotionError(source, f"frame duration must be positive, got {durations[bad[0]]}", frame=int(bad[0]),
                          field="duration")
    times = np.concatenate([[0.0], np.cumsum(durations[:-1])])

    def quats(col: int, field: str) -> np.ndarray:
        q = table[:, col : col + 4]
        err = np.abs(np.linalg.norm(q, axis=1) - 1.0)
        if (err > QUAT_NORM_TOLERANCE).any():
            i = int(np.argmax(err))
            raise MotionError(source, f"quaternion norm {np.linalg.norm(q[i]):.4f} is not 1 "
                              f"(tolerance {QUAT_NORM_TOLERANCE})", frame=i, field=field)
        # Conjugating by C turns Y-up frames into the Z-up model's frames.
        q = rot.quat_mul(rot.quat_mul(Y_UP_TO_Z_UP, rot.quat_normalize(q)), rot.quat_conj(Y_UP_TO_Z_UP))
        return rot.quat_normalize(rot.quat_positive(q))  # unit after the products too: Motion keeps it

    root_pos = rot.quat_rotate(Y_UP_TO_Z_UP, table[:, 1:4])
    root_rot = quats(4, "root_rotation")
    joints: dict[str, np.ndarray] = {}
    col = 8
    for joint, size in DEEPMIMIC_JOINTS:
        joints[joint] = quats(col, joint) if size == 4 else table[:, col].copy()
        col += size
    return Motion(name=name, frame_times=times, root_pos=root_pos, root_rot=root_rot, joints=joints,
                  loop=loop == "wrap", source=source, close_loop=close_loop)
