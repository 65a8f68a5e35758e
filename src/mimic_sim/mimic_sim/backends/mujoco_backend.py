"""MuJoCo backend: the fast default for training."""

from __future__ import annotations

import logging
from dataclasses import fields

import mujoco
import numpy as np

from mimic_sim import rotations as rot
from mimic_sim.backends.base import BodyStates, PhysicsBackend, SimConfig
from mimic_sim.character import Character, model_spec
from mimic_sim.pd import PASSIVE_DAMPING

FLOOR = "floor"

_log = logging.getLogger(__name__)


def _log_warning(message: str) -> None:
    _log.warning("MuJoCo: %s", message)


# MuJoCo's own handler also appends every warning to MUJOCO_LOG.TXT in the working directory,
# a source tree when run from one; this one only logs.
mujoco.set_mju_user_warning(_log_warning)


def _merge_capsules(spec: mujoco.MjSpec) -> None:
    """Turn URDF's capsule stand-in (a cylinder capped by two spheres) back into a capsule.

    The union of the three is exactly a capsule; MuJoCo's native capsule collides
    with one primitive instead of three, which makes contacts cheaper and smoother.
    """
    for body in spec.bodies:
        geoms = list(body.geoms)
        spheres = [g for g in geoms if g.type == mujoco.mjtGeom.mjGEOM_SPHERE]
        for cyl in [g for g in geoms if g.type == mujoco.mjtGeom.mjGEOM_CYLINDER]:
            r, half = cyl.size[0], cyl.size[1]
            axis = np.zeros(3)
            mujoco.mju_rotVecQuat(axis, np.array([0.0, 0.0, 1.0]), np.asarray(cyl.quat, dtype=float))
            caps = [g for g in spheres if abs(g.size[0] - r) < 1e-9 and
                    min(np.linalg.norm(np.asarray(g.pos) - (np.asarray(cyl.pos) + sgn * half * axis))
                        for sgn in (-1.0, 1.0)) < 1e-6]
            if len(caps) != 2:
                continue
            cyl.type = mujoco.mjtGeom.mjGEOM_CAPSULE
            for g in caps:
                spheres.remove(g)
                spec.delete(g)


def build_model(character: Character, config: SimConfig) -> mujoco.MjModel:
    """Compile the character's URDF/MJCF with a floating base, a floor and PD actuators."""
    spec = model_spec(character.model_path)
    spec.option.timestep = config.physics_dt
    spec.option.gravity = [0.0, 0.0, -config.gravity]
    # implicitfast integrates the actuators' velocity terms implicitly: the stable-PD damping.
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    _merge_capsules(spec)
    for actuator in list(spec.actuators):  # mimic drives every joint with its own PD actuators
        spec.delete(actuator)
    root = spec.body(character.root_body)
    if not any(j.type == mujoco.mjtJoint.mjJNT_FREE for j in root.joints):
        root.add_freejoint(name="root")
    for joint in spec.joints:
        # URDF effort limits arrive as joint force limits; the actuators carry the limit.
        joint.actfrclimited = mujoco.mjtLimited.mjLIMITED_FALSE
    for geom in spec.geoms:
        geom.friction = [character.ground_friction, 0.005, 0.0001]
        if geom.contype == 0 and geom.conaffinity == 0:
            continue  # visual only (URDF <visual> meshes): stays out of every contact
        if not config.self_collision:
            # Characters touch the floor only (contype 1 meets floor conaffinity 1).
            geom.contype, geom.conaffinity = 1, 0
    floor = spec.worldbody.add_geom(name=FLOOR, type=mujoco.mjtGeom.mjGEOM_PLANE, size=[50, 50, 0.1],
                                    friction=[character.ground_friction, 0.005, 0.0001])
    floor.contype, floor.conaffinity = 0 if not config.self_collision else 1, 1
    floor.rgba = [0.55, 0.6, 0.65, 1.0]
    spec.worldbody.add_light(pos=[0, 0, 4], dir=[0, 0, -1], castshadow=False)
    # The PD law (mimic_sim.pd): kp (q* - q) - (1 - f) kd qdot clipped to the torque limit by
    # the actuator, the passive share f kd and the stable-PD look-ahead kp dt as joint damping;
    # implicitfast integrates the actuator's damping implicitly while it is not clamped, the
    # joint damping always.
    for j, name in enumerate(character.joint_names):
        spec.joint(name).armature = character.armature[j]
        spec.joint(name).damping = [PASSIVE_DAMPING * character.kd[j] + character.kp[j] * config.physics_dt, 0.0, 0.0]
        act = spec.add_actuator(name=name, target=name)
        act.trntype = mujoco.mjtTrn.mjTRN_JOINT
        act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
        act.gainprm[0] = character.kp[j]
        act.biasprm[:3] = [0.0, -character.kp[j], -(1.0 - PASSIVE_DAMPING) * character.kd[j]]
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-character.torque_limit[j], character.torque_limit[j]]
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
    spec.visual.global_.offwidth = 1280
    spec.visual.global_.offheight = 720
    return spec.compile()


class MujocoBackend(PhysicsBackend):
    name = "mujoco"
    # The implicit PD keeps 120 Hz stable (a PD-held stance holds, tests/test_sim.py), and
    # every doubling of the rate costs time per control step (docs/benchmarks.md).
    default_physics_hz = 120.0

    def __init__(self, character: Character, config: SimConfig | None = None):
        super().__init__(character, config)
        config = self.config
        self.model = build_model(character, config)
        self.data = mujoco.MjData(self.model)
        self._ref = mujoco.MjData(self.model)
        m = self.model
        self._body_ids = np.array([m.body(b).id for b in character.tracked_bodies])
        self._root_id = m.body(character.root_body).id
        self._subtree_root = m.body_rootid[self._body_ids]
        self._qadr = np.array([m.jnt_qposadr[m.joint(n).id] for n in character.joint_names])
        self._vadr = np.array([m.jnt_dofadr[m.joint(n).id] for n in character.joint_names])
        root_joint = next(j for j in range(m.njnt) if m.jnt_bodyid[j] == self._root_id and
                      m.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE)
        self._root_q = m.jnt_qposadr[root_joint]
        self._root_v = m.jnt_dofadr[root_joint]
        self._act_ids = np.array([m.actuator(n).id for n in character.joint_names])
        self._kd_over_kp = character.kd / np.maximum(character.kp, 1e-12)
        self._floor = m.geom(FLOOR).id
        # body id -> tracked-body index (connector links report for the body they belong to)
        tracked = {int(b): i for i, b in enumerate(self._body_ids)}
        self._tracked_of_body = np.full(m.nbody, -1)
        for b in range(m.nbody):
            p = b
            while p > 0 and p not in tracked:
                p = int(m.body_parentid[p])
            self._tracked_of_body[b] = tracked.get(p, -1)
        self._tracked_of_geom = self._tracked_of_body[m.geom_bodyid]

    def set_gains(self, kp: np.ndarray, kd: np.ndarray) -> None:
        super().set_gains(kp, kd)
        # the PD law's actuator and joint-damping terms (build_model), for the new gains
        g, m, ids = self.gains, self.model, self._act_ids
        m.actuator_gainprm[ids, 0] = g.kp
        m.actuator_biasprm[ids, 1] = -g.kp
        m.actuator_biasprm[ids, 2] = -(1.0 - PASSIVE_DAMPING) * g.kd
        m.dof_damping[self._vadr] = PASSIVE_DAMPING * g.kd + g.kp * self.config.physics_dt
        # target velocities ride on ctrl scaled by kd / kp: where kp is 0 they are not applied
        self._kd_over_kp = np.where(g.kp > 0, g.kd / np.maximum(g.kp, 1e-12), 0.0)

    # ----------------------------------------------------------- coordinates
    def _write(self, data: mujoco.MjData, qpos: np.ndarray, qvel: np.ndarray) -> None:
        q, v = self._mujoco_coordinates(qpos[None], qvel[None])
        data.qpos[:] = q[0]
        data.qvel[:] = v[0]

    def _mujoco_coordinates(self, qpos: np.ndarray, qvel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """States in mimic's layout ((T, ...) arrays) as MuJoCo's qpos and qvel rows."""
        r, v = self._root_q, self._root_v
        q = np.zeros((len(qpos), self.model.nq))
        q[:, r : r + 7] = qpos[:, :7]
        q[:, self._qadr] = qpos[:, 7:]
        dq = np.zeros((len(qvel), self.model.nv))
        dq[:, v : v + 3] = qvel[:, :3]
        # MuJoCo's free joint takes the angular velocity in the body frame.
        dq[:, v + 3 : v + 6] = rot.quat_inv_rotate(qpos[:, 3:7], qvel[:, 3:6])
        dq[:, self._vadr] = qvel[:, 6:]
        return q, dq

    def reset(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        mujoco.mj_resetData(self.model, self.data)
        self._write(self.data, qpos, qvel)
        self.data.ctrl[self._act_ids] = qpos[7:]
        mujoco.mj_forward(self.model, self.data)

    def controls(self, targets: np.ndarray, target_velocities: np.ndarray | None = None) -> np.ndarray:
        """MuJoCo's ``ctrl`` (one per actuator) for PD targets per joint (and target velocities):
        what a step holds over its substeps; rows of them for rows of targets."""
        return self._controls(targets, target_velocities, self._kd_over_kp)

    def _controls(self, targets: np.ndarray, target_velocities: np.ndarray | None,
                  kd_over_kp: np.ndarray) -> np.ndarray:
        if target_velocities is not None:  # the actuator's kp * ctrl then carries kp q* + kd qdot*
            targets = targets + kd_over_kp * target_velocities
        ctrl = np.zeros((*targets.shape[:-1], self.model.nu))
        ctrl[..., self._act_ids] = targets
        return ctrl

    def _step(self, targets: np.ndarray, target_velocities: np.ndarray | None) -> None:
        self._step_many([self], targets[None], None if target_velocities is None else target_velocities[None])

    @classmethod
    def _step_many(cls, backends: list[MujocoBackend], targets: np.ndarray,
                   target_velocities: np.ndarray | None) -> None:
        # the controls of all characters as one array, each with its own gains (set_gains)
        first = backends[0]
        kd_over_kp = np.array([backend._kd_over_kp for backend in backends])
        for backend, ctrl in zip(backends, first._controls(targets, target_velocities, kd_over_kp), strict=True):
            backend.data.ctrl[:] = ctrl
            mujoco.mj_step(backend.model, backend.data, nstep=backend.config.substeps)

    def _set_root_force(self, force: np.ndarray) -> None:
        # xfrc_applied acts at the body's centre of mass and stays until changed; reset's
        # mj_resetData zeroes it.
        self.data.xfrc_applied[self._root_id] = [*force, 0.0, 0.0, 0.0]

    def get_state(self) -> tuple[np.ndarray, np.ndarray]:
        d, r, v = self.data, self._root_q, self._root_v
        qpos = np.concatenate([d.qpos[r : r + 7], d.qpos[self._qadr]])
        ang = rot.quat_rotate(qpos[3:7], d.qvel[v + 3 : v + 6])
        qvel = np.concatenate([d.qvel[v : v + 3], ang, d.qvel[self._vadr]])
        return qpos, qvel

    # ---------------------------------------------------------------- bodies
    def _bodies(self, data: mujoco.MjData) -> BodyStates:
        # Positions, velocities and contacts at the current qpos/qvel (mj_step leaves them one
        # substep old): a fall is then judged on the state the observation and reward see.
        mujoco.mj_kinematics(self.model, data)
        mujoco.mj_collision(self.model, data)
        batch = self._batch([self._motion(data)])
        return BodyStates(*(getattr(batch, f.name)[0] for f in fields(BodyStates)))

    def body_states(self) -> BodyStates:
        return self._bodies(self.data)

    @classmethod
    def body_states_of(cls, backends: list[MujocoBackend]) -> BodyStates:
        """As ``_bodies`` over several characters, with the array work done once for all."""
        raw = []
        for backend in backends:
            d = backend.data
            mujoco.mj_kinematics(backend.model, d)
            mujoco.mj_collision(backend.model, d)
            raw.append(backend._motion(d))
        return backends[0]._batch(raw)

    def _motion(self, data: mujoco.MjData) -> tuple[np.ndarray, ...]:
        """Centre-of-mass quantities after ``mj_kinematics``, and the arrays ``_batch`` reads (views)."""
        mujoco.mj_comPos(self.model, data)
        mujoco.mj_comVel(self.model, data)
        mujoco.mj_subtreeVel(self.model, data)
        return data.xpos, data.xquat, data.xmat, data.cvel, data.subtree_com, data.subtree_linvel

    def _batch(self, raw: list[tuple[np.ndarray, ...]]) -> BodyStates:
        """BodyStates of several ``_motion`` readings (copied), with the array work done once."""
        ids = self._body_ids
        if len(raw) == 1:  # a batch of one: views, no copies
            xpos, xquat, xmat, cvel, subtree_com, subtree_linvel = (a[None] for a in raw[0])
        else:  # np.array of a list costs a third of np.stack's checks
            xpos, xquat, xmat, cvel, subtree_com, subtree_linvel = (np.array(a) for a in zip(*raw, strict=True))
        pos, ang = xpos[:, ids], cvel[:, ids, :3]
        # cvel is the spatial velocity about the subtree centre of mass; move it to the body origin.
        lin = cvel[:, ids, 3:] + _cross(ang, pos - subtree_com[:, self._subtree_root])
        return BodyStates(pos, xquat[:, ids], xmat[:, ids].reshape(len(raw), -1, 3, 3), lin, ang,
                          subtree_com[:, self._root_id].copy(), subtree_linvel[:, self._root_id].copy())

    def kinematics(self, qpos: np.ndarray, qvel: np.ndarray) -> BodyStates:
        self._write(self._ref, qpos, qvel)
        return self._bodies(self._ref)

    def pose(self, qpos: np.ndarray) -> mujoco.MjData:
        """A copy of the character (not the simulated one) placed at ``qpos``, at rest, its geometry
        positioned (``mj_kinematics``): for geometric queries such as contacts (``mj_collision``)."""
        self._write(self._ref, qpos, np.zeros(6 + self.character.num_joints))
        mujoco.mj_kinematics(self.model, self._ref)
        return self._ref

    def kinematics_many(self, qpos: np.ndarray, qvel: np.ndarray) -> BodyStates:
        raw = []
        d = self._ref
        for q, dq in zip(*self._mujoco_coordinates(qpos, qvel), strict=True):
            d.qpos[:] = q
            d.qvel[:] = dq
            mujoco.mj_kinematics(self.model, d)  # no contacts: a reference state is never simulated
            raw.append(tuple(a.copy() for a in self._motion(d)))
        return self._batch(raw)

    def close(self) -> None:
        """Nothing to release: the model and data are freed with the object."""

    def floor_penetration(self) -> float:
        # the contacts of the last mj_forward or step (reset runs mj_forward)
        return self._depth(self.data.contact)

    def penetration_at(self, qpos: np.ndarray) -> float:
        """:meth:`floor_penetration` of the character posed at ``qpos`` (a copy, :meth:`pose`; the
        simulated character is left as it is)."""
        data = self.pose(qpos)
        mujoco.mj_collision(self.model, data)
        return self._depth(data.contact)

    def _depth(self, contacts) -> float:
        """The deepest of the floor's contacts (negative distance is depth), 0 without any."""
        on_floor = (contacts.geom == self._floor).any(axis=1)
        return float(max(0.0, -contacts.dist[on_floor].min())) if on_floor.any() else 0.0

    def ground_contacts(self) -> np.ndarray:
        return self.ground_contacts_of([self])[0]

    @classmethod
    def ground_contacts_of(cls, backends: list[MujocoBackend]) -> np.ndarray:
        # every character's contacts in one array: the array work once, not per character
        first = backends[0]
        geoms = [backend.data.contact.geom for backend in backends]
        touching = np.zeros((len(backends), len(first._body_ids)), dtype=bool)
        counts = [len(g) for g in geoms]
        if not any(counts):
            return touching
        geoms = np.concatenate(geoms)
        rows = np.repeat(np.arange(len(backends)), counts)
        floor = geoms == first._floor
        on_floor = floor.any(axis=1)
        body = first._tracked_of_geom[np.where(floor[:, 0], geoms[:, 1], geoms[:, 0])]
        hit = on_floor & (body >= 0)
        touching[rows[hit], body[hit]] = True
        return touching


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``rot.cross`` (the same values: two products per component), a third of its cost on a batch."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def standing_height(character: Character, joint_angles: np.ndarray | None = None, clearance: float = 5e-4) -> float:
    """Root height at which the character in a pose (default: all joints 0, upright) rests its
    lowest ground-contact body ``clearance`` above the floor."""
    model = build_model(character, SimConfig().resolved(MujocoBackend.default_physics_hz))
    data = mujoco.MjData(model)
    root = model.body(character.root_body).id
    adr = model.jnt_qposadr[next(j for j in range(model.njnt) if model.jnt_bodyid[j] == root)]
    data.qpos[adr + 3] = 1.0
    if joint_angles is not None:
        for name, angle in zip(character.joint_names, joint_angles, strict=True):
            data.qpos[model.jnt_qposadr[model.joint(name).id]] = angle
    mujoco.mj_kinematics(model, data)
    floor = model.geom(FLOOR).id
    feet = {model.body(b).id for b in character.ground_contact_allowed}
    fromto = np.zeros(6)
    distances = [mujoco.mj_geomDistance(model, data, g, floor, 10.0, fromto)
                 for g in range(model.ngeom) if model.geom_bodyid[g] in feet and model.geom_contype[g]]
    if not distances:
        raise ValueError(f"character '{character.name}' has no geometry on its ground-contact bodies")
    return clearance - min(distances)
