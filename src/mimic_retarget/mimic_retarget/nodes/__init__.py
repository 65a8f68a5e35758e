"""ROS 2 nodes of mimic_retarget: thin adapters over the retargeting core."""
