"""PD commands from outside are matched by joint name and rejected whole when bad."""

from __future__ import annotations

import numpy as np
import pytest

from mimic_sim.character import load_character
from mimic_sim.commands import CommandError, CommandLimits, LogThrottle, check_command


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


def test_gains_velocities_and_efforts_beyond_the_characters_limits_are_refused(humanoid):
    n = humanoid.num_joints
    limits = CommandLimits.of(humanoid, max_gain_factor=10.0, max_target_velocity=50.0)
    knee = humanoid.joint_names.index("right_knee")
    zeros = np.zeros(n)
    # up to the limits: accepted
    within = check_command(humanoid, humanoid.joint_names, zeros, velocities=np.full(n, -50.0), kp=10.0 * humanoid.kp,
                           kd=10.0 * humanoid.kd, effort=-humanoid.torque_limit, limits=limits)
    assert np.array_equal(within.kp, 10.0 * humanoid.kp)
    for field, values in (("kp", 10.0 * humanoid.kp), ("kd", 10.0 * humanoid.kd), ("velocities", np.full(n, 50.0)),
                          ("effort", humanoid.torque_limit.copy())):
        values[knee] = values[knee] * 1.01 if field != "velocities" else -50.5
        with pytest.raises(CommandError, match=rf"'{field}' of joint 'right_knee' is .*beyond its limit") as error:
            check_command(humanoid, humanoid.joint_names, zeros, limits=limits, **{field: values})
        assert (error.value.field, error.value.joint) == (field, "right_knee")
    # the reproduction: kp = 1e9 everywhere names the first joint
    with pytest.raises(CommandError, match=rf"'kp' of joint '{humanoid.joint_names[0]}' is 1e\+09"):
        check_command(humanoid, humanoid.joint_names, zeros, kp=np.full(n, 1e9), limits=limits)
    # without limits (the training code's own commands) only finiteness and signs are checked
    assert check_command(humanoid, humanoid.joint_names, zeros, kp=np.full(n, 1e9)).kp[0] == 1e9


def test_limits_follow_the_configuration_and_refuse_nonsense(humanoid):
    limits = CommandLimits.of(humanoid, max_gain_factor=2.0, max_target_velocity=7.0)
    np.testing.assert_array_equal(limits.kp, 2.0 * humanoid.kp)
    np.testing.assert_array_equal(limits.kd, 2.0 * humanoid.kd)
    np.testing.assert_array_equal(limits.effort, humanoid.torque_limit)
    assert np.all(limits.velocity == 7.0)
    with pytest.raises(ValueError, match="max_gain_factor must be a non-negative number"):
        CommandLimits.of(humanoid, max_gain_factor=-1.0)
    with pytest.raises(ValueError, match="max_target_velocity must be a non-negative number"):
        CommandLimits.of(humanoid, max_target_velocity=float("nan"))


def test_refusals_are_logged_once_per_kind_and_interval_and_never_in_a_flood():
    now = [0.0]
    throttle = LogThrottle(interval=1.0, most=3, clock=lambda: now[0])
    assert throttle(("kp", "right_knee")) == 0  # a new kind: logged at once
    assert throttle(("kp", "right_knee")) is None  # the same again within the interval: not
    assert throttle(("kd", "right_knee")) == 1  # another kind: logged, saying one was not
    assert throttle(("kd", "left_knee")) == 0
    assert throttle(("effort", "chest_x")) is None  # a fourth line within the interval: not (flood)
    now[0] = 1.0
    assert throttle(("kp", "right_knee")) == 1  # an interval later: logged again
    logged = 0
    for step in range(1000):  # a peer cycling through 200 kinds at 100 Hz for 10 s
        now[0] = 2.0 + step * 0.01
        logged += throttle(("kp", f"joint {step % 200}")) is not None
    assert logged <= 3 * 10 + 3
