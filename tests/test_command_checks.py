"""check_command and CommandLimits on a three-joint character: every refusal's message, field
and joint, the boundaries (a target on its limit, a gain of zero), and how a command fills in."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mimic_sim.commands import CommandError, CommandLimits, check_command

TRI = SimpleNamespace(name="tri", joint_names=["a", "b", "c"], num_joints=3, joint_lower=np.array([-1.0, -1.0, 0.0]),
                      joint_upper=np.array([1.0, 1.0, 2.0]), kp=np.array([100.0, 200.0, 300.0]),
                      kd=np.array([10.0, 20.0, 30.0]), torque_limit=np.array([50.0, 60.0, 70.0]))
LIMITS = CommandLimits.of(TRI, max_gain_factor=2.0, max_target_velocity=5.0)


def _refused(**command) -> CommandError:
    command = {"joint_names": ["a", "b", "c"], "positions": [0.0, 0.0, 1.0], **command}
    with pytest.raises(CommandError) as caught:
        check_command(TRI, **command)
    return caught.value


@pytest.mark.parametrize(("command", "message", "field", "joint"), [
    ({"joint_names": ["a", "b", "a", "c", "c"], "positions": [0.0] * 5}, "joint(s) named more than once: ['a', 'c']",
     "joint_names", ""),
    ({"joint_names": ["a", "zz", "b"]}, "unknown joint(s) ['zz'] for character 'tri'", "joint_names", ""),
    ({"joint_names": ["b"], "positions": [0.0]}, "joint(s) ['a', 'c'] not commanded", "joint_names", ""),
    ({"velocities": [0.0, 0.0]}, "'velocities' has 2 values for 3 joints", "velocities", ""),
    ({"positions": [0.0, 0.0]}, "'positions' has 2 values for 3 joints", "positions", ""),
    ({"kp": [1.0, np.nan, 1.0]}, "'kp' of joint 'b' is nan", "kp", "b"),
    ({"effort": [1.0, 1.0, -np.inf]}, "'effort' of joint 'c' is -inf", "effort", "c"),
    ({"kd": [0.0, -0.5, -1.0]}, "'kd' of joint 'b' is negative (-0.5)", "kd", "b"),
    ({"kp": [-2.0, 0.0, 0.0]}, "'kp' of joint 'a' is negative (-2.0)", "kp", "a"),
    ({"positions": [0.0, 1.5, 2.5]}, "target 1.5000 of joint 'b' is outside its range [-1.0000, 1.0000]",
     "positions", "b"),
    ({"joint_names": ["c", "a", "b"], "positions": [-0.25, 0.0, 0.0]},
     "target -0.2500 of joint 'c' is outside its range [0.0000, 2.0000]", "positions", "c"),
])
def test_each_refusal_names_its_field_and_joint(command, message, field, joint):
    error = _refused(**command)
    assert (str(error), error.field, error.joint) == (message, field, joint)


@pytest.mark.parametrize(("command", "message", "field", "joint"), [
    ({"kp": [200.0, 401.0, 0.0]}, "'kp' of joint 'b' is 401, beyond its limit 400", "kp", "b"),
    ({"kd": [0.0, 0.0, 61.0]}, "'kd' of joint 'c' is 61, beyond its limit 60", "kd", "c"),
    ({"velocities": [-5.5, 0.0, 0.0]}, "'velocities' of joint 'a' is -5.5, beyond its limit 5", "velocities", "a"),
    ({"effort": [0.0, -60.5, 0.0]}, "'effort' of joint 'b' is -60.5, beyond its limit 60", "effort", "b"),
    ({"joint_names": ["c", "b", "a"], "positions": [1.0, 0.0, 0.0], "kp": [601.0, 0.0, 0.0]},
     "'kp' of joint 'c' is 601, beyond its limit 600", "kp", "c"),
])
def test_limits_refuse_magnitudes_beyond_them(command, message, field, joint):
    error = _refused(limits=LIMITS, **command)
    assert (str(error), error.field, error.joint) == (message, field, joint)


def test_values_on_the_boundaries_are_accepted():
    command = check_command(TRI, ["a", "b", "c"], [-1.0, 1.0, 2.0], velocities=[5.0, -5.0, 0.0], kp=[0.0, 400.0, 0.0],
                            kd=[20.0, 0.0, 0.0], effort=[-50.0, 60.0, 70.0], limits=LIMITS)
    assert command.targets.tolist() == [-1.0, 1.0, 2.0] and command.kp.tolist() == [0.0, 400.0, 0.0]


def test_a_command_in_any_order_lands_on_the_characters_joints():
    command = check_command(TRI, ["c", "a", "b"], [2, -1, 0], velocities=[3.0, 1.0, 2.0], kd=[3.0, 1.0, 2.0],
                            effort=[30.0, 10.0, 20.0])
    assert command.targets.tolist() == [-1.0, 0.0, 2.0] and command.targets.dtype == float
    assert command.target_velocities.tolist() == [1.0, 2.0, 3.0]
    assert command.kd.tolist() == [1.0, 2.0, 3.0] and command.effort.tolist() == [10.0, 20.0, 30.0]
    assert command.kp is None  # not given: the PD law's own gains apply


def test_joints_left_out_keep_their_current_targets_and_gains():
    current = np.array([0.5, -0.5, 1.5])
    command = check_command(TRI, ["b"], [0.25], kp=[7.0], require_all=False, current=current)
    assert command.targets.tolist() == [0.5, 0.25, 1.5] and current.tolist() == [0.5, -0.5, 1.5]
    assert command.kp.tolist() == [100.0, 7.0, 300.0]  # the others keep the character's
    assert command.kd is None and command.target_velocities is None and command.effort is None
    assert check_command(TRI, ["b"], [0.25], require_all=False).targets.tolist() == [0.0, 0.25, 0.0]


def test_limits_of_a_character():
    assert LIMITS.kp.tolist() == [200.0, 400.0, 600.0] and LIMITS.kd.tolist() == [20.0, 40.0, 60.0]
    assert LIMITS.velocity.tolist() == [5.0, 5.0, 5.0] and LIMITS.effort.tolist() == [50.0, 60.0, 70.0]
    assert LIMITS.effort is not TRI.torque_limit  # a copy: the limits do not follow later edits
    default = CommandLimits.of(TRI)
    assert default.kp.tolist() == [1000.0, 2000.0, 3000.0] and default.velocity.tolist() == [50.0] * 3
    zero = CommandLimits.of(TRI, max_gain_factor=0.0, max_target_velocity=0.0)
    assert zero.kp.tolist() == [0.0] * 3 and zero.velocity.tolist() == [0.0] * 3
    for name, kwargs in (("max_gain_factor", {"max_gain_factor": -1.0}),
                         ("max_target_velocity", {"max_target_velocity": np.inf})):
        with pytest.raises(ValueError, match=rf"^{name} must be a non-negative number, got "):
            CommandLimits.of(TRI, **kwargs)


def test_an_error_without_a_joint_names_none():
    error = CommandError("why", "positions")
    assert (str(error), error.field, error.joint) == ("why", "positions", "")
