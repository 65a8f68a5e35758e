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
from mimic_retarget.node_params import HumanPlayerParams
from mimic_sim.deepmimic_format import shipped_clips
from mimic_sim.nodes.common import parameter, run_node
from mimic_sim.nodes.parameters import declare_settings


class HumanPlayer(Node):
    def __init__(self) -> None:
        super().__init__("human_player")
        params = declare_settings(self, HumanPlayerParams())
        self.loop, self.frame_id = params.loop, params.frame_id
        if params.rate <= 0:
            raise ValueError(f"parameter rate must be positive, got {params.rate}")
        with parameter("source", params.source, shipped_clips):
            self.motion, _ = load_source(params.source, None, params.bvh_map, params.bvh_scale or None,
                                         params.bvh_up or None)
        self.source = params.source
        m = self.motion
        # horizontal displacement of one cycle, carried forward when looping
        self._shift = np.zeros(3)
        if "pelvis" in m.names:
            self._shift[:2] = m.positions[-1, m.index("pelvis"), :2] - m.positions[0, m.index("pelvis"), :2]
        qos = QoSProfile(depth=params.qos_depth, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = self.create_publisher(HumanFrame, "human", qos)
        self._start = self.get_clock().now()
        self.create_timer(1.0 / params.rate, self._tick)
        self.get_logger().info(f"streaming '{params.source}' ({m.num_frames} frames, {m.duration:.2f} s, "
                               f"{len(m.names)} keypoints) at {params.rate:.1f} Hz")

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
