"""``reference_player``: stream a reference clip as ``mimic_msgs/ReferenceFrame`` topics.

Topics:    reference (mimic_msgs/ReferenceFrame), in the character's joint names;
           /tf (tf2_msgs/TFMessage): the reference character's links, prefixed ``tf_prefix``
Services:  ~/start, ~/stop (std_srvs/Trigger), ~/seek (mimic_msgs/Seek)
"""

from __future__ import annotations

from collections.abc import Sequence

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger
from tf2_msgs.msg import TFMessage

from mimic_msgs.msg import ReferenceFrame
from mimic_msgs.srv import Seek
from mimic_sim.character import load_character
from mimic_sim.deepmimic_format import shipped_clips
from mimic_sim.kinematics import LinkTree, PinocchioModel
from mimic_sim.motion_file import load_clip
from mimic_sim.nodes.common import character_names, parameter, run_node
from mimic_sim.nodes.conversions import reference_msg, tf_message
from mimic_sim.nodes.parameters import declare_settings
from mimic_sim.playback import ReferenceStream
from mimic_sim.reference import ReferenceMotion
from mimic_sim.tools.node_params import ReferencePlayerParams


class ReferencePlayer(Node):
    def __init__(self) -> None:
        super().__init__("reference_player")
        params = declare_settings(self, ReferencePlayerParams())
        self.frame_id, self.tf_prefix = params.publishing.frame_id, params.publishing.tf_prefix
        with parameter("character", params.character, character_names):
            self.character = load_character(params.character)
        with parameter("clip", params.clip, shipped_clips):
            motion = load_clip(params.clip, self.character.name)
        self.clip = motion.name
        self.stream = ReferenceStream(ReferenceMotion(motion, self.character), time_scale=params.time_scale,
                                      loop=params.loop, start_time=params.start_time,
                                      future_offsets=tuple(o for o in params.future_offsets if o > 0))
        self.rate = params.rate if params.rate > 0 else motion.fps
        qos = QoSProfile(depth=params.publishing.qos_depth, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = self.create_publisher(ReferenceFrame, "reference", qos)
        publish_tf = params.publishing.publish_tf
        self.tree = LinkTree(PinocchioModel(self.character), self.frame_id) if publish_tf else None
        self.tf_publisher = self.create_publisher(TFMessage, "/tf", 10) if publish_tf else None
        self.create_service(Trigger, "~/start", self._on_start)
        self.create_service(Trigger, "~/stop", self._on_stop)
        self.create_service(Seek, "~/seek", self._on_seek)
        self.timer = self.create_timer(1.0 / self.rate, self._tick)
        if params.autostart:
            self.stream.play(self._now())
        self.get_logger().info(f"streaming '{self.clip}' ({motion.duration:.2f} s, loop={params.loop}) at "
                               f"{self.rate:.1f} Hz for character '{self.character.name}'")

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _tick(self) -> None:
        if not self.stream.playing:
            return
        now = self.get_clock().now()
        frame = self.stream.frame(now.nanoseconds * 1e-9)
        msg = reference_msg(frame, self.clip, self.character.joint_names)
        msg.header.stamp = now.to_msg()
        msg.header.frame_id = self.frame_id
        self.publisher.publish(msg)
        if self.tree is not None:
            self.tf_publisher.publish(tf_message(self.tree.transforms(frame.qpos), msg.header.stamp, self.tf_prefix,
                                                 self.frame_id))

    def _on_start(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.stream.play(self._now())
        response.success, response.message = True, f"playing '{self.clip}'"
        return response

    def _on_stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.stream.pause(self._now())
        response.success, response.message = True, f"paused at {self.stream.clip_time(self._now()):.3f} s"
        return response

    def _on_seek(self, request: Seek.Request, response: Seek.Response) -> Seek.Response:
        try:
            self.stream.seek(request.time, self._now())
        except ValueError as exc:
            response.success, response.message = False, str(exc)
        else:
            response.success, response.message = True, f"at {request.time:.3f} s"
        return response


def main(args: Sequence[str] | None = None) -> int:
    return run_node(ReferencePlayer, args)


if __name__ == "__main__":
    raise SystemExit(main())
