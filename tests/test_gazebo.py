"""The Gazebo path (launch/gazebo.launch.py, config/gazebo/, mimic_sim.tools.gazebo), checked without Gazebo:
the description parses and controls every joint, and every name the controllers, the bridge and
the policy node share agrees."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pinocchio
import pytest
import yaml

from mimic_policy.serving import twist_in_world
from mimic_sim import rotations as rot
from mimic_sim.character import load_character
from mimic_sim.paths import find_config
from mimic_sim.tools import gazebo
from mimic_sim.tools.graph import load_scenario

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def humanoid():
    return load_character("humanoid")


def _policy_params() -> dict:
    return yaml.safe_load(find_config("gazebo/policy_node.yaml").read_text())["policy_node"]["ros__parameters"]


def test_description_controls_every_joint_from_the_clip_pose_and_parses(humanoid):
    qpos = gazebo.reference_pose(humanoid, "walk", 0.5)
    text = gazebo.gazebo_urdf(humanoid, qpos)
    robot = ET.fromstring(text.split("?>", 1)[1])
    control = robot.find("ros2_control")
    assert control.find("hardware/plugin").text == "gz_ros2_control/GazeboSimSystem"
    joints = {j.get("name"): j for j in control.findall("joint")}
    assert sorted(joints) == sorted(humanoid.joint_names)
    for name, angle, lower, upper in zip(humanoid.joint_names, qpos[7:], humanoid.joint_lower, humanoid.joint_upper,
                                         strict=True):
        joint = joints[name]
        assert joint.find("command_interface").get("name") == "position"
        bounds = {p.get("name"): float(p.text) for p in joint.findall("command_interface/param")}
        assert bounds == pytest.approx({"min": lower, "max": upper}, abs=1e-5)
        initial = joint.find("state_interface[@name='position']/param[@name='initial_value']")
        assert float(initial.text) == pytest.approx(angle, abs=1e-8), name
    plugins = {p.get("name"): p for p in robot.findall("gazebo/plugin")}
    parameters = Path(plugins["gz_ros2_control::GazeboSimROS2ControlPlugin"].find("parameters").text)
    assert parameters == find_config(gazebo.CONTROLLERS).resolve()
    odometry = plugins["gz::sim::systems::OdometryPublisher"]
    assert odometry.find("robot_base_frame").text == humanoid.root_body
    # the kinematics library reads it as the same robot
    plain = pinocchio.buildModelFromUrdf(str(humanoid.model_path), pinocchio.JointModelFreeFlyer())
    extended = pinocchio.buildModelFromXML(text, pinocchio.JointModelFreeFlyer())
    assert extended.nq == plain.nq and list(extended.names) == list(plain.names)


def test_controllers_policy_node_and_character_name_the_same_joints_in_the_same_order(humanoid):
    commanded = gazebo.controller_joints()
    params = _policy_params()
    assert params["forward_joint_names"] == commanded
    assert sorted(commanded) == sorted(humanoid.joint_names) and len(set(commanded)) == len(commanded)
    assert params["forward_command_topic"] == f"/{gazebo.POSITION_CONTROLLER}/commands"
    controllers = yaml.safe_load(find_config(gazebo.CONTROLLERS).read_text())
    manager = controllers["controller_manager"]["ros__parameters"]
    assert manager[gazebo.POSITION_CONTROLLER]["type"] == "position_controllers/JointGroupPositionController"
    assert manager[gazebo.STATE_BROADCASTER]["type"] == "joint_state_broadcaster/JointStateBroadcaster"


def test_bridge_carries_the_clock_and_the_descriptions_odometry_to_the_policy_node():
    entries = {e["ros_type_name"]: e for e in yaml.safe_load(find_config(gazebo.BRIDGE).read_text())}
    clock = entries["rosgraph_msgs/msg/Clock"]
    assert (clock["ros_topic_name"], clock["gz_type_name"], clock["direction"]) == ("/clock", "gz.msgs.Clock",
                                                                                    "GZ_TO_ROS")
    odom = entries["nav_msgs/msg/Odometry"]
    assert odom["gz_topic_name"] == gazebo.ODOMETRY_GZ_TOPIC and odom["gz_type_name"] == "gz.msgs.Odometry"
    # the policy node subscribes the relative name 'odom', in the root namespace of the launch
    assert odom["ros_topic_name"] == "/odom" and _policy_params()["base_state"] == "odometry"
    scenario = load_scenario("gazebo")
    (policy,) = scenario.nodes
    assert policy.parameters["use_sim_time"] is True and scenario.requires == ("gazebo",)
    assert [p.name for p in policy.parameter_files] == ["policy_node.yaml", "policy_node.yaml"]


def test_world_has_physics_and_the_characters_ground_friction(humanoid):
    world = ET.parse(find_config(gazebo.WORLD)).getroot().find("world")
    assert float(world.find("physics/max_step_size").text) <= 1e-3
    assert "gz::sim::systems::Physics" in [p.get("name") for p in world.findall("plugin")]
    friction = world.find("model[@name='ground_plane']/link/collision/surface/friction/ode")
    assert float(friction.find("mu").text) == humanoid.ground_friction


def test_mismatched_controllers_or_an_impossible_pose_are_refused(humanoid, tmp_path):
    controllers = yaml.safe_load(find_config(gazebo.CONTROLLERS).read_text())
    joints = controllers[gazebo.POSITION_CONTROLLER]["ros__parameters"]["joints"]
    joints[joints.index("left_knee")] = "left_knee_typo"
    bad = tmp_path / "controllers.yaml"
    bad.write_text(yaml.safe_dump(controllers))
    with pytest.raises(ValueError, match=r"controllers.yaml.*left_knee_typo.*left_knee"):
        gazebo.gazebo_urdf(humanoid, controllers=bad)
    qpos = gazebo.reference_pose(humanoid, "walk")
    qpos[7 + humanoid.joint_names.index("right_elbow")] = 10.0
    with pytest.raises(ValueError, match="right_elbow"):
        gazebo.gazebo_urdf(humanoid, qpos)


def test_spawn_pose_is_the_clips_root_pose():
    rng = np.random.default_rng(0)
    for _ in range(20):
        quat = rot.quat_normalize(rng.normal(size=4))
        qpos = np.concatenate([rng.normal(size=3), quat])
        args = gazebo.spawn_arguments(qpos, clearance=0.0)
        values = {k: float(v) for k, v in zip(args[::2], args[1::2], strict=True)}
        # fixed axes x, y, z: R = Rz(yaw) Ry(pitch) Rx(roll)
        rebuilt = rot.quat_mul(rot.axis_angle_quat(np.array([0.0, 0.0, 1.0]), values["-Y"]),
                               rot.quat_mul(rot.axis_angle_quat(np.array([0.0, 1.0, 0.0]), values["-P"]),
                                            rot.axis_angle_quat(np.array([1.0, 0.0, 0.0]), values["-R"])))
        assert abs(abs(np.dot(rebuilt, quat)) - 1.0) < 1e-9
        assert [values[k] for k in ("-x", "-y", "-z")] == pytest.approx(qpos[:3], abs=1e-6)


def test_odometry_twist_is_turned_from_the_base_frame_to_the_world():
    facing_left = rot.axis_angle_quat(np.array([0.0, 0.0, 1.0]), np.pi / 2)
    linear, angular = twist_in_world(facing_left, [1.0, 0.0, 0.5], [0.0, 2.0, 0.0])
    assert linear == pytest.approx([0.0, 1.0, 0.5], abs=1e-12)
    assert angular == pytest.approx([-2.0, 0.0, 0.0], abs=1e-12)


def test_gazebo_launch_file_starts_gazebo_the_robot_its_controllers_and_the_scenarios_nodes(monkeypatch):
    import runpy

    from launch_stubs import stub_launch_packages

    built = stub_launch_packages(monkeypatch)
    kind, actions = runpy.run_path(str(ROOT / "launch" / "gazebo.launch.py"))["generate_launch_description"]()
    # the scenario's nodes and argument declarations come first: later actions read the arguments' defaults
    assert kind == "LaunchDescription" and actions[0][0] == "LaunchDescription"
    assert [a[0] for a in actions[0][1] if a[0] == "DeclareLaunchArgument"]
    (opaque,) = [kw for kind, kw in built if kind == "OpaqueFunction"]
    opaque["function"]({"character": "humanoid", "clip": "walk", "start_time": "0.0"})
    nodes = [kw for kind, kw in built if kind == "Node"]
    scenario = load_scenario("gazebo")
    assert [n["name"] for n in nodes if "name" in n] == [s.name for s in scenario.nodes]
    # every package the launch file runs is an exec_depend of the launch package
    depends = {e.text for e in ET.parse(ROOT / "launch" / "package.xml").getroot().findall("exec_depend")}
    assert {n["package"] for n in nodes} <= depends
    by_executable = {n["executable"]: n for n in nodes}
    description = by_executable["robot_state_publisher"]["parameters"][0]["robot_description"]
    assert ET.fromstring(description.split("?>", 1)[1]).find("ros2_control") is not None
    assert by_executable["spawner"]["arguments"][:2] == [gazebo.STATE_BROADCASTER, gazebo.POSITION_CONTROLLER]
    assert Path(by_executable["parameter_bridge"]["parameters"][0]["config_file"]) == find_config(gazebo.BRIDGE)
    create = by_executable["create"]["arguments"]
    assert create[:4] == ["-topic", "robot_description", "-name", "humanoid"]
    (include,) = [kw for kind, kw in built if kind == "IncludeLaunchDescription"]
    assert dict(include["launch_arguments"])["gz_args"] == f"-r {find_config(gazebo.WORLD)}"


def test_mimic_launch_refuses_a_scenario_that_needs_gazebo(capsys):
    from mimic_sim.tools.cli import main

    assert main(["launch", "gazebo", "policy:=run"]) == 2
    assert "ros2 launch mimic gazebo.launch.py" in capsys.readouterr().err
