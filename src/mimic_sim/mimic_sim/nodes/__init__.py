"""ROS 2 nodes: thin adapters over the simulation core (the only modules that import rclpy)."""
