"""``video_player``: a video file played as a camera, for users without one and for tests.

Topics:    image (sensor_msgs/Image, rgb8), published at the video's frame rate (or ``rate``),
           each stamped with the time it is sent, as a camera driver stamps its images.

Frames are decoded as ``mimic video`` decodes them (:func:`mimic_retarget.pose_estimation.read_video`)
and scaled to ``width`` if set; with ``wait_for_subscribers`` the first frame waits until the
nodes downstream listen, on the images and on what is made of them (a recorder of the pose
estimates), so none is lost to discovery.  Not looping, the node stops
``end_wait`` seconds after the last frame, which ends the ``video`` scenario.

Over Fast DDS the node publishes through :func:`image_transport_profile` (a shared-memory
segment that holds whole images), unless ``FASTDDS_DEFAULT_PROFILES_FILE`` names a profile
of the user's: a camera driver feeding ``pose_node`` on the same machine wants the same.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from mimic_retarget.node_params import VideoPlayerParams
from mimic_retarget.pose_estimation import read_video
from mimic_retarget.sample_videos import VIDEOS, video_path
from mimic_sim.nodes.common import SubscriberWait, parameter, run_node
from mimic_sim.nodes.parameters import declare_settings
from mimic_sim.paths import atomic_write_text, cache_dir

SHM_SEGMENT_BYTES = 16 * 2**20
"""Fast DDS shared-memory segment of a process publishing images: room for the images its readers
have not released yet (17 at 640x480 rgb8, 2 at 1920x1080).  Fast DDS's default segment, 512 kB,
holds less than one 640x480 rgb8 image (921.6 kB): the fragments that do not fit are dropped and
sent again after the reliable protocol's heartbeat and acknack, which made each such image
arrive ~12 ms late instead of ~1.5 ms (bench/pose_node_latency.py)."""

IMAGE_TRANSPORT_PROFILE = f"""<?xml version="1.0" encoding="UTF-8" ?>
<!-- Written by mimic (mimic_retarget.nodes.video_player.image_transport_profile): Fast DDS's default
     transports, shared memory and UDPv4, with a shared-memory segment that holds whole images. -->
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <transport_descriptors>
      <transport_descriptor>
        <transport_id>shm_images</transport_id>
        <type>SHM</type>
        <segment_size>{SHM_SEGMENT_BYTES}</segment_size>
      </transport_descriptor>
      <transport_descriptor>
        <transport_id>udp</transport_id>
        <type>UDPv4</type>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="mimic_images" is_default_profile="true">
      <rtps>
        <userTransports>
          <transport_id>shm_images</transport_id>
          <transport_id>udp</transport_id>
        </userTransports>
        <useBuiltinTransports>false</useBuiltinTransports>
      </rtps>
    </participant>
  </profiles>
</dds>
"""


def image_transport_profile() -> Path:
    """:data:`IMAGE_TRANSPORT_PROFILE` as a file in mimic's cache, for ``FASTDDS_DEFAULT_PROFILES_FILE``."""
    path = cache_dir() / "fastdds" / "images.xml"
    if not path.is_file() or path.read_text() != IMAGE_TRANSPORT_PROFILE:
        atomic_write_text(path, IMAGE_TRANSPORT_PROFILE)
    return path


def use_image_transport_profile() -> None:
    """Make this process's Fast DDS participant, created by ``rclpy.init``, publish images through
    :func:`image_transport_profile`; a profile the user named already is kept."""
    if "FASTDDS_DEFAULT_PROFILES_FILE" in os.environ:
        return
    try:
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(image_transport_profile())
    except OSError as exc:  # an unwritable cache: the images still go, later (see SHM_SEGMENT_BYTES)
        print(f"video_player: Fast DDS's default transports ({exc})", file=sys.stderr)


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
        self.wait_for = SubscriberWait(self, params.wait_for_subscribers)
        self._playing = False
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
            if not self.wait_for.ready():
                return
            self._playing = True
            if self.wait_for.counts:
                self.get_logger().info("the subscribers waited for listen: playing")
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
    use_image_transport_profile()
    return run_node(VideoPlayer, args)


if __name__ == "__main__":
    raise SystemExit(main())
