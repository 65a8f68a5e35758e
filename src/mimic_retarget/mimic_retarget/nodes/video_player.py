"""``video_player``: a video file played as a camera, for users without one and for tests.

Topics:    image (sensor_msgs/Image, rgb8), published at the video's frame rate (or ``rate``),
           each stamped with the time it is sent, as a camera driver stamps its images.

Frames are decoded as ``mimic video`` decodes them (:func:`mimic_retarget.pose_estimation.read_video`)
and scaled to ``width`` if set; with ``wait_for_subscribers`` the first frame waits until the
nodes downstream listen, so none is lost to discovery.  Not looping, the node stops
``end_wait`` seconds after the last frame, which ends the ``video`` scenario.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from mimic_retarget.node_params import VideoPlayerParams
from mimic_retarget.pose_estimation import read_video
from mimic_retarget.sample_videos import VIDEOS, video_path
from mimic_sim.nodes.common import parameter, run_node
from mimic_sim.nodes.parameters import declare_settings


def resolve_video(name: str) -> Path:
    """A sample video's name (fetched at set-up) or a video file."""
    return video_path(name) if name in VIDEOS else Path(name)


class VideoPlayer(Node):
    def __init__(self) -> None:
        super().__init__("video_player")
        params = declare_settings(self, VideoPlayerParams())
        if params.rate < 0 or params.width < 0 or params.end_wait < 0:
            raise ValueError(f"parameters rate ({params.rate}), width ({params.width}) and end_wait "
                             f"({params.end_wait}) must not be negative")
        self.params = params
        with parameter("video", params.video, lambda: sorted(VIDEOS)):
            self.path = resolve_video(params.video)
            self._frames, size, fps, count = read_video(self.path)
        self.size = size if params.width == 0 else (params.width, round(size[1] * params.width / size[0]))
        self.finished = False
        self._playing = params.wait_for_subscribers == 0
        self.publisher = self.create_publisher(
            Image, "image", QoSProfile(depth=params.qos_depth, reliability=ReliabilityPolicy.RELIABLE))
        rate = params.rate or fps
        self._timer = self.create_timer(1.0 / rate, self._tick)
        self.get_logger().info(f"playing {self.path} ({count} frames at {fps:g} frames/s, {size[0]} x {size[1]}) "
                               f"as {self.size[0]} x {self.size[1]} images at {rate:g} frames/s"
                               + (", looping" if params.loop else ""))

    def _next_frame(self) -> np.ndarray | None:
        frame = next(self._frames, None)
        if frame is None and self.params.loop:
            self._frames = read_video(self.path)[0]
            frame = next(self._frames, None)
        return frame

    def _tick(self) -> None:
        if not self._playing:
            if self.publisher.get_subscription_count() < self.params.wait_for_subscribers:
                return
            self._playing = True
            self.get_logger().info(f"{self.publisher.get_subscription_count()} subscriber(s) listen: playing")
        frame = self._next_frame()
        if frame is None:
            self._timer.cancel()
            self.get_logger().info(f"end of {self.path}")
            self.create_timer(max(self.params.end_wait, 1e-3), self._finish)
            return
        if self.params.width:
            import cv2

            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        msg = Image(height=self.size[1], width=self.size[0], encoding="rgb8", is_bigendian=0, step=3 * self.size[0])
        msg.data = frame.tobytes()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.params.frame_id
        self.publisher.publish(msg)

    def _finish(self) -> None:
        self.finished = True


def main(args: Sequence[str] | None = None) -> int:
    return run_node(VideoPlayer, args)


if __name__ == "__main__":
    raise SystemExit(main())
