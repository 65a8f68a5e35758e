"""The PD law: one definition, used by training, the sim node and the policy node.

mimic drives every actuated joint with stable PD control (Tan, Liu and Turk 2011,
as in DeepMimic):

    tau = clip(kp * (q_target - (q + dt * qdot_next)) + kd * (qdot_target - qdot_next),
               -tau_max, tau_max)

with ``dt`` the physics step and ``qdot_next`` the joint velocity at the end of the
step (semi-implicit Euler: ``q_next = q + dt * qdot_next``).  The spring acts on the
predicted next position and the damping is implicit: that keeps DeepMimic's high
gains (kp = 1000 on a 14 kg chest, 400 on a 1 kg foot) stable while a 30 Hz policy
holds its targets between physics steps.  ``qdot_next`` comes from the equations of
motion ``M qddot + bias = S^T tau`` solved with the PD torque on the right-hand side
(:func:`predict_qdot_next`); contact forces are not part of the prediction.

How each backend realizes it:

* PyBullet: :func:`stable_pd_torque` every physics step, with the mass matrix and
  bias forces from Pinocchio on the same URDF, applied as joint torques.
* MuJoCo: natively, as position actuators with gain ``kp`` and damping
  ``kd + kp * dt`` under the ``implicitfast`` integrator, which solves exactly this
  implicit step (including contacts).  The torque limit is checked after each step
  with :func:`pd_torque` and a saturated joint's step is redone with the limit
  torque (MuJoCo's own force clamp drops the implicit damping and is unstable).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PDGains:
    """Per-joint gains and torque limits, aligned with ``Character.joint_names``."""

    kp: np.ndarray
    kd: np.ndarray
    torque_limit: np.ndarray

    def effective_damping(self, dt: float) -> np.ndarray:
        """Damping on ``qdot_next``: kd plus the spring's share ``kp * dt``."""
        return self.kd + self.kp * dt


def pd_torque(
    gains: PDGains,
    q: np.ndarray,
    qdot_next: np.ndarray,
    q_target: np.ndarray,
    dt: float,
    qdot_target: np.ndarray | None = None,
    clamp: bool = True,
) -> np.ndarray:
    """The law evaluated for given joint positions and end-of-step velocities."""
    tau = gains.kp * (q_target - q - dt * qdot_next)
    tau -= gains.kd * qdot_next
    if qdot_target is not None:
        tau += gains.kd * qdot_target
    return np.clip(tau, -gains.torque_limit, gains.torque_limit) if clamp else tau


def predict_qdot_next(
    gains: PDGains,
    mass_matrix: np.ndarray,
    bias: np.ndarray,
    joint_dofs: np.ndarray,
    q: np.ndarray,
    qdot: np.ndarray,
    q_target: np.ndarray,
    dt: float,
    qdot_target: np.ndarray | None = None,
) -> np.ndarray:
    """End-of-step joint velocities under the unclamped law (implicit in velocity).

    ``mass_matrix`` (nv x nv) and ``bias`` (nv: Coriolis, centrifugal, gravity) are
    the character's dynamics, ``qdot`` its full generalized velocity, and
    ``joint_dofs`` the velocity indices of the actuated joints (``q`` order).
    Substituting ``qdot_next = qdot + dt * qddot`` into the law gives
    ``(M + dt * D) qddot = S^T (kp (q* - q) + kd qdot* - D qdot) - bias``, with
    ``D = kd + kp dt`` on the actuated diagonal.
    """
    damping = gains.effective_damping(dt)
    q_dot_joints = qdot[joint_dofs]
    drive = gains.kp * (q_target - q) - damping * q_dot_joints
    if qdot_target is not None:
        drive += gains.kd * qdot_target
    system = mass_matrix.copy()
    system[joint_dofs, joint_dofs] += dt * damping
    rhs = -bias.copy()
    rhs[joint_dofs] += drive
    qddot = np.linalg.solve(system, rhs)
    return q_dot_joints + dt * qddot[joint_dofs]


def stable_pd_torque(
    gains: PDGains,
    mass_matrix: np.ndarray,
    bias: np.ndarray,
    joint_dofs: np.ndarray,
    q: np.ndarray,
    qdot: np.ndarray,
    q_target: np.ndarray,
    dt: float,
    qdot_target: np.ndarray | None = None,
) -> np.ndarray:
    """Clamped stable-PD joint torques for one physics step."""
    qdot_next = predict_qdot_next(gains, mass_matrix, bias, joint_dofs, q, qdot, q_target, dt, qdot_target)
    return pd_torque(gains, q, qdot_next, q_target, dt, qdot_target)


def clamp_targets(targets: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """PD targets limited to the joint range; non-finite targets are an error."""
    targets = np.asarray(targets, dtype=float)
    if not np.all(np.isfinite(targets)):
        bad = int(np.flatnonzero(~np.isfinite(targets))[0])
        raise ValueError(f"PD target {bad} is not finite: {targets[bad]}")
    return np.clip(targets, lower, upper)
