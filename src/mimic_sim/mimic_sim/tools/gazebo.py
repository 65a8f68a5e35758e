"""Gazebo (Harmonic, on an apt ROS 2): the robot description, its controllers and the launch.

The same policy node that drives ``sim_node`` drives the character in Gazebo:

* the robot description is the character's URDF (the file MuJoCo, PyBullet and
  Pinocchio read) plus a ``<ros2_control>`` block for ``gz_ros2_control``: every
  actuated joint with a position command interface bounded by its limits, and its
  initial position set to the reference pose the policy starts from;
* ``config/gazebo/controllers.yaml``: ``joint_state_broadcaster`` (joint_states) and
  ``joint_position_controller`` (a ``forward_command_controller`` taking
  std_msgs/Float64MultiArray positions, the policy node's ``forward_command_topic``);
* Gazebo's OdometryPublisher reports the base pose and twist, bridged to ROS as
  nav_msgs/Odometry on ``/odom`` (``config/gazebo/bridge.yaml``) for the policy node's
  ``base_state: odometry``, and ``/clock`` so every node runs on simulation time;
* ``config/gazebo/world.sdf``: flat ground with the characters' friction, 1 kHz physics.

What differs from training: ``gz_ros2_control`` tracks a position command with its
own loop (a joint velocity proportional to the position error, bounded by the URDF's
effort limits), not mimic's PD law (:mod:`mimic_sim.pd`) with the character's gains,
so a policy meets slightly different actuators there than in ``sim_node``.

Nothing here can run on a platform without Gazebo: ``gazebo_launch_description`` imports
the ROS 2 launch packages when called; the rest is plain Python and tested here.
"""

from __future__ import annotations

import argparse
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import yaml

from mimic_sim.character import Character, load_character
from mimic_sim.paths import atomic_write_text, find_config

CONTROLLERS = "gazebo/controllers.yaml"
BRIDGE = "gazebo/bridge.yaml"
WORLD = "gazebo/world.sdf"
POSITION_CONTROLLER = "joint_position_controller"
STATE_BROADCASTER = "joint_state_broadcaster"
ODOMETRY_GZ_TOPIC = "/mimic/odometry"
ODOMETRY_HZ = 200.0


def controller_joints(controllers: Path | None = None, controller: str = POSITION_CONTROLLER) -> list[str]:
    """The joints a controller of ``controllers.yaml`` commands, in its order."""
    path = controllers or find_config(CONTROLLERS)
    data = yaml.safe_load(Path(path).read_text()) or {}
    try:
        joints = data[controller]["ros__parameters"]["joints"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: no field '{controller}.ros__parameters.joints'") from exc
    if not isinstance(joints, list) or not all(isinstance(j, str) for j in joints):
        raise ValueError(f"{path}: field '{controller}.ros__parameters.joints' must be a list of joint names")
    return joints


def reference_pose(character: Character, clip: str, start_time: float = 0.0) -> np.ndarray:
    """``qpos`` of a clip at ``start_time``: where the robot starts in Gazebo (the policy's
    first reference state, as in ``mimic launch play``)."""
    from mimic_sim.motion_file import load_clip
    from mimic_sim.reference import ReferenceMotion

    qpos, _ = ReferenceMotion(load_clip(clip, character.name), character).state(start_time)
    return qpos


def roll_pitch_yaw(quat_wxyz: np.ndarray) -> tuple[float, float, float]:
    """Fixed-axis x, y, z angles (URDF / ``ros_gz_sim create`` convention) of a quaternion."""
    w, x, y, z = np.asarray(quat_wxyz, dtype=float) / np.linalg.norm(quat_wxyz)
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x))))
    yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return roll, pitch, yaw


def spawn_arguments(qpos: np.ndarray, clearance: float = 0.01) -> list[str]:
    """``ros_gz_sim create`` pose arguments putting the root at ``qpos``'s root pose,
    ``clearance`` higher so that no foot starts inside the ground."""
    roll, pitch, yaw = roll_pitch_yaw(qpos[3:7])
    values = {"-x": qpos[0], "-y": qpos[1], "-z": qpos[2] + clearance, "-R": roll, "-P": pitch, "-Y": yaw}
    return [item for key, value in values.items() for item in (key, f"{value:.6f}")]


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def gazebo_urdf(character: Character, qpos: np.ndarray | None = None, controllers: Path | None = None) -> str:
    """The character's URDF with ``gz_ros2_control`` and odometry for Gazebo.

    ``qpos``: the pose to start in (its joint angles become the joints' initial positions;
    default all zero).  Every joint ``controllers.yaml``'s position controller names must
    be an actuated joint of the character, and the other way round.
    """
    controllers = Path(controllers or find_config(CONTROLLERS)).resolve()
    commanded = controller_joints(controllers)
    names = character.joint_names
    unknown = [j for j in commanded if j not in names]
    uncommanded = [j for j in names if j not in commanded]
    if unknown or uncommanded:
        raise ValueError(f"{controllers}: {POSITION_CONTROLLER} joints do not match character '{character.name}': "
                         f"unknown {unknown}, missing {uncommanded}")
    angles = np.zeros(len(names)) if qpos is None else np.asarray(qpos, dtype=float)[7:]
    lower, upper = character.joint_lower, character.joint_upper
    outside = [n for n, a, lo, hi in zip(names, angles, lower, upper, strict=True) if not lo <= a <= hi]
    if outside:
        raise ValueError(f"initial pose puts joints {outside} outside their limits")

    # ElementTree, not urdfdom-py: it has no <ros2_control> and would drop the model's extensions (docs/architecture.md)
    robot = ET.parse(character.model_path).getroot()
    control = _sub(robot, "ros2_control", name="GazeboSimSystem", type="system")
    _sub(_sub(control, "hardware"), "plugin", "gz_ros2_control/GazeboSimSystem")
    for name, angle, lo, hi in zip(names, angles, lower, upper, strict=True):
        joint = _sub(control, "joint", name=name)
        command = _sub(joint, "command_interface", name="position")
        _sub(command, "param", f"{lo:.6g}", name="min")
        _sub(command, "param", f"{hi:.6g}", name="max")
        _sub(_sub(joint, "state_interface", name="position"), "param", f"{angle:.9g}", name="initial_value")
        _sub(joint, "state_interface", name="velocity")
    plugins = _sub(robot, "gazebo")
    ros2_control = _sub(plugins, "plugin", filename="gz_ros2_control-system",
                        name="gz_ros2_control::GazeboSimROS2ControlPlugin")
    _sub(ros2_control, "parameters", str(controllers))
    odometry = _sub(plugins, "plugin", filename="gz-sim-odometry-publisher-system",
                    name="gz::sim::systems::OdometryPublisher")
    for tag, text in (("odom_frame", "world"), ("robot_base_frame", character.root_body),
                      ("odom_topic", ODOMETRY_GZ_TOPIC), ("odom_publish_frequency", f"{ODOMETRY_HZ:g}"),
                      ("dimensions", "3")):
        _sub(odometry, tag, text)
    for body in character.ground_contact_allowed:  # Gazebo takes friction per link
        surface = _sub(robot, "gazebo", reference=body)
        _sub(surface, "mu1", f"{character.ground_friction:g}")
        _sub(surface, "mu2", f"{character.ground_friction:g}")
    ET.indent(robot)
    return ET.tostring(robot, encoding="unicode", xml_declaration=True) + "\n"


def gazebo_launch_description():  # -> launch.LaunchDescription, on an apt ROS 2 with Gazebo only
    """``launch/gazebo.launch.py``: Gazebo with the world, the robot spawned in its clip's pose,
    its controllers and the bridge, then mimic's nodes of ``launch/gazebo.yaml``."""
    from ament_index_python.packages import get_package_share_directory
    from launch import LaunchDescription
    from launch.actions import IncludeLaunchDescription, OpaqueFunction
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    from mimic_sim.tools.graph import ros2_launch_description

    mimic_nodes = ros2_launch_description("gazebo")  # declares the scenario's arguments too

    def robot(context) -> list:
        character = load_character(LaunchConfiguration("character").perform(context))
        qpos = reference_pose(character, LaunchConfiguration("clip").perform(context),
                              float(LaunchConfiguration("start_time").perform(context)))
        return [
            Node(package="robot_state_publisher", executable="robot_state_publisher", output="screen",
                 parameters=[{"robot_description": gazebo_urdf(character, qpos), "use_sim_time": True}]),
            Node(package="ros_gz_sim", executable="create", output="screen",
                 arguments=["-topic", "robot_description", "-name", character.name, *spawn_arguments(qpos)]),
        ]

    gz_sim = Path(get_package_share_directory("ros_gz_sim")) / "launch" / "gz_sim.launch.py"
    return LaunchDescription([
        mimic_nodes,  # first: it declares the arguments (and their defaults) that robot() reads
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(gz_sim)),
                                 launch_arguments={"gz_args": f"-r {find_config(WORLD)}"}.items()),
        Node(package="ros_gz_bridge", executable="parameter_bridge", output="screen",
             parameters=[{"config_file": str(find_config(BRIDGE)), "use_sim_time": True}]),
        OpaqueFunction(function=robot),
        Node(package="controller_manager", executable="spawner", output="screen",
             arguments=[STATE_BROADCASTER, POSITION_CONTROLLER, "--controller-manager", "/controller_manager"]),
    ])


# ----------------------------------------------------------------- mimic urdf
def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "urdf", help="write a character's URDF (with --gazebo: with gz_ros2_control and odometry for Gazebo)",
        description="Write the URDF mimic simulates a character with; --gazebo adds the gz_ros2_control block "
                    "(position interfaces, initial positions from a clip), config/gazebo/controllers.yaml as its "
                    "parameters, Gazebo's odometry publisher and foot friction.")
    parser.add_argument("--character", default="humanoid")
    parser.add_argument("--gazebo", action="store_true", help="add the Gazebo / gz_ros2_control elements")
    parser.add_argument("--clip", default="walk", help="with --gazebo: clip whose pose sets the initial positions")
    parser.add_argument("--start-time", type=float, default=0.0, help="with --gazebo: clip time of that pose")
    parser.add_argument("-o", "--output", type=Path, default=None, help="file to write (default: standard output)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> None:
    character = load_character(args.character)
    if args.gazebo:
        text = gazebo_urdf(character, reference_pose(character, args.clip, args.start_time))
    else:
        text = character.model_path.read_text()
    if args.output is None:
        print(text, end="")
    else:
        atomic_write_text(args.output, text)
        print(f"wrote {args.output}")
