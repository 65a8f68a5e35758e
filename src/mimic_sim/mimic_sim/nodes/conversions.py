"""Core state <-> ROS messages.  mimic's quaternions are (w, x, y, z), ROS's (x, y, z, w)."""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Pose, TransformStamped, Twist
from tf2_msgs.msg import TFMessage

from mimic_msgs.msg import FutureFrame, ReferenceFrame
from mimic_sim.playback import StreamFrame


def pose_msg(position: np.ndarray, quat_wxyz: np.ndarray) -> Pose:
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in position)
    pose.orientation.w, pose.orientation.x, pose.orientation.y, pose.orientation.z = (float(v) for v in quat_wxyz)
    return pose


def twist_msg(linear: np.ndarray, angular: np.ndarray) -> Twist:
    twist = Twist()
    twist.linear.x, twist.linear.y, twist.linear.z = (float(v) for v in linear)
    twist.angular.x, twist.angular.y, twist.angular.z = (float(v) for v in angular)
    return twist


def stamp_ns(msg_or_time) -> int:
    """A message's header stamp, or a builtin_interfaces/Time, in whole nanoseconds."""
    header = getattr(msg_or_time, "header", None)
    stamp = msg_or_time if header is None else header.stamp
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def duration_msg(seconds: float) -> Duration:
    whole = int(np.floor(seconds))
    return Duration(sec=whole, nanosec=round((seconds - whole) * 1e9))


def reference_msg(frame: StreamFrame, clip: str, joint_names: list[str]) -> ReferenceFrame:
    """A stream frame as a ReferenceFrame (header left to the caller)."""
    msg = ReferenceFrame()
    msg.clip = clip
    msg.phase = float(frame.phase)
    msg.clip_time = float(frame.clip_time)
    msg.root_pose = pose_msg(frame.qpos[:3], frame.qpos[3:7])
    msg.root_twist = twist_msg(frame.qvel[:3], frame.qvel[3:6])
    msg.joint_names = joint_names
    msg.positions = frame.qpos[7:].tolist()
    msg.velocities = frame.qvel[6:].tolist()
    msg.future = [FutureFrame(offset=duration_msg(offset), root_pose=pose_msg(q[:3], q[3:7]), positions=q[7:].tolist())
                  for offset, q in frame.future]
    return msg


def tf_message(transforms: list[tuple[str, str, np.ndarray, np.ndarray]], stamp, prefix: str = "",
               world_frame: str = "world") -> TFMessage:
    """``LinkTree.transforms`` as a TFMessage; link frames get ``prefix``, the world frame does not."""
    out = TFMessage()
    for parent, child, xyz, quat_xyzw in transforms:
        t = TransformStamped()
        t.header.stamp = stamp
        t.header.frame_id = parent if parent == world_frame else prefix + parent
        t.child_frame_id = prefix + child
        t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = (float(v) for v in xyz)
        r = t.transform.rotation
        r.x, r.y, r.z, r.w = (float(v) for v in quat_xyzw)
        out.transforms.append(t)
    return out
