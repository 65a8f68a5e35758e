"""The parameters of mimic_retarget's ROS 2 nodes, declared once, without ROS.

Each node declares the leaves of its class as its parameters
(:func:`mimic_sim.nodes.parameters.declare_settings`); ``config/<node>.yaml`` files set
only what a scenario changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mimic_sim.tools.node_params import ReferencePublishing


@dataclass(frozen=True)
class RetargetNodeParams:
    """``retarget_node``: human keypoint frames retargeted live onto a robot."""

    robot: str = "h1"
    """Character config name (atlas, h1, g1, humanoid) or YAML path of the target robot."""
    scale: float = 0.0
    """Human -> robot scale; 0 = the robot map's, else from the first frame's leg length."""
    clip: str = "live"
    """Clip name put on the published reference frames."""
    publishing: ReferencePublishing = field(default_factory=ReferencePublishing)


@dataclass(frozen=True)
class HumanPlayerParams:
    """``human_player``: human motion from a file streamed as HumanFrame messages."""

    source: str = "walk"
    """Clip name or file: DeepMimic clip, .bvh, keypoints .npz."""
    rate: float = 30.0
    """Frames per second published."""
    loop: bool = True
    """Repeat the motion (moving on by its displacement each cycle)."""
    bvh_map: str = "cmu"
    """BVH joint names: cmu, lafan1, mimic."""
    bvh_scale: float = 0.01
    """BVH length unit in metres."""
    frame_id: str = "world"
    """Frame of the positions."""
    qos_depth: int = 10
    """Publisher queue depth."""
