"""The URDF robots (Atlas, Unitree H1 and G1): set-up fetching, the Atlas conversion, and each
robot in MuJoCo, PyBullet and Pinocchio."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import mujoco
import numpy as np
import pinocchio
import pytest
import yaml

from mimic_retarget import robot_assets
from mimic_retarget.mjcf_urdf import ConversionError, mjcf_to_urdf
from mimic_sim import rotations as rot
from mimic_sim.backends import make_backend
from mimic_sim.backends.mujoco_backend import standing_height
from mimic_sim.character import CharacterError, load_character, model_spec
from mimic_sim.kinematics import PinocchioModel
from mimic_sim.paths import robots_dir

ROBOTS = ["atlas", "h1", "g1"]
MODELS = {"atlas": "atlas/atlas.urdf", "h1": "h1/h1.urdf", "g1": "g1/g1_29dof.urdf"}
# Nominal standing poses: knees slightly bent as Unitree's own default poses (unitree_rl_gym);
# Atlas stands straight (its centre of mass is then 9 cm ahead of the heels).
STANDING = {"atlas": {}, "h1": {"hip_pitch": -0.1, "knee": 0.3, "ankle": -0.2},
            "g1": {"hip_pitch": -0.1, "knee": 0.3, "ankle_pitch": -0.2}}


def _require(name: str) -> None:
    if not (robots_dir() / MODELS[name]).is_file():
        pytest.skip(f"robot files of '{name}' not fetched: run `python -m mimic_retarget.robot_assets` "
                    "(scripts/setup.sh does)")


@pytest.fixture(scope="module", params=ROBOTS)
def robot(request):
    _require(request.param)
    return load_character(request.param)


def _backend(name, character):
    return make_backend(name, character)


def _random_state(character, rng):
    joints = rng.uniform(character.joint_lower, character.joint_upper)
    qpos = np.concatenate([rng.normal(size=3), rot.quat_normalize(rng.normal(size=4)), joints])
    return qpos, rng.normal(size=6 + character.num_joints)


def _standing_pose(character) -> np.ndarray:
    pose = np.zeros(character.num_joints)
    for part, angle in STANDING[character.name].items():
        pose[[f"_{part}_" in f"_{n}_" for n in character.joint_names]] = angle
    return pose


# ------------------------------------------------------------ each robot
def test_joint_names_and_limits_agree_across_mujoco_pybullet_and_pinocchio(robot):
    mj = _backend("mujoco", robot)
    pb = _backend("pybullet", robot)
    pin = PinocchioModel(robot)
    model = mj.model
    names = [model.joint(j).name for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
    assert names == robot.joint_names
    info = {pb.client.getJointInfo(pb.body.id, j)[1].decode(): pb.client.getJointInfo(pb.body.id, j)
            for j in range(pb.client.getNumJoints(pb.body.id))}
    revolute = [n for n, i in info.items() if i[2] == 0]  # pybullet.JOINT_REVOLUTE
    assert sorted(revolute) == sorted(robot.joint_names)
    assert sorted(n for n in pin.model.names[2:]) == sorted(robot.joint_names)  # universe, root_joint first
    for k, name in enumerate(robot.joint_names):
        j = pin.model.getJointId(name)
        lower, upper = pin.model.lowerPositionLimit[pin.model.joints[j].idx_q], \
            pin.model.upperPositionLimit[pin.model.joints[j].idx_q]
        expected = [robot.joint_lower[k], robot.joint_upper[k]] * 2
        assert np.allclose([info[name][8], info[name][9], lower, upper], expected), name
        # the config's torque limit is the URDF's effort limit
        assert robot.torque_limit[k] == pytest.approx(info[name][10]), name
        assert robot.torque_limit[k] == pytest.approx(pin.model.effortLimit[pin.model.joints[j].idx_v]), name
    assert set(robot.end_effectors) <= set(robot.tracked_bodies)
    assert robot.total_mass == pytest.approx(pinocchio.computeTotalMass(pin.model))
    mj.close()
    pb.close()


def test_forward_kinematics_agree_between_mujoco_and_pinocchio(robot):
    """Every link (not only the tracked ones) at random poses; tracked bodies' velocities too."""
    backend = _backend("mujoco", robot)
    pin = PinocchioModel(robot)
    model, data = backend.model, mujoco.MjData(backend.model)
    links = [model.body(b).name for b in range(1, model.nbody)]
    frames = [pin.model.getFrameId(n, pinocchio.BODY) for n in links]
    rng = np.random.default_rng(1)
    worst_pos = worst_rot = 0.0
    for _ in range(10):
        qpos, qvel = _random_state(robot, rng)
        backend._write(data, qpos, qvel)
        mujoco.mj_kinematics(model, data)
        pin.load(qpos, qvel)
        pinocchio.framesForwardKinematics(pin.model, pin.data, pin.q)
        for b, f in enumerate(frames, start=1):
            placement = pin.data.oMf[f]
            worst_pos = max(worst_pos, np.abs(placement.translation - data.xpos[b]).max())
            worst_rot = max(worst_rot, np.abs(placement.rotation - data.xmat[b].reshape(3, 3)).max())
        mine, theirs = backend.kinematics(qpos, qvel), pin.body_states(qpos, qvel)
        assert np.allclose(mine.lin_vel, theirs.lin_vel, atol=1e-6)
        assert np.allclose(mine.ang_vel, theirs.ang_vel, atol=1e-6)
        assert np.allclose(mine.com, theirs.com, atol=1e-6)
    assert worst_pos < 1e-3 and worst_rot < 1e-6, (worst_pos, worst_rot)
    backend.close()


def test_both_backends_reset_and_read_back_any_state(robot):
    """Also where PyBullet turns the root to its inertia's principal axes (Atlas's pelvis, ~90 degrees)."""
    rng = np.random.default_rng(3)
    pin = PinocchioModel(robot)
    for name in ("mujoco", "pybullet"):
        backend = _backend(name, robot)
        for _ in range(3):
            qpos, qvel = _random_state(robot, rng)
            backend.reset(qpos, qvel)
            got_q, got_v = backend.get_state()
            got_q[3:7] *= np.sign(got_q[3:7] @ qpos[3:7])  # q and -q: the same rotation
            assert np.allclose(got_q, qpos, atol=1e-6) and np.allclose(got_v, qvel, atol=1e-6), name
        if name == "pybullet":  # PyBullet's own link poses, against Pinocchio's
            c, body = backend.client, backend.body
            expected = pin.body_states(qpos, qvel).pos
            for b, link in zip(body.links, expected, strict=True):
                pos = c.getBasePositionAndOrientation(body.id)[0] if b < 0 else \
                    c.getLinkState(body.id, int(b), computeForwardKinematics=True)[4]
                if b >= 0:
                    assert np.abs(np.array(pos) - link).max() < 1e-6
        backend.close()


def test_pd_held_standing_pose_stays_upright_for_2_seconds(robot):
    backend = _backend("mujoco", robot)
    pose = _standing_pose(robot)
    qpos = np.concatenate([[0.0, 0.0, standing_height(robot, pose)], rot.IDENTITY, pose])
    backend.reset(qpos, np.zeros(6 + robot.num_joints))
    worst_tilt = 0.0
    for _ in range(2 * 30):
        backend.step(pose)
        q = backend.get_state()[0]
        up = rot.quat_rotate(q[3:7], np.array([0.0, 0.0, 1.0]))
        worst_tilt = max(worst_tilt, math.degrees(math.acos(min(1.0, up[2]))))
    assert worst_tilt < 8.0, f"{robot.name}: root tilted {worst_tilt:.1f} degrees"
    assert q[2] > qpos[2] - 0.03, f"{robot.name}: root dropped from {qpos[2]:.3f} to {q[2]:.3f} m"
    assert np.linalg.norm(q[:2]) < 0.05
    touching = {robot.tracked_bodies[i] for i in np.flatnonzero(backend.ground_contacts())}
    assert touching == set(robot.ground_contact_allowed)
    backend.close()


@pytest.mark.parametrize("field", ["tracked_bodies", "end_effectors", "ground_contact_allowed"])
def test_a_config_naming_a_missing_link_is_refused(robot, field, tmp_path):
    cfg = yaml.safe_load(robot.config_path.read_text())
    cfg[field] = [*cfg[field], "left_tail_link"]
    path = tmp_path / f"{robot.name}_tail.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(CharacterError, match=rf"{path.name}: field '{field}'.*no body 'left_tail_link'"):
        load_character(path)


# ------------------------------------------------------------ Atlas: MJCF -> URDF
def test_atlas_urdf_matches_its_mjcf():
    """The converted URDF in Pinocchio and in MuJoCo against the vendor MJCF in MuJoCo: link poses,
    masses and every geom (visual meshes included) where the MJCF puts them."""
    _require("atlas")
    folder = robots_dir() / "atlas"
    spec = mujoco.MjSpec.from_file(str(folder / "atlas.xml"))
    for joint in list(spec.body("pelvis").joints):  # the MJCF's planar root joints -> a floating base
        spec.delete(joint)
    spec.body("pelvis").add_freejoint()
    source = spec.compile()
    spec = model_spec(folder / "atlas.urdf")
    spec.body("pelvis").add_freejoint()
    converted = spec.compile()
    pin = pinocchio.buildModelFromUrdf(str(folder / "atlas.urdf"), pinocchio.JointModelFreeFlyer())
    pin_data = pin.createData()
    assert converted.nbody == source.nbody
    assert converted.body_subtreemass[0] == pytest.approx(source.body_subtreemass[0])
    rng = np.random.default_rng(2)
    a, b = mujoco.MjData(source), mujoco.MjData(converted)
    for _ in range(5):
        root = np.concatenate([rng.normal(size=3), rot.quat_normalize(rng.normal(size=4))])
        q = np.concatenate([root[:3], root[4:7], root[3:4], np.zeros(pin.nq - 7)])
        a.qpos[:7] = b.qpos[:7] = root
        for j in range(1, source.njnt):
            name, angle = source.joint(j).name, rng.uniform(*source.jnt_range[j])
            a.qpos[source.jnt_qposadr[j]] = angle
            b.qpos[converted.jnt_qposadr[converted.joint(name).id]] = angle
            q[pin.joints[pin.getJointId(name)].idx_q] = angle
        mujoco.mj_kinematics(source, a)
        mujoco.mj_kinematics(converted, b)
        pinocchio.framesForwardKinematics(pin, pin_data, q)
        for body in range(1, source.nbody):
            name = source.body(body).name
            frame = pin_data.oMf[pin.getFrameId(name, pinocchio.BODY)]
            assert np.abs(frame.translation - a.xpos[body]).max() < 1e-6, name
            assert np.abs(frame.rotation - a.xmat[body].reshape(3, 3)).max() < 1e-6, name
            assert converted.body_mass[converted.body(name).id] == pytest.approx(source.body_mass[body])
        # each of the MJCF's geoms has its twin in the URDF: same link, type, size, world pose
        twins = []
        for g in np.flatnonzero(source.geom_bodyid > 0):
            same = [h for h in range(converted.ngeom) if converted.geom_type[h] == source.geom_type[g]
                    and converted.body(converted.geom_bodyid[h]).name == source.body(source.geom_bodyid[g]).name
                    and np.allclose(converted.geom_size[h], source.geom_size[g])]
            twins.append(min(np.abs(b.geom_xpos[h] - a.geom_xpos[g]).max()
                             + np.abs(b.geom_xmat[h] - a.geom_xmat[g]).max() for h in same))
        assert len(twins) == converted.ngeom and max(twins) < 1e-6
    # effort limits: the motors' gear x control range (0.95)
    assert converted.jnt_actfrcrange[converted.joint("knee_angle_l").id][1] == pytest.approx(890 * 0.95)


def test_converter_splits_capsules_and_refuses_what_urdf_cannot_express(tmp_path):
    mjcf = tmp_path / "arm.xml"
    mjcf.write_text("""<mujoco><worldbody><body name="base"><geom type="box" size=".1 .1 .1"/>
      <body name="arm" pos="0 0 .2"><joint name="shoulder" axis="0 1 0" range="-1 1"/>
        <geom type="capsule" fromto="0 0 0 .3 0 0" size=".04"/></body></body></worldbody>
      <actuator><motor joint="shoulder" gear="50" ctrlrange="-1 1" ctrllimited="true"/></actuator></mujoco>""")
    urdf = tmp_path / "arm.urdf"
    urdf.write_text(mjcf_to_urdf(mjcf))
    model = model_spec(urdf).compile()
    arm = model.body("arm").id
    kinds = sorted(int(model.geom_type[g]) for g in range(model.ngeom) if model.geom_bodyid[g] == arm)
    assert kinds == [int(mujoco.mjtGeom.mjGEOM_SPHERE)] * 2 + [int(mujoco.mjtGeom.mjGEOM_CYLINDER)]
    assert model.jnt_actfrcrange[model.joint("shoulder").id].tolist() == [-50.0, 50.0]
    mjcf.write_text(mjcf.read_text().replace('<joint name="shoulder" axis="0 1 0" range="-1 1"/>',
                                             '<joint name="shoulder" type="ball"/>'))
    with pytest.raises(ConversionError, match=r"arm.xml: joint 'shoulder' is a mjJNT_BALL joint"):
        mjcf_to_urdf(mjcf)


# ------------------------------------------------------------ set-up fetching
def _fake_wheel(folder: Path) -> Path:
    wheel = folder / "robotpkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("robotpkg/robots/bot/bot.urdf", '<robot name="bot"><link name="base"><visual><geometry>'
                   '<mesh filename="meshes/base.stl"/></geometry></visual></link></robot>')
        z.writestr("robotpkg/robots/bot/meshes/base.stl", b"solid base\nendsolid base\n")
        z.writestr("robotpkg/robots/bot/meshes/unused.stl", b"solid unused\nendsolid unused\n")
        z.writestr("robotpkg-1.0.dist-info/licenses/LICENSE", "a license text")
    return wheel


@pytest.fixture
def fake_robot(tmp_path, monkeypatch):
    source = robot_assets.RobotSource(package="robotpkg", version="1.0", sdist=False, folder="robotpkg/robots/bot",
                                      model="bot.urdf", license="MIT",
                                      license_files=("robotpkg-1.0.dist-info/licenses/LICENSE",))
    monkeypatch.setitem(robot_assets.ROBOTS, "bot", source)
    wheel = _fake_wheel(tmp_path)
    downloads = []

    def download(src, folder, remedy=""):
        downloads.append(src.package)
        target = folder / wheel.name
        target.write_bytes(wheel.read_bytes())
        return target

    monkeypatch.setattr(robot_assets, "_download", download)
    return tmp_path / "robots", downloads


def test_fetch_extracts_the_model_its_meshes_and_licenses_with_a_manifest(fake_robot):
    root, downloads = fake_robot
    manifest = robot_assets.fetch("bot", root)
    folder = root / "bot"
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert files == ["bot.urdf", "licenses/LICENSE", "manifest.json", "meshes/base.stl"]  # not the unused mesh
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    assert manifest["package"] == "robotpkg" and manifest["version"] == "1.0" and manifest["license"] == "MIT"
    assert set(manifest["files"]) == {"bot.urdf", "licenses/LICENSE", "meshes/base.stl"}
    assert not [p for p in root.iterdir() if p.name != "bot"], "the temporary folder is gone"
    # present and intact: skipped; damaged: fetched again
    assert robot_assets.fetch("bot", root) is None and downloads == ["robotpkg"]
    (folder / "meshes" / "base.stl").write_bytes(b"damaged")
    assert robot_assets.fetch("bot", root) is not None and downloads == ["robotpkg"] * 2
    assert (folder / "meshes" / "base.stl").read_bytes().startswith(b"solid base")


def test_a_failed_download_says_how_to_set_up(tmp_path, monkeypatch):
    def offline(command, **_kwargs):
        class Result:
            returncode, stdout = 1, ""
            stderr = "ERROR: Could not find a version that satisfies the requirement holosoma==0.0.3"
        return Result()

    monkeypatch.setattr(robot_assets.subprocess, "run", offline)
    with pytest.raises(robot_assets.RobotAssetError,
                       match=r"(?s)holosoma==0.0.3.*Could not find.*mimic_retarget.robot_assets"):
        robot_assets.fetch("g1", tmp_path / "robots", force=True)
    assert not (tmp_path / "robots" / "g1").exists()


def test_a_missing_robot_asset_names_the_config_field_and_the_set_up_command(tmp_path):
    path = tmp_path / "ghost.yaml"
    path.write_text(yaml.safe_dump({"name": "ghost", "model": {"robot_asset": "ghost/ghost.urdf"},
                                    "pd": {"*": {"kp": 1.0, "kd": 0.1, "torque_limit": 1.0}}}))
    with pytest.raises(CharacterError, match=r"ghost.yaml: field 'model.robot_asset'.*ghost/ghost.urdf.*"
                                             r"python -m mimic_retarget.robot_assets"):
        load_character(path)
