"""A simulation that blew up is told from one that did not (what sim_node resets on)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mimic_sim.backends import SimConfig, make_backend
from mimic_sim.backends.mujoco_backend import standing_height
from mimic_sim.character import load_character
from mimic_sim.stability import StateBounds, engine_warnings, instability

NAMES = ["hip", "knee"]


def state(root_velocity=(0.0, 0.0, 0.0), root_spin=(0.0, 0.0, 0.0), joint_speeds=(0.0, 0.0)):
    qpos = np.array([0.0, 0.0, 0.9, 1.0, 0.0, 0.0, 0.0, 0.1, -0.2])
    return qpos, np.array([*root_velocity, *root_spin, *joint_speeds], dtype=float)


@pytest.mark.parametrize(("change", "message"), [
    (lambda q, v: (q, v), None),
    (lambda q, v: (np.where(np.arange(len(q)) == 8, np.nan, q), v), "position of knee is nan"),
    (lambda q, v: (np.where(np.arange(len(q)) == 2, np.inf, q), v), "position of root z is inf"),
    (lambda q, v: (q, np.where(np.arange(len(v)) == 3, np.nan, v)), "velocity of root wx is nan"),
    (lambda q, v: state(root_velocity=(12.0, 0.0, 17.0)), r"root speed 20\.8 m/s, beyond 20 m/s"),
    (lambda q, v: state(root_spin=(0.0, 0.0, -250.0)), r"root angular speed 250\.0 rad/s"),
    (lambda q, v: state(joint_speeds=(3.0, -201.0)), r"joint 'knee' speed 201\.0 rad/s, beyond 200 rad/s"),
])
def test_each_sign_of_a_blow_up_is_named(change, message):
    qpos, qvel = change(*state())
    reason = instability(qpos, qvel, NAMES, StateBounds())
    if message is None:
        assert reason is None
    else:
        assert reason is not None and re.search(message, reason), reason


def test_speeds_within_the_bounds_and_engine_warnings():
    qpos, qvel = state(root_velocity=(0.0, 0.0, -19.9), root_spin=(0.0, 199.0, 0.0), joint_speeds=(-199.0, 150.0))
    assert instability(qpos, qvel, NAMES, StateBounds()) is None
    assert instability(qpos, qvel, NAMES, StateBounds(max_root_speed=10.0)).startswith("root speed 19.9 m/s")
    assert instability(qpos, qvel, NAMES, StateBounds(), ["MuJoCo warning mjWARN_BADQACC (x1)"]) == \
        "MuJoCo warning mjWARN_BADQACC (x1)"
    with pytest.raises(ValueError, match="max_root_speed must be a positive number"):
        StateBounds(max_root_speed=0.0)
    with pytest.raises(ValueError, match="max_angular_speed must be a positive number"):
        StateBounds(max_angular_speed=float("inf"))


@pytest.mark.parametrize("backend_name", ["mujoco", "pybullet"])
def test_absurd_gains_blow_mujoco_up_and_the_configured_ones_do_not(backend_name):
    """The issue's reproduction: kp = 1e9 on a standing humanoid.  MuJoCo's root flies off (and
    MuJoCo then resets itself); the character's own gains hold it standing, in either engine."""
    humanoid = load_character("humanoid")
    backend = make_backend(backend_name, humanoid, SimConfig(control_hz=30.0))
    n = humanoid.num_joints
    qpos = np.zeros(7 + n)
    qpos[2], qpos[3] = standing_height(humanoid), 1.0

    def first_sign(kp: np.ndarray) -> str | None:
        backend.reset(qpos, np.zeros(6 + n))
        backend.set_gains(humanoid.kp, humanoid.kd)
        for step in range(60):
            if step == 15:  # set once standing, as a command arriving over ROS would
                backend.set_gains(kp, humanoid.kd)
            backend.step(np.zeros(n))
            reason = instability(*backend.get_state(), humanoid.joint_names, StateBounds(), engine_warnings(backend))
            if reason is not None:
                return reason
        return None

    assert first_sign(humanoid.kp) is None
    if backend_name == "mujoco":
        assert "root speed" in (first_sign(np.full(n, 1e9)) or "")
    backend.close()


def test_mujocos_own_reset_of_a_diverged_simulation_is_reported_until_the_next_reset():
    humanoid = load_character("humanoid")
    backend = make_backend("mujoco", humanoid, SimConfig(control_hz=30.0))
    n = humanoid.num_joints
    qpos = np.zeros(7 + n)
    qpos[2], qpos[3] = standing_height(humanoid), 1.0
    backend.reset(qpos, np.zeros(6 + n))
    assert engine_warnings(backend) == []
    for step in range(120):
        if step == 15:
            backend.set_gains(humanoid.kp, np.full(n, 1e9))
        backend.step(np.zeros(n))
        if engine_warnings(backend):
            break
    assert any("mjWARN_BADQACC" in w for w in engine_warnings(backend))
    backend.reset(qpos, np.zeros(6 + n))
    assert engine_warnings(backend) == []
    backend.close()
