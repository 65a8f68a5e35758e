"""ros2 launch mimic sim.launch.py [clip:=walk] [backend:=mujoco] [track_reference:=false]

The graph is declared in sim.yaml next to this file; `mimic launch sim` runs the same graph.
"""

from mimic_sim.tools.graph import ros2_launch_description


def generate_launch_description():
    return ros2_launch_description("sim")
