"""colcon (ament_python) build of mimic_retarget on an apt-installed ROS 2; pip users install the root."""

from setuptools import find_packages, setup

setup(
    name="mimic_retarget",
    version="0.1.0",
    packages=find_packages(include=["mimic_retarget", "mimic_retarget.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/mimic_retarget"]),
        ("share/mimic_retarget", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    entry_points={
        "console_scripts": ["retarget_node = mimic_retarget.nodes.retarget_node:main",
                            "human_player = mimic_retarget.nodes.human_player:main",
                            "pose_node = mimic_retarget.nodes.pose_node:main",
                            "video_player = mimic_retarget.nodes.video_player:main"],
        "mimic.commands": ["retarget = mimic_retarget.cli:register",
                           "video = mimic_retarget.video_cli:register"],
    },
)
