"""Live pose estimation without ROS: images in, filtered human keypoints out (what pose_node runs)."""

from __future__ import annotations

import numpy as np
import pytest
from video_helpers import render_walk

from mimic_retarget.keypoints import HUMAN_KEYPOINTS
from mimic_retarget.live_pose import (
    TRUNK,
    ImageError,
    LivePoseEstimator,
    OneEuroConfig,
    OneEuroFilter,
    human_keypoints,
    image_rgb,
)
from mimic_retarget.pose_track import TRACK_KEYPOINTS
from mimic_retarget.reconstruction import camera_to_world


def test_trunk_fractions_are_the_humanoids():
    from mimic_retarget.human import keypoints_from_clip

    human = keypoints_from_clip("walk")
    p = {n: human.positions[0, human.index(n)] for n in human.names}
    hips = (p["left_hip"] + p["right_hip"]) / 2
    trunk = (p["left_shoulder"] + p["right_shoulder"]) / 2 - hips
    assert np.allclose(p["pelvis"], hips, atol=1e-6)
    for name, fraction in TRUNK.items():
        assert abs(np.dot(p[name] - hips, trunk) / np.dot(trunk, trunk) - fraction) < 0.01, name


def test_camera_axes_become_mimics_world():
    # camera axes: x right, y down, z away; a level camera looks along the world's +x
    world = np.zeros((len(TRACK_KEYPOINTS), 3))
    world[TRACK_KEYPOINTS.index("head")] = [0.1, -0.6, 0.2]  # right of the image centre, up, farther
    world[TRACK_KEYPOINTS.index("left_shoulder")] = [0.0, -0.4, 0.0]
    world[TRACK_KEYPOINTS.index("right_shoulder")] = [0.0, -0.4, 0.0]
    points = dict(zip(HUMAN_KEYPOINTS, human_keypoints(world, camera_to_world(0.0)), strict=True))
    assert np.allclose(points["head"], [0.2, -0.1, 0.6])
    assert np.allclose(points["neck"], [0.0, 0.0, 0.4 * TRUNK["neck"]])
    assert np.allclose(points["pelvis"], 0.0)
    # pitched down by 30 degrees: a point straight ahead along the camera's axis lies below the horizon
    ahead = camera_to_world(np.radians(30.0)) @ [0.0, 0.0, 1.0]
    assert np.allclose(ahead, [np.cos(np.radians(30.0)), 0.0, -np.sin(np.radians(30.0))])


def test_images_of_every_encoding_and_padding_and_bad_fields():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert (image_rgb("rgb8", 3, 2, 9, rgb.tobytes()) == rgb).all()
    assert (image_rgb("bgr8", 3, 2, 9, rgb[..., ::-1].tobytes()) == rgb).all()
    rgba = np.concatenate([rgb, np.full((2, 3, 1), 255, np.uint8)], axis=2)
    assert (image_rgb("rgba8", 3, 2, 12, rgba.tobytes()) == rgb).all()
    assert (image_rgb("bgra8", 3, 2, 12, rgba[..., [2, 1, 0, 3]].tobytes()) == rgb).all()
    padded = np.concatenate([rgb.reshape(2, 9), np.zeros((2, 3), np.uint8)], axis=1)  # rows of 12 bytes
    assert (image_rgb("rgb8", 3, 2, 12, padded.tobytes()) == rgb).all()
    grey = image_rgb("mono8", 3, 2, 3, bytes(range(6)))
    assert grey.shape == (2, 3, 3) and (grey[..., 0] == grey[..., 2]).all()
    for args, message in (((("yuv422", 3, 2, 6, bytes(12))), "encoding 'yuv422'"),
                          ((("rgb8", 3, 2, 9, bytes(17))), "17 bytes of data, but step x height is 18"),
                          ((("rgb8", 3, 2, 6, bytes(12))), "step 6 is shorter"),
                          ((("rgb8", 0, 2, 0, b"")), "empty")):
        with pytest.raises(ImageError, match=message):
            image_rgb(*args)


def test_one_euro_filter_lags_as_documented_and_restarts():
    config = OneEuroConfig(min_cutoff=2.0, beta=0.0)  # a fixed cutoff: a plain exponential smoother
    smooth = OneEuroFilter(config)
    times = np.arange(0.0, 3.0, 1 / 100)
    out = np.array([smooth(t, np.array([[t, 0.0, 0.0]]))[0, 0] for t in times])  # 1 m/s along x
    lag = times[-1] - out[-1]
    assert lag == pytest.approx(smooth.lag(1.0), rel=0.05)  # 1 / (2 pi 2 Hz) = 80 ms
    fast = OneEuroFilter(OneEuroConfig(min_cutoff=2.0, beta=4.0))
    out = np.array([fast(t, np.array([[t, 0.0, 0.0]]))[0, 0] for t in times])
    assert times[-1] - out[-1] == pytest.approx(fast.lag(1.0), rel=0.1)  # 1 / (2 pi 6 Hz) = 27 ms
    with pytest.raises(ValueError, match="not after"):
        fast(times[-1], np.zeros((1, 3)))
    fast.reset()
    assert np.allclose(fast(0.0, np.ones((1, 3))), 1.0)  # the first sample after a restart passes as it is
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroConfig(min_cutoff=0.0)


def test_live_estimates_are_the_offline_per_frame_estimates_filtered(tmp_path):
    """The same frames through the offline estimator (mimic video's) and the live one: the same
    keypoints before the filter, and the filter's output after it."""
    from mimic_retarget.pose_estimation import estimate_mediapipe, read_video

    video = render_walk(tmp_path / "walk.mp4", seconds=1.0)
    track = estimate_mediapipe(video, second_pass=False)  # live, MediaPipe follows the person only
    offline = [human_keypoints(track.world[i], camera_to_world(0.0)) if track.detected[i] else None
               for i in range(track.num_frames)]
    frames, _, fps, _ = read_video(video)
    smooth = OneEuroFilter(OneEuroConfig())
    with LivePoseEstimator() as live:
        for i, rgb in enumerate(frames):
            got = live.estimate(rgb, i / fps)
            if offline[i] is None:
                assert got is None
                smooth.reset()
                continue
            expected = smooth(i / fps, offline[i])
            assert got is not None and np.allclose(got, expected, atol=1e-6), i
    assert track.detected.mean() > 0.6
