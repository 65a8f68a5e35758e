"""Recording throughput: the bag writer alone, and the recorder node at 1 kHz.

1. ``BagWriter`` writing pre-serialized 30-joint ``sensor_msgs/JointState`` messages
   (what the recorder does with raw subscriptions), against its peer in the same run:
   rosbags' own writer fed message objects it serializes itself (what a recorder that
   re-serializes would do).  Messages per second, one process.
2. The ``recorder`` node recording a 30-joint JointState stream published at 1 kHz by
   another process for ``--seconds``: messages in the bag versus messages sent (drops).

Usage:  python bench/recorder_throughput.py [--seconds 20] [--no-record]
Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import record_section

JOINTS = [f"joint_{i:02d}" for i in range(30)]


def writer_throughput(count: int) -> dict:
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore
    from sensor_msgs.msg import JointState

    from mimic_sim.tools.bag import BagWriter

    msg = JointState(name=JOINTS, position=[0.1] * 30, velocity=[0.2] * 30, effort=[0.3] * 30)
    raw = serialize_message(msg)  # non-empty arrays: rclpy's serializer is exact here
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with BagWriter(Path(tmp) / "raw") as bag:
            bag.add_topic("/joint_states", "sensor_msgs/msg/JointState")
            for i in range(count):
                bag.write("/joint_states", i * 1_000_000, raw)
        raw_rate = count / (time.perf_counter() - start)

        store = get_typestore(Stores.ROS2_KILTED)
        joint_state = store.types["sensor_msgs/msg/JointState"]
        header = store.types["std_msgs/msg/Header"]
        stamp = store.types["builtin_interfaces/msg/Time"]
        import numpy as np

        value = joint_state(header=header(stamp=stamp(sec=0, nanosec=0), frame_id=""), name=JOINTS,
                            position=np.full(30, 0.1), velocity=np.full(30, 0.2), effort=np.full(30, 0.3))
        start = time.perf_counter()
        with Writer(Path(tmp) / "peer", version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP) as writer:
            connection = writer.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=store)
            for i in range(count):
                writer.write(connection, i * 1_000_000, store.serialize_cdr(value, "sensor_msgs/msg/JointState"))
        peer_rate = count / (time.perf_counter() - start)
    return {"bagwriter_raw_msgs_per_s": raw_rate, "rosbags_serializing_msgs_per_s": peer_rate}


def node_at_1khz(seconds: float) -> dict:
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState

    from mimic_sim.tools.bag import read_bag

    tmp = Path(tempfile.mkdtemp())
    bag = tmp / "bag"
    recorder = subprocess.Popen([str(Path(sys.executable).parent / "recorder"), "--ros-args", "-p",
                                 "topics:=[/bench_joint_states]", "-p", f"output:={bag}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    rclpy.init()
    node = rclpy.create_node("bench_recorder_publisher")
    pub = node.create_publisher(JointState, "/bench_joint_states",
                                QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))
    deadline = time.monotonic() + 20
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    msg = JointState(name=JOINTS, position=[0.1] * 30, velocity=[0.2] * 30, effort=[0.3] * 30)
    count = int(seconds * 1000)
    start = time.monotonic()
    for i in range(count):
        target = start + i / 1000.0
        while time.monotonic() < target:
            left = target - time.monotonic()
            if left > 3e-4:
                time.sleep(left - 2e-4)
        msg.header.frame_id = str(i)
        pub.publish(msg)
    rate = count / (time.monotonic() - start)
    pub.wait_for_all_acked(rclpy.duration.Duration(seconds=5))
    recorder.send_signal(signal.SIGINT)
    code = recorder.wait(timeout=30)
    node.destroy_node()
    rclpy.shutdown()
    received = [int(m.header.frame_id) for _, _, m in read_bag(bag)]
    in_order = received == sorted(received)
    return {"sent": count, "publish_rate_hz": rate, "recorded": len(received), "dropped": count - len(set(received)),
            "in_order": in_order, "recorder_exit": code}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--messages", type=int, default=200_000, help="messages for the writer comparison")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    writer = writer_throughput(args.messages)
    ratio = writer["bagwriter_raw_msgs_per_s"] / writer["rosbags_serializing_msgs_per_s"]
    print(f"BagWriter, raw CDR: {writer['bagwriter_raw_msgs_per_s']:.0f} msg/s; rosbags serializing: "
          f"{writer['rosbags_serializing_msgs_per_s']:.0f} msg/s ({ratio:.1f}x)")
    node = node_at_1khz(args.seconds)
    print(f"recorder at 1 kHz: sent {node['sent']} ({node['publish_rate_hz']:.1f} Hz), recorded {node['recorded']}, "
          f"dropped {node['dropped']}, in order: {node['in_order']}")
    if not args.no_record:
        command = "python bench/recorder_throughput.py" + ("" if args.seconds == 20 else f" --seconds {args.seconds:g}")
        lines = ["| figure | value |", "|---|---|",
                 f"| BagWriter, pre-serialized 30-joint JointState | {writer['bagwriter_raw_msgs_per_s']:.0f} msg/s |",
                 "| peer: rosbags writer serializing each message | "
                 f"{writer['rosbags_serializing_msgs_per_s']:.0f} msg/s ({ratio:.1f}x slower) |",
                 f"| recorder node, 1 kHz for {args.seconds:g} s: sent / recorded / dropped | {node['sent']} / "
                 f"{node['recorded']} / {node['dropped']} |"]
        record_section("recorder_throughput", command, lines)
    print(json.dumps({"benchmark": "recorder_throughput", **writer, "bagwriter_vs_serializing": ratio,
                      "node_1khz": node}))


if __name__ == "__main__":
    main()
