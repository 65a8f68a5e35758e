"""Every URDF mimic writes or ships, read by urdfdom-py (the ROS URDF parser), agrees with the joints
MuJoCo reads from it; and what urdfdom-py cannot express is what docs/architecture.md says."""

from __future__ import annotations

import math

import mujoco
import pytest
from urdf_parser_py.xml_reflection import core

from mimic_retarget.mjcf_urdf import mjcf_to_urdf
from mimic_sim.backends.pybullet_backend import _pybullet_urdf
from mimic_sim.character import load_character
from mimic_sim.humanoid_urdf import source_urdf
from mimic_sim.paths import robots_dir
from mimic_sim.tools import gazebo
from mimic_sim.urdf_io import read_urdf


@pytest.fixture(scope="module")
def humanoid():
    return load_character("humanoid")


def _limits(robot) -> dict[str, tuple[float, float]]:
    """Actuated joints of a urdfdom-py robot: name -> (lower, upper)."""
    return {j.name: (-math.inf, math.inf) if j.type == "continuous" else (j.limit.lower, j.limit.upper)
            for j in robot.joints if j.type != "fixed"}


# humanoid: built by mimic_sim.humanoid_urdf; atlas: converted from MJCF at set-up; h1, g1: the vendors' files
@pytest.mark.parametrize("name", ["humanoid", "atlas", "h1", "g1"])
def test_each_characters_urdf_parses_with_the_joints_and_limits_mujoco_reads(name):
    character = load_character(name)  # its joints and limits as MuJoCo compiles the file
    robot = read_urdf(character.model_path)
    assert _limits(robot) == {j.name: (j.lower, j.upper) for j in character.joints}
    assert {link.name for link in robot.links} == set(character.body_masses)


def test_humanoid_urdf_carries_the_configs_torque_limits(humanoid):
    efforts = {j.name: j.limit.effort for j in read_urdf(humanoid.model_path).joints if j.type != "fixed"}
    assert efforts == dict(zip(humanoid.joint_names, humanoid.torque_limit.tolist(), strict=True))


def test_atlas_conversion_parses_with_the_joints_and_limits_of_the_mjcf(tmp_path):
    mjcf = robots_dir() / "atlas" / "atlas.xml"
    path = tmp_path / "atlas.urdf"
    path.write_text(mjcf_to_urdf(mjcf))
    model = mujoco.MjModel.from_xml_path(str(mjcf))
    # the root body's joints are left out: mimic gives every character a floating base
    hinges = {model.joint(j).name: model.jnt_range[j].tolist() for j in range(model.njnt)
              if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE and model.body_parentid[model.jnt_bodyid[j]] != 0}
    limits = _limits(read_urdf(path))
    assert sorted(limits) == sorted(hinges) and len(hinges) == 25
    for name, (lower, upper) in limits.items():
        assert [lower, upper] == pytest.approx(hinges[name], abs=5e-9), name  # written to 9 significant digits


def test_gazebo_description_parses_as_the_character_with_its_gazebo_blocks(humanoid, tmp_path):
    path = tmp_path / "gazebo.urdf"
    path.write_text(gazebo.gazebo_urdf(humanoid, gazebo.reference_pose(humanoid, "walk")))
    robot = read_urdf(path)
    assert _limits(robot) == {j.name: (j.lower, j.upper) for j in humanoid.joints}
    references = sorted(g.get("reference", "") for g in robot.gazebos)
    assert references == sorted(["", *humanoid.ground_contact_allowed])  # the plugins, then friction per foot


def test_read_urdf_leaves_out_urdfdoms_notes_on_extensions_only(tmp_path, capsys):
    path = tmp_path / "robot.urdf"
    path.write_text('<robot name="r"><mujoco><compiler fusestatic="false"/></mujoco>'
                    '<material name="bare"/><link name="base"/></robot>')
    hook = core.on_error
    robot = read_urdf(path)
    assert [link.name for link in robot.links] == ["base"]
    err = capsys.readouterr().err
    assert "Unknown" not in err and "Material has neither a color nor texture" in err
    assert core.on_error is hook


def test_what_urdfdom_cannot_express_is_left_to_elementtree(humanoid, tmp_path):
    # the DeepMimic source humanoid_urdf.py reads: spherical joints (and capsules)
    source = tmp_path / "humanoid.urdf"
    source.write_bytes(source_urdf().read_bytes().replace(b"\x00", b""))
    with pytest.raises(core.ParseError, match="spherical"):
        read_urdf(source)
    # the PyBullet copy pybullet_backend.py writes: <capsule>
    with pytest.raises(Exception, match="capsule"):  # urdfdom-py raises a bare Exception
        read_urdf(_pybullet_urdf(humanoid.model_path, {}))
    # the Gazebo description gazebo.py writes: <ros2_control> does not survive a urdfdom-py round trip
    path = tmp_path / "gazebo.urdf"
    path.write_text(gazebo.gazebo_urdf(humanoid))
    assert "<ros2_control" in path.read_text() and "<ros2_control" not in read_urdf(path).to_xml_string()


def test_the_pybullet_copy_is_rewritten_when_the_code_that_writes_it_changes(humanoid, monkeypatch, tmp_path):
    """The copy is cached by its source, its rotors and the code that writes it: a cached copy an
    older mimic wrote (another code key) is not loaded in place of the current transformation."""
    from mimic_sim.backends import pybullet_backend

    monkeypatch.setenv("MIMIC_CACHE_DIR", str(tmp_path))
    current = _pybullet_urdf(humanoid.model_path, {})
    assert _pybullet_urdf(humanoid.model_path, {}) == current  # cached
    current.write_text("<robot name='stale'/>")  # what an older version might have left there
    monkeypatch.setattr(pybullet_backend, "_CODE_KEY", "another version")
    other = _pybullet_urdf(humanoid.model_path, {})
    assert other != current and "<capsule" in other.read_text()

