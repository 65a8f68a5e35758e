"""The parameters of mimic_policy's ``policy_node``, declared once, without ROS.

The node declares the leaves of :class:`PolicyNodeParams` as its parameters
(:func:`mimic_sim.nodes.parameters.declare_settings`); ``config/policy_node.yaml`` and
``config/gazebo/policy_node.yaml`` set only what a scenario changes.  The trainer node's
parameters are ``mimic_policy.train_cli.TrainConfig``'s.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PolicyNodeParams:
    """``policy_node``: a trained policy commanding a simulated or real robot."""

    policy: str = ""
    """Checkpoint folder, run folder (its latest checkpoint), exported .onnx file, or shipped skill
    (g1/walk: policies/g1/walk/policy)."""
    rate_hz: float = 0.0
    """Commands per second; 0 = the checkpoint's control rate."""
    trigger: str = "timer"
    """'timer' (command at rate_hz) or 'state' (answer each new state: lockstep with sim_node's
    step_on_command)."""
    state_timeout: float = 0.0
    """A state older than this (s; joint_states or the base state) gets the damping command; 0 = 1.5 control
    periods."""
    reference_source: str = "topic"
    """'topic' (follow the clip time of ReferenceFrame messages) or 'clip' (play the checkpoint's clip here)."""
    start_time: float = 0.0
    """Clip time to start from with reference_source 'clip' (s)."""
    forward_command_topic: str = ""
    """Also publish Float64MultiArray target positions here, for a ros2_control forward_command_controller
    (while damping: the measured positions); empty: off."""
    forward_joint_names: tuple[str, ...] = ()
    """Joint order of the forward command; empty: the character's."""
    base_state: str = "topics"
    """'topics' (base_pose and base_twist, world frame) or 'odometry' (nav_msgs/Odometry on odom)."""
    autostart: bool = False
    """Configure and activate at start-up (on hardware, leave that to an operator)."""
