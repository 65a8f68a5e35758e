"""BVH (Biovision Hierarchy) motion files: read, forward kinematics, write.

A BVH file is a joint tree (``OFFSET`` of each joint in its parent's frame,
``CHANNELS`` it animates) followed by one line of channel values per frame.  Each
joint's local transform is a translation (the offset, or its position channels)
then the rotation channels composed in the order listed (intrinsic: ``Zrotation
Xrotation Yrotation`` is Rz @ Rx @ Ry), in degrees.

The reader and writer are written here rather than taken from PyPI.  Checked
(2026-11): ``bvhio`` 1.5.4, the best-kept candidate, stores offsets and poses in
single precision (PyGLM ``vec3``/``quat``), so a read-write round trip changes
channel values in the 7th digit and loses the values as written, and it loops
forever on a file with fewer frame lines than its ``Frames:`` count;
``bvhTools`` 1.6.0 splits lines on single spaces, warns and carries on when the
frame count is wrong, writes 6 fixed decimals and pulls in raylib; ``bvh`` 0.3 is
a read-only tokenizer without kinematics; ``bvhsdk`` 0.2.1 writes offsets with 5
decimals.  Here values stay float64, files round-trip exactly (shortest exact
decimal form), and every error names the file and line.  Turning a file's joints into
keypoints (joint maps, up axis, unit) is :mod:`mimic_retarget.bvh_rig`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from mimic_sim.paths import atomic_write_text

CHANNEL_NAMES = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")

Y_UP = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
"""File axes -> mimic's world for the usual BVH convention (Y up, the character facing +Z,
its left +X): file (x, y, z) becomes mimic (z, x, y), so forward is +x, left +y, up +z."""
Z_UP = np.eye(3)
"""For files already in mimic's axes."""
X_UP = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
"""For files with X up: file (x, y, z) becomes mimic (y, z, x), the same cyclic turn as
:data:`Y_UP`, so all three are rotations (a reflection would swap left and right)."""

CM = 0.01
"""Metres per centimetre, the usual BVH unit (CMU, LAFAN1)."""

class BvhError(ValueError):
    """A BVH file or motion is malformed; the message names the file and line or field."""


@dataclass(frozen=True)
class BvhJoint:
    """One joint: ``parent`` index (-1 for the root), ``offset`` in the parent's frame
    (file units), ``channels`` in file order, and the ``End Site`` offset if it has one."""

    name: str
    parent: int
    offset: np.ndarray
    channels: tuple[str, ...]
    end_site: np.ndarray | None = None


@dataclass(frozen=True)
class BvhMotion:
    """A BVH skeleton and its channel values ``(frames, channels)``, in file units and degrees.

    ``joints`` are in file order (depth first, parents before children), which is
    also the order of their channels in each frame.
    """

    joints: tuple[BvhJoint, ...]
    frame_time: float
    values: np.ndarray
    source: str = "<memory>"

    def __post_init__(self) -> None:
        object.__setattr__(self, "joints", tuple(self.joints))
        values = np.array(self.values, dtype=float)
        values.flags.writeable = False
        object.__setattr__(self, "values", values)
        self._validate()

    def _validate(self) -> None:
        src = self.source
        if not self.joints:
            raise BvhError(f"{src}: a skeleton needs at least one joint")
        stack: list[int] = []
        seen: dict[str, int] = {}
        for j, joint in enumerate(self.joints):
            if joint.name in seen:
                raise BvhError(f"{src}: joint name '{joint.name}' is used twice (joints {seen[joint.name]} and {j})")
            seen[joint.name] = j
            if (j == 0) != (joint.parent == -1):
                raise BvhError(f"{src}: joint '{joint.name}': only the first joint is the root (parent -1)")
            while stack and stack[-1] != joint.parent:
                stack.pop()
            if j and not stack:
                raise BvhError(f"{src}: joint '{joint.name}': parent {joint.parent} is not an enclosing joint "
                               "(joints must be in file order: depth first, parents before children)")
            stack.append(j)
            unknown = [c for c in joint.channels if c not in CHANNEL_NAMES]
            if unknown or len(set(joint.channels)) != len(joint.channels):
                raise BvhError(f"{src}: joint '{joint.name}': channels {list(joint.channels)} must be distinct names "
                               f"from {list(CHANNEL_NAMES)}")
            for what, vector in (("offset", joint.offset), ("end site", joint.end_site)):
                if vector is not None and (np.shape(vector) != (3,) or not np.isfinite(vector).all()):
                    raise BvhError(f"{src}: joint '{joint.name}': {what} must be 3 finite numbers, got {vector}")
        if not (math.isfinite(self.frame_time) and self.frame_time > 0.0):
            raise BvhError(f"{src}: frame time must be positive, got {self.frame_time}")
        expected = (self.values.shape[0], self.num_channels) if self.values.ndim == 2 else None
        if expected is None or expected[0] < 1 or self.values.shape != expected:
            raise BvhError(f"{src}: channel values have shape {self.values.shape}, expected (frames >= 1, "
                           f"{self.num_channels})")
        bad_frame, bad_column = np.nonzero(~np.isfinite(self.values))
        if bad_frame.size:
            joint, channel = self.channel_owner(int(bad_column[0]))
            raise BvhError(f"{src}: frame {int(bad_frame[0])}, joint '{joint}', channel {channel}: "
                           "value is NaN or infinite")

    # ---------------------------------------------------------------- structure
    @property
    def names(self) -> list[str]:
        return [j.name for j in self.joints]

    @property
    def num_frames(self) -> int:
        return int(self.values.shape[0])

    @property
    def num_channels(self) -> int:
        return sum(len(j.channels) for j in self.joints)

    def index(self, name: str) -> int:
        for j, joint in enumerate(self.joints):
            if joint.name == name:
                return j
        raise KeyError(f"{self.source}: no joint '{name}'")

    def channel_owner(self, column: int) -> tuple[str, str]:
        """(joint name, channel name) of a column of ``values``."""
        for joint in self.joints:
            if column < len(joint.channels):
                return joint.name, joint.channels[column]
            column -= len(joint.channels)
        raise IndexError(f"{self.source}: no channel column {column}")

    # ---------------------------------------------------------------- kinematics
    def local_transforms(self) -> tuple[np.ndarray, np.ndarray]:
        """Each joint's translation ``(F, J, 3)`` and rotation ``(F, J, 3, 3)`` in its parent's frame.

        Position channels replace the offset's components (the usual reading: exporters
        write the root's position, and a joint's rest translation, into them).
        """
        f, n = self.num_frames, len(self.joints)
        translation = np.empty((f, n, 3))
        rotation = np.empty((f, n, 3, 3))
        column = 0
        for j, joint in enumerate(self.joints):
            translation[:, j] = joint.offset
            local = np.broadcast_to(np.eye(3), (f, 3, 3))
            for channel in joint.channels:
                axis = "XYZ".index(channel[0])
                if channel.endswith("position"):
                    translation[:, j, axis] = self.values[:, column]
                else:
                    local = local @ _axis_rotation(axis, np.radians(self.values[:, column]))
                column += 1
            rotation[:, j] = local
        return translation, rotation

    def forward_kinematics(self) -> tuple[np.ndarray, np.ndarray]:
        """World positions ``(F, J, 3)`` (file units) and orientations ``(F, J, 3, 3)`` of every joint frame."""
        translation, local = self.local_transforms()
        positions = np.empty_like(translation)
        rotations = np.empty_like(local)
        for j, joint in enumerate(self.joints):
            if joint.parent < 0:
                positions[:, j], rotations[:, j] = translation[:, j], local[:, j]
            else:
                parent = rotations[:, joint.parent]
                positions[:, j] = positions[:, joint.parent] + np.einsum("fab,fb->fa", parent, translation[:, j])
                rotations[:, j] = parent @ local[:, j]
        return positions, rotations


def _axis_rotation(axis: int, angles: np.ndarray) -> np.ndarray:
    """Rotations ``(F, 3, 3)`` by ``angles`` (radians) about coordinate axis 0, 1 or 2."""
    c, s = np.cos(angles), np.sin(angles)
    m = np.zeros((len(angles), 3, 3))
    i, k = (axis + 1) % 3, (axis + 2) % 3
    m[:, axis, axis] = 1.0
    m[:, i, i], m[:, i, k], m[:, k, i], m[:, k, k] = c, -s, s, c
    return m


def motion_from_rotations(joints: Sequence[BvhJoint], frame_time: float, root_translation: np.ndarray,
                          local_rotations: np.ndarray, source: str = "<memory>") -> BvhMotion:
    """A :class:`BvhMotion` whose channel values reproduce ``local_rotations`` ``(F, J, 3, 3)``.

    Every joint needs all three rotation channels (any order); the root's position
    channels take ``root_translation`` ``(F, 3)``, other joints' position channels their offset.
    """
    local_rotations = np.asarray(local_rotations, dtype=float)
    frames = local_rotations.shape[0]
    if local_rotations.shape != (frames, len(joints), 3, 3):
        raise BvhError(f"{source}: local rotations have shape {local_rotations.shape}, expected "
                       f"({frames}, {len(joints)}, 3, 3)")
    columns = []
    for j, joint in enumerate(joints):
        order = "".join(c[0] for c in joint.channels if c.endswith("rotation"))
        if sorted(order) != ["X", "Y", "Z"]:
            raise BvhError(f"{source}: joint '{joint.name}' needs the three rotation channels to hold any rotation, "
                           f"has {list(joint.channels)}")
        with warnings.catch_warnings():
            # At gimbal lock scipy sets the third angle to zero and still returns angles
            # that compose to the same rotation, which is all a BVH file needs.
            warnings.filterwarnings("ignore", message="Gimbal lock detected")
            angles = Rotation.from_matrix(local_rotations[:, j]).as_euler(order, degrees=True)
        rotation_column = iter(range(3))
        translation = root_translation if joint.parent < 0 else np.broadcast_to(joint.offset, (frames, 3))
        for channel in joint.channels:
            axis = "XYZ".index(channel[0])
            columns.append(translation[:, axis] if channel.endswith("position") else angles[:, next(rotation_column)])
    values = np.stack(columns, axis=1) if columns else np.zeros((frames, 0))
    return BvhMotion(tuple(joints), frame_time, values, source)


# -------------------------------------------------------------------- files
def _number(x: float) -> str:
    return repr(float(x))  # the shortest text that reads back as exactly this float


def write_bvh(path: str | Path, motion: BvhMotion) -> None:
    """Write ``motion`` as a BVH file, atomically; it reads back exactly (float64)."""
    children: list[list[int]] = [[] for _ in motion.joints]
    for j, joint in enumerate(motion.joints):
        if joint.parent >= 0:
            children[joint.parent].append(j)
    lines = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        joint, pad = motion.joints[j], "\t" * depth
        lines.append(f"{pad}{'ROOT' if depth == 0 else 'JOINT'} {joint.name}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}\tOFFSET {' '.join(_number(v) for v in joint.offset)}")
        lines.append(f"{pad}\tCHANNELS {len(joint.channels)}{''.join(' ' + c for c in joint.channels)}")
        for child in children[j]:
            emit(child, depth + 1)
        if joint.end_site is not None:
            lines.extend([f"{pad}\tEnd Site", f"{pad}\t{{",
                          f"{pad}\t\tOFFSET {' '.join(_number(v) for v in joint.end_site)}", f"{pad}\t}}"])
        lines.append(f"{pad}}}")

    emit(0, 0)
    lines += ["MOTION", f"Frames: {motion.num_frames}", f"Frame Time: {_number(motion.frame_time)}"]
    lines += [" ".join(_number(v) for v in row) for row in motion.values]
    atomic_write_text(Path(path), "\n".join(lines) + "\n")


class _Tokens:
    """Whitespace-separated tokens of the hierarchy section, with their line numbers."""

    def __init__(self, source: str, lines: list[str]):
        self.source = source
        self.items = [(number, token) for number, line in enumerate(lines, 1) for token in line.split()]
        self.end_line = len(lines)
        self.pos = 0

    def error(self, message: str, line: int | None = None) -> BvhError:
        if line is None:
            line = self.items[self.pos - 1][0] if self.pos else 1
        return BvhError(f"{self.source}:{line}: {message}")

    def next(self, what: str) -> str:
        if self.pos >= len(self.items):
            raise BvhError(f"{self.source}:{self.end_line}: file ends where {what} was expected")
        self.pos += 1
        return self.items[self.pos - 1][1]

    def expect(self, token: str) -> None:
        found = self.next(f"'{token}'")
        if found != token:
            raise self.error(f"expected '{token}', found '{found}'")

    def numbers(self, count: int, what: str) -> np.ndarray:
        out = []
        for _ in range(count):
            token = self.next(what)
            try:
                out.append(float(token))
            except ValueError:
                raise self.error(f"{what}: '{token}' is not a number") from None
        values = np.array(out)
        if not np.isfinite(values).all():
            raise self.error(f"{what} must be finite, got {out}")
        return values


def _parse_joint(tokens: _Tokens, name: str, parent: int, joints: list[BvhJoint]) -> None:
    index = len(joints)
    joints.append(BvhJoint(name, parent, np.zeros(3), ()))  # placeholder keeps file order; replaced below
    header_line = tokens.items[tokens.pos - 1][0]
    tokens.expect("{")
    offset: np.ndarray | None = None
    channels: tuple[str, ...] = ()
    end_site: np.ndarray | None = None
    while True:
        key = tokens.next(f"the rest of joint '{name}'")
        if key == "OFFSET":
            offset = tokens.numbers(3, f"joint '{name}' OFFSET")
        elif key == "CHANNELS":
            channels_line = tokens.items[tokens.pos - 1][0]
            count_token = tokens.next(f"joint '{name}' channel count")
            if not count_token.isdigit():
                raise tokens.error(f"joint '{name}': channel count '{count_token}' is not a whole number")
            listed = []
            for _ in range(int(count_token)):
                channel = tokens.next(f"joint '{name}' channel name")
                if channel not in CHANNEL_NAMES:
                    raise tokens.error(f"joint '{name}': CHANNELS {count_token} lists {len(listed)} channel names, "
                                       f"then '{channel}', which is not one of {list(CHANNEL_NAMES)}", channels_line)
                listed.append(channel)
            channels = tuple(listed)
        elif key == "JOINT":
            _parse_joint(tokens, tokens.next("a joint name"), index, joints)
        elif key == "End":
            tokens.expect("Site")
            if end_site is not None:
                raise tokens.error(f"joint '{name}' has a second End Site")
            tokens.expect("{")
            tokens.expect("OFFSET")
            end_site = tokens.numbers(3, f"End Site of joint '{name}'")
            tokens.expect("}")
        elif key == "}":
            break
        else:
            raise tokens.error(f"joint '{name}': unexpected '{key}' (expected OFFSET, CHANNELS, JOINT, End Site "
                               "or '}')")
    if offset is None:
        raise tokens.error(f"joint '{name}' has no OFFSET", header_line)
    joints[index] = BvhJoint(name, parent, offset, channels, end_site)


def read_bvh(path: str | Path) -> BvhMotion:
    """Read a BVH file.  Malformed files raise :class:`BvhError` naming the file and line."""
    path = Path(path)
    source = str(path)
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError as exc:
        raise BvhError(f"{source}: not a text file ({exc})") from exc
    motion_line = next((i for i, line in enumerate(lines) if line.split()[:1] == ["MOTION"]), None)
    if motion_line is None:
        raise BvhError(f"{source}: no MOTION section")
    tokens = _Tokens(source, lines[:motion_line])
    tokens.expect("HIERARCHY")
    tokens.expect("ROOT")
    joints: list[BvhJoint] = []
    _parse_joint(tokens, tokens.next("the root joint's name"), -1, joints)
    if tokens.pos < len(tokens.items):
        line, token = tokens.items[tokens.pos]
        raise tokens.error(f"unexpected '{token}' after the root joint (one ROOT per file is supported)", line)

    rest = [(i + 1, line.split()) for i, line in enumerate(lines) if i > motion_line and line.strip()]
    if len(rest) < 2 or rest[0][1][:1] != ["Frames:"] or rest[1][1][:2] != ["Frame", "Time:"]:
        raise BvhError(f"{source}:{motion_line + 1}: MOTION must be followed by 'Frames: N' and 'Frame Time: T'")
    (frames_line, frames_tokens), (time_line, time_tokens) = rest[0], rest[1]
    if len(frames_tokens) != 2 or not frames_tokens[1].isdigit():
        raise BvhError(f"{source}:{frames_line}: expected 'Frames: N' with N a whole number")
    try:
        frame_time = float(time_tokens[2]) if len(time_tokens) == 3 else math.nan
    except ValueError:
        frame_time = math.nan
    if not (math.isfinite(frame_time) and frame_time > 0.0):
        raise BvhError(f"{source}:{time_line}: expected 'Frame Time: T' with T a positive number of seconds")
    declared = int(frames_tokens[1])
    frame_lines = rest[2:]
    if len(frame_lines) != declared:
        raise BvhError(f"{source}:{frames_line}: declares {declared} frames, the file has {len(frame_lines)} "
                       "frame lines")
    num_channels = sum(len(j.channels) for j in joints)
    values = np.empty((declared, num_channels))
    for frame, (line, row) in enumerate(frame_lines):
        if len(row) != num_channels:
            raise BvhError(f"{source}:{line}: frame {frame} has {len(row)} values, the hierarchy has "
                           f"{num_channels} channels")
        try:
            values[frame] = [float(v) for v in row]
        except ValueError:
            bad = next(v for v in row if not _is_number(v))
            raise BvhError(f"{source}:{line}: frame {frame}: '{bad}' is not a number") from None
    return BvhMotion(tuple(joints), frame_time, values, source)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
