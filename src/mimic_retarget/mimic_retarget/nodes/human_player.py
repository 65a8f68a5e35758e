"""``human_player``: stream human motion (a clip, a BVH file, keypoints) as ``mimic_msgs/HumanFrame``.

Topics:    human (mimic_msgs/HumanFrame), published at ``rate``: the keypoints at the
           stream's clip time (interpolated), in metres, Z up.

What a motion-capture system or a pose estimator would publish, from a file: the
source of the ``retarget`` scenario (human_player -> retarget_node -> recorder).
A looping stream moves the keypoints forward by the motion's displacement each
cycle, so a looping walk keeps walking.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from geometry_msgs.msg import Point
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from mimic_msgs.msg import HumanFrame
from mimic_retarget.cli import load_source
from mimic_sim.deepmimic_format import shipped_clips
from mimic_sim.nodes.common import declare, parameter, run_node


class HumanPlayer(Node):
    def __init__(self) -> None:
        super().__init__("human_player")
        source = str(declare(self, "source", "walk", "clip name or file: DeepMimic clip, .bvh, keypoints .npz"))
        rate = float(declare(self, "rate", 30.0, "frames per second published"))
        self.loop = bool(declare(self, "loop", True, "repeat the motion (moving on by its displacement)"))
        bvh_map = str(declare(self, "bvh_map", "cmu", "BVH joint names: cmu, lafan1, mimic"))
        bvh_scale = float(declare(self, "bvh_scale", 0.01, "BVH length unit in metres"))
        self.frame_id = str(declare(self, "frame_id", "world", "frame of the positions"))
        depth = int(declare(self, "qos_depth", 10, "publisher queue depth"))
        if rate <= 0:
            raise ValueError(f"parameter rate must be positive, got {rate}")
        with parameter("source", source, shipped_clips):
            self.motion, _ = load_source(source, None, bvh_map, bvh_scale)
        self.source = source
        m = self.motion
        # horizontal displacement of one cycle, carried forward when looping
        self._shift = np.zeros(3)
        if "pelvis" in m.names:
            self._shift[:2] = m.positions[-1, m.index("pelvis"), :2] - m.positions[0, m.index("pelvis"), :2]
        self.publisher = self.create_publisher(HumanFrame, "human",
                                               QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE))
        self._start = self.get_clock().now()
        self.create_timer(1.0 / rate, self._tick)
        self.get_logger().info(f"streaming '{source}' ({m.num_frames} frames, {m.duration:.2f} s, "
                               f"{len(m.names)} keypoints) at {rate:.1f} Hz")

    def _tick(self) -> None:
        now = self.get_clock().now()
        m = self.motion
        elapsed = (now - self._start).nanoseconds * 1e-9
        cycles, offset = divmod(elapsed, m.duration) if self.loop else (0, min(elapsed, m.duration))
        positions, _ = m.at(float(m.times[0] + offset))
        positions = positions + cycles * self._shift
        msg = HumanFrame(source=self.source, names=list(m.names),
                         positions=[Point(x=float(x), y=float(y), z=float(z)) for x, y, z in positions])
        msg.header.stamp = now.to_msg()
        msg.header.frame_id = self.frame_id
        self.publisher.publish(msg)


def main(args: Sequence[str] | None = None) -> int:
    return run_node(HumanPlayer, args)


if __name__ == "__main__":
    raise SystemExit(main())
