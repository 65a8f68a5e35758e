"""Whole-body inverse kinematics: place points of a robot's links at targets, within joint limits.

Weighted damped Gauss-Newton on Pinocchio's kinematics of the character's URDF:
each iteration stacks the targets' position and orientation errors with their
world-aligned frame Jacobians, adds a weak pull toward a reference configuration
(when retargeting a clip: the previous frames' extrapolation, temporal smoothness),
solves the normal equations for a configuration step, holds joints that would pass
a limit at it (re-solving the rest), and clamps, so a solution never violates them.

Why not pink (or mink, built the same way): each pink task is a Python object evaluated
separately and every step solves a QP; here the targets are evaluated as arrays and the
joint limits, the only inequalities, are a box handled by an active set.
bench/retarget_speed.py runs pink as its peer in the same pipeline (docs/retargeting.md
quotes the figures).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pinocchio

from mimic_sim.character import Character
from mimic_sim.kinematics import PinocchioModel


@dataclass(frozen=True)
class LinkTarget:
    """A point on a robot link to place: its position (and, if weighted, the link's orientation)."""

    link: str
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """The point in the link's frame."""
    position_weight: float = 1.0
    orientation_weight: float = 0.0


def urdf_links(pin: PinocchioModel) -> set[str]:
    """Every link of a robot's URDF, links on fixed joints included."""
    return {f.name for f in pin.model.frames if f.type == pinocchio.BODY}


class IKError(ValueError):
    """A target names a link the robot lacks, or targets are malformed."""


class WholeBodyIK:
    """Solves for ``qpos`` (mimic's layout) placing ``targets`` at given world positions/orientations."""

    def __init__(self, character: Character, targets: list[LinkTarget], regularization: float = 1e-5,
                 root_regularization: float = 1e-6, damping: float = 1e-6, max_step: float = 0.3,
                 pin: PinocchioModel | None = None):
        """``pin``: the character's Pinocchio model if the caller has one (its model gains the targets' frames)."""
        self.character = character
        self.targets = list(targets)
        self.pin = pin if pin is not None else PinocchioModel(character)
        model = self.pin.model
        self.frames = []
        for i, target in enumerate(self.targets):
            if not model.existFrame(target.link, pinocchio.BODY):
                raise IKError(f"character '{character.name}' ({character.model_path.name}) has no link "
                              f"'{target.link}'")
            body = model.frames[model.getFrameId(target.link, pinocchio.BODY)]
            placement = body.placement * pinocchio.SE3(np.eye(3), np.asarray(target.offset, dtype=float))
            self.frames.append(model.addFrame(pinocchio.Frame(f"ik{i}:{target.link}", body.parentJoint,
                                                              body.parentFrame, placement, pinocchio.OP_FRAME)))
        self.data = model.createData()
        self.position_weight = np.sqrt([t.position_weight for t in self.targets])
        self.orientation_weight = np.sqrt([t.orientation_weight for t in self.targets])
        self._oriented = np.flatnonzero(self.orientation_weight > 0)
        nv = model.nv
        reg = np.full(nv, regularization)
        reg[:6] = root_regularization
        self._reg = reg
        self._damping = damping * np.eye(nv)
        self.max_step = max_step
        self.last_cost = float("nan")
        self._jacobians = np.zeros((len(self.frames), 6, nv))
        self._lower = character.joint_lower
        self._upper = character.joint_upper

    def link_poses(self, qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World positions (K, 3) and rotations (K, 3, 3) of the target points at a configuration."""
        model, data = self.pin.model, self.data
        pinocchio.framesForwardKinematics(model, data, self.pin.configuration(qpos))
        return (np.array([data.oMf[f].translation for f in self.frames]),
                np.array([data.oMf[f].rotation for f in self.frames]))

    def _errors(self, positions: np.ndarray, rotations: np.ndarray | None) -> np.ndarray:
        """Weighted target errors at the configuration last placed in ``self.data`` (positions, then the
        oriented targets' rotation errors as sin(angle) * axis: cheap, and exact in direction)."""
        data = self.data
        current = np.array([data.oMf[f].translation for f in self.frames])
        errors = (self.position_weight[:, None] * (positions - current)).ravel()
        if rotations is None or not len(self._oriented):
            return errors
        now = np.array([data.oMf[self.frames[i]].rotation for i in self._oriented])
        d = rotations[self._oriented] @ np.swapaxes(now, 1, 2)  # world-frame rotation still to go
        vee = 0.5 * np.stack([d[:, 2, 1] - d[:, 1, 2], d[:, 0, 2] - d[:, 2, 0], d[:, 1, 0] - d[:, 0, 1]], axis=1)
        return np.concatenate([errors, (self.orientation_weight[self._oriented, None] * vee).ravel()])

    def cost(self, qpos: np.ndarray, positions: np.ndarray, rotations: np.ndarray | None = None) -> float:
        """Weighted squared target error at a configuration (what :meth:`solve` minimizes, less the pull)."""
        pinocchio.framesForwardKinematics(self.pin.model, self.data, self.pin.configuration(qpos))
        return float(np.sum(self._errors(positions, rotations) ** 2))

    # ------------------------------------------------------------------ solve
    def solve(self, qpos: np.ndarray, positions: np.ndarray, rotations: np.ndarray | None = None,
              reference: np.ndarray | None = None, iterations: int = 8, tolerance: float = 1e-5,
              pull: float = 1.0) -> np.ndarray:
        """``qpos`` (the start) moved to place the targets; ``reference`` (default: the start) is the
        configuration the step is pulled toward where the targets leave freedom, with ``pull`` times
        the regularization given at construction.  Stops early once no joint moves more than
        ``tolerance`` (rad or m) in an iteration; :attr:`last_cost` is the error at the last state
        linearized (:meth:`cost` there)."""
        model, data, pin = self.pin.model, self.data, self.pin
        q = self.pin.configuration(qpos)
        q_ref = q.copy() if reference is None else self.pin.configuration(reference)
        oriented = self._oriented if rotations is not None else self._oriented[:0]
        world = pinocchio.ReferenceFrame.LOCAL_WORLD_ALIGNED
        reg = pull * self._reg
        regularized = np.diag(reg) + self._damping  # the normal equations' constant part
        jac = self._jacobians
        for _ in range(iterations):
            pinocchio.computeJointJacobians(model, data, q)
            pinocchio.updateFramePlacements(model, data)
            for k, f in enumerate(self.frames):
                jac[k] = pinocchio.getFrameJacobian(model, data, f, world)
            e = self._errors(positions, rotations)
            self.last_cost = float(e @ e)
            a = (self.position_weight[:, None, None] * jac[:, :3]).reshape(-1, model.nv)
            if len(oriented):
                a = np.concatenate([a, (self.orientation_weight[oriented, None, None] * jac[oriented, 3:])
                                    .reshape(-1, model.nv)])
            lhs = a.T @ a + regularized
            rhs = a.T @ e + reg * pinocchio.difference(model, q, q_ref)
            step = np.linalg.solve(lhs, rhs)
            # Joints the step would push past a limit are held at it and the rest re-solved:
            # a clamp alone leaves the other joints compensating for motion that never happens.
            joints = q[pin.joint_q]
            moved = joints + step[pin.joint_v]
            blocked = ((moved <= self._lower) & (step[pin.joint_v] < 0)) | ((moved >= self._upper) &
                                                                             (step[pin.joint_v] > 0))
            if blocked.any():  # the same system with the held joints' steps fixed: one more solve
                held = pin.joint_v[blocked]
                fixed = np.clip(moved[blocked], self._lower[blocked], self._upper[blocked]) - joints[blocked]
                rhs = rhs - lhs[:, held] @ fixed
                rhs[held] = fixed
                lhs[held, :] = 0.0
                lhs[:, held] = 0.0
                lhs[held, held] = 1.0
                step = np.linalg.solve(lhs, rhs)
            largest = np.abs(step).max()
            if largest > self.max_step:  # a trust region: far from the solution the linearization misleads
                step *= self.max_step / largest
            q = pinocchio.integrate(model, q, step)
            q[pin.joint_q] = np.clip(q[pin.joint_q], self._lower, self._upper)
            if largest < tolerance:
                break
        return self.pin.qpos_of(q)
