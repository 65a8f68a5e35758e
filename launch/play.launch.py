"""ros2 launch mimic play.launch.py policy:=RUN [character:=humanoid] [clip:=walk] [backend:=mujoco]
                                  [start_time:=0.0] [duration:=20.0]

The graph is declared in play.yaml next to this file; `mimic launch play` runs the same graph.
"""

from mimic_sim.tools.graph import ros2_launch_description


def generate_launch_description():
    return ros2_launch_description("play")
