"""Live pose estimation: camera images in, the person's human keypoints out, causally.

What ``pose_node`` runs on each image, without ROS.  :class:`LivePoseEstimator` runs
MediaPipe Pose as the offline pipeline's first pass does, following the person
(:func:`mimic_retarget.pose_estimation.open_mediapipe`, the same landmark-to-keypoint
table; no second pass detecting the person on every frame: it would double the latency),
turns the hip-relative metric landmarks from camera axes into mimic's world (x along the
camera's view, Z up; the camera's pitch given), adds the trunk keypoints MediaPipe has no
landmark for (pelvis, chest, neck; see :func:`human_keypoints`) and filters them with a
one-euro filter (Casiez et al., CHI 2012) on the images' own time stamps: one image in, its
keypoints out, no look-ahead.

Latency of the filter: it is an exponential smoother whose cutoff rises with a keypoint's
speed, ``f = min_cutoff + beta * speed`` (Hz, speed in m/s); a keypoint moving steadily
lags by ``1 / (2 pi f)`` seconds (:meth:`OneEuroFilter.lag`): with the defaults 64 ms at
rest (where lag is invisible, and jitter is what shows), 23 ms at 1 m/s, 14 ms at 2 m/s.

The positions are relative to the hips (MediaPipe's world landmarks are): the person does
not move across the world, and a jump does not leave the ground.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mimic_retarget.keypoints import HUMAN_KEYPOINTS
from mimic_retarget.pose_estimation import mediapipe_keypoints, open_mediapipe
from mimic_retarget.pose_track import TRACK_KEYPOINTS

TRUNK = {"chest": 0.49, "neck": 0.96}
"""Where the chest and neck joints sit on the line from the hips' midpoint (the pelvis) to the
shoulders' midpoint, as fractions of it: the DeepMimic humanoid's at rest (the skeleton the
robot maps are written for; tests/test_live_pose.py checks them against it)."""

ENCODINGS = {"rgb8": (3, (0, 1, 2)), "bgr8": (3, (2, 1, 0)), "rgba8": (4, (0, 1, 2)), "bgra8": (4, (2, 1, 0)),
             "mono8": (1, (0, 0, 0))}
"""Image encodings taken (sensor_msgs/image_encodings names): bytes per pixel and the channels that
make red, green, blue."""


class ImageError(ValueError):
    """An image's fields do not describe its data; the message says which."""


def image_rgb(encoding: str, width: int, height: int, step: int, data: bytes | memoryview) -> np.ndarray:
    """An image's pixels as a contiguous (height, width, 3) RGB uint8 array.

    ``step`` is the row length in bytes (rows may be padded); anything inconsistent raises
    :class:`ImageError` with one line saying what.
    """
    if encoding not in ENCODINGS:
        raise ImageError(f"encoding '{encoding}' is not one of {', '.join(ENCODINGS)}")
    channels, order = ENCODINGS[encoding]
    if width <= 0 or height <= 0:
        raise ImageError(f"size {width} x {height} is empty")
    if step < width * channels:
        raise ImageError(f"step {step} is shorter than a row of {width} {encoding} pixels ({width * channels} bytes)")
    if len(data) != step * height:
        raise ImageError(f"{len(data)} bytes of data, but step x height is {step * height}")
    rows = np.frombuffer(data, dtype=np.uint8).reshape(height, step)[:, :width * channels]
    pixels = rows.reshape(height, width, channels)
    return np.ascontiguousarray(pixels if encoding == "rgb8" else pixels[..., list(order)])


def human_keypoints(world: np.ndarray, to_world: np.ndarray) -> np.ndarray:
    """:data:`HUMAN_KEYPOINTS` positions (18, 3) in mimic's world from the hip-relative landmarks of the
    track keypoints (:data:`TRACK_KEYPOINTS`, (15, 3), camera axes) and the camera-to-world rotation.

    Pelvis is the hips' midpoint (as on the humanoid); chest and neck lie on the line to the
    shoulders' midpoint (:data:`TRUNK`)."""
    points = dict(zip(TRACK_KEYPOINTS, np.asarray(world, dtype=float) @ to_world.T, strict=True))
    hips = (points["left_hip"] + points["right_hip"]) / 2
    shoulders = (points["left_shoulder"] + points["right_shoulder"]) / 2
    points["pelvis"] = hips
    for name, fraction in TRUNK.items():
        points[name] = hips + fraction * (shoulders - hips)
    return np.array([points[name] for name in HUMAN_KEYPOINTS])


@dataclass(frozen=True)
class OneEuroConfig:
    """The one-euro filter on the keypoints (its lag: see :mod:`mimic_retarget.live_pose`)."""

    min_cutoff: float = 2.5
    """Filter cutoff (Hz) of a keypoint at rest: lower is smoother and lags more (1 / (2 pi cutoff) s)."""
    beta: float = 4.5
    """Cutoff added per m/s of a keypoint's speed: the faster it moves, the less it lags."""
    speed_cutoff: float = 1.0
    """Cutoff (Hz) of the speed estimate the cutoff follows."""

    def __post_init__(self) -> None:
        if not (self.min_cutoff > 0 and self.speed_cutoff > 0 and self.beta >= 0):
            raise ValueError(f"filter: min_cutoff ({self.min_cutoff}) and speed_cutoff ({self.speed_cutoff}) must "
                             f"be positive, beta ({self.beta}) not negative")


class OneEuroFilter:
    """A one-euro filter on a set of 3D points (N, 3): each point's cutoff follows its own speed."""

    def __init__(self, config: OneEuroConfig):
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next sample passes unfiltered."""
        self._time: float | None = None
        self._value: np.ndarray | None = None
        self._raw: np.ndarray | None = None
        self._speed: np.ndarray | None = None

    def lag(self, speed: float | np.ndarray) -> float | np.ndarray:
        """Seconds by which a point moving steadily at ``speed`` (m/s) is late."""
        return 1.0 / (2 * np.pi * (self.config.min_cutoff + self.config.beta * np.asarray(speed)))

    @staticmethod
    def _alpha(dt: float, cutoff: float | np.ndarray) -> float | np.ndarray:
        return 1.0 / (1.0 + 1.0 / (2 * np.pi * cutoff * dt))

    def __call__(self, time: float, points: np.ndarray) -> np.ndarray:
        """The filtered points at ``time`` (s; after the previous sample's)."""
        points = np.asarray(points, dtype=float)
        if self._value is None or self._raw is None or self._time is None:
            self._time, self._value, self._raw, self._speed = time, points.copy(), points, np.zeros(len(points))
            return points.copy()
        dt = time - self._time
        if not dt > 0:
            raise ValueError(f"sample time {time} is not after the previous one ({self._time})")
        c = self.config
        # The speed between raw samples (Casiez et al. take it from the last filtered value, which
        # overstates it by the lag and makes the cutoff depend on the frame rate): the lag is then
        # 1 / (2 pi f) at any frame rate.
        speed = np.linalg.norm(points - self._raw, axis=1) / dt
        self._speed = self._speed + self._alpha(dt, c.speed_cutoff) * (speed - self._speed)
        alpha = self._alpha(dt, c.min_cutoff + c.beta * self._speed)[:, None]
        self._value = self._value + alpha * (points - self._value)
        self._time, self._raw = time, points
        return self._value.copy()


@dataclass(frozen=True)
class LivePoseConfig:
    """MediaPipe's thresholds, the camera, the filter."""

    min_detection_confidence: float = 0.5
    """MediaPipe's: a person is found when its detector is at least this confident (the offline pipeline's)."""
    min_tracking_confidence: float = 0.5
    """MediaPipe's: below this, the person is looked for anew instead of followed from the last image."""
    camera_pitch: float = 0.0
    """Camera pitch in degrees, positive looking down: turns the keypoints level (Z up)."""
    filter: OneEuroConfig = field(default_factory=OneEuroConfig)

    def __post_init__(self) -> None:
        for name in ("min_detection_confidence", "min_tracking_confidence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} ({getattr(self, name)}) must be in [0, 1]")


class LivePoseEstimator:
    """One person's :data:`HUMAN_KEYPOINTS` from each image of a stream, filtered causally.

    Images must come in time order (MediaPipe follows the person from one to the next).  An
    image without a person gives None and restarts the filter, so a person found again does
    not blend with where they were; so does a time stamp not after the previous image's (a new
    stream).
    """

    names: tuple[str, ...] = HUMAN_KEYPOINTS

    def __init__(self, config: LivePoseConfig | None = None):
        self.config = config or LivePoseConfig()
        # Here, not at the top: the node parameters import this module's configs without torch and Pinocchio.
        from mimic_retarget.reconstruction import camera_to_world

        self._pose = open_mediapipe(self.config.min_detection_confidence, self.config.min_tracking_confidence)
        self._to_world = camera_to_world(float(np.radians(self.config.camera_pitch)))
        self.filter = OneEuroFilter(self.config.filter)
        self._time: float | None = None

    def unfiltered(self, rgb: np.ndarray) -> np.ndarray | None:
        """The keypoints (18, 3) of one RGB image (H, W, 3 uint8) as MediaPipe sees them, or None."""
        found = mediapipe_keypoints(self._pose.process(rgb), rgb.shape[1], rgb.shape[0])
        return None if found is None else human_keypoints(found[2], self._to_world)

    def estimate(self, rgb: np.ndarray, time: float) -> np.ndarray | None:
        """The filtered keypoints (18, 3) of the image taken at ``time`` (s), or None without a person."""
        if self._time is not None and time <= self._time:
            self.filter.reset()
        self._time = time
        points = self.unfiltered(rgb)
        if points is None:
            self.filter.reset()
            return None
        return self.filter(time, points)

    def close(self) -> None:
        self._pose.close()

    def __enter__(self) -> LivePoseEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
