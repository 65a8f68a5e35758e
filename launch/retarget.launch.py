"""ros2 launch mimic retarget.launch.py [source:=walk] [robot:=h1] [rate:=30.0] [output:=]

The graph is declared in retarget.yaml next to this file; `mimic launch retarget` runs the same graph.
"""

from mimic_sim.tools.graph import ros2_launch_description


def generate_launch_description():
    return ros2_launch_description("retarget")
