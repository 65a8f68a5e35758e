"""ROS 2 nodes of mimic_policy (the only modules here that import rclpy)."""
