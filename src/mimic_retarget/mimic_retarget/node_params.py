"""The parameters of mimic_retarget's ROS 2 nodes, declared once, without ROS.

Each node declares the leaves of its class as its parameters
(:func:`mimic_sim.nodes.parameters.declare_settings`); ``config/<node>.yaml`` files set
only what a scenario changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mimic_retarget.live_pose import LivePoseConfig
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
    bvh_map: str = "auto"
    """BVH joint map: auto (detected from the joint names), a shipped map (cmu, lafan1, mixamo,
    bandai_namco, anatomical, mimic) or a YAML map file (docs/retargeting.md)."""
    bvh_scale: float = 0.0
    """BVH length unit in metres; 0 = inferred from the skeleton's size."""
    bvh_up: str = ""
    """BVH up axis (x, y or z); empty = inferred from the skeleton."""
    frame_id: str = "world"
    """Frame of the positions."""
    qos_depth: int = 10
    """Publisher queue depth."""


@dataclass(frozen=True)
class PoseNodeParams:
    """``pose_node``: camera images to HumanFrame messages (MediaPipe Pose, filtered causally)."""

    estimator: LivePoseConfig = field(default_factory=LivePoseConfig)
    image_queue_depth: int = 1
    """Images held while one is processed (keep last): 1 = always the newest image, least latency."""
    image_reliable: bool = True
    """Subscribe to images reliably (matches video_player and cameras with the default QoS); false: best
    effort, for cameras publishing with the sensor-data QoS."""
    frame_id: str = "human"
    """Frame of the positions: level (Z up, x along the camera's view), origin at the person's hips."""
    qos_depth: int = 10
    """Queue depth of the human topic."""


@dataclass(frozen=True)
class VideoPlayerParams:
    """``video_player``: a video file played as a camera, sensor_msgs/Image messages."""

    video: str = "sports2d_demo"
    """Video file, or the name of a sample video fetched at set-up (mimic_retarget.sample_videos)."""
    rate: float = 0.0
    """Frames per second published; 0 = the video's own frame rate."""
    width: int = 0
    """Width the frames are scaled to, keeping their aspect ratio; 0 = the video's own."""
    loop: bool = False
    """Start over at the end; else stop end_wait s after the last frame."""
    end_wait: float = 1.0
    """Seconds to stay after the last frame (not looping), so the nodes downstream finish it."""
    wait_for_subscribers: tuple[str, ...] = ("image=1",)
    """Start playing once each 'topic=count' has that many subscribers (empty: at once)."""
    frame_id: str = "camera"
    """Frame of the images."""
    qos_depth: int = 10
    """Publisher queue depth."""
