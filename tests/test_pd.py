"""The stable PD law (mimic_sim.pd) against cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from mimic_sim.pd import PASSIVE_DAMPING, PDGains, clamp_targets, pd_terms, pd_torque, predict_qdot_next, require_finite

# Four joints, dt 0.01:
#   0: kp 100, kd 10, limit 50, q 0, qdot 2, target 1, target velocity 0.5
#      spring 100 * 1 + 10 * 0.5 = 105; output 105 - 0.75 * 10 * 2 = 90 >= 50: saturated
#      drive 50, damping 100 * 0.01 + 0.25 * 10 = 3.5
#   1: kp 200, kd 20, limit 1000, q 0.1, qdot 1, target 0.3, target velocity -1
#      spring 200 * 0.2 - 20 = 20; output 20 - 0.75 * 20 * 1 = 5: free
#      drive 20, damping 200 * 0.01 + 20 = 22
#   2: kp 100, kd 10, limit 50, q 1, qdot 0, target 0, target velocity 0
#      spring -100 = output: saturated below, drive -50, damping 3.5
#   3: kp 100, kd 10, limit 50, q 0, qdot 0, target 0.5, target velocity 0
#      output 50, exactly the limit: saturated, drive 50, damping 3.5 (not 11)
GAINS = PDGains(np.array([100.0, 200.0, 100.0, 100.0]), np.array([10.0, 20.0, 10.0, 10.0]),
                np.array([50.0, 1000.0, 50.0, 50.0]))
Q, QDOT = np.array([0.0, 0.1, 1.0, 0.0]), np.array([2.0, 1.0, 0.0, 0.0])
TARGET, TARGET_VEL = np.array([1.0, 0.3, 0.0, 0.5]), np.array([0.5, -1.0, 0.0, 0.0])


def test_a_quarter_of_the_damping_stays_outside_the_limit():
    assert PASSIVE_DAMPING == 0.25


def test_drive_and_damping_by_hand():
    drive, damping = pd_terms(GAINS, Q, QDOT, TARGET, 0.01, TARGET_VEL)
    assert drive.tolist() == pytest.approx([50.0, 20.0, -50.0, 50.0])
    assert damping.tolist() == pytest.approx([3.5, 22.0, 3.5, 3.5])


def test_without_a_target_velocity_the_spring_is_position_only():
    # joint 0: spring 100, output 100 - 15 = 85: still saturated; joint 1: spring 40, output 25: free
    drive, damping = pd_terms(GAINS, Q, QDOT, TARGET, 0.01)
    assert drive.tolist() == pytest.approx([50.0, 40.0, -50.0, 50.0])
    assert damping.tolist() == pytest.approx([3.5, 22.0, 3.5, 3.5])


def test_three_quarters_of_the_damping_decide_saturation():
    """kp 60, kd 10, limit 50, q 0, target 1: spring 60, output 60 - 0.75 * 10 * qdot.
    At qdot 2: 45, free (drive 60, damping 0.6 + 10); at qdot 1: 52.5, saturated (drive 50,
    damping 0.6 + 2.5)."""
    gains = PDGains(np.array([60.0, 60.0]), np.array([10.0, 10.0]), np.array([50.0, 50.0]))
    drive, damping = pd_terms(gains, np.zeros(2), np.array([2.0, 1.0]), np.ones(2), 0.01)
    assert drive.tolist() == pytest.approx([60.0, 50.0])
    assert damping.tolist() == pytest.approx([10.6, 3.1])


def test_torque_is_drive_minus_damping_times_the_end_of_step_velocity():
    # drive - damping * qdot_next with qdot_next = 1, 2, -1, 0
    torque = pd_torque(GAINS, Q, QDOT, np.array([1.0, 2.0, -1.0, 0.0]), TARGET, 0.01, TARGET_VEL)
    assert torque.tolist() == pytest.approx([46.5, -24.0, -46.5, 50.0])


# A 3-dof system: dof 0 unactuated (decoupled, no force), dofs 1 and 2 the joints; dt 0.1.
#   joint a (dof 1): kp 100, kd 10, q 0, qdot 1, target 0.1 -> spring 10, output 2.5: drive 10, damping 20
#   joint b (dof 2): kp 50, kd 5, q 0, qdot 0, target -0.2 -> spring -10: drive -10, damping 10
#   M (joints) = [[2, 0.5], [0.5, 1]], bias = [1, -2]
#   (M + dt D) qddot = drive - D qdot - bias:  [[4, 0.5], [0.5, 2]] qddot = [-11, -8]
#   qddot = [-18, -26.5] / 7.75 = [-72/31, -106/31];  qdot_next = qdot + 0.1 qddot = [23.8/31, -10.6/31]
JOINT_GAINS = PDGains(np.array([100.0, 50.0]), np.array([10.0, 5.0]), np.array([1000.0, 1000.0]))
MASS = np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
BIAS = np.array([0.0, 1.0, -2.0])
DOFS = np.array([1, 2])
FULL_QDOT = np.array([0.4, 1.0, 0.0])


def test_end_of_step_velocity_by_hand():
    mass, bias = MASS.copy(), BIAS.copy()
    qdot_next = predict_qdot_next(JOINT_GAINS, mass, bias, DOFS, np.zeros(2), FULL_QDOT, np.array([0.1, -0.2]), 0.1)
    assert qdot_next.tolist() == pytest.approx([23.8 / 31, -10.6 / 31], rel=1e-12)
    assert np.array_equal(mass, MASS) and np.array_equal(bias, BIAS)  # the caller's arrays are left alone
    # the law at that velocity is the torque the prediction assumed: M qddot + bias = tau
    torque = pd_torque(JOINT_GAINS, np.zeros(2), FULL_QDOT[DOFS], qdot_next, np.array([0.1, -0.2]), 0.1)
    qddot = (qdot_next - FULL_QDOT[DOFS]) / 0.1
    assert torque == pytest.approx(MASS[1:, 1:] @ qddot + BIAS[1:], rel=1e-12)


def test_a_target_velocity_enters_the_prediction():
    # joint b with a target velocity of 2: spring -10 + 5 * 2 = 0: rhs [-11, 2]
    # qddot = [(2 * -11 - 0.5 * 2), (4 * 2 - 0.5 * -11)] / 7.75 = [-23, 13.5] / 7.75
    qdot_next = predict_qdot_next(JOINT_GAINS, MASS, BIAS, DOFS, np.zeros(2), FULL_QDOT, np.array([0.1, -0.2]), 0.1,
                                  qdot_target=np.array([0.0, 2.0]))
    assert qdot_next.tolist() == pytest.approx([1 - 2.3 / 7.75, 1.35 / 7.75], rel=1e-12)


def test_a_contact_holds_its_dof_still_over_the_step():
    """J = [0, 1, 0] (joint a's dof held): qdot_next_a = 0, so qddot_a = -10;
    then 0.5 * -10 + 2 qddot_b = -8 gives qddot_b = -1.5, qdot_next_b = -0.15.
    The same row twice (redundant contacts) has the same answer."""
    for jacobian in (np.array([[0.0, 1.0, 0.0]]), np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])):
        qdot_next = predict_qdot_next(JOINT_GAINS, MASS, BIAS, DOFS, np.zeros(2), FULL_QDOT, np.array([0.1, -0.2]),
                                      0.1, contact_jacobian=jacobian)
        assert qdot_next.tolist() == pytest.approx([0.0, -0.15], abs=1e-12), len(jacobian)
    empty = predict_qdot_next(JOINT_GAINS, MASS, BIAS, DOFS, np.zeros(2), FULL_QDOT, np.array([0.1, -0.2]), 0.1,
                              contact_jacobian=np.zeros((0, 3)))
    assert empty.tolist() == pytest.approx([23.8 / 31, -10.6 / 31], rel=1e-12)


def test_targets_are_clamped_to_the_range_and_non_finite_ones_refused():
    lower, upper = np.array([-1.0, -1.0, 0.0]), np.array([1.0, 1.0, 2.0])
    assert clamp_targets(np.array([-2.0, 0.5, 3.0]), lower, upper).tolist() == [-1.0, 0.5, 2.0]
    assert clamp_targets(np.array([[-1.0, 1.0, 0.0], [5.0, -5.0, 1.5]]), lower, upper).tolist() == \
        [[-1.0, 1.0, 0.0], [1.0, -1.0, 1.5]]
    with pytest.raises(ValueError, match=r"^PD target 2 is not finite: nan$"):
        clamp_targets(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, np.nan]]), lower, upper)
    with pytest.raises(ValueError, match=r"^velocity 1 is not finite: -inf$"):
        require_finite([0.0, -np.inf], "velocity")
    checked = require_finite([1, 2])
    assert checked.dtype == float and checked.tolist() == [1.0, 2.0]
