"""The PD law: one definition, used by training, the sim node and the policy node.

mimic drives every actuated joint with stable PD control (Tan, Liu and Turk 2011,
as in DeepMimic), with the torque limit on the drive:

    tau = clip(kp * (q_target - q) + kd * qdot_target, -tau_max, tau_max) - (kd + kp * dt) * qdot_next

``dt`` is the physics step and ``qdot_next`` the joint velocity at the end of the
step (semi-implicit Euler: ``q_next = q + dt * qdot_next``), so the damping, and
the spring's look-ahead ``kp * dt * qdot_next`` that makes the PD "stable", are
integrated implicitly.  That keeps DeepMimic's high gains (kp = 1000 on a 14 kg
chest, 400 on a 1 kg foot) stable while a 30 Hz policy holds its targets between
physics steps.  ``qdot_next`` comes from the equations of motion
``M qddot + bias = S^T tau`` with the PD torque on the right-hand side
(:func:`predict_qdot_next`).

Why the limit bounds the drive and not the damping: DeepMimic clips the whole
stable-PD torque and applies it explicitly.  With the humanoid's light feet
(roll inertia ~1.5e-3 kg m^2) that is unstable at 120-240 Hz: a foot pressed on the
ground saturates at 90 N m, and 90 N m applied for a whole step spins it to
~500 rad/s (measured).  MuJoCo's own actuator clamp does the same.  With the limit
on the drive, the damping stays implicit and every step is stable; the damping acts
like a passive joint damper, which the torque limit does not bound.

How each backend realizes it:

* MuJoCo: natively.  Position actuators with gain ``kp`` and force range
  ``tau_max`` carry the drive; joint damping ``kd + kp * dt`` is integrated
  implicitly by the ``implicitfast`` integrator (contacts included).
* PyBullet: :func:`pd_torque` every physics step at the ``qdot_next`` that
  :meth:`mimic_sim.kinematics.PinocchioModel.pd_qdot_next` solves for with
  Pinocchio's dynamics of the same URDF (the solve of :func:`predict_qdot_next`,
  tested equal), applied as joint torques.
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


def pd_drive(gains: PDGains, q: np.ndarray, q_target: np.ndarray, qdot_target: np.ndarray | None = None
             ) -> np.ndarray:
    """The torque-limited drive ``clip(kp (q* - q) + kd qdot*)``."""
    drive = gains.kp * (q_target - q)
    if qdot_target is not None:
        drive += gains.kd * qdot_target
    return np.clip(drive, -gains.torque_limit, gains.torque_limit)


def pd_torque(gains: PDGains, q: np.ndarray, qdot_next: np.ndarray, q_target: np.ndarray, dt: float,
              qdot_target: np.ndarray | None = None) -> np.ndarray:
    """The law evaluated for given joint positions and end-of-step velocities."""
    return pd_drive(gains, q, q_target, qdot_target) - gains.effective_damping(dt) * qdot_next


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
    contact_jacobian: np.ndarray | None = None,
) -> np.ndarray:
    """End-of-step joint velocities under the law (implicit in velocity).

    ``mass_matrix`` (nv x nv) and ``bias`` (nv: Coriolis, centrifugal, gravity) are
    the character's dynamics, ``qdot`` its full generalized velocity, and
    ``joint_dofs`` the velocity indices of the actuated joints (``q`` order).
    Substituting ``qdot_next = qdot + dt * qddot`` into the law gives
    ``(M + dt * D) qddot = S^T (drive - D qdot) - bias`` with ``D = kd + kp dt`` on
    the actuated diagonal.  ``contact_jacobian`` (k x nv) holds the bodies touching
    the ground in place over the step (``J qdot_next = 0``): without it a light foot
    on the ground is predicted to swing freely to its target, and its ankle torque
    comes out near zero.
    """
    damping = gains.effective_damping(dt)
    q_dot_joints = qdot[joint_dofs]
    system = mass_matrix.copy()
    system[joint_dofs, joint_dofs] += dt * damping
    rhs = -bias
    rhs[joint_dofs] += pd_drive(gains, q, q_target, qdot_target) - damping * q_dot_joints
    if contact_jacobian is not None and len(contact_jacobian):
        k = contact_jacobian.shape[0]
        nv = system.shape[0]
        kkt = np.zeros((nv + k, nv + k))
        kkt[:nv, :nv] = system
        kkt[:nv, nv:] = contact_jacobian.T
        kkt[nv:, :nv] = contact_jacobian
        target = np.concatenate([rhs, -contact_jacobian @ qdot / dt])
        try:
            solution = np.linalg.solve(kkt, target)
        except np.linalg.LinAlgError:  # redundant contact rows
            solution = np.linalg.lstsq(kkt, target, rcond=None)[0]
        qddot = solution[:nv]
    else:
        qddot = np.linalg.solve(system, rhs)
    return q_dot_joints + dt * qddot[joint_dofs]


def clamp_targets(targets: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """PD targets (one per joint, or rows of them) limited to the joint range; non-finite
    targets are an error."""
    targets = np.asarray(targets, dtype=float)
    if not np.all(np.isfinite(targets)):
        bad = np.argwhere(~np.isfinite(targets))[0]
        raise ValueError(f"PD target {int(bad[-1])} is not finite: {targets[tuple(bad)]}")
    return np.clip(targets, lower, upper)
