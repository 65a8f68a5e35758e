"""Rigid-body kinematics and dynamics of a character with Pinocchio.

Pinocchio reads the character's URDF (floating base) and gives, from mimic's
generalized coordinates, the tracked bodies' poses and velocities, the centre of
mass, the mass matrix and the bias forces, each in a few microseconds.  The PyBullet
backend uses it for its PD law and its body states; it is also the kinematics
library for retargeting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pinocchio

from mimic_sim import rotations as rot
from mimic_sim.backends.base import BodyStates
from mimic_sim.character import Character
from mimic_sim.pd import PDGains, pd_terms
from mimic_sim.urdf_io import rpy_matrix

if TYPE_CHECKING:
    from urdf_parser_py import urdf


def rotor_inertias(character: Character, robot: urdf.Robot) -> dict[str, np.ndarray]:
    """Each joint's armature as a rotor turning with the joint's child link: per joint with armature,
    the inertia tensor (kg m^2, in the child link's frame, which is the joint's) to add to that link's.
    ``robot`` is the character's URDF as parsed (:func:`mimic_sim.urdf_io.read_urdf`).

    For an engine with no armature (PyBullet).  Armature ``J`` on a joint adds ``J`` to the mass
    matrix's diagonal entry of that joint alone; a rotor of inertia ``J a a^T`` about the joint's
    axis ``a`` adds the same entry and also turns with the link's ancestors (the rotor of a direct
    drive, which a geared motor's reflected inertia is not).  Where the link's own inertia is too
    small for the sum to be a rigid body's (a tensor's principal moments must satisfy A + B >= C;
    the humanoid's 10 g hinge links), the rotor is a disk: ``J / 2`` across the axis as well.
    """
    joints = {j.name: j for j in robot.joints}
    links = {link.name: link for link in robot.links}
    rotors = {}
    for name, armature in zip(character.joint_names, character.armature, strict=True):
        if armature <= 0:
            continue
        joint = joints[name]
        axis = np.asarray(joint.axis if joint.axis is not None else (1.0, 0.0, 0.0), dtype=float)
        axis = axis / np.linalg.norm(axis)
        rotor = armature * np.outer(axis, axis)
        moments = np.linalg.eigvalsh(link_inertia(links[joint.child]) + rotor)
        if moments[0] + moments[1] < moments[2]:
            rotor = rotor + armature / 2 * (np.eye(3) - np.outer(axis, axis))
        rotors[name] = rotor
    return rotors


def link_inertia(link: urdf.Link) -> np.ndarray:
    """A URDF link's inertia tensor about its centre of mass, in the link's frame (zeros without one)."""
    inertial = link.inertial
    if inertial is None or inertial.inertia is None:
        return np.zeros((3, 3))
    i = inertial.inertia
    tensor = np.array([[i.ixx, i.ixy, i.ixz], [i.ixy, i.iyy, i.iyz], [i.ixz, i.iyz, i.izz]], dtype=float)
    rpy = inertial.origin.rpy if inertial.origin is not None and inertial.origin.rpy is not None else (0, 0, 0)
    turn = rpy_matrix(rpy)
    return turn @ tensor @ turn.T


class PinocchioModel:
    """A character in Pinocchio, addressed with mimic's ``qpos``/``qvel`` layout."""

    def __init__(self, character: Character, rotors: dict[str, np.ndarray] | None = None):
        """``rotors``: inertia tensors (:func:`rotor_inertias`) added to joints' child links, as an
        engine without armature simulates the character."""
        self.model = pinocchio.buildModelFromUrdf(str(character.model_path), pinocchio.JointModelFreeFlyer())
        names = list(self.model.names)
        missing = [n for n in character.joint_names if n not in names]
        if missing:
            raise ValueError(f"{character.model_path}: Pinocchio finds no joints {missing}")
        for name, rotor in (rotors or {}).items():
            # a joint's body inertia is expressed in its frame, the child link's
            joint = self.model.getJointId(name)
            self.model.inertias[joint] = self.model.inertias[joint] + pinocchio.Inertia(0.0, np.zeros(3), rotor)
        self.data = self.model.createData()
        self.joint_q = np.array([self.model.joints[names.index(n)].idx_q for n in character.joint_names])
        self.joint_v = np.array([self.model.joints[names.index(n)].idx_v for n in character.joint_names])
        self.frames = [self.model.getFrameId(b, pinocchio.BODY) for b in character.tracked_bodies]
        # Rotor inertia sits on the mass matrix's joint diagonal, as in MuJoCo.
        self.armature = character.armature
        self.model.armature[self.joint_v] = self.armature
        self.q = np.zeros(self.model.nq)
        self.v = np.zeros(self.model.nv)
        self._diag = np.arange(self.model.nv)
        # A copy whose armature carries the PD law's implicit damping (pd_qdot_next).
        self._pd_model = pinocchio.Model(self.model)
        self._pd_data = self._pd_model.createData()
        self._tau = np.zeros(self.model.nv)

    def configuration(self, qpos: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Pinocchio's configuration of a state in mimic's ``qpos`` layout (root quaternion x, y, z, w)."""
        q = np.zeros(self.model.nq) if out is None else out
        q[:3] = qpos[:3]
        q[3:6] = qpos[4:7]
        q[6] = qpos[3]
        q[self.joint_q] = qpos[7:]
        return q

    def qpos_of(self, q: np.ndarray) -> np.ndarray:
        """mimic's ``qpos`` of a Pinocchio configuration (the inverse of :meth:`configuration`)."""
        return np.concatenate([q[:3], [q[6]], q[3:6], q[self.joint_q]])

    def load(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Set ``self.q``/``self.v`` (Pinocchio's convention: base velocity in the root frame)."""
        v = self.v
        self.configuration(qpos, out=self.q)
        # R^T u for the root rotation, in floats: this runs every physics step.
        w, x, y, z = (float(c) for c in qpos[3:7])
        r = ((1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)),
             (2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)),
             (2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)))
        for offset in (0, 3):
            ux, uy, uz = (float(c) for c in qvel[offset : offset + 3])
            v[offset : offset + 3] = [row[0] * ux + row[1] * uy + row[2] * uz for row in r]
        v[self.joint_v] = qvel[6:]

    def dynamics(self, qpos: np.ndarray, qvel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mass matrix, bias forces) at a state, in Pinocchio's velocity coordinates."""
        self.load(qpos, qvel)
        m, d = self.model, self.data
        upper = np.triu(pinocchio.crba(m, d, self.q))  # crba fills the upper triangle only
        mass = upper + upper.T
        mass[self._diag, self._diag] = upper[self._diag, self._diag]
        return mass, pinocchio.nonLinearEffects(m, d, self.q, self.v)

    def pd_qdot_next(self, gains: PDGains, qpos: np.ndarray, qvel: np.ndarray, targets: np.ndarray, dt: float,
                     planted: np.ndarray | None = None, target_velocities: np.ndarray | None = None) -> np.ndarray:
        """End-of-step joint velocities under the PD law (:func:`mimic_sim.pd.predict_qdot_next`), fast.

        The implicit damping ``dt * D`` is the same matrix term as rotor inertia, so it is
        added to the model's armature (the character's rotor inertia) and the implicit
        solve is one articulated-body pass instead of building and factoring the
        mass matrix; with ``planted``
        bodies held in place it is Pinocchio's constrained forward dynamics.
        """
        drive, damping = pd_terms(gains, qpos[7:], qvel[6:], targets, dt, target_velocities)
        self._pd_model.armature[self.joint_v] = self.armature + dt * damping
        self.load(qpos, qvel)
        tau = self._tau
        tau[self.joint_v] = drive - damping * qvel[6:]
        m, d = self._pd_model, self._pd_data
        if planted is not None and len(planted):
            jacobian = self.body_jacobians(planted)
            qddot = pinocchio.forwardDynamics(m, d, self.q, self.v, tau, jacobian, jacobian @ self.v / dt, 0.0)
        else:
            qddot = pinocchio.aba(m, d, self.q, self.v, tau)
        return qvel[6:] + dt * qddot[self.joint_v]

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
        com = pinocchio.centerOfMass(m, d, self.q, self.v)
        return BodyStates(pos, rot.mat_to_quat_fast(mats), mats, lin, ang, np.array(com), d.vcom[0].copy())


class LinkTree:
    """Parent-to-child transforms of every URDF link, for ``/tf`` (as robot_state_publisher gives).

    ``transforms(qpos)`` lists ``(parent, child, translation, quaternion x, y, z, w)``
    with the floating base as ``world -> <root link>``.
    """

    def __init__(self, model: PinocchioModel, world_frame: str = "world"):
        self.pin = model
        self.world_frame = world_frame
        m = model.model
        body_frames = [i for i, f in enumerate(m.frames) if f.type == pinocchio.FrameType.BODY]
        self.links = [m.frames[i].name for i in body_frames]
        self._edges: list[tuple[int, int]] = []  # (parent body frame, child body frame)
        for i in body_frames:
            parent = m.frames[i].parentFrame  # the joint frame that carries this link
            while parent > 0 and m.frames[parent].type != pinocchio.FrameType.BODY:
                parent = m.frames[parent].parentFrame
            if parent > 0:
                self._edges.append((parent, i))
        self.root = m.frames[body_frames[0]].name

    def transforms(self, qpos: np.ndarray) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
        m, d = self.pin.model, self.pin.data
        self.pin.load(qpos, np.zeros(6 + len(self.pin.joint_v)))
        pinocchio.framesForwardKinematics(m, d, self.pin.q)
        out = [(self.world_frame, self.root, np.array(qpos[:3], dtype=float),
                np.array([qpos[4], qpos[5], qpos[6], qpos[3]], dtype=float))]
        for parent, child in self._edges:
            rel = d.oMf[parent].actInv(d.oMf[child])
            quat = np.array(pinocchio.Quaternion(rel.rotation).coeffs())  # x, y, z, w
            out.append((m.frames[parent].name, m.frames[child].name, np.array(rel.translation), quat))
        return out
