"""Keypoint sequences (validation, interpolation, npz files) and the humanoid clips as keypoints."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mimic_retarget.human import keypoints_from_clip
from mimic_retarget.keypoints import HUMAN_KEYPOINTS, KeypointError, KeypointMotion
from mimic_sim import rotations as rot
from mimic_sim.backends import make_backend
from mimic_sim.character import load_character
from mimic_sim.deepmimic_format import load_deepmimic, resolve_clip
from mimic_sim.reference import ReferenceMotion


def rot_z(angle: float) -> np.ndarray:
    return rot.quat_to_mat(rot.axis_angle_quat(np.array([0.0, 0.0, 1.0]), angle))


def sample(frames: int = 4, rotations: bool = True) -> KeypointMotion:
    rng = np.random.default_rng(0)
    positions = rng.normal(size=(frames, 2, 3))
    mats = rot.quat_to_mat(rot.quat_normalize(rng.normal(size=(frames, 2, 4)))) if rotations else None
    return KeypointMotion(["pelvis", "left_knee"], np.arange(frames) / 30.0, positions, mats, "sample")


def test_canonical_names():
    assert len(HUMAN_KEYPOINTS) == 18 == len(set(HUMAN_KEYPOINTS))
    assert {"pelvis", "chest", "neck", "head", "left_toe", "right_wrist"} <= set(HUMAN_KEYPOINTS)


def test_structure_and_immutability():
    m = sample()
    assert m.num_frames == 4 and m.fps == pytest.approx(30.0) and m.duration == pytest.approx(0.1)
    assert m.index("left_knee") == 1
    with pytest.raises(KeyError, match=r"no keypoint 'head'.*pelvis, left_knee"):
        m.index("head")
    with pytest.raises(ValueError):
        m.positions[0, 0, 0] = 1.0  # validated arrays cannot change afterwards
    part = m.subset(["left_knee"])
    assert part.names == ["left_knee"]
    np.testing.assert_array_equal(part.positions[:, 0], m.positions[:, 1])
    np.testing.assert_array_equal(part.rotations[:, 0], m.rotations[:, 1])
    with pytest.raises(KeypointError, match="single frame"):
        _ = KeypointMotion(["pelvis"], [0.0], np.zeros((1, 1, 3))).fps


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.update(positions=a["positions"][:, :1]),
         r"field 'positions'.*shape \(4, 1, 3\), expected \(4, 2, 3\)"),
        (lambda a: a["positions"].__setitem__((2, 1, 0), np.nan), "field 'positions', frame 2, keypoint 'left_knee': "
                                                                  "value is NaN"),
        (lambda a: a["times"].__setitem__(3, a["times"][2]), "field 'times', frame 3: times must increase strictly"),
        (lambda a: a["times"].__setitem__(1, np.inf), "field 'times', frame 1: time is NaN or infinite"),
        (lambda a: a["rotations"].__setitem__((1, 0), 1.01 * np.eye(3)), "field 'rotations', frame 1, keypoint "
                                                                         "'pelvis': not a rotation matrix"),
        (lambda a: a["rotations"].__setitem__((3, 1), np.diag([1.0, 1.0, -1.0])), "frame 3, keypoint 'left_knee': "
                                                                                  "not a rotation"),
        (lambda a: a.update(rotations=a["rotations"][:, :, :2]), r"field 'rotations'.*expected \(4, 2, 3, 3\)"),
        (lambda a: a.update(names=["pelvis", "pelvis"]), "field 'names': 'pelvis' appears twice"),
        (lambda a: a.update(names=[], positions=np.zeros((4, 0, 3)), rotations=None), "at least one keypoint"),
    ],
)
def test_validation_names_field_frame_and_keypoint(change, message):
    m = sample()
    args = {"names": list(m.names), "times": m.times.copy(), "positions": m.positions.copy(),
            "rotations": m.rotations.copy()}
    change(args)
    with pytest.raises(KeypointError, match=message):
        KeypointMotion(**args, source="sample")


def test_at_interpolates_positions_and_slerps_rotations():
    positions = np.array([[[0.0, 0.0, 0.0]], [[1.0, 2.0, 4.0]]])
    m = KeypointMotion(["head"], [1.0, 2.0], positions, np.stack([np.eye(3), rot_z(math.pi / 2)])[:, None])
    p, r = m.at(1.25)
    np.testing.assert_allclose(p, [[0.25, 0.5, 1.0]], atol=1e-12)
    np.testing.assert_allclose(r[0], rot_z(math.pi / 8), atol=1e-12)
    np.testing.assert_allclose(m.at(0.0)[0], positions[0])  # held before the first frame
    np.testing.assert_allclose(m.at(9.0)[1][0], rot_z(math.pi / 2), atol=1e-12)  # and after the last
    p, r = KeypointMotion(["head"], [1.0, 2.0], positions).at(1.5)
    assert r is None
    np.testing.assert_allclose(p, [[0.5, 1.0, 2.0]])


@pytest.mark.parametrize("with_rotations", [True, False])
def test_npz_round_trip(tmp_path, with_rotations):
    m = sample(rotations=with_rotations)
    path = tmp_path / "walk.npz"
    m.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["walk.npz"]  # the temporary file was renamed
    back = KeypointMotion.load(path)
    assert back.names == m.names and back.source == m.source
    np.testing.assert_array_equal(back.times, m.times)
    np.testing.assert_array_equal(back.positions, m.positions)
    if with_rotations:
        np.testing.assert_array_equal(back.rotations, m.rotations)
    else:
        assert back.rotations is None
    with np.load(path, allow_pickle=False) as data:  # plain arrays only
        assert data["names"].dtype.kind == "U"


def test_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    with pytest.raises(KeypointError, match=r"bad\.npz: not a keypoint file"):
        KeypointMotion.load(bad)
    m = sample()
    nan = tmp_path / "nan.npz"
    positions = m.positions.copy()
    positions[1, 0, 2] = np.nan
    np.savez(nan, format=np.array("mimic.keypoints/1"), names=np.array(m.names), times=m.times,
             positions=positions, source=np.array("x"))
    with pytest.raises(KeypointError, match=r"nan\.npz: .*frame 1, keypoint 'pelvis': value is NaN"):
        KeypointMotion.load(nan)
    partial = tmp_path / "partial.npz"
    np.savez(partial, format=np.array("mimic.keypoints/1"), names=np.array(m.names), times=m.times)
    with pytest.raises(KeypointError, match=r"partial.npz: missing fields \['positions', 'source'\]"):
        KeypointMotion.load(partial)


def test_truncated_or_corrupt_files_are_an_error_naming_the_file(tmp_path):
    good = tmp_path / "good.npz"
    sample(frames=40).save(good)
    data = good.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 30):  # the header, a member, the zip directory
        truncated = tmp_path / f"cut{cut}.npz"
        truncated.write_bytes(data[:cut])
        with pytest.raises(KeypointError, match=rf"cut{cut}\.npz: not a keypoint file"):
            KeypointMotion.load(truncated)
    damaged = bytearray(data)
    start = data.index(b"positions.npy") + 200  # inside the stored positions: the member's checksum fails
    damaged[start : start + 16] = b"\xff" * 16
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(bytes(damaged))
    with pytest.raises(KeypointError, match=r"corrupt\.npz: not a keypoint file"):
        KeypointMotion.load(corrupt)


def test_unknown_keypoint_names_are_an_error_naming_the_closest(tmp_path):
    m = sample()
    misspelt = tmp_path / "misspelt.npz"
    np.savez(misspelt, format=np.array("mimic.keypoints/1"), names=np.array(["pelvsi", "left_knee"]), times=m.times,
             positions=m.positions, source=np.array("x"))
    with pytest.raises(KeypointError, match=r"misspelt\.npz: field 'names': unknown keypoint 'pelvsi' "
                                            r"\(did you mean 'pelvis'\?\)"):
        KeypointMotion.load(misspelt)
    alien = KeypointMotion(["pelvis", "tail_tip"], m.times, m.positions, source="memory")  # in memory: allowed
    with pytest.raises(KeypointError, match=r"alien\.npz: field 'names': unknown keypoint 'tail_tip' \(known: "
                                            r"pelvis, chest"):
        alien.save(tmp_path / "alien.npz")
    assert not (tmp_path / "alien.npz").exists()


# ------------------------------------------------------------------ humanoid clips
@pytest.fixture(scope="module")
def walk() -> KeypointMotion:
    return keypoints_from_clip("walk")


def test_walk_keypoints_are_the_backend_body_frames(walk):
    """Each tracked body's keypoint equals MuJoCo's forward kinematics of the reference state."""
    character = load_character("humanoid")
    motion = load_deepmimic(resolve_clip("walk"))
    reference = ReferenceMotion(motion, character)
    backend = make_backend("mujoco", character)
    np.testing.assert_array_equal(walk.times, motion.frame_times)
    assert walk.names == list(HUMAN_KEYPOINTS) and walk.rotations is not None
    names = ["pelvis" if b == "root" else b for b in character.tracked_bodies]
    columns = [walk.index(n) for n in names]
    for i, t in enumerate(walk.times):
        bodies = backend.kinematics(*reference.state(float(t)))
        assert np.abs(walk.positions[i, columns] - bodies.pos).max() < 1e-9
        assert np.abs(walk.rotations[i, columns] - bodies.rotmat).max() < 1e-9
    backend.close()


def test_walk_sizes_and_derived_points_are_plausible(walk):
    def point(name: str) -> np.ndarray:
        return walk.positions[:, walk.index(name)]

    for side in ("left", "right"):
        thigh = np.linalg.norm(point(f"{side}_knee") - point(f"{side}_hip"), axis=-1)
        shank = np.linalg.norm(point(f"{side}_ankle") - point(f"{side}_knee"), axis=-1)
        leg = thigh + shank
        assert np.ptp(leg) < 1e-9 and 0.8 < leg[0] < 0.9  # rigid links, a human's leg length
        assert np.linalg.norm(point(f"{side}_ankle") - point(f"{side}_hip"), axis=-1).max() <= leg[0] + 1e-9
        # The toe is ahead of the ankle along the foot and near the ground while the foot is planted.
        foot = walk.rotations[:, walk.index(f"{side}_ankle")]
        along = np.einsum("tab,ta->tb", foot, point(f"{side}_toe") - point(f"{side}_ankle"))
        np.testing.assert_allclose(along, np.tile([0.1335, 0.0, -0.05], (walk.num_frames, 1)), atol=1e-9)
        assert 0.0 < point(f"{side}_toe")[:, 2].min() < 0.05
    head_above_neck = point("head") - point("neck")
    assert np.allclose(np.linalg.norm(head_above_neck, axis=-1), 0.175) and (head_above_neck[:, 2] > 0.15).all()
    assert 1.5 < point("head")[:, 2].max() < 1.8  # head centre of a ~1.7 m tall character
    walked = point("pelvis")[-1, 0] - point("pelvis")[0, 0]
    assert 0.5 < walked < 2.0  # forward along +x, about 1.2 m per 1.3 s cycle


def test_clip_at_a_given_rate():
    m = keypoints_from_clip("walk", rate=10.0)
    np.testing.assert_allclose(np.diff(m.times), 0.1)
    assert m.times[0] == 0.0 and m.num_frames == 13
    with pytest.raises(ValueError, match="rate must be a positive"):
        keypoints_from_clip("walk", rate=0.0)
