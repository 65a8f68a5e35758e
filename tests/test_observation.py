"""The policy's observation (mimic_sim.observation) of a two-body state worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mimic_sim.backends.base import BodyStates
from mimic_sim.observation import build_observation, observation_layout, observation_size

A = math.sqrt(0.5)
YAW_90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
ROLL_90 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
HALF_TURN = np.diag([-1.0, -1.0, 1.0])


def _state(turn: np.ndarray, root_quat: list[float], child_quat: list[float]) -> BodyStates:
    """Root at (1, 2, 0.9) facing world +y (turned 90 degrees left), moving at 0.5 m/s along x,
    spinning at 1 rad/s about z; the child at (1, 3, 0.4), rolled a further 90 degrees about its x
    axis, moving at 1 m/s along y, spinning at (1, 0, 1) rad/s: all of it turned by ``turn`` about
    the world's z axis (quaternions given to match)."""
    return BodyStates(pos=np.array([[1.0, 2.0, 0.9], [1.0, 3.0, 0.4]]) @ turn.T, quat=np.array([root_quat, child_quat]),
                      rotmat=np.stack([turn @ YAW_90, turn @ YAW_90 @ ROLL_90]),
                      lin_vel=np.array([[0.5, 0.0, 0.0], [0.0, 1.0, 0.0]]) @ turn.T,
                      ang_vel=np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 1.0]]) @ turn.T,
                      com=np.array([1.0, 2.5, 0.7]) @ turn.T, com_vel=np.array([0.2, 0.5, 0.0]) @ turn.T)


# the child's quaternion negated (the same rotation): the observation has w >= 0 anyway
STATE = _state(np.eye(3), [A, 0.0, 0.0, A], [-0.5, -0.5, -0.5, -0.5])
# By hand, in the root's heading frame (world rotated 90 degrees right: (x, y, z) -> (y, -x, z)):
EXPECTED = [
    0.25, 0.9,  # phase, root height
    0.0, 0.0, 0.0, 1.0, 0.0, -0.5,  # positions relative to the root: (0, 1, -0.5) -> (1, 0, -0.5)
    1.0, 0.0, 0.0, 0.0, A, A, 0.0, 0.0,  # rotations without the heading: none; 90 degrees about x
    0.0, -0.5, 0.0, 1.0, 0.0, 0.0,  # linear velocities
    0.0, 0.0, 1.0, 0.0, -1.0, 1.0,  # angular velocities
]
# A target pose: root 0.1 m further along x, the child at (1.1, 3.2, 0.5) and unrotated.
TARGET = BodyStates(pos=np.array([[1.1, 2.0, 0.9], [1.1, 3.2, 0.5]]), quat=np.array([[A, 0, 0, A], [1.0, 0, 0, 0]]),
                    rotmat=np.stack([YAW_90, np.eye(3)]), lin_vel=np.zeros((2, 3)), ang_vel=np.zeros((2, 3)),
                    com=np.zeros(3), com_vel=np.zeros(3))
EXPECTED_TARGET = [
    0.0, -0.1, 0.0, 1.2, -0.1, -0.4,  # relative to the simulated root: (0.1, 0, 0), (0.1, 1.2, -0.4)
    1.0, 0.0, 0.0, 0.0, A, 0.0, 0.0, -A,  # the unrotated child is 90 degrees right of the heading
]


def test_sizes_and_layout():
    assert observation_size(2) == 28 and observation_size(2, target=True) == 42
    assert observation_size(15) == 197 and observation_size(15, target=True) == 302  # DeepMimic's humanoid
    assert observation_layout(["root", "child"]) == [
        ("phase", 0, 1), ("root_height", 1, 1), ("body_pos", 2, 6), ("body_quat", 8, 8),
        ("body_lin_vel", 16, 6), ("body_ang_vel", 22, 6)]
    assert observation_layout(["root", "child"], target=True)[6:] == [("target_body_pos", 28, 6),
                                                                      ("target_body_quat", 34, 8)]


def test_observation_of_a_two_body_state_by_hand():
    assert build_observation(STATE, 0, 0.25).tolist() == pytest.approx(EXPECTED, abs=1e-12)


def test_observation_with_the_target_pose_by_hand():
    assert build_observation(STATE, 0, 0.25, TARGET).tolist() == pytest.approx(EXPECTED + EXPECTED_TARGET, abs=1e-12)


def test_the_root_is_the_body_given():
    """Body 1 as the root: height 0.4, positions relative to it, heading from its x axis (world +y
    as well), so the same frame."""
    obs = build_observation(STATE, 1, 0.25)
    assert obs[1] == pytest.approx(0.4)
    assert obs[2:8].tolist() == pytest.approx([-1.0, 0.0, 0.5, 0.0, 0.0, 0.0], abs=1e-12)


def test_a_batch_and_a_character_facing_the_other_way():
    """The same state turned half a turn about z (facing world -y): the same observation; both
    in one batch with their own phases."""
    turned = _state(HALF_TURN, [-A, 0.0, 0.0, A], [-0.5, -0.5, 0.5, 0.5])
    assert build_observation(turned, 0, 0.25).tolist() == pytest.approx(EXPECTED, abs=1e-12)
    batch = BodyStates(*(np.stack([getattr(STATE, n), getattr(turned, n)]) for n in
                         ("pos", "quat", "rotmat", "lin_vel", "ang_vel", "com", "com_vel")))
    target = BodyStates(*(np.stack([getattr(TARGET, n)] * 2) for n in
                          ("pos", "quat", "rotmat", "lin_vel", "ang_vel", "com", "com_vel")))
    obs = build_observation(batch, 0, np.array([0.25, 0.75]))
    assert obs.shape == (2, 28) and obs[0].tolist() == pytest.approx(EXPECTED, abs=1e-12)
    assert obs[1].tolist() == pytest.approx([0.75, *EXPECTED[1:]], abs=1e-12)
    assert build_observation(batch, 0, np.array([0.25, 0.75]), target)[0].tolist() == pytest.approx(
        EXPECTED + EXPECTED_TARGET, abs=1e-12)


def test_a_character_facing_backwards_exactly():
    """Root facing world -x (yaw of a half turn, where the heading's cosine is -1)."""
    state = BodyStates(pos=np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 1.0]]), quat=np.array([[0.0, 0, 0, 1], [0, 0, 0, 1]]),
                       rotmat=np.stack([HALF_TURN, HALF_TURN]), lin_vel=np.array([[-1.0, 0, 0], [-1.0, 0, 0]]),
                       ang_vel=np.zeros((2, 3)), com=np.zeros(3), com_vel=np.zeros(3))
    obs = build_observation(state, 0, 0.0)
    # child 1 m ahead, both unrotated relative to the heading, moving forward at 1 m/s
    assert obs[2:16].tolist() == pytest.approx([0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0], abs=1e-12)
    assert obs[16:22].tolist() == pytest.approx([1, 0, 0, 1, 0, 0], abs=1e-12)
