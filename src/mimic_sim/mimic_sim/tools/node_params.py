"""The parameters of mimic_sim's ROS 2 nodes, declared once, without ROS.

Each node declares the leaves of its class here as its parameters
(:func:`mimic_sim.nodes.parameters.declare_settings`): the field's docstring is the
parameter's description, the field's default its default.  ``config/<node>.yaml``
files set only what a scenario changes.  These classes do not import rclpy, so the
parameter files can be checked against them anywhere (``tests/test_node_parameters.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mimic_sim.backends import SimConfig
from mimic_sim.commands import DEFAULT_GAIN_FACTOR, DEFAULT_MAX_TARGET_VELOCITY
from mimic_sim.stability import StateBounds
from mimic_sim.tools.bag import DEFAULT_CHUNK_SIZE


@dataclass(frozen=True)
class SimNodeParams:
    """``sim_node``: a character simulated in MuJoCo or PyBullet, driven by PD commands."""

    character: str = "humanoid"
    """Character config name (humanoid, atlas, h1, g1) or YAML path."""
    backend: str = "mujoco"
    """Physics engine: mujoco or pybullet."""
    sim: SimConfig = field(default_factory=SimConfig)
    realtime: bool = True
    """Pace to the wall clock; false runs as fast as possible and publishes /clock."""
    initial_pose: str = "stand"
    """'stand' (all joints 0, feet on the floor) or a clip name or file whose frame at initial_time starts
    the run (raised clear of the floor where the clip is below it, as a training episode starts)."""
    initial_time: float = 0.0
    """Clip time of the initial pose (s)."""
    track_reference: bool = False
    """Use the 'reference' topic's frames as open-loop PD targets and target velocities."""
    step_on_command: bool = False
    """Lockstep: one control step per accepted command instead of a timer."""
    duration: float = 0.0
    """End the node after this much sim time (s), once its reliable subscribers acknowledged every
    state; 0 = never."""
    wait_for_subscribers: tuple[str, ...] = ()
    """Lockstep: offer the first state only once each 'topic=count' has that many subscribers."""
    frame_id: str = "world"
    """World frame id."""
    publish_tf: bool = True
    """Publish the character's links on /tf."""
    tf_prefix: str = ""
    """Prefix of the link frames."""
    max_gain_factor: float = DEFAULT_GAIN_FACTOR
    """A command's kp and kd may be up to this many times the character's; beyond: refused."""
    max_target_velocity: float = DEFAULT_MAX_TARGET_VELOCITY
    """Largest target velocity a command may carry (rad/s); beyond: refused (effort: the character's torque
    limit)."""
    bounds: StateBounds = field(default_factory=StateBounds)


@dataclass(frozen=True)
class ReferencePublishing:
    """How a node publishes reference frames (reference_player, retarget_node)."""

    frame_id: str = "world"
    """Frame of the root pose."""
    qos_depth: int = 10
    """Queue depth of the reference topic (and of retarget_node's human subscription)."""
    publish_tf: bool = True
    """Publish the reference character's links on /tf."""
    tf_prefix: str = "reference/"
    """Prefix of the reference's link frames."""


@dataclass(frozen=True)
class ReferencePlayerParams:
    """``reference_player``: a reference clip streamed as ReferenceFrame messages."""

    clip: str = "walk"
    """Shipped clip name (walk, backflip, ...) or a motion file."""
    character: str = "humanoid"
    """Character config name or YAML path."""
    rate: float = 0.0
    """Frames per second; 0 = the clip's own frame rate."""
    time_scale: float = 1.0
    """Playback speed (1 = real time)."""
    loop: bool = True
    """Repeat the clip; false plays it once and holds the last frame."""
    start_time: float = 0.0
    """Clip time to start from (s)."""
    future_offsets: tuple[float, ...] = (0.0333, 0.0667)
    """Preview frames ahead of each frame (s); offsets <= 0 are left out."""
    autostart: bool = True
    """Start streaming immediately (else on ~/start)."""
    publishing: ReferencePublishing = field(default_factory=ReferencePublishing)


@dataclass(frozen=True)
class RecorderParams:
    """``recorder``: topics recorded into a rosbag2 bag."""

    topics: tuple[str, ...] = ()
    """Topics to record; empty: every topic seen on the graph (hidden ones excepted), looked for every
    discovery_period s."""
    output: str = ""
    """Bag folder to create (must not exist); empty: bags/mimic_<UTC timestamp>."""
    storage: str = "mcap"
    """Bag storage: mcap (crash-safe up to the last chunk) or sqlite3."""
    chunk_size_bytes: int = DEFAULT_CHUNK_SIZE
    """MCAP chunk size: messages are held in memory until a chunk is this full, then written and flushed
    (at most 1 MiB, rosbags' own chunk limit); a killed recording keeps every flushed chunk."""
    discovery_period: float = 1.0
    """Seconds between looks at the graph for new topics."""
    flush_period: float = 1.0
    """Seconds between flushes of a partly filled chunk (0: only when full)."""
    queue_depth: int = 1000
    """Subscription history depth (keep last); raise it for bursts faster than ~5 kHz."""
