"""PD commands from outside are matched by joint name and rejected whole when bad."""

from __future__ import annotations

import numpy as np
import pytest

from mimic_sim.character import load_character
from mimic_sim.commands import CommandError, check_command


@pytest.fixture(scope="module")
def humanoid():
    return load_character("humanoid")


def test_joints_are_matched_by_name_in_any_order(humanoid):
    names = list(reversed(humanoid.joint_names))
    targets = np.linspace(-0.1, 0.1, len(names))
    cmd = check_command(humanoid, names, targets, kp=np.full(len(names), 7.0))
    for name, value in zip(names, targets, strict=True):
        assert cmd.targets[humanoid.joint_names.index(name)] == value
    assert np.all(cmd.kp == 7.0) and cmd.kd is None  # gains not given: the character's apply
    assert cmd.target_velocities is None and cmd.effort is None


def test_partial_command_keeps_current_targets(humanoid):
    current = np.full(humanoid.num_joints, 0.05)
    cmd = check_command(humanoid, ["right_knee"], [-0.5], require_all=False, current=current)
    assert cmd.targets[humanoid.joint_names.index("right_knee")] == -0.5
    assert np.count_nonzero(cmd.targets == 0.05) == humanoid.num_joints - 1


@pytest.mark.parametrize(("change", "message"), [
    (lambda n, p: ([*n[:-1], "left_wing"], p), "unknown joint.*left_wing"),
    (lambda n, p: ([*n[:-1], n[0]], p), "more than once"),
    (lambda n, p: (n, p[:-1]), "'positions' has 27 values for 28 joints"),
    (lambda n, p: (n, np.where(np.arange(len(p)) == 3, np.nan, p)), "'positions' of joint .* is nan"),
    (lambda n, p: (n, np.where(np.arange(len(p)) == 0, 9.0, p)), "outside its range"),
    (lambda n, p: (n[:-1], p[:-1]), "not commanded"),
])
def test_bad_commands_are_rejected_with_the_reason(humanoid, change, message):
    names, positions = change(list(humanoid.joint_names), np.zeros(humanoid.num_joints))
    with pytest.raises(CommandError, match=message):
        check_command(humanoid, names, positions)


def test_bad_gains_are_rejected(humanoid):
    n = humanoid.num_joints
    with pytest.raises(CommandError, match=r"'kd' of joint .* is negative"):
        check_command(humanoid, humanoid.joint_names, np.zeros(n), kd=np.full(n, -1.0))
    with pytest.raises(CommandError, match="'effort' has 2 values"):
        check_command(humanoid, humanoid.joint_names, np.zeros(n), effort=[1.0, 2.0])
