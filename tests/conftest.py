"""Test-wide settings: DDS stays on this machine, in a domain of its own."""

import os

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", "200")  # tests that talk over DDS take their own (ros_helpers)
os.environ.setdefault("MUJOCO_GL", "egl")
