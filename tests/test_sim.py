"""Characters, the humanoid model, the PD law and both physics backends."""

from __future__ import annotations

import dataclasses
import math
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pinocchio
import pybullet
import pytest
import yaml
from pybullet_utils import bullet_client

from mimic_sim import rotations as rot
from mimic_sim.backends import SimConfig, make_backend
from mimic_sim.backends.mujoco_backend import standing_height
from mimic_sim.character import CharacterError, load_character
from mimic_sim.deepmimic_format import DEEPMIMIC_JOINTS, load_deepmimic, resolve_clip, shipped_clips
from mimic_sim.humanoid_urdf import source_urdf
from mimic_sim.kinematics import PinocchioModel
from mimic_sim.motion import MotionError
from mimic_sim.pd import PASSIVE_DAMPING, PDGains, pd_torque, predict_qdot_next
from mimic_sim.reference import ReferenceMotion

BACKENDS = ["mujoco", "pybullet"]


@pytest.fixture(scope="module")
def humanoid():
    return load_character("humanoid")


@pytest.fixture(scope="module")
def backends(humanoid):
    made = {name: make_backend(name, humanoid) for name in BACKENDS}
    yield made
    for backend in made.values():
        backend.close()


# ----------------------------------------------------------------- the model
def test_generated_humanoid_is_a_standard_urdf(humanoid):
    text = humanoid.model_path.read_text()
    assert "\x00" not in text
    root = ET.fromstring(text)
    types = {j.get("type") for j in root.findall("joint")}
    assert types == {"revolute", "fixed"}, "spherical joints must become revolute chains"
    assert not root.findall(".//capsule"), "capsules are not standard URDF"
    for joint in root.findall("joint"):
        if joint.get("type") == "revolute":
            limit = joint.find("limit")
            assert limit is not None and float(limit.get("lower")) < float(limit.get("upper"))
            assert float(limit.get("effort")) > 0
    # urdfdom (through Pinocchio) accepts it; it rejects pybullet_data's original.
    model = pinocchio.buildModelFromUrdf(str(humanoid.model_path), pinocchio.JointModelFreeFlyer())
    assert model.nv == 6 + 28
    with pytest.raises(Exception):  # noqa: B017 - urdfdom's error type is not exported
        pinocchio.buildModelFromUrdf(str(source_urdf()))


def test_humanoid_joints_gains_and_limits_come_from_config(humanoid):
    expected = []
    for joint, size in DEEPMIMIC_JOINTS:
        expected += [f"{joint}_{a}" for a in humanoid.spherical_joints[joint]] if size == 4 else [joint]
    assert sorted(humanoid.joint_names) == sorted(expected)
    gains = {n: (kp, kd, t) for n, kp, kd, t in zip(humanoid.joint_names, humanoid.kp, humanoid.kd,
                                                      humanoid.torque_limit, strict=True)}
    # DeepMimic's gains (kd = kp / 10) and torque limits
    for prefix, kp, limit in [("chest", 1000, 200), ("neck", 100, 50), ("right_hip", 500, 200),
                              ("left_knee", 500, 150), ("right_ankle", 400, 90), ("left_shoulder", 400, 100),
                              ("right_elbow", 300, 60)]:
        for name, (p, d, t) in gains.items():
            if name.startswith(prefix):
                assert (p, d, t) == (kp, kp / 10, limit), name
    assert humanoid.total_mass == pytest.approx(45.0, abs=0.5)
    # DeepMimic's masses, from the source file; connectors between hinges weigh 10 g
    assert humanoid.body_masses["chest"] == 14.0 and humanoid.body_masses["right_knee"] == 3.0
    assert humanoid.body_masses["chest_y_link"] == pytest.approx(0.01)
    assert {j.kind for j in humanoid.joints} == {"revolute"}
    axes = {j.name: j.axis for j in humanoid.joints}
    assert np.allclose(axes["right_knee"], [0, -1, 0]) and np.allclose(axes["chest_x"], [1, 0, 0])
    assert humanoid.end_effectors == ["right_ankle", "left_ankle", "right_wrist", "left_wrist"]
    assert np.all(humanoid.armature == 0.05)  # config's "*" pattern, rotor inertia on every joint


def test_character_config_errors_name_the_field(tmp_path, humanoid):
    cfg = yaml.safe_load(humanoid.config_path.read_text())
    broken = dict(cfg, pd={k: v for k, v in cfg["pd"].items() if k != "*_knee"})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(broken))
    with pytest.raises(CharacterError, match=r"bad.yaml.*'pd'.*right_knee"):
        load_character(path)
    path.write_text(yaml.safe_dump(dict(cfg, end_effectors=["right_ankle", "left_hand"])))
    with pytest.raises(CharacterError, match=r"end_effectors.*left_hand"):
        load_character(path)
    path.write_text(yaml.safe_dump(dict(cfg, model={"file": "missing.urdf"})))
    with pytest.raises(CharacterError, match=r"model.file.*missing.urdf"):
        load_character(path)
    path.write_text(yaml.safe_dump(dict(cfg, armature={"*_knee": -0.1})))
    with pytest.raises(CharacterError, match=r"bad.yaml.*'armature.\*_knee'.*non-negative"):
        load_character(path)
    path.write_text(yaml.safe_dump(dict(cfg, armature={"*_knee": 0.1, "left_*": 0.2})))
    with pytest.raises(CharacterError, match=r"'armature'.*left_knee.*several"):
        load_character(path)


def test_armature_defaults_to_zero_for_unmatched_joints(tmp_path, humanoid):
    cfg = yaml.safe_load(humanoid.config_path.read_text())
    path = tmp_path / "knees.yaml"
    path.write_text(yaml.safe_dump(dict(cfg, armature={"*_knee": 0.1})))
    character = load_character(path)
    knees = [n.endswith("_knee") for n in character.joint_names]
    assert np.all(character.armature[knees] == 0.1) and np.all(character.armature[np.logical_not(knees)] == 0.0)
    path.write_text(yaml.safe_dump({k: v for k, v in cfg.items() if k != "armature"}))
    assert not load_character(path).armature.any()


# ------------------------------------------------------- clips -> joint angles
def _original_humanoid_fk(client: bullet_client.BulletClient, frames: np.ndarray) -> dict[str, np.ndarray]:
    """Link positions (Z-up) of pybullet_data's spherical-joint humanoid posed by raw clip frames."""
    body = client.loadURDF(str(source_urdf()), globalScaling=0.25, useFixedBase=False,
                           flags=pybullet.URDF_MAINTAIN_LINK_ORDER)
    index = {client.getJointInfo(body, j)[1].decode(): j for j in range(client.getNumJoints(body))}
    to_zup = rot.quat_to_mat(rot.axis_angle_quat(np.array([1.0, 0.0, 0.0]), math.pi / 2))
    out: dict[str, list] = {}
    for frame in frames:
        w, x, y, z = frame[4:8] / np.linalg.norm(frame[4:8])
        client.resetBasePositionAndOrientation(body, frame[1:4].tolist(), [x, y, z, w])
        col = 8
        for joint, size in DEEPMIMIC_JOINTS:
            if size == 4:
                w, x, y, z = frame[col : col + 4] / np.linalg.norm(frame[col : col + 4])
                client.resetJointStateMultiDof(body, index[joint], [x, y, z, w])
            else:
                client.resetJointState(body, index[joint], frame[col])
            col += size
        out.setdefault("root", []).append(to_zup @ np.array(client.getBasePositionAndOrientation(body)[0]))
        for name, j in index.items():
            if name != "root":
                state = client.getLinkState(body, j, computeForwardKinematics=1)
                out.setdefault(name, []).append(to_zup @ np.array(state[4]))
    client.removeBody(body)
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.parametrize("clip", ["walk", "cartwheel", "backflip", "dance_a"])
def test_clips_convert_to_hinge_angles_exactly(clip, humanoid, backends):
    """FK of the hinge model posed by converted clips matches the original spherical model (< 1 mm)."""
    import json

    frames = np.array(json.loads(resolve_clip(clip).read_text())["Frames"])
    motion = load_deepmimic(resolve_clip(clip), close_loop=False)
    reference = ReferenceMotion(motion, humanoid)
    client = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
    try:
        original = _original_humanoid_fk(client, frames[:-1])
    finally:
        client.disconnect()
    worst = 0.0
    for i, t in enumerate(motion.frame_times[:-1]):
        qpos, qvel = reference.state(t)
        assert np.all(qpos[7:] >= humanoid.joint_lower - 1e-9) and np.all(qpos[7:] <= humanoid.joint_upper + 1e-9)
        states = backends["mujoco"].kinematics(qpos, qvel)
        for b, name in enumerate(humanoid.tracked_bodies):
            worst = max(worst, float(np.linalg.norm(states.pos[b] - original[name][i])))
    assert worst < 1e-3, f"{clip}: worst body position error {worst * 1000:.3f} mm"


def test_every_clip_stays_within_joint_limits(humanoid):
    for clip in shipped_clips():
        reference = ReferenceMotion(load_deepmimic(resolve_clip(clip)), humanoid)
        for t in np.linspace(0.0, reference.duration, 200):
            qpos, _ = reference.state(t)
            assert np.all(qpos[7:] >= humanoid.joint_lower) and np.all(qpos[7:] <= humanoid.joint_upper), (clip, t)


def test_motion_joints_are_matched_by_name(humanoid):
    motion = load_deepmimic(resolve_clip("walk"))
    motion.joints["left_wing"] = motion.joints.pop("left_elbow")
    motion._precompute()
    with pytest.raises(MotionError, match="left_wing"):
        ReferenceMotion(motion, humanoid)


# ------------------------------------------------------------------ backends
@pytest.mark.parametrize("clip", ["walk", "cartwheel"])
def test_forward_kinematics_agree_between_backends(clip, humanoid, backends):
    reference = ReferenceMotion(load_deepmimic(resolve_clip(clip)), humanoid)
    worst_pos = worst_rot = worst_vel = 0.0
    for t in reference.motion.frame_times:
        qpos, qvel = reference.state(float(t))
        a = backends["mujoco"].kinematics(qpos, qvel)
        b = backends["pybullet"].kinematics(qpos, qvel)
        worst_pos = max(worst_pos, float(np.abs(a.pos - b.pos).max()))
        worst_rot = max(worst_rot, float(rot.quat_angle(rot.quat_mul(rot.quat_conj(a.quat), b.quat)).max()))
        worst_vel = max(worst_vel, float(np.abs(a.lin_vel - b.lin_vel).max()),
                        float(np.abs(a.ang_vel - b.ang_vel).max()))
        assert np.abs(a.com - b.com).max() < 1e-3
        assert np.abs(a.com_vel - b.com_vel).max() < 1e-3
    assert worst_pos < 1e-3, f"body positions differ by {worst_pos * 1000:.3f} mm"
    assert worst_rot < 1e-4
    assert worst_vel < 1e-3


@pytest.mark.parametrize("name", BACKENDS)
def test_reset_and_read_back_any_state(name, backends, humanoid):
    backend = backends[name]
    rng = np.random.default_rng(3)
    qpos = np.concatenate([[0.3, -0.2, 1.5], rot.quat_normalize(rng.normal(size=4)),
                           rng.uniform(humanoid.joint_lower, humanoid.joint_upper) * 0.5])
    qvel = rng.normal(size=6 + humanoid.num_joints)
    backend.reset(qpos, qvel)
    got_q, got_v = backend.get_state()
    assert np.allclose(got_q[:3], qpos[:3], atol=1e-9)
    assert rot.quat_angle(rot.quat_mul(rot.quat_conj(got_q[3:7]), qpos[3:7])) < 1e-9
    assert np.allclose(got_q[7:], qpos[7:], atol=1e-9)
    assert np.allclose(got_v, qvel, atol=1e-6)


def _standing_pose(backend, humanoid) -> np.ndarray:
    qpos = np.zeros(7 + humanoid.num_joints)
    qpos[3] = 1.0
    qpos[2] = standing_height(humanoid)  # soles 0.5 mm above the floor
    return qpos


@pytest.mark.parametrize("name", BACKENDS)
def test_pd_held_standing_pose_stays_upright_for_5_seconds(name, backends, humanoid):
    backend = backends[name]
    qpos = _standing_pose(backend, humanoid)
    backend.reset(qpos, np.zeros(6 + humanoid.num_joints))
    for _ in range(5 * 30):
        backend.step(qpos[7:])
    q, _v = backend.get_state()
    up = rot.quat_rotate(q[3:7], np.array([0.0, 0.0, 1.0]))
    assert q[2] > 0.85, f"{name}: root dropped to {q[2]:.3f} m"
    assert up[2] > math.cos(math.radians(5)), f"{name}: root tilted {math.degrees(math.acos(up[2])):.1f} deg"
    assert np.linalg.norm(q[:2] - qpos[:2]) < 0.05
    contacts = backend.ground_contacts()
    assert set(np.flatnonzero(contacts)) == set(humanoid.body_index(humanoid.ground_contact_allowed))


@pytest.mark.parametrize("name", BACKENDS)
def test_targets_are_clamped_and_nan_is_refused(name, backends, humanoid):
    backend = backends[name]
    qpos = _standing_pose(backend, humanoid)
    backend.reset(qpos, np.zeros(6 + humanoid.num_joints))
    bad = qpos[7:].copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        backend.step(bad)
    assert np.allclose(backend.get_state()[0], qpos), "a refused command must not move the character"


def test_mujoco_realizes_the_pd_law(backends, humanoid):
    """One MuJoCo physics step in the air equals the law of mimic_sim.pd with Pinocchio's dynamics."""
    config = SimConfig(control_hz=120.0, physics_hz=120.0)
    backend = make_backend("mujoco", humanoid, config)
    pin = PinocchioModel(humanoid)
    gains = PDGains(humanoid.kp, humanoid.kd, humanoid.torque_limit)
    rng = np.random.default_rng(0)
    saturated = 0
    for trial in range(5):
        # away from joint limits, whose constraints are not part of the law
        joints = np.clip(rng.uniform(-0.5, 0.5, humanoid.num_joints), humanoid.joint_lower + 0.3,
                         humanoid.joint_upper - 0.3)
        qpos = np.concatenate([[0.0, 0.0, 3.0], rot.quat_normalize(rng.normal(size=4)), joints])
        qvel = rng.normal(size=6 + humanoid.num_joints)
        # large errors on some joints (saturated), small on others
        target = qpos[7:] + rng.uniform(-0.6, 0.6, humanoid.num_joints) * (trial + 1) / 5
        velocity = rng.normal(size=humanoid.num_joints) if trial % 2 else None  # target velocities too
        motor = (humanoid.kp * (target - qpos[7:]) + humanoid.kd * (0 if velocity is None else velocity)
                 - (1 - PASSIVE_DAMPING) * humanoid.kd * qvel[6:])
        saturated += int((np.abs(motor) >= humanoid.torque_limit).sum())
        backend.reset(qpos, qvel)
        backend.step(target, velocity)
        mass, bias = pin.dynamics(qpos, qvel)
        expected = predict_qdot_next(gains, mass, bias, pin.joint_v, qpos[7:], pin.v, target, config.physics_dt,
                                     qdot_target=velocity)
        got = backend.get_state()[1][6:]
        assert np.abs(got - expected).max() < 1e-6 * (1 + np.abs(expected).max())
    assert saturated >= 5  # the clamped branch of the law is covered


def test_armature_is_in_mujoco_and_pinocchio_and_pybullet_carries_it_as_rotors(humanoid, backends):
    """MuJoCo and the kinematics library carry the rotor inertia as armature; PyBullet, which has
    none, as rotors on the links, and its PD law's dynamics are the same bodies."""
    assert humanoid.armature.min() > 0
    model = backends["mujoco"].model
    dofs = [model.jnt_dofadr[model.joint(n).id] for n in humanoid.joint_names]
    assert np.allclose(model.dof_armature[dofs], humanoid.armature)
    pin = PinocchioModel(humanoid)
    assert np.allclose(pin.model.armature[pin.joint_v], humanoid.armature)
    backend = backends["pybullet"]
    assert not backend.pin.model.armature.any()
    # PyBullet's joint-space mass matrix is its PD law's (Pinocchio with the same rotors)
    rng = np.random.default_rng(3)
    qpos = np.concatenate([[0.0, 0.0, 1.0], rot.quat_normalize(rng.normal(size=4)),
                           rng.uniform(humanoid.joint_lower, humanoid.joint_upper) * 0.5])
    backend.reset(qpos, np.zeros(6 + humanoid.num_joints))
    body = backend.body
    movable = [j for j in range(pybullet.getNumJoints(body.id, physicsClientId=body.client_id))
               if pybullet.getJointInfo(body.id, j, physicsClientId=body.client_id)[2] != pybullet.JOINT_FIXED]
    angles = [pybullet.getJointState(body.id, j, physicsClientId=body.client_id)[0] for j in movable]
    engine = np.array(pybullet.calculateMassMatrix(body.id, angles, physicsClientId=body.client_id))
    rows = [6 + movable.index(j) for j in body.joints]
    rotor_mass = backend.pin.dynamics(*backend.get_state())[0][np.ix_(backend.pin.joint_v, backend.pin.joint_v)]
    assert np.allclose(engine[np.ix_(rows, rows)], rotor_mass, rtol=1e-9, atol=1e-12)
    # a rotor adds its joint's armature to that joint's own diagonal entry: exactly so on the
    # joints with no rotor below them (elbows), at least so on the others
    plain = PinocchioModel(dataclasses.replace(humanoid, armature=np.zeros_like(humanoid.armature)))
    plain_mass = plain.dynamics(*backend.get_state())[0][np.ix_(plain.joint_v, plain.joint_v)]
    added = np.diag(rotor_mass - plain_mass)
    assert np.all(added >= humanoid.armature - 1e-12)
    elbows = [humanoid.joint_names.index(n) for n in ("right_elbow", "left_elbow")]
    assert np.allclose(added[elbows], humanoid.armature[elbows], rtol=1e-9)
    assert added.max() > 2 * humanoid.armature.max()  # rotors below a joint turn with it too


def test_rotors_are_rigid_bodies_on_their_joint_axes(humanoid):
    """Each rotor has the armature about the joint's axis and, added to its link, leaves a tensor a
    rigid body can have (a disk on the humanoid's 10 g hinge links)."""
    from mimic_sim.kinematics import link_inertia, rotor_inertias
    from mimic_sim.urdf_io import read_urdf

    robot = read_urdf(humanoid.model_path)
    rotors = rotor_inertias(humanoid, robot)
    joints = {j.name: j for j in robot.joints}
    links = {link.name: link for link in robot.links}
    disks = 0
    for name, armature in zip(humanoid.joint_names, humanoid.armature, strict=True):
        axis = np.asarray(joints[name].axis, dtype=float)
        assert axis @ rotors[name] @ axis == pytest.approx(armature)
        moments = np.linalg.eigvalsh(link_inertia(links[joints[name].child]) + rotors[name])
        assert moments[0] + moments[1] >= moments[2] - 1e-12
        disks += not np.allclose(rotors[name], armature * np.outer(axis, axis))
    assert 0 < disks < len(rotors)


def test_pd_torque_limit_bounds_the_motor_output():
    gains = PDGains(np.array([500.0, 500.0]), np.array([50.0, 50.0]), np.array([150.0, 150.0]))
    q, target, dt = np.zeros(2), np.array([1.0, 0.1]), 1 / 120
    at_rest = pd_torque(gains, q, np.zeros(2), np.zeros(2), target, dt)
    assert at_rest[0] == pytest.approx(150.0) and at_rest[1] == pytest.approx(50.0)
    # joint 0 saturated: the limit minus the passive damping and the look-ahead on qdot_next;
    # joint 1 unsaturated: spring minus all the damping and the look-ahead on qdot_next
    qdot_next = np.array([4.0, 0.2])
    moving = pd_torque(gains, q, np.array([4.0, 0.0]), qdot_next, target, dt)
    assert moving[0] == pytest.approx(150.0 - (PASSIVE_DAMPING * 50.0 + 500.0 * dt) * 4.0)
    assert moving[1] == pytest.approx(50.0 - (50.0 + 500.0 * dt) * 0.2)
    # a joint far from its target keeps accelerating past tau_max / (kd + kp dt) = 2.8 rad/s
    assert moving[0] > 0
    # near the target the motor brakes
    assert pd_torque(gains, np.array([0.99, 0.0]), np.array([4.0, 0.0]), qdot_next, target, dt)[0] < 0


def test_mujoco_model_keeps_urdf_geometry(humanoid, backends):
    model = backends["mujoco"].model
    kinds = {int(model.geom_type[g]) for g in range(model.ngeom)}
    # cylinder + two spheres from the URDF become one capsule; feet stay boxes
    assert int(mujoco.mjtGeom.mjGEOM_CAPSULE) in kinds and int(mujoco.mjtGeom.mjGEOM_CYLINDER) not in kinds
    assert int(mujoco.mjtGeom.mjGEOM_BOX) in kinds
    # sizes are pybullet_data's humanoid.urdf ones scaled by 0.25, its Y-up boxes turned Z-up
    sizes = {(model.body(model.geom_bodyid[g]).name, int(model.geom_type[g])): model.geom_size[g]
             for g in range(model.ngeom)}
    expected = {
        ("root", mujoco.mjtGeom.mjGEOM_SPHERE): [0.09, 0, 0],  # radius 0.36
        ("right_hip", mujoco.mjtGeom.mjGEOM_CAPSULE): [0.055, 0.15, 0],  # radius 0.22, length 1.2 (half: 0.15)
        ("left_knee", mujoco.mjtGeom.mjGEOM_CAPSULE): [0.05, 0.155, 0],  # radius 0.2, length 1.24
        ("right_elbow", mujoco.mjtGeom.mjGEOM_CAPSULE): [0.04, 0.0675, 0],  # radius 0.16, length 0.54
        ("left_ankle", mujoco.mjtGeom.mjGEOM_BOX): [0.0885, 0.045, 0.0275],  # 0.708 x 0.22 (up) x 0.36
    }
    for (body, kind), size in expected.items():
        assert np.allclose(sizes[body, int(kind)], size, rtol=0, atol=1e-9), body
    assert model.ngeom == 16  # the floor and the 15 links' collision shapes, one each


def test_pinocchio_fast_path_equals_the_written_law(humanoid):
    """PinocchioModel.pd_qdot_next (used by the PyBullet backend) solves pd.predict_qdot_next exactly."""
    pin = PinocchioModel(humanoid)
    gains = PDGains(humanoid.kp, humanoid.kd, humanoid.torque_limit)
    rng = np.random.default_rng(1)
    feet = humanoid.body_index(humanoid.ground_contact_allowed)
    for dt in (1 / 240, 1 / 120):
        qpos = np.concatenate([[0.1, 0.2, 0.9], rot.quat_normalize(rng.normal(size=4)),
                               rng.uniform(-0.3, 0.3, humanoid.num_joints)])
        qvel = rng.normal(size=6 + humanoid.num_joints)
        target = qpos[7:] + rng.uniform(-0.8, 0.8, humanoid.num_joints)
        velocity = rng.normal(size=humanoid.num_joints)
        for planted, target_velocity in ((None, None), (feet, None), (feet, velocity)):
            fast = pin.pd_qdot_next(gains, qpos, qvel, target, dt, planted, target_velocity)
            mass, bias = pin.dynamics(qpos, qvel)
            jacobian = pin.body_jacobians(planted) if planted is not None else None
            written = predict_qdot_next(gains, mass, bias, pin.joint_v, qpos[7:], pin.v, target, dt,
                                        qdot_target=target_velocity, contact_jacobian=jacobian)
            assert np.abs(fast - written).max() < 1e-8


MJCF_BIPED = """
<mujoco model="biped">
  <worldbody>
    <body name="torso" pos="0 0 1">
      <geom type="box" size="0.1 0.15 0.2" mass="10"/>
      <body name="left_thigh" pos="0 0.1 -0.2">
        <joint name="left_hip" type="hinge" axis="0 1 0" range="-1.5 1.5"/>
        <geom type="capsule" fromto="0 0 0 0 0 -0.35" size="0.05" mass="3"/>
        <body name="left_shin" pos="0 0 -0.4">
          <joint name="left_knee" type="hinge" axis="0 1 0" range="0 2.5"/>
          <geom type="capsule" fromto="0 0 0 0 0 -0.3" size="0.04" mass="2"/>
          <body name="left_foot" pos="0 0 -0.35">
            <geom type="box" size="0.1 0.05 0.02" pos="0.03 0 -0.02" mass="0.5"/>
          </body>
        </body>
      </body>
      <body name="right_thigh" pos="0 -0.1 -0.2">
        <joint name="right_hip" type="hinge" axis="0 1 0" range="-1.5 1.5"/>
        <geom type="capsule" fromto="0 0 0 0 0 -0.35" size="0.05" mass="3"/>
        <body name="right_shin" pos="0 0 -0.4">
          <joint name="right_knee" type="hinge" axis="0 1 0" range="0 2.5"/>
          <geom type="capsule" fromto="0 0 0 0 0 -0.3" size="0.04" mass="2"/>
          <body name="right_foot" pos="0 0 -0.35">
            <geom type="box" size="0.1 0.05 0.02" pos="0.03 0 -0.02" mass="0.5"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator><motor joint="left_hip"/></actuator>
</mujoco>
"""


def test_a_character_from_mjcf_and_a_config_file(tmp_path):
    (tmp_path / "biped.xml").write_text(MJCF_BIPED)
    (tmp_path / "biped.yaml").write_text(yaml.safe_dump({
        "name": "biped",
        "model": {"file": "biped.xml"},
        "root_body": "torso",
        "pd": {"*_hip": {"kp": 300.0, "kd": 30.0, "torque_limit": 150.0},
               "*_knee": {"kp": 200.0, "kd": 20.0, "torque_limit": 100.0}},
        "tracked_bodies": ["torso", "left_thigh", "left_shin", "left_foot", "right_thigh", "right_shin",
                           "right_foot"],
        "end_effectors": ["left_foot", "right_foot"],
        "ground_contact_allowed": ["left_foot", "right_foot"],
    }))
    biped = load_character(tmp_path / "biped.yaml")
    assert biped.joint_names == ["left_hip", "left_knee", "right_hip", "right_knee"]
    assert list(biped.kp) == [300.0, 200.0, 300.0, 200.0]
    assert list(biped.tracked_parents) == [-1, 0, 1, 2, 0, 4, 5]
    backend = make_backend("mujoco", biped)
    assert backend.model.nu == 4  # the file's own actuator is replaced by mimic's PD actuators
    qpos = np.concatenate([[0, 0, 1.0], [1, 0, 0, 0], [0.2, 0.4, -0.1, 0.3]])
    backend.reset(qpos, np.zeros(10))
    backend.step(qpos[7:])
    assert np.isfinite(backend.get_state()[0]).all()
    assert backend.body_states().pos.shape == (7, 3)
    with pytest.raises(CharacterError, match="needs a URDF"):
        make_backend("pybullet", biped)


def test_link_tree_composes_to_the_body_poses(humanoid, backends):
    from mimic_sim.kinematics import LinkTree

    tree = LinkTree(PinocchioModel(humanoid))
    reference = ReferenceMotion(load_deepmimic(resolve_clip("cartwheel")), humanoid)
    qpos, qvel = reference.state(1.1)
    world: dict[str, tuple[np.ndarray, np.ndarray]] = {"world": (np.zeros(3), rot.IDENTITY)}
    for parent, child, xyz, (x, y, z, w) in tree.transforms(qpos):
        p_pos, p_quat = world[parent]  # parents come before children
        world[child] = (p_pos + rot.quat_rotate(p_quat, xyz), rot.quat_mul(p_quat, np.array([w, x, y, z])))
    assert set(humanoid.tracked_bodies) <= set(world) and "right_hip_y_link" in world
    states = backends["mujoco"].kinematics(qpos, qvel)
    for b, name in enumerate(humanoid.tracked_bodies):
        assert np.abs(world[name][0] - states.pos[b]).max() < 1e-9
        assert rot.quat_angle(rot.quat_mul(rot.quat_conj(world[name][1]), states.quat[b])) < 1e-7


@pytest.mark.parametrize("name", BACKENDS)
def test_zero_position_gain_damps_instead_of_driving_to_the_target(name, humanoid):
    """set_gains(kp=0, kd): joints no longer pulled to their targets, their motion damped."""
    reference = ReferenceMotion(load_deepmimic(resolve_clip("walk")), humanoid)
    qpos, qvel = reference.state(0.3)
    elbow = humanoid.joint_names.index("right_elbow")
    far = np.clip(qpos[7:] + 1.0, humanoid.joint_lower, humanoid.joint_upper)
    moved = {}
    for label, kp in (("pd", humanoid.kp), ("damping", np.zeros(humanoid.num_joints))):
        backend = make_backend(name, humanoid)
        backend.set_gains(kp, humanoid.kd)
        backend.reset(qpos, qvel)
        start = backend.get_state()[0][7 + elbow]
        for _ in range(5):
            backend.step(far)
        moved[label] = abs(backend.get_state()[0][7 + elbow] - start)
        backend.close()
    assert moved["pd"] > 0.3 and moved["damping"] < 0.1 * moved["pd"], moved
    backend = make_backend(name, humanoid)
    with pytest.raises(ValueError, match="kd of joint"):
        backend.set_gains(humanoid.kp, -humanoid.kd)
    backend.close()


def test_mujoco_warnings_are_logged_not_written_into_the_working_directory(tmp_path, monkeypatch, caplog):
    """MuJoCo's default handler appends warnings to MUJOCO_LOG.TXT wherever the process runs; once
    the backend is imported they go to its logger."""
    import mimic_sim.backends.mujoco_backend  # noqa: F401 - installs the handler

    monkeypatch.chdir(tmp_path)
    model = mujoco.MjModel.from_xml_string('<mujoco><worldbody><body><freejoint/><geom size=".1"/></body>'
                                           '</worldbody></mujoco>')
    data = mujoco.MjData(model)
    data.qvel[:] = 1e20
    with caplog.at_level("WARNING", logger="mimic_sim.backends.mujoco_backend"):
        mujoco.mj_step(model, data)
    assert "MuJoCo: Nan, Inf or huge value in QVEL" in caplog.text
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
