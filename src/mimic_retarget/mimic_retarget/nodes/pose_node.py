"""``pose_node``: camera images in, the person's human keypoints out, live.

Topics:    image (sensor_msgs/Image), subscribed (reliable or not, keep last ``image_queue_depth``):
           rgb8, bgr8, rgba8, bgra8 or mono8, any size; human (mimic_msgs/HumanFrame),
           published: one per image showing a person, stamped with the image's stamp, the
           18 keypoints retarget_node reads (level, Z up, relative to the hips).

Each image runs :class:`mimic_retarget.live_pose.LivePoseEstimator` (MediaPipe Pose, then a
one-euro filter on the image stamps: no look-ahead; its lag is documented there).  An image
without a person gives no HumanFrame (a throttled log line); an image whose fields do not
describe its data is dropped with a throttled one-line warning, and the node carries on.

Latency: the node's time per image is MediaPipe's; the transport adds ~1.5 ms when the camera
publishes over Fast DDS through a shared-memory segment that holds whole images, as
``video_player`` does (:func:`mimic_retarget.nodes.video_player.image_transport_profile`), and
~12 ms per 640x480 image with Fast DDS's default 512 kB segment (``bench/pose_node_latency.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from geometry_msgs.msg import Point
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from mimic_msgs.msg import HumanFrame
from mimic_retarget.live_pose import ImageError, LivePoseEstimator, image_rgb
from mimic_retarget.node_params import PoseNodeParams
from mimic_sim.nodes.common import run_node
from mimic_sim.nodes.conversions import stamp_ns
from mimic_sim.nodes.parameters import declare_settings


class PoseNode(Node):
    def __init__(self) -> None:
        super().__init__("pose_node")
        params = declare_settings(self, PoseNodeParams())
        self.frame_id = params.frame_id
        self.estimator = LivePoseEstimator(params.estimator)
        self.publisher = self.create_publisher(
            HumanFrame, "human", QoSProfile(depth=params.qos_depth, reliability=ReliabilityPolicy.RELIABLE))
        # Reliable by default: over Fast DDS a best-effort 640x480 image (900 kB, fragmented) is mostly lost
        # on a busy machine.  Keep last: a stale image is worth less than a new one.
        reliability = ReliabilityPolicy.RELIABLE if params.image_reliable else ReliabilityPolicy.BEST_EFFORT
        self.create_subscription(Image, "image", self._on_image,
                                 QoSProfile(depth=params.image_queue_depth, reliability=reliability))
        self.get_logger().info("estimating the pose in 'image' onto 'human' (MediaPipe Pose, one-euro filter: "
                               f"lag {1e3 * self.estimator.filter.lag(0.0):.0f} ms at rest, "
                               f"{1e3 * self.estimator.filter.lag(1.0):.0f} ms at 1 m/s)")

    def _on_image(self, msg: Image) -> None:
        try:
            rgb = image_rgb(msg.encoding, msg.width, msg.height, msg.step, msg.data)
        except ImageError as exc:
            self.get_logger().warning(f"image dropped: {exc}", throttle_duration_sec=1.0)
            return
        stamp = stamp_ns(msg) * 1e-9
        positions = self.estimator.estimate(rgb, stamp)
        if positions is None:
            self.get_logger().info("no person in the image", throttle_duration_sec=5.0)
            return
        out = HumanFrame(source=msg.header.frame_id or "camera", names=list(self.estimator.names),
                         positions=[Point(x=float(x), y=float(y), z=float(z)) for x, y, z in positions])
        out.header.stamp = msg.header.stamp
        out.header.frame_id = self.frame_id
        self.publisher.publish(out)

    def close(self) -> None:
        self.estimator.close()


def main(args: Sequence[str] | None = None) -> int:
    return run_node(PoseNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
