"""colcon (ament_python) build of mimic_sim on an apt-installed ROS 2.

pip users install the repository root instead (pyproject.toml); both declare the same
Python package and console scripts.
"""

from setuptools import find_packages, setup

setup(
    name="mimic_sim",
    version="0.1.0",
    packages=find_packages(include=["mimic_sim", "mimic_sim.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/mimic_sim"]),
        ("share/mimic_sim", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "mimic = mimic_sim.tools.cli:main",
            "reference_player = mimic_sim.nodes.reference_player:main",
            "sim_node = mimic_sim.nodes.sim_node:main",
            "recorder = mimic_sim.nodes.recorder:main",
        ],
        "mimic.commands": [
            "render = mimic_sim.tools.render_cli:register",
            "launch = mimic_sim.tools.launch_cli:register",
        ],
    },
)
