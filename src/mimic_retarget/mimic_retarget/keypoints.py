"""Human keypoint sequences: what every motion source (DeepMimic clip, BVH, video) becomes.

A :class:`KeypointMotion` holds named 3D points over time in mimic's world (metres,
Z up, x forward, y left) and, when the source has them, the world orientation of
each point's body frame.  Robot mapping files name the canonical keypoints in
:data:`HUMAN_KEYPOINTS`; a source may provide a subset, or extra names.

Files are ``.npz`` archives without pickled objects: ``names`` (string array),
``times``, ``positions``, optionally ``rotations``, and ``source``.  A file names
canonical keypoints only: an unknown name there is most likely a misspelt one, which a
retargeter would otherwise report, far from the cause, as a keypoint the file lacks.
"""

from __future__ import annotations

import difflib
import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mimic_sim import rotations as rot
from mimic_sim.paths import atomic_write_bytes

HUMAN_KEYPOINTS: tuple[str, ...] = (
    "pelvis", "chest", "neck", "head",
    "left_hip", "left_knee", "left_ankle", "left_toe",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle", "right_toe",
    "right_shoulder", "right_elbow", "right_wrist",
)
"""Canonical keypoints.  Positions are joint centres; for pelvis, chest, head and the
ankles the rotation is that body's frame (head: the skull, ankle: the foot)."""

HUMAN_PARENTS: dict[str, str] = {
    "chest": "pelvis", "neck": "chest", "head": "neck",
    **{f"{side}_{child}": (f"{side}_{parent}" if parent not in ("pelvis", "chest") else parent)
       for side in ("left", "right")
       for child, parent in (("hip", "pelvis"), ("knee", "hip"), ("ankle", "knee"), ("toe", "ankle"),
                             ("shoulder", "chest"), ("elbow", "shoulder"), ("wrist", "elbow"))},
}
"""The skeleton: each keypoint's parent (the pelvis is the root)."""

HUMAN_BONES: tuple[tuple[str, str], ...] = tuple((parent, child) for child, parent in HUMAN_PARENTS.items())
"""Keypoint pairs drawn as a stick figure."""

ROTATION_TOLERANCE = 1e-6
"""Largest deviation of R^T R from the identity (and of det R from 1) accepted as a rotation."""

FILE_FORMAT = "mimic.keypoints/1"


class KeypointError(ValueError):
    """A keypoint sequence or file is malformed; the message names the field, frame and keypoint."""


@dataclass(frozen=True)
class KeypointMotion:
    """Named 3D keypoints over time.

    ``times`` (T,) seconds, strictly increasing; ``positions`` (T, N, 3) world
    metres, Z up; ``rotations`` (T, N, 3, 3) world orientation of each keypoint's
    body frame, or None when the source gives points only.  Arrays are stored as
    read-only float64 copies, so a motion cannot change after it was validated.
    """

    names: list[str]
    times: np.ndarray
    positions: np.ndarray
    rotations: np.ndarray | None = None
    source: str = "<memory>"

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", list(self.names))
        for field in ("times", "positions", "rotations"):
            value = getattr(self, field)
            if value is not None:
                array = np.array(value, dtype=float)
                array.flags.writeable = False
                object.__setattr__(self, field, array)
        self._validate()

    def _fail(self, message: str, field: str, frame: int | None = None, keypoint: int | None = None) -> None:
        where = [self.source, f"field '{field}'"]
        if frame is not None:
            where.append(f"frame {frame}")
        if keypoint is not None:
            where.append(f"keypoint '{self.names[keypoint]}'")
        raise KeypointError(f"{', '.join(where)}: {message}")

    def _validate(self) -> None:
        names = self.names
        if not names:
            self._fail("a motion needs at least one keypoint", "names")
        for i, name in enumerate(names):
            if not isinstance(name, str) or not name:
                self._fail(f"name {i} must be a non-empty string, got {name!r}", "names")
        seen: set[str] = set()
        for name in names:
            if name in seen:
                self._fail(f"'{name}' appears twice", "names")
            seen.add(name)
        t = self.times
        if t.ndim != 1 or t.shape[0] < 1:
            self._fail(f"shape {t.shape}, expected (T,) with T >= 1", "times")
        n_frames, n_points = t.shape[0], len(names)
        bad = np.flatnonzero(~np.isfinite(t))
        if bad.size:
            self._fail("time is NaN or infinite", "times", frame=int(bad[0]))
        bad = np.flatnonzero(~(np.diff(t) > 0.0))
        if bad.size:
            i = int(bad[0]) + 1
            self._fail(f"times must increase strictly: {t[i]!r} follows {t[i - 1]!r}", "times", frame=i)
        self._check_array("positions", self.positions, (n_frames, n_points, 3))
        if self.rotations is not None:
            r = self.rotations
            self._check_array("rotations", r, (n_frames, n_points, 3, 3))
            error = np.abs(np.swapaxes(r, -1, -2) @ r - np.eye(3)).max(axis=(-2, -1))
            error = np.maximum(error, np.abs(np.linalg.det(r) - 1.0))
            bad_frame, bad_point = np.nonzero(error > ROTATION_TOLERANCE)
            if bad_frame.size:
                f, k = int(bad_frame[0]), int(bad_point[0])
                self._fail(f"not a rotation matrix (orthonormality or determinant off by {error[f, k]:.3g}, "
                           f"tolerance {ROTATION_TOLERANCE})", "rotations", frame=f, keypoint=k)

    def _check_array(self, field: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
        if array.shape != shape:
            self._fail(f"shape {array.shape}, expected {shape} (frames, keypoints{', 3' * (len(shape) - 2)})", field)
        finite = np.isfinite(array).reshape(shape[0], shape[1], -1).all(axis=-1)
        bad_frame, bad_point = np.nonzero(~finite)
        if bad_frame.size:
            self._fail("value is NaN or infinite", field, frame=int(bad_frame[0]), keypoint=int(bad_point[0]))

    # ---------------------------------------------------------------- structure
    @property
    def num_frames(self) -> int:
        return int(self.times.shape[0])

    @property
    def duration(self) -> float:
        return float(self.times[-1] - self.times[0])

    @property
    def fps(self) -> float:
        """Mean frame rate (frames may be unevenly spaced)."""
        if self.num_frames < 2:
            raise KeypointError(f"{self.source}: a single frame has no frame rate")
        return (self.num_frames - 1) / self.duration

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"{self.source}: no keypoint '{name}' (has: {', '.join(self.names)})") from None

    def subset(self, names: list[str] | tuple[str, ...]) -> KeypointMotion:
        """The same motion with only ``names``, in that order."""
        columns = [self.index(n) for n in names]
        return KeypointMotion(list(names), self.times, self.positions[:, columns],
                              None if self.rotations is None else self.rotations[:, columns], self.source)

    def at(self, time: float) -> tuple[np.ndarray, np.ndarray | None]:
        """``(positions (N, 3), rotations (N, 3, 3) or None)`` at ``time``.

        Positions are interpolated linearly, rotations by slerp; outside the time
        range the first or last frame is held (a clip does not extrapolate).
        """
        t = self.times
        if self.num_frames == 1 or time <= t[0]:
            return self._frame(0)
        if time >= t[-1]:
            return self._frame(self.num_frames - 1)
        i = int(np.searchsorted(t, time, side="right")) - 1
        a = (time - t[i]) / (t[i + 1] - t[i])
        positions = (1.0 - a) * self.positions[i] + a * self.positions[i + 1]
        if self.rotations is None:
            return positions, None
        q = rot.quat_slerp(rot.mat_to_quat(self.rotations[i]), rot.mat_to_quat(self.rotations[i + 1]), a)
        return positions, rot.quat_to_mat(q)

    def _frame(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        return self.positions[i].copy(), None if self.rotations is None else self.rotations[i].copy()

    # ---------------------------------------------------------------- files
    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` file atomically (readers see the old file or the whole new one);
        the names must be canonical keypoints (:data:`HUMAN_KEYPOINTS`)."""
        _check_canonical(self.names, Path(path))
        arrays = {"format": np.array(FILE_FORMAT), "names": np.array(self.names, dtype=str),
                  "times": self.times, "positions": self.positions, "source": np.array(self.source)}
        if self.rotations is not None:
            arrays["rotations"] = self.rotations
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(Path(path), buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> KeypointMotion:
        """Read a file written by :meth:`save`; a malformed file raises :class:`KeypointError` naming it."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            # not a zip, truncated, a corrupt member, or an object array
            raise KeypointError(f"{path}: not a keypoint file ({exc})") from exc
        if arrays.get("format", np.array("")).item() != FILE_FORMAT:
            raise KeypointError(f"{path}: field 'format': expected '{FILE_FORMAT}'")
        missing = [k for k in ("names", "times", "positions", "source") if k not in arrays]
        if missing:
            raise KeypointError(f"{path}: missing fields {missing}")
        names = arrays["names"]
        if names.ndim != 1 or names.dtype.kind != "U":
            raise KeypointError(f"{path}: field 'names' must be a 1-D string array, got {names.dtype} {names.shape}")
        _check_canonical([str(n) for n in names], path)
        try:
            return cls([str(n) for n in names], arrays["times"], arrays["positions"], arrays.get("rotations"),
                       str(arrays["source"].item()))
        except KeypointError as exc:
            raise KeypointError(f"{path}: {exc}") from exc


def _check_canonical(names: list[str], path: Path) -> None:
    unknown = [n for n in names if n not in HUMAN_KEYPOINTS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], HUMAN_KEYPOINTS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(HUMAN_KEYPOINTS)})"
        raise KeypointError(f"{path}: field 'names': unknown keypoint '{unknown[0]}'{hint}")
