"""``retarget_node``: human keypoint frames in, a robot's reference frames out, in real time.

Topics:    human (mimic_msgs/HumanFrame), subscribed: named 3D keypoints, e.g. from mocap or a
           pose estimator; reference (mimic_msgs/ReferenceFrame), published: the robot's root
           pose and joint positions by name (with backward-difference velocities), as
           ``reference_player`` publishes them, so it can stand in for it; /tf: the
           retargeted robot's links, prefixed ``tf_prefix`` (when ``publish_tf``).
Services:  ~/reset (std_srvs/Trigger): forget the stream (scale, standing height, feet).

Each frame runs :class:`mimic_retarget.retarget.StreamingRetargeter`.  A frame it cannot
use (a mapped keypoint missing, a NaN) is dropped with a throttled warning: nothing is
published for it and the node keeps running.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger
from tf2_msgs.msg import TFMessage

from mimic_msgs.msg import HumanFrame, ReferenceFrame
from mimic_retarget.node_params import RetargetNodeParams
from mimic_retarget.retarget import Retargeter, RetargetError, StreamingRetargeter
from mimic_sim.character import load_character
from mimic_sim.kinematics import LinkTree, PinocchioModel
from mimic_sim.nodes.common import character_names, parameter, run_node
from mimic_sim.nodes.conversions import reference_msg, stamp_ns, tf_message
from mimic_sim.nodes.parameters import declare_settings
from mimic_sim.playback import StreamFrame


class RetargetNode(Node):
    def __init__(self) -> None:
        super().__init__("retarget_node")
        params = declare_settings(self, RetargetNodeParams())
        self.label, self.frame_id, self.tf_prefix = params.clip, params.publishing.frame_id, params.publishing.tf_prefix
        with parameter("robot", params.robot, character_names):
            self.character = load_character(params.robot)
        self.stream = StreamingRetargeter(Retargeter(self.character), params.scale if params.scale > 0 else None)
        self._start: float | None = None
        qos = QoSProfile(depth=params.publishing.qos_depth, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = self.create_publisher(ReferenceFrame, "reference", qos)
        publish_tf = params.publishing.publish_tf
        self.tree = LinkTree(PinocchioModel(self.character), self.frame_id) if publish_tf else None
        self.tf_publisher = self.create_publisher(TFMessage, "/tf", 10) if publish_tf else None
        self.create_subscription(HumanFrame, "human", self._on_human, qos)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.get_logger().info(f"retargeting 'human' onto '{self.character.name}' "
                               f"({len(self.stream.retargeter.mapping.links)} mapped keypoints)")

    def _on_human(self, msg: HumanFrame) -> None:
        stamp = stamp_ns(msg) * 1e-9
        positions = np.array([[p.x, p.y, p.z] for p in msg.positions], dtype=float).reshape(-1, 3)
        try:  # the stream checks the frame (a position per name, finite, every mapped keypoint)
            qpos, qvel = self.stream.step(stamp, list(msg.names), positions, source=msg.source or "human")
        except RetargetError as exc:
            self.get_logger().warning(f"frame dropped: {exc}", throttle_duration_sec=1.0)
            return
        if self._start is None:
            self._start = stamp
        frame = StreamFrame(clip_time=stamp - self._start, phase=0.0, qpos=qpos, qvel=qvel, future=(), finished=False)
        out = reference_msg(frame, self.label, self.character.joint_names)
        out.header.stamp = msg.header.stamp
        out.header.frame_id = self.frame_id
        self.publisher.publish(out)
        if self.tree is not None:
            self.tf_publisher.publish(tf_message(self.tree.transforms(qpos), out.header.stamp, self.tf_prefix,
                                                 self.frame_id))

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.stream.reset()
        self._start = None
        response.success, response.message = True, "stream reset: the next frame starts a new one"
        return response


def main(args: Sequence[str] | None = None) -> int:
    return run_node(RetargetNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
