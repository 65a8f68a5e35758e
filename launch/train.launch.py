"""ros2 launch mimic train.launch.py [clip:=walk] [character:=humanoid] [samples:=10000000]

The graph is declared in train.yaml next to this file; `mimic launch train` runs the same graph.
"""

from mimic_sim.tools.graph import ros2_launch_description


def generate_launch_description():
    return ros2_launch_description("train")
