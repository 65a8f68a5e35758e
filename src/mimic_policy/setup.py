"""colcon (ament_python) build of mimic_policy on an apt-installed ROS 2; pip users install the root."""

from setuptools import find_packages, setup

setup(
    name="mimic_policy",
    version="0.1.0",
    packages=find_packages(include=["mimic_policy", "mimic_policy.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/mimic_policy"]),
        ("share/mimic_policy", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    entry_points={
        "console_scripts": ["trainer = mimic_policy.nodes.trainer:main",
                            "policy_node = mimic_policy.nodes.policy_node:main"],
        "mimic.commands": [
            "train = mimic_policy.train_cli:register",
            "eval = mimic_policy.evaluate:register",
            "play = mimic_policy.play_cli:register",
        ],
    },
)
