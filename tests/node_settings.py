"""Which settings class each mimic node declares as its parameters (``declare_settings``), and what
it declares besides: shared by test_node_parameters (no ROS) and test_nodes (the running nodes)."""

from __future__ import annotations

from mimic_policy.node_params import PolicyNodeParams
from mimic_policy.train_cli import TrainConfig
from mimic_retarget.node_params import HumanPlayerParams, PoseNodeParams, RetargetNodeParams, VideoPlayerParams
from mimic_sim.settings import Leaf, leaves
from mimic_sim.tools.node_params import RecorderParams, ReferencePlayerParams, SimNodeParams

NODES = {
    "sim_node": SimNodeParams,
    "reference_player": ReferencePlayerParams,
    "recorder": RecorderParams,
    "policy_node": PolicyNodeParams,
    "retarget_node": RetargetNodeParams,
    "human_player": HumanPlayerParams,
    "pose_node": PoseNodeParams,
    "video_player": VideoPlayerParams,
    "trainer": TrainConfig,
}
"""Node name (the executable's too) -> the settings class whose leaves are its parameters."""

ROS_OWN = [Leaf("use_sim_time", ("use_sim_time",), bool, False, False, ""),
           Leaf("start_type_description_service", ("start_type_description_service",), bool, False, True, "")]
"""Every rclpy node's own parameters."""

EXTRA = {"trainer": [Leaf("run_dir", ("run_dir",), str, False, "", "")]}
"""Parameters declared one by one, besides the settings class (the trainer node's run folder)."""


def declared(node: str) -> dict[str, Leaf]:
    """Every parameter ``node`` declares: name -> leaf."""
    found = [*leaves(NODES[node]), *EXTRA.get(node, []), *ROS_OWN]
    return {leaf.name: leaf for leaf in found}
