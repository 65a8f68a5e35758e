"""Motion model and DeepMimic clip loader: shipped clips, sampling, loop closure, velocities, bad files."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mimic_sim import rotations as rot
from mimic_sim.deepmimic_format import (
    DEEPMIMIC_JOINTS,
    FRAME_SIZE,
    load_deepmimic,
    parse_deepmimic,
    resolve_clip,
    shipped_clips,
)
from mimic_sim.motion import QUAT_NORM_TOLERANCE, Motion, MotionError

CLIPS = shipped_clips()
_CACHE: dict[str, Motion] = {}


def clip(name: str) -> Motion:
    """A shipped clip, loaded once per test session (tests must not mutate it)."""
    if name not in _CACHE:
        _CACHE[name] = load_deepmimic(resolve_clip(name))
    return _CACHE[name]


def raw(name: str) -> dict:
    """The parsed JSON of a shipped clip (a fresh copy)."""
    return json.loads(resolve_clip(name).read_text())


def column_of(field: str) -> int:
    """First column of a DeepMimic frame that holds ``field``."""
    col = 8
    for joint, size in DEEPMIMIC_JOINTS:
        if joint == field:
            return col
        col += size
    raise KeyError(field)


def rot_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in [0, pi] of the rotation between unit quaternions (sign-invariant)."""
    return rot.quat_angle(rot.quat_mul(rot.quat_conj(a), b))


# ---------------------------------------------------------------- shipped clips
def test_fifteen_shipped_clips():
    assert len(CLIPS) == 15
    assert {"walk", "run", "roll", "kick", "backflip"} <= set(CLIPS)
    assert FRAME_SIZE == 44


@pytest.mark.parametrize("name", CLIPS)
def test_shipped_clip_loads(name):
    m = clip(name)
    assert m.num_frames >= 2
    assert m.frame_times[0] == 0.0
    assert np.all(np.diff(m.frame_times) > 0.0)
    assert m.duration > 0.0
    assert m.root_pos.shape == (m.num_frames, 3)
    assert m.root_rot.shape == (m.num_frames, 4)
    assert set(m.joints) == {name for name, _ in DEEPMIMIC_JOINTS}
    assert len(m.spherical_joints) == 8 and len(m.revolute_joints) == 4
    np.testing.assert_allclose(np.linalg.norm(m.rotation_table, axis=-1), 1.0, atol=1e-12)
    # The number of keyframes matches the file, and durations are the file's.
    frames = raw(name)["Frames"]
    assert m.num_frames == len(frames)
    np.testing.assert_allclose(np.diff(m.frame_times), [f[0] for f in frames[:-1]], rtol=1e-12)
    assert m.loop == (raw(name).get("Loop", "none") == "wrap")


@pytest.mark.parametrize("name", [c for c in CLIPS if clip(c).loop])
def test_looping_clip_continuous_across_wrap(name):
    m = clip(name)
    assert m.loop
    eps = 1e-6
    before, after = m.sample(m.duration - eps), m.sample(m.duration + eps)
    assert np.linalg.norm(before.root_pos - after.root_pos) < 1e-4
    assert rot_dist(before.root_rot, after.root_rot) < 1e-4
    for joint in m.spherical_joints:
        assert rot_dist(before.joints[joint], after.joints[joint]) < 1e-4, joint
    for joint in m.revolute_joints:
        assert abs(before.joints[joint][0] - after.joints[joint][0]) < 1e-4, joint
    # Also across the second wrap: the root keeps being carried forward.
    before2, after2 = m.sample(2 * m.duration - eps), m.sample(2 * m.duration + eps)
    assert np.linalg.norm(before2.root_pos - after2.root_pos) < 1e-4
    assert rot_dist(before2.root_rot, after2.root_rot) < 1e-4


def test_walk_20s_moves_forward():
    m = clip("walk")
    s = m.sample(20.0)
    assert s.root_pos[0] > 15.0
    assert abs(s.root_pos[1]) < 0.5
    # Progress is steady: every second of the 20 s the walk gains ground.
    xs = [m.sample(t).root_pos[0] for t in np.arange(0.0, 20.5, 1.0)]
    assert np.all(np.diff(xs) > 0.5)
    # Height stays a walking height and does not drift over cycles.
    zs = [m.sample(t).root_pos[2] for t in np.linspace(0.0, 20.0, 101)]
    assert min(zs) > 0.6 and max(zs) < 1.1


def test_roll_uneven_durations_and_keyframes_exact():
    m = clip("roll")
    dt = np.diff(m.frame_times)
    assert dt.max() - dt.min() > 0.01  # 1/60 s and ~1/30 s frames
    for i in range(m.num_frames - 1):
        s = m.sample(float(m.frame_times[i]))
        np.testing.assert_allclose(s.root_pos, m.root_pos[i], atol=1e-9, rtol=0)
        assert rot_dist(s.root_rot, m.root_rot[i]) < 1e-7
        for joint in m.spherical_joints:
            assert rot_dist(s.joints[joint], m.joints[joint][i]) < 1e-7
        for joint in m.revolute_joints:
            assert abs(s.joints[joint][0] - m.joints[joint][i]) < 1e-9
    # The last keyframe time is the wrap: the first frame shifted by one cycle equals the last keyframe.
    s = m.sample(m.duration)
    np.testing.assert_allclose(s.root_pos, m.root_pos[-1], atol=1e-9, rtol=0)


def test_sampling_between_uneven_keyframes_uses_their_own_interval():
    m = clip("roll")
    dt = np.diff(m.frame_times)
    i = int(np.argmax(dt))  # a long interval
    t = m.frame_times[i] + 0.25 * dt[i]
    expected = 0.75 * m.root_pos[i] + 0.25 * m.root_pos[i + 1]
    np.testing.assert_allclose(m.sample(float(t)).root_pos, expected, atol=1e-9, rtol=0)


# ---------------------------------------------------------------- interpolation
@pytest.mark.parametrize("name", ["walk", "backflip", "roll"])
def test_halfway_is_slerp_and_linear(name):
    m = clip(name)
    checked = 0
    for i in range(0, m.num_frames - 1, 3):
        t = 0.5 * (m.frame_times[i] + m.frame_times[i + 1])
        s = m.sample(float(t))
        for joint in m.spherical_joints:
            q0, q1, q = m.joints[joint][i], m.joints[joint][i + 1], s.joints[joint]
            d0, d1 = rot_dist(q0, q), rot_dist(q, q1)
            assert abs(d0 - d1) < 1e-9
            assert abs(d0 + d1 - rot_dist(q0, q1)) < 1e-9  # on the geodesic
            checked += rot_dist(q0, q1) > 1e-3
        for joint in m.revolute_joints:
            expected = 0.5 * (m.joints[joint][i] + m.joints[joint][i + 1])
            assert abs(s.joints[joint][0] - expected) < 1e-12
    assert checked > 10  # the test saw real rotations


def test_slerp_not_nlerp_at_quarter():
    """Slerp moves at constant angular speed; nlerp would not (checked on a large 2.5 rad step)."""
    q0 = rot.IDENTITY
    q1 = rot.axis_angle_quat(np.array([0.0, 0.6, 0.8]), 2.5)
    motion = Motion(
        name="synthetic",
        frame_times=[0.0, 1.0],
        root_pos=np.zeros((2, 3)),
        root_rot=[q0, q1],
        joints={"j": [q0, q1], "a": [0.0, 2.0]},
    )
    for alpha in (0.1, 0.25, 0.5, 0.8):
        s = motion.sample(alpha)
        assert abs(rot_dist(q0, s.joints["j"]) - alpha * 2.5) < 1e-9
        assert abs(rot_dist(q0, s.root_rot) - alpha * 2.5) < 1e-9
        assert abs(s.joints["a"][0] - 2.0 * alpha) < 1e-12


@pytest.mark.parametrize("name", ["walk", "roll", "kick", "backflip"])
def test_slerp_quarter_on_shipped_clip(name):
    m = clip(name)
    for i in range(0, m.num_frames - 1, 5):
        t = m.frame_times[i] + 0.25 * (m.frame_times[i + 1] - m.frame_times[i])
        s = m.sample(float(t))
        for joint in m.spherical_joints:
            q0, q1 = m.joints[joint][i], m.joints[joint][i + 1]
            assert abs(rot_dist(q0, s.joints[joint]) - 0.25 * rot_dist(q0, q1)) < 1e-9


# ------------------------------------------------------------------- velocities
def _turning_clip(n: int, fps: float, loop: bool, z: np.ndarray) -> Motion:
    """A clip moving at 0.8 m/s along x, turning at 1.5 rad/s (root, about z) and 2 rad/s
    (joint "j", about its local y), bending "a" at -0.7 rad/s; the root height is ``z``."""
    t = np.arange(n) / fps
    root = np.stack([0.8 * t, np.zeros(n), z], axis=1)
    return Motion(name="synthetic", frame_times=t, root_pos=root, loop=loop, close_loop=False,
                  root_rot=[rot.axis_angle_quat(np.array([0.0, 0.0, 1.0]), 1.5 * x) for x in t],
                  joints={"j": [rot.axis_angle_quat(np.array([0.0, 1.0, 0.0]), 2.0 * x) for x in t],
                          "a": -0.7 * t})


def test_velocities_of_a_steady_motion_are_exact():
    """Filtering and blending keep a constant velocity as it is, between keyframes too."""
    m = _turning_clip(60, 30.0, loop=False, z=np.full(60, 0.9))
    for t in (0.0, 0.31, 1.0, 1.55, m.duration - 1e-6):
        s = m.sample(t)
        np.testing.assert_allclose(s.root_lin_vel, [0.8, 0.0, 0.0], atol=1e-9, rtol=0)
        np.testing.assert_allclose(s.root_ang_vel, [0.0, 0.0, 1.5], atol=1e-9, rtol=0)
        np.testing.assert_allclose(s.joint_vel["j"], [0.0, 2.0, 0.0], atol=1e-9, rtol=0)
        assert s.joint_vel["a"][0] == pytest.approx(-0.7, abs=1e-9)


def _jittered_height(n: int, fps: float) -> np.ndarray:
    """A 1 Hz bob of 10 cm (rate 0.2 pi cos(2 pi t)), plus 2 mm of 10 Hz jitter."""
    t = np.arange(n) / fps
    return 0.9 + 0.1 * np.sin(2.0 * math.pi * t) + 0.002 * np.sin(20.0 * math.pi * t + 0.3)


@pytest.mark.parametrize("loop", [False, True])
def test_velocities_drop_keyframe_jitter_and_keep_the_motion(loop):
    """The jitter swings keyframe differences by about 0.1 m/s; the sampled velocity
    follows the 1 Hz bob's own rate (within what 30 keyframes/s resolve) between the
    keyframes too, up to the clip's ends, which a wrapped clip does not have."""
    fps, n = 30.0, 61  # two 1 s cycles; wrapped, the last frame is the first again
    jittered = _jittered_height(n, fps)
    m = _turning_clip(n, fps, loop=loop, z=jittered)
    times = np.arange(0.0, m.duration, 0.01) if loop else np.arange(0.4, m.duration - 0.4, 0.01)
    rate = 0.2 * math.pi * np.cos(2.0 * math.pi * times)
    errors = np.abs([m.sample(float(t)).root_lin_vel[2] for t in times] - rate)
    assert errors.max() < 0.012
    midpoints = (np.arange(n - 1) + 0.5) / fps
    raw = np.abs(np.diff(jittered) * fps - 0.2 * math.pi * np.cos(2.0 * math.pi * midpoints))
    assert raw.max() > 0.08  # what the jitter does to a keyframe difference


def test_wrapped_clip_velocity_is_continuous_across_the_wrap():
    fps, n = 30.0, 31
    jittered = _jittered_height(n, fps)
    m = _turning_clip(n, fps, loop=True, z=jittered)
    before, after = m.sample(m.duration - 1e-9), m.sample(m.duration + 1e-9)
    np.testing.assert_allclose(before.root_lin_vel, after.root_lin_vel, atol=1e-6, rtol=0)
    np.testing.assert_allclose(m.sample(0.25).root_lin_vel, m.sample(0.25 + 3 * m.duration).root_lin_vel,
                               atol=1e-12, rtol=0)


def test_velocity_is_nonzero_somewhere():
    m = clip("walk")
    speeds = [np.linalg.norm(m.sample(t).root_lin_vel) for t in np.linspace(0, m.duration, 20)]
    assert min(speeds) > 0.3  # the walk always moves forward


def test_non_looping_clip_holds_last_frame():
    m = clip("kick")
    assert not m.loop
    n = m.num_frames - 1
    for t in (m.duration + 1e-3, m.duration + 0.5, m.duration + 10.0):
        s = m.sample(t)
        np.testing.assert_allclose(s.root_pos, m.root_pos[n], atol=1e-12, rtol=0)
        assert rot_dist(s.root_rot, m.root_rot[n]) < 1e-7
        for joint in m.spherical_joints:
            assert rot_dist(s.joints[joint], m.joints[joint][n]) < 1e-7
            np.testing.assert_array_equal(s.joint_vel[joint], np.zeros(3))
        for joint in m.revolute_joints:
            assert s.joints[joint][0] == pytest.approx(m.joints[joint][n], abs=1e-12)
            np.testing.assert_array_equal(s.joint_vel[joint], np.zeros(1))
        np.testing.assert_array_equal(s.root_lin_vel, np.zeros(3))
        np.testing.assert_array_equal(s.root_ang_vel, np.zeros(3))
        assert s.phase == 1.0
    # Before the start the first frame is held, also with zero velocity.
    s = m.sample(-0.5)
    np.testing.assert_allclose(s.root_pos, m.root_pos[0], atol=1e-12, rtol=0)
    np.testing.assert_array_equal(s.root_lin_vel, np.zeros(3))
    # Just inside the end the clip is still moving.
    assert np.linalg.norm(m.sample(m.duration - 1e-3).root_lin_vel) > 0.0


# ------------------------------------------------------------------- bad files
def write(tmp_path: Path, data: object, name: str = "bad.txt") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def load_error(path: Path) -> MotionError:
    with pytest.raises(MotionError) as info:
        load_deepmimic(path)
    err = info.value
    assert str(path) in str(err)
    assert err.source == str(path)
    return err


def test_truncated_json(tmp_path):
    text = resolve_clip("walk").read_text()
    path = tmp_path / "truncated.txt"
    path.write_text(text[: len(text) // 2])
    err = load_error(path)
    assert "JSON" in str(err)
    assert err.frame is None


def test_top_level_list(tmp_path):
    err = load_error(write(tmp_path, raw("walk")["Frames"]))
    assert err.frame is None and err.field is None


@pytest.mark.parametrize("loop", ["loop", "Wrap", 1, None])
def test_wrong_loop_value(tmp_path, loop):
    data = raw("walk")
    data["Loop"] = loop
    err = load_error(write(tmp_path, data))
    assert err.field == "Loop"
    assert "Loop" in str(err)


def test_missing_loop_means_none(tmp_path):
    data = raw("walk")
    del data["Loop"]
    assert not load_deepmimic(write(tmp_path, data)).loop


@pytest.mark.parametrize("frames", [None, [], "abc", {"0": 1}])
def test_bad_frames_list(tmp_path, frames):
    data = raw("walk")
    data["Frames"] = frames
    err = load_error(write(tmp_path, data))
    assert err.field == "Frames"


def test_single_frame(tmp_path):
    data = raw("walk")
    data["Frames"] = data["Frames"][:1]
    err = load_error(write(tmp_path, data))
    assert err.field == "Frames"


def test_frame_with_43_numbers(tmp_path):
    data = raw("walk")
    data["Frames"][3] = data["Frames"][3][:43]
    err = load_error(write(tmp_path, data))
    assert err.frame == 3
    assert err.field == "Frames"
    assert "frame 3" in str(err)
    assert "43" in str(err)


def test_frame_not_a_list(tmp_path):
    data = raw("walk")
    data["Frames"][3] = {"a": 1}
    err = load_error(write(tmp_path, data))
    assert err.frame == 3 and "frame 3" in str(err)


@pytest.mark.parametrize(
    ("column", "field"),
    [
        (0, "duration"),
        (2, "root_position"),
        (5, "root_rotation"),
        (column_of("neck") + 1, "neck"),
        (column_of("right_knee"), "right_knee"),
        (column_of("left_elbow"), "left_elbow"),
    ],
)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), "0.5", None, True, [1.0]])
def test_non_number_value(tmp_path, column, field, value):
    data = raw("walk")
    data["Frames"][3][column] = value
    path = write(tmp_path, data)
    if isinstance(value, float) and math.isnan(value):
        assert "NaN" in path.read_text()  # Python's json writes and reads the NaN literal
    err = load_error(path)
    assert err.frame == 3
    assert err.field == field
    assert "frame 3" in str(err)
    assert f"'{field}'" in str(err)


@pytest.mark.parametrize("duration", [0.0, -0.01, -5])
def test_non_positive_duration(tmp_path, duration):
    data = raw("walk")
    data["Frames"][3][0] = duration
    err = load_error(write(tmp_path, data))
    assert err.frame == 3
    assert err.field == "duration"
    assert "frame 3" in str(err) and "duration" in str(err)


def test_non_positive_duration_in_first_frame(tmp_path):
    data = raw("walk")
    data["Frames"][0][0] = 0
    err = load_error(write(tmp_path, data))
    assert err.frame == 0 and err.field == "duration"


@pytest.mark.parametrize("duration", [0.0, -1.0, 123.0])
def test_last_frame_duration_unused(tmp_path, duration):
    data = raw("walk")
    data["Frames"][-1][0] = duration
    m = load_deepmimic(write(tmp_path, data))
    assert m.duration == pytest.approx(clip("walk").duration, abs=1e-12)


@pytest.mark.parametrize("field", ["root_rotation", "chest", "right_hip", "left_ankle", "left_shoulder"])
@pytest.mark.parametrize("scale", [3.0, 0.0, 1.0 + 1.5 * QUAT_NORM_TOLERANCE])
def test_badly_scaled_quaternion(tmp_path, field, scale):
    data = raw("walk")
    col = 4 if field == "root_rotation" else column_of(field)
    frame = data["Frames"][3]
    frame[col : col + 4] = [scale * v for v in frame[col : col + 4]]
    err = load_error(write(tmp_path, data))
    assert err.frame == 3
    assert err.field == field
    assert "frame 3" in str(err) and f"'{field}'" in str(err)


def test_quaternion_within_tolerance_is_normalized(tmp_path):
    data = raw("walk")
    col = column_of("chest")
    frame = data["Frames"][3]
    frame[col : col + 4] = [(1.0 + 0.5 * QUAT_NORM_TOLERANCE) * v for v in frame[col : col + 4]]
    m = load_deepmimic(write(tmp_path, data))
    assert np.linalg.norm(m.joints["chest"][3]) == pytest.approx(1.0, abs=1e-12)
    assert rot_dist(m.joints["chest"][3], clip("walk").joints["chest"][3]) < 1e-7


def test_binary_file(tmp_path):
    path = tmp_path / "binary.txt"
    path.write_bytes(b"\xff\xfe\x00\x81" * 10)
    load_error(path)


def test_integer_too_large_for_float(tmp_path):
    """JSON integers are unbounded in Python; one past the float range must still be a MotionError."""
    data = raw("walk")
    data["Frames"][3][2] = 10**400
    err = load_error(write(tmp_path, data))
    assert err.frame == 3
    assert err.field == "root_position"


def test_huge_duration_names_its_frame(tmp_path):
    """A finite but absurd duration either loads or is blamed on the frame that holds it."""
    data = raw("walk")
    data["Frames"][3][0] = 1e17
    path = write(tmp_path, data)
    try:
        m = load_deepmimic(path)
    except MotionError as err:
        assert err.frame == 3, str(err)
    else:
        assert np.all(np.diff(m.frame_times) > 0.0)


def test_parse_deepmimic_source_in_message():
    with pytest.raises(MotionError, match=r"^my-source: "):
        parse_deepmimic([], source="my-source")


# ------------------------------------------------------------- property tests
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["wrap", "none", "Loop", "Frames"]),
)
_garbage = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(st.one_of(st.sampled_from(["Loop", "Frames"]), st.text(max_size=5)), children, max_size=4),
    ),
    max_leaves=30,
)
_number = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.sampled_from([0.0, 1.0, -1.0]))
# Almost-valid documents reach the per-frame checks.
_almost = st.fixed_dictionaries(
    {
        "Loop": st.one_of(st.sampled_from(["wrap", "none"]), _leaves),
        "Frames": st.lists(
            st.one_of(
                st.lists(_number, min_size=FRAME_SIZE, max_size=FRAME_SIZE),
                st.lists(_number, min_size=FRAME_SIZE - 1, max_size=FRAME_SIZE + 1),
                _garbage,
            ),
            max_size=4,
        ),
    }
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_garbage, _almost))
def test_garbage_is_motion_or_motion_error(data):
    try:
        motion = parse_deepmimic(data, source="garbage")
    except MotionError as err:
        assert str(err).startswith("garbage")
    else:
        assert isinstance(motion, Motion)


_WALK_FRAMES = raw("walk")["Frames"]
_corrupt_values = st.one_of(
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.0, -0.0, -1.0, -1e-300, 1e300, -1e300, 1e17, 3.0]),
    st.floats(allow_nan=True, allow_infinity=True),
)


@settings(max_examples=100, deadline=None)
@given(
    frame=st.integers(0, len(_WALK_FRAMES) - 1),
    column=st.one_of(st.just(0), st.integers(0, FRAME_SIZE - 1)),
    value=_corrupt_values,
)
def test_corrupted_frame_loads_or_names_the_frame(frame, column, value):
    data = {"Loop": "wrap", "Frames": copy.deepcopy(_WALK_FRAMES)}
    data["Frames"][frame][column] = value
    try:
        motion = parse_deepmimic(data, source="corrupt")
    except MotionError as err:
        assert err.frame == frame, str(err)
        assert f"frame {frame}" in str(err)
    else:
        assert isinstance(motion, Motion)
        assert np.all(np.diff(motion.frame_times) > 0.0)
        # Only an unused value (the last frame's duration) or a finite, plausible one can load.
        if column == 0 and frame < len(_WALK_FRAMES) - 1:
            assert value > 0.0


@st.composite
def synthetic_clips(draw):
    n = draw(st.integers(2, 20))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    durations = draw(st.lists(st.floats(1e-3, 1.0), min_size=n, max_size=n))
    frames = []
    for i in range(n):
        frame = [durations[i], *rng.uniform(-3.0, 3.0, 3).tolist()]
        q = rng.normal(size=4)
        frame += (q / np.linalg.norm(q)).tolist()
        for _, size in DEEPMIMIC_JOINTS:
            if size == 4:
                q = rng.normal(size=4)
                frame += (q / np.linalg.norm(q)).tolist()
            else:
                frame.append(float(rng.uniform(-3.0, 3.0)))
        frames.append(frame)
    loop = draw(st.sampled_from(["wrap", "none"]))
    return {"Loop": loop, "Frames": frames}


@settings(max_examples=60, deadline=None)
@given(data=synthetic_clips(), fractions=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=5))
def test_random_valid_clips_load_and_sample(data, fractions):
    motion = parse_deepmimic(data, source="synthetic")
    frames = data["Frames"]
    assert motion.num_frames == len(frames)
    assert motion.duration == pytest.approx(sum(f[0] for f in frames[:-1]), rel=1e-12)
    assert motion.loop == (data["Loop"] == "wrap")
    for fraction in [0.0, 1.0, *fractions]:
        s = motion.sample(fraction * motion.duration)
        np.testing.assert_allclose(np.linalg.norm(s.root_rot), 1.0, atol=1e-9)
        for joint, size in DEEPMIMIC_JOINTS:
            value = s.joints[joint]
            assert value.shape == ((4,) if size == 4 else (1,))
            assert np.all(np.isfinite(value)) and np.all(np.isfinite(s.joint_vel[joint]))
            if size == 4:
                np.testing.assert_allclose(np.linalg.norm(value), 1.0, atol=1e-9)
        for array in (s.root_pos, s.root_lin_vel, s.root_ang_vel):
            assert np.all(np.isfinite(array))
        assert 0.0 <= s.phase <= 1.0
    # Keyframes are reproduced (the first frame is never changed by loop closure).
    np.testing.assert_allclose(motion.sample(0.0).root_pos, motion.root_pos[0], atol=1e-9)


# ------------------------------------------------------------ mimic motion files
def test_a_clip_saved_as_a_mimic_motion_file_loads_back_exactly(tmp_path):
    from mimic_sim.motion_file import load_clip, save_motion

    walk = load_clip("walk")
    path = save_motion(walk, tmp_path / "walk.motion.json", character="humanoid")
    again = load_clip(path)
    assert again.loop == walk.loop and again.name == "walk"
    assert np.array_equal(again.frame_times, walk.frame_times)
    # quaternions are renormalized on load: equal to the last bits
    assert np.allclose(again.root_rot, walk.root_rot, rtol=0, atol=1e-12)
    assert all(np.allclose(again.joints[k], v, rtol=0, atol=1e-12) for k, v in walk.joints.items())
    for t in (0.0, 0.37, 3.0):  # sampling (loop carry-over included) is the same
        assert all(np.allclose(a, b, rtol=0, atol=1e-9) for a, b in zip(again.sample_arrays(t), walk.sample_arrays(t),
                                                                          strict=True))


def test_a_malformed_motion_file_names_the_field(tmp_path):
    from mimic_sim.motion_file import load_motion

    path = tmp_path / "bad.motion.json"
    path.write_text('{"format": "mimic.motion", "version": 1, "frame_times": [0, 0.1], "root_pos": [[0, 0, 1]], '
                    '"root_rot": [[1, 0, 0, 0], [1, 0, 0, 0]], "joints": {}}')
    with pytest.raises(MotionError, match=r"bad.motion.json.*root_pos"):
        load_motion(path)
    path.write_text('{"format": "other"}')
    with pytest.raises(MotionError, match="not a mimic motion file"):
        load_motion(path)
    path.write_text('{"format": "mimic.motion", "version": 7}')
    with pytest.raises(MotionError, match="version 7"):
        load_motion(path)


def test_a_robot_clip_name_without_a_retargeted_file_says_how_to_make_it(tmp_path, monkeypatch):
    from mimic_sim.motion_file import load_clip

    monkeypatch.setenv("MIMIC_CACHE_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="mimic retarget walk --robot h1"):
        load_clip("walk", "h1")


def test_a_saved_motion_loads_back_bit_for_bit(tmp_path):
    # a task stored in a checkpoint is its motion as a dict: loaded back and stored again it must hash the
    # same (normalizing unit quaternions again moved their last bits, and a resumed run was refused)
    from mimic_sim.motion_file import load_clip, load_motion, motion_to_dict, save_motion

    for clip in ("walk", "run", "backflip"):
        motion = load_clip(clip)
        path = save_motion(motion, tmp_path / f"{clip}.motion.json")
        assert motion_to_dict(load_motion(path), "humanoid") == motion_to_dict(motion, "humanoid"), clip
