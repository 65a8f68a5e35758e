"""PyBullet backend: the simulator DeepMimic's public port uses, kept as a cross-check.

The stable PD law (:mod:`mimic_sim.pd`) is evaluated every physics step with
Pinocchio's dynamics of the same URDF (:meth:`PinocchioModel.pd_qdot_next`); body
states are Pinocchio's forward kinematics of PyBullet's joint state, not PyBullet's
own ``STABLE_PD_CONTROL`` (docs/simulation.md says why).

PyBullet has no rotor inertia (armature): this backend gives each joint's child link a
rotor of that inertia about the joint's axis (:func:`mimic_sim.kinematics.rotor_inertias`;
docs/simulation.md: how that differs from armature, and why its reaction torque is not
applied instead).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pybullet
from pybullet_utils import bullet_client
from urdf_parser_py import urdf

from mimic_sim import rotations as rot
from mimic_sim.backends.base import BodyStates, PhysicsBackend, SimConfig
from mimic_sim.character import Character, CharacterError
from mimic_sim.kinematics import PinocchioModel, rotor_inertias
from mimic_sim.paths import atomic_write_text, cache_dir
from mimic_sim.pd import pd_torque
from mimic_sim.urdf_io import read_urdf, rpy_matrix

# This module's source is part of the cached copy's key: a changed transformation (another
# mimic version) writes a copy of its own rather than loading one the old code wrote.
_CODE_KEY = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def _pybullet_urdf(path: Path, rotors: dict[str, np.ndarray]) -> Path:
    """The URDF as PyBullet loads it: capsules merged and rotors added (a cached copy), or the file
    itself where neither changes anything.

    A standard URDF has no capsule, so mimic's models spell one as a cylinder capped
    by two spheres.  The union is exactly a capsule; PyBullet's native capsule makes
    one contact where the three shapes make up to six, and contact solving is most of
    a PyBullet step here (docs/simulation.md).  PyBullet has no armature: each joint's
    rotor inertia (``rotors``, :func:`mimic_sim.kinematics.rotor_inertias`) is added to
    its child link's inertia instead.

    Edited with ElementTree, not urdfdom-py: ``<capsule>`` is PyBullet's, not URDF, and a
    urdfdom-py round trip would drop the elements it does not model.
    """
    text = path.read_text()
    key = (_CODE_KEY + text + repr(sorted((name, rotor.round(12).tolist()) for name, rotor in rotors.items())))
    out = cache_dir() / "models" / f"{path.stem}-pybullet-{hashlib.sha256(key.encode()).hexdigest()[:16]}.urdf"
    if out.exists():
        return out
    root = ET.fromstring(text)
    changed = _merge_capsules(root)
    changed |= _add_rotors(root, rotors, path)
    if not changed:  # load the file itself, meshes beside it
        return path
    for mesh in root.iter("mesh"):  # the copy lives elsewhere: mesh files by absolute path
        filename = mesh.get("filename", "")
        if filename and "://" not in filename and not Path(filename).is_absolute():
            mesh.set("filename", str((path.parent / filename).resolve()))
    atomic_write_text(out, ET.tostring(root, encoding="unicode"))
    return out


def _merge_capsules(root: ET.Element) -> bool:
    """Each cylinder-plus-two-end-spheres as one ``<capsule>``; whether there was any."""
    merged = False
    for link in root.iter("link"):
        for tag in ("collision", "visual"):
            elements = link.findall(tag)
            spheres = [e for e in elements if e.find("geometry/sphere") is not None]
            for element in elements:
                cyl = element.find("geometry/cylinder")
                if cyl is None:
                    continue
                r, length = float(cyl.get("radius")), float(cyl.get("length"))
                origin = element.find("origin")
                xyz = np.array([float(v) for v in origin.get("xyz", "0 0 0").split()])
                rpy = [float(v) for v in origin.get("rpy", "0 0 0").split()]
                axis = rot.quat_rotate(rot.mat_to_quat(rpy_matrix(rpy)), np.array([0.0, 0.0, 1.0]))
                ends = [xyz + axis * length / 2, xyz - axis * length / 2]
                caps = [e for e in spheres
                        if abs(float(e.find("geometry/sphere").get("radius")) - r) < 1e-9
                        and min(np.linalg.norm(_xyz_of(e) - end) for end in ends) < 1e-6]
                if len(caps) != 2:
                    continue
                geometry = element.find("geometry")
                geometry.remove(cyl)
                ET.SubElement(geometry, "capsule", radius=f"{r:.9g}", length=f"{length:.9g}")
                for e in caps:
                    spheres.remove(e)
                    link.remove(e)
                merged = True
    return merged


_INERTIA = {"ixx": (0, 0), "ixy": (0, 1), "ixz": (0, 2), "iyy": (1, 1), "iyz": (1, 2), "izz": (2, 2)}


def _add_rotors(root: ET.Element, rotors: dict[str, np.ndarray], path: Path) -> bool:
    """Each joint's rotor tensor (link frame) added to its child link's ``<inertia>`` (written in
    the ``<inertial>`` frame); whether there was any."""
    links = {link.get("name"): link for link in root.iter("link")}
    for joint in root.iter("joint"):
        rotor = rotors.get(joint.get("name"))
        if rotor is None:
            continue
        child = joint.find("child").get("link")
        inertia = links[child].find("inertial/inertia")
        if inertia is None:
            raise CharacterError(f"{path}: link '{child}' has no <inertial>: PyBullet cannot carry the armature "
                                 f"of joint '{joint.get('name')}'")
        origin = links[child].find("inertial/origin")
        turn = rpy_matrix([float(v) for v in origin.get("rpy", "0 0 0").split()] if origin is not None
                           else [0.0, 0.0, 0.0])
        added = turn.T @ rotor @ turn
        for key, (i, j) in _INERTIA.items():
            inertia.set(key, f"{float(inertia.get(key, '0')) + added[i, j]:.12g}")
    return bool(rotors)


@contextlib.contextmanager
def _quiet_stdout():
    """Silence the C-level prints PyBullet makes when connecting (``argv[0]=``, build time)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _xyz_of(element: ET.Element) -> np.ndarray:
    origin = element.find("origin")
    return np.array([float(v) for v in (origin.get("xyz", "0 0 0") if origin is not None else "0 0 0").split()])


def _xyzw(q: np.ndarray) -> list[float]:
    return [float(q[1]), float(q[2]), float(q[3]), float(q[0])]


def _wxyz(q: tuple[float, ...] | np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=float)
    return q[..., [3, 0, 1, 2]]


class _Body:
    """One loaded copy of the character, with name-to-index maps."""

    def __init__(self, client: bullet_client.BulletClient, character: Character, robot: urdf.Robot,
                 rotors: dict[str, np.ndarray], flags: int):
        self.client = client
        self.client_id = client._client
        with _quiet_stdout():  # PyBullet prints a warning per link without <inertial>, handled below
            self.id = client.loadURDF(str(_pybullet_urdf(character.model_path, rotors)), [0, 0, 1],
                                      useFixedBase=False, flags=flags)
        joint_index: dict[str, int] = {}
        link_index: dict[str, int] = {}
        for j in range(client.getNumJoints(self.id)):
            info = client.getJointInfo(self.id, j)
            joint_index[info[1].decode()] = j
            link_index[info[12].decode()] = j
        base_name = client.getBodyInfo(self.id)[0].decode()
        link_index[base_name] = -1
        # PyBullet gives a link without <inertial> 1 kg; URDF (Pinocchio, MuJoCo) means massless.
        # Vendor files have such links (sensor frames on H1 and G1): make them massless here too.
        for link in robot.links:
            if link.inertial is None and link.name in link_index:
                client.changeDynamics(self.id, link_index[link.name], mass=0.0)
        self.joints = [joint_index[n] for n in character.joint_names]
        self.links = np.array([link_index[b] for b in character.tracked_bodies])
        self.link_to_tracked = {int(x): i for i, x in enumerate(self.links)}
        # Links that are not tracked (hinge connectors) report for the tracked link they move with.
        for _name, j in link_index.items():
            if j not in self.link_to_tracked:
                parent = j
                while parent not in self.link_to_tracked:
                    parent = client.getJointInfo(self.id, parent)[16]
                self.link_to_tracked[j] = self.link_to_tracked[parent]
        # PyBullet places the base at its centre of mass: keep the offset to the link frame.
        dyn = client.getDynamicsInfo(self.id, -1)
        self.base_com_offset = np.array(dyn[3])
        # ... and turned to the principal axes of its inertia (a URDF inertia with products of
        # inertia, e.g. Atlas's pelvis, ~90 degrees): keep that turn too (xyzw, None when none).
        turned = abs(dyn[4][3]) < 1.0 - 1e-12
        self._base_inertial_turn = tuple(dyn[4]) if turned else None
        self._base_inertial_unturn = pybullet.invertTransform([0, 0, 0], dyn[4])[1] if turned else None
        self.all_links = list(range(client.getNumJoints(self.id)))
        # Zero the default velocity motors so only the PD law acts.
        client.setJointMotorControlArray(self.id, self.joints, pybullet.VELOCITY_CONTROL,
                                         forces=[0.0] * len(self.joints))

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        c = self.client
        com = qpos[:3] + rot.quat_rotate(qpos[3:7], self.base_com_offset)
        orn = _xyzw(qpos[3:7])
        if self._base_inertial_turn is not None:
            orn = pybullet.multiplyTransforms([0, 0, 0], orn, [0, 0, 0], self._base_inertial_turn)[1]
        c.resetBasePositionAndOrientation(self.id, com.tolist(), orn)
        lin = qvel[:3] + rot.cross(qvel[3:6], com - qpos[:3])
        c.resetBaseVelocity(self.id, lin.tolist(), qvel[3:6].tolist())
        c.resetJointStatesMultiDof(self.id, self.joints, [[float(x)] for x in qpos[7:]],
                                   targetVelocities=[[float(x)] for x in qvel[6:]])

    def get_state(self) -> tuple[np.ndarray, np.ndarray]:
        # Called every physics step: plain float arithmetic beats numpy on 3-vectors.
        cid, body = self.client_id, self.id
        com, orn = pybullet.getBasePositionAndOrientation(body, physicsClientId=cid)
        if self._base_inertial_unturn is not None:  # the root link's orientation, not its inertia's
            orn = pybullet.multiplyTransforms((0, 0, 0), orn, (0, 0, 0), self._base_inertial_unturn)[1]
        lin_com, ang = pybullet.getBaseVelocity(body, physicsClientId=cid)
        m = pybullet.getMatrixFromQuaternion(orn)
        ox, oy, oz = self.base_com_offset
        # origin = com - R offset; v_origin = v_com + w x (origin - com)
        dx, dy, dz = -(m[0] * ox + m[1] * oy + m[2] * oz), -(m[3] * ox + m[4] * oy + m[5] * oz), \
            -(m[6] * ox + m[7] * oy + m[8] * oz)
        wx, wy, wz = ang
        states = pybullet.getJointStates(body, self.joints, physicsClientId=cid)
        qpos = np.empty(7 + len(states))
        qvel = np.empty(6 + len(states))
        qpos[:7] = (com[0] + dx, com[1] + dy, com[2] + dz, orn[3], orn[0], orn[1], orn[2])
        qvel[:6] = (lin_com[0] + wy * dz - wz * dy, lin_com[1] + wz * dx - wx * dz, lin_com[2] + wx * dy - wy * dx,
                    wx, wy, wz)
        qpos[7:] = [s[0] for s in states]
        qvel[6:] = [s[1] for s in states]
        return qpos, qvel


class PyBulletBackend(PhysicsBackend):
    name = "pybullet"
    # The PD torque is computed outside the engine and applied explicitly, which needs
    # the DeepMimic port's 240 Hz for a PD-held stance to hold (docs/simulation.md).
    default_physics_hz = 240.0

    def __init__(self, character: Character, config: SimConfig | None = None):
        if character.model_path.suffix.lower() != ".urdf":
            raise CharacterError(f"{character.config_path}: the PyBullet backend needs a URDF model, "
                                 f"{character.model_path.name} is not one; use the MuJoCo backend")
        super().__init__(character, config)
        config = self.config
        with _quiet_stdout():
            self.client = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
        c = self.client
        c.setGravity(0, 0, -config.gravity)
        c.setTimeStep(config.physics_dt)
        c.setPhysicsEngineParameter(numSolverIterations=10, numSubSteps=1)  # as DeepMimic's port
        plane_shape = c.createCollisionShape(pybullet.GEOM_PLANE)
        self.plane = c.createMultiBody(0, plane_shape)
        c.changeDynamics(self.plane, -1, lateralFriction=character.ground_friction)
        # The URDF's inertias, as MuJoCo and Pinocchio (the PD law's model) use; PyBullet's default
        # recomputes them from the collision shapes (up to 17 % off on the humanoid's links, and
        # meaningless for robots whose collision shapes are a few thin cylinders).
        flags = pybullet.URDF_USE_INERTIA_FROM_FILE
        if config.self_collision:
            flags |= pybullet.URDF_USE_SELF_COLLISION | pybullet.URDF_USE_SELF_COLLISION_EXCLUDE_ALL_PARENTS
        # PyBullet has no armature: it turns with rotors on the links (rotor_inertias), in the engine
        # and in the PD law's dynamics alike.
        robot = read_urdf(character.model_path)
        rotors = rotor_inertias(character, robot)
        self.body = _Body(c, character, robot, rotors, flags)
        for j in [-1, *self.body.all_links]:
            c.changeDynamics(self.body.id, j, lateralFriction=character.ground_friction, linearDamping=0,
                             angularDamping=0, jointDamping=0)
        # Kinematics and the PD law's dynamics come from Pinocchio on the same URDF and rotors.
        self.pin = PinocchioModel(dataclasses.replace(character, armature=np.zeros_like(character.armature)), rotors)
        self._feet = np.array([b in character.ground_contact_allowed for b in character.tracked_bodies])
        self._root_force: list[float] | None = None

    def reset(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        self.body.set_state(qpos, qvel)
        self._root_force = None

    def _set_root_force(self, force: np.ndarray) -> None:
        self._root_force = force.tolist() if force.any() else None

    def _step(self, targets: np.ndarray, target_velocities: np.ndarray | None) -> None:
        body, pin = self.body, self.pin
        dt = self.config.physics_dt
        for _ in range(self.config.substeps):
            qpos, qvel = body.get_state()
            qdot_next = pin.pd_qdot_next(self.gains, qpos, qvel, targets, dt, self._planted_feet(), target_velocities)
            tau = pd_torque(self.gains, qpos[7:], qvel[6:], qdot_next, targets, dt, target_velocities)
            pybullet.setJointMotorControlArray(body.id, body.joints, pybullet.TORQUE_CONTROL, forces=tau.tolist(),
                                               physicsClientId=body.client_id)
            if self._root_force is not None:
                # PyBullet clears external forces after every step: applied again each substep, at
                # the base's centre of mass (the position PyBullet reports for the base).
                com = pybullet.getBasePositionAndOrientation(body.id, physicsClientId=body.client_id)[0]
                pybullet.applyExternalForce(body.id, -1, self._root_force, com, pybullet.WORLD_FRAME,
                                            physicsClientId=body.client_id)
            pybullet.stepSimulation(physicsClientId=body.client_id)

    def get_state(self) -> tuple[np.ndarray, np.ndarray]:
        return self.body.get_state()

    def body_states(self) -> BodyStates:
        return self.pin.body_states(*self.body.get_state())

    def kinematics(self, qpos: np.ndarray, qvel: np.ndarray) -> BodyStates:
        return self.pin.body_states(qpos, qvel)

    def _contact_counts(self) -> np.ndarray:
        """Ground contact points per tracked body."""
        counts = np.zeros(len(self.character.tracked_bodies), dtype=int)
        for contact in pybullet.getContactPoints(bodyA=self.body.id, bodyB=self.plane,
                                                 physicsClientId=self.body.client_id):
            counts[self.body.link_to_tracked[contact[3]]] += 1
        return counts

    def _planted_feet(self) -> np.ndarray:
        """Tracked bodies allowed on the ground that rest on it flat (3+ contact points)."""
        return np.flatnonzero((self._contact_counts() >= 3) & self._feet)

    def floor_penetration(self) -> float:
        # a query of its own: the contact points of the last step do not see a state just set
        points = pybullet.getClosestPoints(bodyA=self.body.id, bodyB=self.plane, distance=0.0,
                                           physicsClientId=self.body.client_id)
        return float(max(0.0, -min(point[8] for point in points))) if points else 0.0

    def ground_contacts(self) -> np.ndarray:
        return self._contact_counts() > 0

    def close(self) -> None:
        if self.client.isConnected():
            self.client.disconnect()
