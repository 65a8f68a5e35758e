"""BVH files: kinematics conventions, exact write/read round trips, keypoints through joint maps, errors."""

from __future__ import annotations

import numpy as np
import pytest

from mimic_retarget.bvh import Y_UP, BvhError, BvhJoint, BvhMotion, motion_from_rotations, read_bvh, write_bvh
from mimic_retarget.bvh_rig import bvh_to_keypoints, keypoints_from_bvh, load_joint_map
from mimic_retarget.human import clip_to_bvh, keypoints_from_clip
from mimic_retarget.keypoints import HUMAN_KEYPOINTS

ROTATIONS = ("Zrotation", "Xrotation", "Yrotation")
POSITIONS = ("Xposition", "Yposition", "Zposition")


@pytest.fixture(scope="module")
def walk_bvh() -> BvhMotion:
    return clip_to_bvh("walk")


def cmu_like(frames: int = 5, seed: int = 0) -> BvhMotion:
    """A CMU-named skeleton (cm, Y up) with random channel orders and values, one non-root joint
    with position channels, and angles spanning +-180 degrees."""
    rng = np.random.default_rng(seed)
    tree = [("Hips", -1), ("LHipJoint", 0), ("LeftUpLeg", 1), ("LeftLeg", 2), ("LeftFoot", 3), ("LeftToeBase", 4),
            ("RHipJoint", 0), ("RightUpLeg", 6), ("RightLeg", 7), ("RightFoot", 8), ("RightToeBase", 9),
            ("LowerBack", 0), ("Spine", 11), ("Spine1", 12), ("Neck", 13), ("Neck1", 14), ("Head", 15),
            ("LeftShoulder", 13), ("LeftArm", 17), ("LeftForeArm", 18), ("LeftHand", 19),
            ("RightShoulder", 13), ("RightArm", 21), ("RightForeArm", 22), ("RightHand", 23)]
    joints = []
    for j, (name, parent) in enumerate(tree):
        order = tuple(rng.permutation(ROTATIONS))
        channels = POSITIONS + order if j == 0 or name == "Spine1" else order
        leaf = all(p != j for _, p in tree)
        joints.append(BvhJoint(name, parent, rng.uniform(-20, 20, 3), channels,
                               rng.uniform(-5, 5, 3) if leaf else None))
    width = sum(len(j.channels) for j in joints)
    values = rng.uniform(-180, 180, (frames, width))
    values[:, :3] = rng.uniform(-300, 300, (frames, 3))
    return BvhMotion(tuple(joints), 1 / 120, values, "cmu-like")


def test_kinematics_conventions():
    """Channels compose in file order about the joint's own (rotated) axes, offsets are in the parent frame."""
    joints = (BvhJoint("a", -1, np.zeros(3), (*POSITIONS, "Zrotation", "Xrotation")),
              BvhJoint("b", 0, np.array([0.0, 0.0, 1.0]), ("Yrotation",), np.array([0.0, 0.0, 2.0])))
    motion = BvhMotion(joints, 0.1, np.array([[1.0, 2.0, 3.0, 90.0, 90.0, 45.0]]))
    positions, rotations = motion.forward_kinematics()
    # Rz(90) @ Rx(90) takes (0, 0, 1) to (1, 0, 0); the opposite order would give (0, -1, 0).
    np.testing.assert_allclose(positions[0], [[1.0, 2.0, 3.0], [2.0, 2.0, 3.0]], atol=1e-12)
    # b's z axis: Ry(45) gives (r, 0, r), Rx(90) then (r, -r, 0), Rz(90) then (r, r, 0) with r = sqrt(1/2).
    np.testing.assert_allclose(rotations[0, 1] @ [0.0, 0.0, 1.0], [np.sqrt(0.5), np.sqrt(0.5), 0.0], atol=1e-12)


@pytest.mark.parametrize("make", [cmu_like, lambda: clip_to_bvh("walk")], ids=["generated", "walk"])
def test_write_read_round_trip_is_exact(tmp_path, make):
    motion = make()
    path = tmp_path / "clip.bvh"
    write_bvh(path, motion)
    back = read_bvh(path)
    assert back.names == motion.names and back.frame_time == motion.frame_time
    assert np.abs(back.values - motion.values).max() <= 1e-6  # in practice bit-exact
    for a, b in zip(back.joints, motion.joints, strict=True):
        assert (a.parent, a.channels) == (b.parent, b.channels)
        np.testing.assert_array_equal(a.offset, b.offset)
        assert (a.end_site is None) == (b.end_site is None)
    for got, want in zip(back.forward_kinematics(), motion.forward_kinematics(), strict=True):
        assert np.abs(got - want).max() <= 1e-6


def test_walk_exported_to_bvh_reads_back_as_the_clip_keypoints(tmp_path, walk_bvh):
    """Clip -> BVH (Y up, cm, Euler angles) -> file -> keypoints equals the clip's keypoints from Pinocchio."""
    path = tmp_path / "walk.bvh"
    write_bvh(path, walk_bvh)
    text = path.read_text()
    assert text.startswith("HIERARCHY\nROOT pelvis\n") and f"Frames: {walk_bvh.num_frames}\n" in text
    keypoints = keypoints_from_bvh(path, "mimic")
    expected = keypoints_from_clip("walk")
    assert keypoints.names == list(HUMAN_KEYPOINTS) and keypoints.num_frames == expected.num_frames == 39
    assert np.abs(keypoints.times - expected.times).max() < 1e-9
    assert np.abs(keypoints.positions - expected.positions).max() < 1e-6
    assert np.abs(keypoints.rotations - expected.rotations).max() < 1e-6
    # In the file: Y up and centimetres (the pelvis of a ~1.7 m character is ~85 cm up).
    positions, _ = walk_bvh.forward_kinematics()
    assert 80 < positions[0, 0, 1] < 90


def test_walk_bvh_rotation_orders_avoid_gimbal_lock(walk_bvh):
    """Knees and elbows turn about their first axis: the other two angles stay zero."""
    column = 0
    for joint in walk_bvh.joints:
        values = walk_bvh.values[:, column:column + len(joint.channels)]
        if joint.name.endswith(("knee", "elbow")):
            assert np.abs(values[:, 1:]).max() < 1e-9 < np.abs(values[:, 0]).max()
        if joint.name in ("head", "left_toe", "right_toe"):
            assert np.abs(values).max() < 1e-9  # rigid with their parent
        column += len(joint.channels)


def test_cmu_map_scale_and_axes():
    motion = cmu_like(frames=3)  # random offsets: no human to infer the up axis or unit from
    keypoints = bvh_to_keypoints(motion, "cmu", up="y", unit="cm")
    positions, rotations = motion.forward_kinematics()
    hips, toe = motion.index("Hips"), motion.index("LeftToeBase")
    x, y, z = positions[2, hips]
    np.testing.assert_allclose(keypoints.positions[2, keypoints.index("pelvis")], [z / 100, x / 100, y / 100])
    np.testing.assert_allclose(keypoints.rotations[1, keypoints.index("left_toe")],
                               Y_UP @ rotations[1, toe] @ Y_UP.T, atol=1e-12)
    np.testing.assert_allclose(keypoints.times, [0.0, 1 / 120, 2 / 120])
    same_axes = bvh_to_keypoints(motion, load_joint_map("cmu").joints, up="z", unit=1.0)
    np.testing.assert_allclose(same_axes.positions[:, same_axes.index("pelvis")], positions[:, hips])


def test_map_naming_a_missing_joint_names_joint_and_file(tmp_path):
    path = tmp_path / "cmu_like.bvh"
    write_bvh(path, cmu_like())
    with pytest.raises(BvhError, match=r"lafan1\.yaml: field 'joints\.LeftToe': \S*cmu_like\.bvh has no joint "
                                       r"'LeftToe' \(nor one named like it\) for keypoint 'left_toe'; its joints: "
                                       r"Hips, "):
        keypoints_from_bvh(path, "lafan1")
    cmu = load_joint_map("cmu").joints
    renamed = {("Chest" if joint == "Spine" else joint): keypoint for joint, keypoint in cmu.items()}
    with pytest.raises(BvhError, match=r"given joint map: field 'joints\.Chest': \S*cmu_like\.bvh has no joint "
                                       r"'Chest'"):
        keypoints_from_bvh(path, renamed)
    with pytest.raises(BvhError, match="given joint map: field 'joints' lacks keypoints chest, neck, head, "):
        keypoints_from_bvh(path, {"Hips": "pelvis"})
    with pytest.raises(BvhError, match="unknown joint map 'maya'"):
        keypoints_from_bvh(path, "maya")


SMALL = """HIERARCHY
ROOT Hips
{
\tOFFSET 0 0 0
\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
\tJOINT Spine
\t{
\t\tOFFSET 0 10 0
\t\tCHANNELS 3 Zrotation Xrotation Yrotation
\t\tEnd Site
\t\t{
\t\t\tOFFSET 0 5 0
\t\t}
\t}
}
MOTION
Frames: 2
Frame Time: 0.0333333
1 90 3 10 20 30 1 2 3
1 90 3 10 20 30 1 2 3
"""


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("CHANNELS 3 Zrotation Xrotation Yrotation", "CHANNELS 4 Zrotation Xrotation Yrotation",
         r":9: joint 'Spine': CHANNELS 4 lists 3 channel names, then 'End'"),
        ("CHANNELS 3 Zrotation", "CHANNELS 3 Wrotation", r":9: joint 'Spine': CHANNELS 3 lists 0 channel names, "
                                                         r"then 'Wrotation'"),
        ("Frames: 2", "Frames: 3", r":17: declares 3 frames, the file has 2 frame lines"),
        ("1 90 3 10 20 30 1 2 3\n1", "1 90 3 10 20 30 1 2\n1", r":19: frame 0 has 8 values, the hierarchy has 9"),
        ("30 1 2 3\n1", "30 1 x 3\n1", r":19: frame 0: 'x' is not a number"),
        ("OFFSET 0 10 0", "OFFSET 0 ten 0", r":8: joint 'Spine' OFFSET: 'ten' is not a number"),
        ("Frame Time: 0.0333333", "Frame Time: 0", r":18: expected 'Frame Time: T'"),
        ("MOTION", "MOTON", r": no MOTION section"),
        ("\t\tEnd Site", "\t\tEnd Sight", r":10: expected 'Site', found 'Sight'"),
    ],
)
def test_read_errors_name_file_and_line(tmp_path, old, new, message):
    path = tmp_path / "small.bvh"
    assert old in SMALL
    path.write_text(SMALL.replace(old, new, 1))
    with pytest.raises(BvhError, match="small.bvh" + message):
        read_bvh(path)


def test_small_file_reads():
    motion = BvhMotion(*_small_parts())
    assert motion.num_channels == 9 and motion.names == ["Hips", "Spine"]


def _small_parts():
    joints = (BvhJoint("Hips", -1, np.zeros(3), POSITIONS + ROTATIONS),
              BvhJoint("Spine", 0, np.array([0.0, 10.0, 0.0]), ROTATIONS, np.array([0.0, 5.0, 0.0])))
    return joints, 1 / 30, np.zeros((2, 9))


def test_motion_validation():
    joints, frame_time, values = _small_parts()
    with pytest.raises(BvhError, match=r"shape \(2, 8\), expected \(frames >= 1, 9\)"):
        BvhMotion(joints, frame_time, values[:, :8])
    bad = values.copy()
    bad[1, 7] = np.nan
    with pytest.raises(BvhError, match="frame 1, joint 'Spine', channel Xrotation: value is NaN"):
        BvhMotion(joints, frame_time, bad)
    with pytest.raises(BvhError, match="name 'Hips' is used twice"):
        BvhMotion((joints[0], BvhJoint("Hips", 0, np.zeros(3), ROTATIONS)), frame_time, values)
    with pytest.raises(BvhError, match="frame time must be positive"):
        BvhMotion(joints, 0.0, values)
    with pytest.raises(BvhError, match="joint 'Spine' needs the three rotation channels"):
        motion_from_rotations((joints[0], BvhJoint("Spine", 0, np.zeros(3), ("Xrotation",))), frame_time,
                              np.zeros((2, 3)), np.tile(np.eye(3), (2, 2, 1, 1)))
