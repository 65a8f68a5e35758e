"""ros2 launch mimic video.launch.py [video:=sports2d_demo] [robot:=h1] [width:=640] [rate:=0.0] [loop:=false]
[camera_pitch:=0.0] [output:=]

The graph is declared in video.yaml next to this file; `mimic launch video` runs the same graph.
"""

from mimic_sim.tools.graph import ros2_launch_description


def generate_launch_description():
    return ros2_launch_description("video")
