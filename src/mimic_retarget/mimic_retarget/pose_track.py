"""Per-frame 2D pose estimates of one person in a video, and the files that keep them.

A :class:`PoseTrack` is what pose estimation gives and motion reconstruction reads: for
each video frame, image points (pixels) with a confidence in [0, 1] for canonical
keypoints (:data:`TRACK_KEYPOINTS`, a subset of :data:`mimic_retarget.keypoints.HUMAN_KEYPOINTS`),
and, where the estimator has them, metric 3D points relative to the hips in camera axes.
A frame without a person has confidence 0 everywhere.  Any estimator's output can be
converted into it; the keypoint file (``*.pose.json``) is how it is kept, so reconstruction
can be re-run without the estimator::

    {"format": "mimic.pose", "version": 1, "estimator": "mediapipe", "video": "jump.mp4",
     "image_size": [1920, 1080], "fps": 30.0,
     "keypoints": ["head", "left_shoulder", ...],
     "frames": [{"time": 0.0, "points": [[u, v, confidence], ...],
                 "world": [[x, y, z], ...]},        # optional: metric, hips at 0, x right, y down, z away
                ...]}

``points`` lists one ``[u, v, confidence]`` per name in ``keypoints`` (pixels, origin at
the top-left corner, v down); ``world`` is present in every frame or in none.  OpenPose's
per-frame JSON (BODY_25 or COCO-18, the first person of each frame) is read by
:func:`read_openpose`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mimic_sim.paths import atomic_write_text

FORMAT = "mimic.pose"
VERSION = 1
SUFFIX = ".pose.json"

TRACK_KEYPOINTS: tuple[str, ...] = (
    "head",
    "left_shoulder", "left_elbow", "left_wrist", "left_hip", "left_knee", "left_ankle", "left_toe",
    "right_shoulder", "right_elbow", "right_wrist", "right_hip", "right_knee", "right_ankle", "right_toe",
)
"""Keypoints an image shows well enough to track: the head (the skull's centre, between the
ears), the limb joints and the toe tips.  Pelvis, chest and neck are inside the body."""

TRACK_BONES: tuple[tuple[str, str], ...] = (
    *((f"{s}_{a}", f"{s}_{b}") for s in ("left", "right")
      for a, b in (("hip", "knee"), ("knee", "ankle"), ("ankle", "toe"), ("shoulder", "elbow"), ("elbow", "wrist"),
                   ("hip", "shoulder"))),
    ("right_hip", "left_hip"), ("right_shoulder", "left_shoulder"), ("left_shoulder", "head"),
    ("right_shoulder", "head"),
)
"""Pairs of track keypoints a body holds at a fixed distance (limb bones, the trunk's sides and
widths, the head over the shoulders)."""

COLLAPSE_RATIO = 0.6
"""A bone shorter than this of its median length over the clip (or longer than its inverse) in the
estimator's own 3D landmarks is wrong (:meth:`PoseTrack.collapsed`)."""


class PoseTrackError(ValueError):
    """A pose track or file is malformed; the message names the file, frame and field."""


@dataclass(frozen=True)
class PoseTrack:
    """2D keypoints (and optional hip-relative 3D ones) of one person, frame by frame.

    ``times`` (T,) seconds, strictly increasing; ``points`` (T, K, 2) pixels;
    ``confidence`` (T, K) in [0, 1], 0 where a keypoint (or the whole person) was not
    found; ``world`` (T, K, 3) metres in camera axes (x right, y down, z away from the
    camera), hips at the origin, or None.  ``image_size`` is (width, height) in pixels.
    ``redetected`` (T,) bool: the frames whose keypoints are the estimator's second pass, a
    detection afresh where following lost the person (``pose_estimation.merge_passes``), or None
    where no second pass ran or the source does not say.
    """

    names: list[str]
    times: np.ndarray
    points: np.ndarray
    confidence: np.ndarray
    image_size: tuple[int, int]
    world: np.ndarray | None = None
    estimator: str = "unknown"
    source: str = "<memory>"
    redetected: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", list(self.names))
        unknown = [n for n in self.names if n not in TRACK_KEYPOINTS]
        if unknown:
            raise PoseTrackError(f"{self.source}: field 'keypoints': unknown keypoints {unknown} "
                                 f"(known: {list(TRACK_KEYPOINTS)})")
        t, k = len(self.times), len(self.names)
        shapes = {"times": (t,), "points": (t, k, 2), "confidence": (t, k)}
        if self.world is not None:
            shapes["world"] = (t, k, 3)
        for field, shape in shapes.items():
            value = np.array(getattr(self, field), dtype=float)
            if value.shape != shape:
                raise PoseTrackError(f"{self.source}: field '{field}': shape {value.shape}, expected {shape}")
            finite = np.isfinite(value).reshape(t, -1).all(axis=1) if t else np.ones(0, bool)
            if not finite.all():
                raise PoseTrackError(f"{self.source}: frame {int(np.argmin(finite))}: field '{field}' is NaN or "
                                     "infinite")
            value.setflags(write=False)
            object.__setattr__(self, field, value)
        if t < 2:
            raise PoseTrackError(f"{self.source}: field 'frames': a track needs at least 2 frames, got {t}")
        steps = np.diff(self.times)
        if (steps <= 0).any():
            raise PoseTrackError(f"{self.source}: frame {int(np.argmax(steps <= 0)) + 1}: field 'time' does not "
                                 "increase")
        bad = (self.confidence < 0) | (self.confidence > 1)
        if bad.any():
            frame, key = np.argwhere(bad)[0]
            raise PoseTrackError(f"{self.source}: frame {frame}: keypoint '{self.names[key]}': confidence "
                                 f"{self.confidence[frame, key]} is not in [0, 1]")
        width, height = self.image_size
        if not (width > 0 and height > 0):
            raise PoseTrackError(f"{self.source}: field 'image_size': {self.image_size} is not a positive size")
        object.__setattr__(self, "image_size", (int(width), int(height)))
        if self.redetected is not None:
            redetected = np.array(self.redetected)
            if redetected.shape != (t,) or redetected.dtype != bool:
                raise PoseTrackError(f"{self.source}: field 'redetected': {redetected.dtype} of shape "
                                     f"{redetected.shape}, expected bool of shape {(t,)}")
            redetected.setflags(write=False)
            object.__setattr__(self, "redetected", redetected)

    @property
    def num_frames(self) -> int:
        return len(self.times)

    @property
    def fps(self) -> float:
        return float((self.num_frames - 1) / (self.times[-1] - self.times[0]))

    @property
    def detected(self) -> np.ndarray:
        """(T,) frames where the estimator found the person."""
        return self.confidence.max(axis=1) > 0

    def index(self, name: str) -> int:
        return self.names.index(name)

    def replace(self, **changes) -> PoseTrack:
        """A copy with some fields changed (validated again)."""
        fields = {f: getattr(self, f) for f in ("names", "times", "points", "confidence", "image_size", "world",
                                                 "estimator", "source", "redetected")}
        return PoseTrack(**{**fields, **changes})

    def collapsed(self, ratio: float = COLLAPSE_RATIO) -> np.ndarray:
        """(T, K) points most of whose bones (:data:`TRACK_BONES`), two at least, in the estimator's
        own 3D landmarks are shorter than ``ratio`` of their median length over the clip (or longer
        than its inverse): the estimator lost the body there even if it says it is sure.  (A point
        at the end of one bone, a toe or a wrist, is left out: one short bone's length varies too
        much with the landmarks' noise.)  None are without 3D landmarks or with under 3 frames."""
        out = np.zeros(self.confidence.shape, dtype=bool)
        bones = [(self.index(a), self.index(b)) for a, b in TRACK_BONES if a in self.names and b in self.names]
        if self.world is None or self.detected.sum() < 3 or not bones:
            return out
        ends = np.array(bones)
        lengths = np.linalg.norm(self.world[:, ends[:, 0]] - self.world[:, ends[:, 1]], axis=-1)
        usual = np.median(lengths[self.detected], axis=0)
        wrong = (lengths < ratio * usual) | (lengths * ratio > usual)  # (T, bones)
        votes, counts = np.zeros(self.confidence.shape), np.zeros(len(self.names))
        for j, (a, b) in enumerate(bones):
            votes[:, [a, b]] += wrong[:, j, None]
            counts[[a, b]] += 1
        return (self.confidence > 0) & (votes >= 2) & (votes > counts / 2)

    def segment(self, start: float = 0.0, end: float | None = None) -> PoseTrack:
        """The frames from ``start`` to ``end`` seconds (end excluded; half a frame of tolerance),
        times kept; fewer than two frames is an error naming the source."""
        half = 0.5 / self.fps
        keep = self.times >= start - half
        if end is not None:
            keep &= self.times < end - half
        if keep.all():
            return self
        if keep.sum() < 2:
            raise PoseTrackError(f"{self.source}: {int(keep.sum())} frame(s) from {start} s"
                                 f"{'' if end is None else f' to {end} s'}; reconstruction needs at least 2")
        return self.replace(times=self.times[keep], points=self.points[keep], confidence=self.confidence[keep],
                            world=None if self.world is None else self.world[keep],
                            redetected=None if self.redetected is None else self.redetected[keep])

    def save(self, path: str | Path, video: str | None = None) -> Path:
        """Write the keypoint file (atomically)."""
        path = Path(path)
        frames = []
        for i in range(self.num_frames):
            frame: dict = {"time": float(self.times[i]),
                           "points": np.column_stack([self.points[i], self.confidence[i]]).round(3).tolist()}
            if self.world is not None:
                frame["world"] = self.world[i].round(5).tolist()
            frames.append(frame)
        data = {"format": FORMAT, "version": VERSION, "estimator": self.estimator, "video": video,
                "image_size": list(self.image_size), "fps": self.fps, "keypoints": self.names, "frames": frames}
        if self.redetected is not None:
            data["redetected_frames"] = np.flatnonzero(self.redetected).tolist()
        atomic_write_text(path, json.dumps(data))
        return path

    @classmethod
    def load(cls, path: str | Path) -> PoseTrack:
        """Read a keypoint file; a malformed one raises :class:`PoseTrackError` naming the file, frame and field."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PoseTrackError(f"{path}: not a readable JSON keypoint file ({exc})") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise PoseTrackError(f"{path}: field 'format': not a mimic keypoint file (expected \"{FORMAT}\")")
        if data.get("version") != VERSION:
            raise PoseTrackError(f"{path}: field 'version': {data.get('version')!r} is not supported "
                                 f"(this mimic reads {VERSION})")
        for field in ("image_size", "keypoints", "frames"):
            if field not in data:
                raise PoseTrackError(f"{path}: field '{field}' is missing")
        names, frames = data["keypoints"], data["frames"]
        if not isinstance(names, list) or not isinstance(frames, list):
            raise PoseTrackError(f"{path}: fields 'keypoints' and 'frames' must be lists")
        with_world = bool(frames) and isinstance(frames[0], dict) and "world" in frames[0]
        times, points, world = [], [], []
        for i, frame in enumerate(frames):
            fields = ("time", "points", "world") if with_world else ("time", "points")
            for field in fields:
                if not isinstance(frame, dict) or field not in frame:
                    raise PoseTrackError(f"{path}: frame {i}: field '{field}' is missing")
            try:
                times.append(float(frame["time"]))
                points.append(_array(frame["points"], (len(names), 3)))
                if with_world:
                    world.append(_array(frame["world"], (len(names), 3)))
            except (TypeError, ValueError) as exc:
                raise PoseTrackError(f"{path}: frame {i}: {exc}") from exc
        try:
            size = tuple(float(v) for v in data["image_size"])
        except (TypeError, ValueError) as exc:
            raise PoseTrackError(f"{path}: field 'image_size': {exc}") from exc
        if len(size) != 2:
            raise PoseTrackError(f"{path}: field 'image_size' must be [width, height]")
        table = np.array(points).reshape(len(frames), len(names), 3)
        return cls(names, np.array(times), table[..., :2], table[..., 2], size,
                   np.array(world) if with_world else None, str(data.get("estimator", "unknown")), str(path),
                   _redetected(data.get("redetected_frames"), len(frames), path))


def _redetected(indices: object, frames: int, path: Path) -> np.ndarray | None:
    """The frames a keypoint file's ``redetected_frames`` lists, as a (frames,) mask; None if absent."""
    if indices is None:
        return None
    if not isinstance(indices, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
        raise PoseTrackError(f"{path}: field 'redetected_frames' must be a list of frame numbers")
    bad = [i for i in indices if not 0 <= i < frames]
    if bad:
        raise PoseTrackError(f"{path}: field 'redetected_frames': frame {bad[0]} is not among the {frames} frames")
    mask = np.zeros(frames, dtype=bool)
    mask[indices] = True
    return mask


def _array(value: object, shape: tuple[int, int]) -> np.ndarray:
    out = np.asarray(value, dtype=float)
    if out.shape != shape:
        raise ValueError(f"field 'points'/'world': shape {out.shape}, expected {shape}")
    return out


# OpenPose's keypoint orders: each canonical keypoint as the mean of these OpenPose points.
OPENPOSE_BODY_25 = {
    "head": (17, 18), "right_shoulder": (2,), "right_elbow": (3,), "right_wrist": (4,),
    "left_shoulder": (5,), "left_elbow": (6,), "left_wrist": (7,), "right_hip": (9,), "right_knee": (10,),
    "right_ankle": (11,), "left_hip": (12,), "left_knee": (13,), "left_ankle": (14,), "left_toe": (19,),
    "right_toe": (22,),
}
OPENPOSE_COCO_18 = {
    "head": (16, 17), "right_shoulder": (2,), "right_elbow": (3,), "right_wrist": (4,),
    "left_shoulder": (5,), "left_elbow": (6,), "left_wrist": (7,), "right_hip": (8,), "right_knee": (9,),
    "right_ankle": (10,), "left_hip": (11,), "left_knee": (12,), "left_ankle": (13,),
}


def _frame_number(path: Path) -> int:
    """OpenPose names its files ``<video>_000000000042_keypoints.json``: the last number is the frame."""
    numbers = re.findall(r"\d+", path.name)
    if not numbers:
        raise PoseTrackError(f"{path}: no frame number in the file name")
    return int(numbers[-1])


def read_openpose(folder: str | Path, image_size: tuple[int, int], fps: float) -> PoseTrack:
    """A track from OpenPose's per-frame JSON files (``--write_json``) in ``folder``.

    BODY_25 and COCO-18 are told apart by the number of points; of several people in a
    frame the first is taken (OpenPose lists the most confident first); a frame without
    people is a frame without detection.  Frame times are ``frame number / fps``.
    """
    folder = Path(folder)
    files = sorted(folder.glob("*_keypoints.json"), key=_frame_number)
    if len(files) < 2:
        raise PoseTrackError(f"{folder}: needs at least 2 OpenPose '*_keypoints.json' files, found {len(files)}")
    layout = None
    points = np.zeros((len(files), len(TRACK_KEYPOINTS), 2))
    confidence = np.zeros((len(files), len(TRACK_KEYPOINTS)))
    for i, path in enumerate(files):
        try:
            people = json.loads(path.read_text())["people"]
            flat = np.asarray(people[0]["pose_keypoints_2d"], dtype=float) if people else None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise PoseTrackError(f"{path}: not an OpenPose keypoint file (field 'people' / 'pose_keypoints_2d': "
                                 f"{exc!r})") from exc
        if flat is None:
            continue
        if flat.shape not in ((75,), (54,)):
            raise PoseTrackError(f"{path}: field 'pose_keypoints_2d' has {flat.size} numbers; BODY_25 has 75, "
                                 "COCO-18 54")
        if not np.isfinite(flat).all():
            raise PoseTrackError(f"{path}: field 'pose_keypoints_2d' holds NaN or infinite values")
        table = flat.reshape(-1, 3)
        layout = OPENPOSE_BODY_25 if len(table) == 25 else OPENPOSE_COCO_18
        for k, name in enumerate(TRACK_KEYPOINTS):
            sources = layout.get(name)
            if sources is None:
                continue
            rows = table[list(sources)]
            # OpenPose writes (0, 0, 0) for a point it did not find: all the points averaged must be there.
            if (rows[:, 2] > 0).all():
                points[i, k] = rows[:, :2].mean(axis=0)
                confidence[i, k] = float(np.clip(rows[:, 2].min(), 0.0, 1.0))
    names = list(TRACK_KEYPOINTS) if layout is not OPENPOSE_COCO_18 else [
        n for n in TRACK_KEYPOINTS if n in OPENPOSE_COCO_18]
    keep = [TRACK_KEYPOINTS.index(n) for n in names]
    times = np.array([_frame_number(p) for p in files], dtype=float) / fps
    return PoseTrack(names, times, points[:, keep], confidence[:, keep], image_size, None, "openpose", str(folder))
