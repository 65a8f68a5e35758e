"""Rigid-body kinematics and dynamics of a character with Pinocchio.

Pinocchio reads the character's URDF (floating base) and gives, from mimic's
generalized coordinates, the tracked bodies' poses and velocities, the centre of
mass, the mass matrix and the bias forces, each in a few microseconds.  The PyBullet
backend uses it for its PD law and its body states; it is also the kinematics
library for retargeting.
"""

from __future__ import annotations

import numpy as np
import pinocchio

from mimic_sim import rotations as rot
from mimic_sim.backends.base import BodyStates
from mimic_sim.character import Character


class PinocchioModel:
    """A character in Pinocchio, addressed with mimic's ``qpos``/``qvel`` layout."""

    def __init__(self, character: Character):
        self.model = pinocchio.buildModelFromUrdf(str(character.model_path), pinocchio.JointModelFreeFlyer())
        self.data = self.model.createData()
        names = list(self.model.names)
        missing = [n for n in character.joint_names if n not in names]
        if missing:
            raise ValueError(f"{character.model_path}: Pinocchio finds no joints {missing}")
        self.joint_q = np.array([self.model.joints[names.index(n)].idx_q for n in character.joint_names])
        self.joint_v = np.array([self.model.joints[names.index(n)].idx_v for n in character.joint_names])
        self.frames = [self.model.getFrameId(b, pinocchio.BODY) for b in character.tracked_bodies]
        self.q = np.zeros(self.model.nq)
        self.v = np.zeros(self.model.nv)

    def load(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Set ``self.q``/``self.v`` (Pinocchio's convention: base velocity in the root frame)."""
        q, v = self.q, self.v
        q[:3] = qpos[:3]
        q[3:6] = qpos[4:7]
        q[6] = qpos[3]
        q[self.joint_q] = qpos[7:]
        frame = rot.quat_to_mat(qpos[3:7])
        v[:3] = qvel[:3] @ frame
        v[3:6] = qvel[3:6] @ frame
        v[self.joint_v] = qvel[6:]

    def dynamics(self, qpos: np.ndarray, qvel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mass matrix, bias forces) at a state, in Pinocchio's velocity coordinates."""
        self.load(qpos, qvel)
        m, d = self.model, self.data
        mass = pinocchio.crba(m, d, self.q)
        mass = np.triu(mass) + np.triu(mass, 1).T  # crba fills the upper triangle only
        return mass, pinocchio.nonLinearEffects(m, d, self.q, self.v)

    def body_jacobians(self, bodies: np.ndarray) -> np.ndarray:
        """Stacked 6 x nv Jacobians (world-aligned) of tracked bodies, at the last :meth:`dynamics` state."""
        m, d = self.model, self.data
        pinocchio.computeJointJacobians(m, d, self.q)
        pinocchio.updateFramePlacements(m, d)
        world = pinocchio.ReferenceFrame.LOCAL_WORLD_ALIGNED
        return np.vstack([pinocchio.getFrameJacobian(m, d, self.frames[b], world) for b in bodies])

    def body_states(self, qpos: np.ndarray, qvel: np.ndarray) -> BodyStates:
        self.load(qpos, qvel)
        m, d = self.model, self.data
        pinocchio.forwardKinematics(m, d, self.q, self.v)
        pinocchio.updateFramePlacements(m, d)
        n = len(self.frames)
        pos, mats, lin, ang = np.empty((n, 3)), np.empty((n, 3, 3)), np.empty((n, 3)), np.empty((n, 3))
        world = pinocchio.ReferenceFrame.LOCAL_WORLD_ALIGNED
        for i, f in enumerate(self.frames):
            placement = d.oMf[f]
            pos[i] = placement.translation
            mats[i] = placement.rotation
            motion = pinocchio.getFrameVelocity(m, d, f, world)
            lin[i] = motion.linear
            ang[i] = motion.angular
        com = pinocchio.centerOfMass(m, d, self.q)
        return BodyStates(pos, rot.mat_to_quat(mats), mats, lin, ang, np.array(com))
