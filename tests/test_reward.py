"""The imitation reward against numbers worked out by hand (DeepMimic's weights and scales).

Every expected value below was computed on paper from the formulas of DeepMimic's released
code (cSceneImitate::CalcRewardImitate), not by calling mimic: a wrong weight, scale or error
factor in mimic_sim.reward changes at least one of them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mimic_sim.backends.base import BodyStates
from mimic_sim.reward import (
    RewardConfig,
    TrackingFeatures,
    heading_rotation,
    imitation_reward,
    imitation_rewards,
    tracking_features,
)


def _rot_x(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _features(local_rot, local_ang_vel, end_effectors, root_pos, root_vel, com_vel) -> TrackingFeatures:
    return TrackingFeatures(*(np.asarray(a, dtype=float) for a in
                              (local_rot, local_ang_vel, end_effectors, root_pos, root_vel, com_vel)))


# Two tracked bodies (root 0, child 1) with pose weights 1/4 and 3/4, two end effectors.
POSE_WEIGHTS = np.array([0.25, 0.75])
REFERENCE = _features([np.eye(3), np.eye(3)], [[0.0, 0.0, 0.5], [1.0, 0.0, 0.0]], [[0.3, 0.1, 0.2], [-0.3, 0.1, 0.2]],
                      [0.0, 0.0, 0.9], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0])
SIMULATED = _features(
    [_rot_x(0.2), _rot_z(0.4)],  # root 0.2 rad off, child 0.4 rad off
    [[0.0, 0.0, 1.5], [3.0, 0.0, 0.0]],  # angular velocity errors 1 and 2 rad/s
    [[0.4, 0.1, 0.2], [-0.3, 0.3, 0.2]],  # end effectors 0.1 m and 0.2 m off
    [0.1, 0.0, 0.9],  # root 0.1 m off
    [1.0, 0.5, 0.0],  # root velocity 0.5 m/s off
    [1.3, 0.4, 0.0],  # centre-of-mass velocity 0.5 m/s off
)
# By hand:
#   pose error     0.25 * 0.2^2 + 0.75 * 0.4^2                 = 0.13     r = exp(-2 * 0.13)
#   velocity error 0.25 * 1^2 + 0.75 * 2^2                     = 3.25     r = exp(-0.1 * 3.25)
#   end effectors  mean(0.1^2, 0.2^2)                          = 0.025    r = exp(-40 * 0.025)
#   root error     0.1^2 + 0.1 * 0.2^2 + 0.01 * 0.5^2 + 0.001 * 1^2 = 0.0175  r = exp(-5 * 0.0175)
#   com error      0.3^2 + 0.4^2                               = 0.25     r = exp(-10 * 0.1 * 0.25)
EXPECTED_TERMS = {
    "pose": 0.7710515858035663,  # exp(-0.26)
    "velocity": 0.7225273536420722,  # exp(-0.325)
    "end_effector": 0.36787944117144233,  # exp(-1)
    "root": 0.9162188716508777,  # exp(-0.0875)
    "com": 0.7788007830714049,  # exp(-0.25)
}
# 0.5 * 0.77105 + 0.05 * 0.72253 + 0.15 * 0.36788 + 0.2 * 0.91622 + 0.1 * 0.77880
EXPECTED_TOTAL = 0.7379579293969191


def test_each_term_and_the_total_match_a_hand_worked_two_body_case():
    total, terms = imitation_reward(SIMULATED, REFERENCE, POSE_WEIGHTS, root=0)
    for name, value in EXPECTED_TERMS.items():
        assert terms[name] == pytest.approx(value, rel=1e-12, abs=0), name
    assert total == pytest.approx(EXPECTED_TOTAL, rel=1e-12, abs=0)


def test_deepmimic_weights_and_scales_are_the_defaults():
    """Each weight and scale on its own: a term at exp(-1) error and the others perfect."""
    config = RewardConfig()
    assert (config.pose_weight, config.velocity_weight, config.end_effector_weight, config.root_weight,
            config.com_weight) == (0.50, 0.05, 0.15, 0.20, 0.10)
    assert (config.pose_scale, config.velocity_scale, config.end_effector_scale, config.root_scale,
            config.com_scale) == (2.0, 0.1, 40.0, 5.0, 1.0)
    # an end-effector error of 0.05 m at both effectors: 40 * 0.0025 = 0.1
    sim = _features(REFERENCE.local_rot, REFERENCE.local_ang_vel, np.add(REFERENCE.end_effectors, [0.0, 0.05, 0.0]),
                    REFERENCE.root_pos, REFERENCE.root_vel, REFERENCE.com_vel)
    total, terms = imitation_reward(sim, REFERENCE, POSE_WEIGHTS, root=0)
    assert terms["end_effector"] == pytest.approx(0.9048374180359595, rel=1e-12)  # exp(-0.1)
    assert total == pytest.approx(0.85 + 0.15 * 0.9048374180359595, rel=1e-12)
    assert {k: v for k, v in terms.items() if k != "end_effector"} == pytest.approx(
        {"pose": 1.0, "velocity": 1.0, "root": 1.0, "com": 1.0})


def test_other_weights_and_scales_are_obeyed():
    config = RewardConfig(pose_weight=0.2, velocity_weight=0.2, end_effector_weight=0.2, root_weight=0.2,
                          com_weight=0.2, pose_scale=1.0, velocity_scale=1.0, end_effector_scale=1.0,
                          root_scale=1.0, com_scale=2.0)
    total, terms = imitation_reward(SIMULATED, REFERENCE, POSE_WEIGHTS, 0, config)
    expected = {"pose": math.exp(-0.13), "velocity": math.exp(-3.25), "end_effector": math.exp(-0.025),
                "root": math.exp(-0.0175), "com": math.exp(-0.5)}
    assert terms == pytest.approx(expected, rel=1e-12)
    assert total == pytest.approx(0.2 * sum(expected.values()), rel=1e-12)


def test_the_root_term_uses_the_root_body_given():
    """With body 1 as the root, its 0.4 rad and 2 rad/s errors enter the root term."""
    _, terms = imitation_reward(SIMULATED, REFERENCE, POSE_WEIGHTS, root=1)
    # 0.1^2 + 0.1 * 0.4^2 + 0.01 * 0.5^2 + 0.001 * 2^2 = 0.0325
    assert terms["root"] == pytest.approx(math.exp(-5 * 0.0325), rel=1e-12)


def test_a_batch_gives_each_pair_its_own_reward():
    batch = [SIMULATED, REFERENCE]

    def stack(items: list[TrackingFeatures]) -> TrackingFeatures:
        return TrackingFeatures(*(np.stack([getattr(f, n) for f in items]) for n in
                                  ("local_rot", "local_ang_vel", "end_effectors", "root_pos", "root_vel", "com_vel")))

    total, terms = imitation_rewards(stack(batch), stack([REFERENCE, REFERENCE]), POSE_WEIGHTS, 0)
    assert total.shape == (2,) and total[0] == pytest.approx(EXPECTED_TOTAL, rel=1e-12)
    assert total[1] == pytest.approx(1.0, rel=1e-12)
    assert terms["end_effector"] == pytest.approx([EXPECTED_TERMS["end_effector"], 1.0], rel=1e-12)


def test_a_rotation_error_beyond_half_a_turn_is_measured_the_short_way():
    """An angle of 1.5 pi about z is 0.5 pi the other way."""
    sim = _features([np.eye(3), _rot_z(1.5 * math.pi)], REFERENCE.local_ang_vel, REFERENCE.end_effectors,
                    REFERENCE.root_pos, REFERENCE.root_vel, REFERENCE.com_vel)
    _, terms = imitation_reward(sim, REFERENCE, POSE_WEIGHTS, 0)
    assert terms["pose"] == pytest.approx(math.exp(-2 * 0.75 * (0.5 * math.pi) ** 2), rel=1e-9)


def test_rotations_off_by_rounding_give_angles_of_zero_and_half_a_turn():
    """Matrices a little longer than orthonormal (as rounding leaves them) put the angle's cosine
    past 1 or -1: they count as no error and as half a turn, not as NaN."""
    for child, angle in ((np.eye(3), 0.0), (np.diag([-1.0, -1.0, 1.0]), math.pi)):
        sim = _features([np.eye(3), child * (1 + 1e-7)], REFERENCE.local_ang_vel, REFERENCE.end_effectors,
                        REFERENCE.root_pos, REFERENCE.root_vel, REFERENCE.com_vel)
        _, terms = imitation_reward(sim, REFERENCE, POSE_WEIGHTS, 0)
        assert terms["pose"] == pytest.approx(math.exp(-2 * 0.75 * angle**2), rel=1e-9), angle


# ---------------------------------------------------------------- features of a character state
def _two_body_state() -> BodyStates:
    """Root at (1, 2, 0.9) turned 90 degrees left (its x axis along world y), spinning at 1 rad/s
    about z and moving at 0.5 m/s along x; the child at (1, 3, 0.4) (1 m along world y, half a
    metre lower), turned a further 90 degrees about its own x axis and spinning at (1, 0, 1) rad/s."""
    root_rot = _rot_z(math.pi / 2)
    child_rot = root_rot @ _rot_x(math.pi / 2)
    rotmat = np.stack([root_rot, child_rot])
    quat = np.array([[math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)], [0.5, 0.5, 0.5, 0.5]])
    return BodyStates(pos=np.array([[1.0, 2.0, 0.9], [1.0, 3.0, 0.4]]), quat=quat, rotmat=rotmat,
                      lin_vel=np.array([[0.5, 0.0, 0.0], [0.5, 0.0, 0.0]]),
                      ang_vel=np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 1.0]]),
                      com=np.array([1.0, 2.5, 0.7]), com_vel=np.array([0.4, 0.1, 0.0]))


def test_tracking_features_of_a_hand_worked_two_body_state():
    features = tracking_features(_two_body_state(), np.array([-1, 0]), np.array([1]))
    # the root's rotation is its world one; the child's is relative to the root: 90 degrees about x
    assert np.allclose(features.local_rot[0], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    assert np.allclose(features.local_rot[1], [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)
    # the root's angular velocity as it is; the child's relative one, (1, 0, 0) in the world, in the
    # root's frame (whose y axis is world -x): (0, -1, 0)
    assert np.allclose(features.local_ang_vel, [[0, 0, 1], [0, -1, 0]], atol=1e-12)
    # the child 1 m along world y = 1 m ahead of the root in its heading frame, at its own height
    assert np.allclose(features.end_effectors, [[1.0, 0.0, 0.4]], atol=1e-12)
    assert np.array_equal(features.root_pos, [1.0, 2.0, 0.9]) and np.array_equal(features.root_vel, [0.5, 0, 0])
    assert np.array_equal(features.com_vel, [0.4, 0.1, 0.0])


def test_tracking_features_find_the_root_wherever_it_is_listed():
    """The two bodies listed child first, then a third body held rigidly to the child (parent 0, the
    same state), then the root (parent -1): the root is found at index 2."""
    state = _two_body_state()
    order = [1, 1, 0]
    listed = BodyStates(*(a[order] for a in (state.pos, state.quat, state.rotmat, state.lin_vel, state.ang_vel)),
                        state.com, state.com_vel)
    features = tracking_features(listed, np.array([2, 0, -1]), np.array([0, 1]))
    assert np.allclose(features.end_effectors, [[1.0, 0.0, 0.4]] * 2, atol=1e-12)
    assert np.array_equal(features.root_pos, [1.0, 2.0, 0.9])
    assert np.allclose(features.local_ang_vel, [[0, -1, 0], [0, 0, 0], [0, 0, 1]], atol=1e-12)
    assert np.allclose(features.local_rot[1], np.eye(3), atol=1e-12)


def test_heading_rotation_undoes_the_yaw_and_ignores_pitch():
    # yaw 30 degrees, then pitched 45 degrees about the body's y axis: heading 30 degrees
    c, s = math.cos(math.pi / 4), math.sin(math.pi / 4)
    pitched = _rot_z(math.pi / 6) @ np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    assert np.allclose(heading_rotation(pitched), _rot_z(-math.pi / 6), atol=1e-12)
    # x axis straight up: no heading, the world's is used
    up = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert np.array_equal(heading_rotation(up), np.eye(3))
    batch = heading_rotation(np.stack([pitched, up]))
    assert batch.shape == (2, 3, 3) and np.allclose(batch[0], _rot_z(-math.pi / 6)) and np.allclose(batch[1], np.eye(3))
