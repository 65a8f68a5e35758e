"""ros2 launch mimic gazebo.launch.py policy:=RUN [character:=humanoid] [clip:=walk] [start_time:=0.0]

Gazebo Harmonic, the robot with gz_ros2_control, the bridge, then the nodes of gazebo.yaml
next to this file (mimic_sim.tools.gazebo).  Needs an apt ROS 2 with ros_gz and gz_ros2_control;
`mimic launch gazebo` refuses it.
"""

from mimic_sim.tools.gazebo import gazebo_launch_description


def generate_launch_description():
    return gazebo_launch_description()
