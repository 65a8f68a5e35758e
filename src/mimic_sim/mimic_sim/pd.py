"""The PD law: one definition, used by training, the sim node and the policy node.

mimic drives every actuated joint with stable PD control (Tan, Liu and Turk 2011,
as in DeepMimic).  The torque limit bounds the motor's PD output; a quarter of the
damping is the joint's own (passive, never limited):

    u   = kp * (q_target - q) + kd * qdot_target - (1 - f) * kd * qdot     (at the step's start)
    tau = kp * (q_target - q) + kd * qdot_target - (kd + kp * dt) * qdot_next       if |u| < tau_max
    tau = sign(u) * tau_max                      - (f * kd + kp * dt) * qdot_next   otherwise

with ``f = PASSIVE_DAMPING``, ``dt`` the physics step and ``qdot_next`` the joint
velocity at the end of the step (semi-implicit Euler: ``q_next = q + dt * qdot_next``).
The damping and the spring's look-ahead ``kp * dt * qdot_next`` that makes the PD
"stable" are integrated implicitly, which keeps DeepMimic's high gains (kp = 1000 on
a 14 kg chest, 400 on a 1 kg foot) stable at 120-240 Hz while a 30 Hz policy holds
its targets.  ``qdot_next`` comes from the equations of motion ``M qddot + bias =
S^T tau`` with the PD torque on the right-hand side (:func:`predict_qdot_next`).
Unsaturated, the law is the same whatever ``f``.  With all of ``kd`` outside the limit
a joint's speed is capped at ``tau_max / (kd + kp dt)``, too slow for the clips; with
none, a saturated joint in PyBullet (contacts solved after the torque is set) has no
damping left; a quarter leaves ``tau_max / (kd / 4 + kp dt)`` and both backends stable
(docs/simulation.md has what was measured for each choice).

How each backend realizes it:

* MuJoCo: natively.  Position actuators with gain ``kp``, velocity bias
  ``-(1 - f) kd`` and force range ``tau_max`` carry ``clip(u)``; joint damping
  ``f kd + kp dt`` carries the rest.  The ``implicitfast`` integrator integrates the
  actuators' velocity terms implicitly except where the force range clamps them, and
  the joint damping always (contacts included), which is this law.
* PyBullet: :func:`pd_torque` every physics step at the ``qdot_next`` that
  :meth:`mimic_sim.kinematics.PinocchioModel.pd_qdot_next` solves for with
  Pinocchio's dynamics of the same URDF (the solve of :func:`predict_qdot_next`,
  tested equal), applied as joint torques.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PASSIVE_DAMPING = 0.25
"""Share of ``kd`` outside the torque limit (the module doc says why a quarter)."""


@dataclass(frozen=True)
class PDGains:
    """Per-joint gains and torque limits, aligned with ``Character.joint_names``."""

    kp: np.ndarray
    kd: np.ndarray
    torque_limit: np.ndarray


def pd_terms(gains: PDGains, q: np.ndarray, qdot: np.ndarray, q_target: np.ndarray, dt: float,
             qdot_target: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The law at a state as ``tau = drive - damping * qdot_next``: (drive, damping) per joint."""
    spring = gains.kp * (q_target - q)
    if qdot_target is not None:
        spring = spring + gains.kd * qdot_target
    output = spring - (1.0 - PASSIVE_DAMPING) * gains.kd * qdot
    saturated = np.abs(output) >= gains.torque_limit
    drive = np.where(saturated, np.sign(output) * gains.torque_limit, spring)
    damping = gains.kp * dt + np.where(saturated, PASSIVE_DAMPING, 1.0) * gains.kd
    return drive, damping


def pd_torque(gains: PDGains, q: np.ndarray, qdot: np.ndarray, qdot_next: np.ndarray, q_target: np.ndarray,
              dt: float, qdot_target: np.ndarray | None = None) -> np.ndarray:
    """The law evaluated for joint positions and velocities at the step's start and end-of-step velocities."""
    drive, damping = pd_terms(gains, q, qdot, q_target, dt, qdot_target)
    return drive - damping * qdot_next


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
    ``(M + dt * D) qddot = S^T (drive - D qdot) - bias`` with ``(drive, D)`` of
    :func:`pd_terms` (``D`` on the actuated diagonal).  ``contact_jacobian`` (k x nv) holds the bodies touching
    the ground in place over the step (``J qdot_next = 0``): without it a light foot
    on the ground is predicted to swing freely to its target, and its ankle torque
    comes out near zero.
    """
    q_dot_joints = qdot[joint_dofs]
    drive, damping = pd_terms(gains, q, q_dot_joints, q_target, dt, qdot_target)
    system = mass_matrix.copy()
    system[joint_dofs, joint_dofs] += dt * damping
    rhs = -bias
    rhs[joint_dofs] += drive - damping * q_dot_joints
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


def require_finite(values: np.ndarray, what: str = "PD target") -> np.ndarray:
    """``values`` (one per joint, or rows of them) as floats; a non-finite one is an error naming its joint index."""
    values = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(values)):
        bad = np.argwhere(~np.isfinite(values))[0]
        raise ValueError(f"{what} {int(bad[-1])} is not finite: {values[tuple(bad)]}")
    return values


def clamp_targets(targets: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """PD targets (one per joint, or rows of them) limited to the joint range; non-finite
    targets are an error."""
    return np.minimum(np.maximum(require_finite(targets), lower), upper)
