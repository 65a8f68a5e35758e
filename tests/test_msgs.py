"""mimic_msgs over DDS: a ReferenceFrame (nested FutureFrame array included) published here
arrives intact in a second process, and a Seek call to that process is answered.

Needs the ROS 2 wheels and mimic_msgs (scripts/install_ros.sh); skipped without them.
DDS stays on loopback (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) in a domain of this
test's own; every wait is bounded (5 s).
"""

import os
import selectors
import subprocess
import sys
import textwrap

import pytest
from ros_helpers import spin_until, unique_domain_id

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("mimic_msgs")
pytest.importorskip("mimic_msgs.msg")

from builtin_interfaces.msg import Duration, Time  # noqa: E402
from geometry_msgs.msg import Point, Pose, Quaternion, Twist, Vector3  # noqa: E402
from rclpy.event_handler import PublisherEventCallbacks  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from rclpy.signals import SignalHandlerOptions  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from mimic_msgs.msg import (  # noqa: E402
    FootContacts,
    FutureFrame,
    JointPDCommand,
    ReferenceFrame,
    TrainingStatus,
)
from mimic_msgs.srv import Seek  # noqa: E402

TIMEOUT = 5.0
# 150..229: apart from conftest's default range (100..199 is shared, the pid part differs),
# and every topic and service name below carries the pid as well.
DOMAIN_ID = unique_domain_id()
SUFFIX = f"p{os.getpid()}"
TOPIC = f"/mimic_test_{SUFFIX}/reference"
SERVICE = f"/mimic_test_{SUFFIX}/seek"
QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)

# The second process: receives one ReferenceFrame and answers one Seek call, prints what it
# got, and gives up on its own after a bounded time.
RECEIVER = textwrap.dedent(
    f"""
    import sys, time
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.signals import SignalHandlerOptions
    from mimic_msgs.msg import ReferenceFrame
    from mimic_msgs.srv import Seek

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("mimic_test_receiver_{SUFFIX}")
    got = {{}}
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
    node.create_subscription(ReferenceFrame, "{TOPIC}", lambda m: got.setdefault("frame", m), qos)

    def seek(request, response):
        got["seek"] = request.time
        response.success = request.time >= 0.0
        response.message = "seek to %r" % request.time
        return response

    node.create_service(Seek, "{SERVICE}", seek)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    print("ready", flush=True)
    deadline = time.monotonic() + 4 * {TIMEOUT}
    while len(got) < 2 and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    # let the Seek response leave before the node goes away
    end = time.monotonic() + 0.2
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.02)
    print("frame", repr(got.get("frame")), flush=True)
    print("seek", repr(got.get("seek")), flush=True)
    node.destroy_node()
    rclpy.shutdown()
    sys.exit(0 if len(got) == 2 else 3)
    """
)


def _reference_frame() -> ReferenceFrame:
    names = ["chest_x", "chest_y", "neck_z", "right_knee", "left_knee"]
    return ReferenceFrame(
        header=Header(stamp=Time(sec=12, nanosec=345_678_901), frame_id="world"),
        clip="humanoid3d_walk",
        phase=0.375,
        clip_time=0.4625,
        root_pose=Pose(
            position=Point(x=0.1, y=-0.2, z=0.85),
            orientation=Quaternion(x=0.0, y=0.0, z=0.3826834323650898, w=0.9238795325112867),
        ),
        root_twist=Twist(linear=Vector3(x=1.25, y=0.0, z=-0.01), angular=Vector3(x=0.0, y=0.0, z=0.3)),
        joint_names=names,
        positions=[0.1, -0.2, 0.3, -1.1, 1e-300],
        velocities=[1.0, 2.0, -3.0, 4.5, -5.5],
        future=[
            FutureFrame(
                offset=Duration(sec=0, nanosec=33_333_333 * (k + 1)),
                root_pose=Pose(position=Point(x=0.1 + 0.04 * k, y=-0.2, z=0.85), orientation=Quaternion(w=1.0)),
                positions=[0.1 * k + j for j in range(len(names))],
            )
            for k in range(3)
        ],
    )




def _read_line(process: subprocess.Popen, timeout: float) -> str:
    """The next line of the process's stdout, or "" when none comes within timeout."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return process.stdout.readline().strip()


@pytest.fixture
def ros_context(monkeypatch):
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.setenv("ROS_DOMAIN_ID", str(DOMAIN_ID))
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=DOMAIN_ID, signal_handler_options=SignalHandlerOptions.NO)
    try:
        yield context
    finally:
        context.try_shutdown()


def test_interfaces_round_trip_through_cdr():
    frame = _reference_frame()
    assert deserialize_message(serialize_message(frame), ReferenceFrame) == frame
    command = JointPDCommand(
        joint_names=["a", "b"], positions=[0.5, -0.5], velocities=[0.0, 1.0], kp=[300.0, 200.0],
        kd=[30.0, 20.0], effort=[0.0, -1.5],
    )
    status = TrainingStatus(
        iteration=2**40, samples=2**63 + 5, samples_per_second=12345.5, mean_return=-3.25,
        mean_episode_length=250.0, reward_terms=["pose", "vel"], reward_term_means=[0.6, 0.2],
        eta_seconds=-1.0, checkpoint="/tmp/ckpt.pt",
    )
    contacts = FootContacts(bodies=["left_foot", "right_foot"], in_contact=[True, False])
    for message in (command, status, contacts):
        assert deserialize_message(serialize_message(message), type(message)) == message
    assert list(ReferenceFrame.get_fields_and_field_types()) == [
        "header", "clip", "phase", "clip_time", "root_pose", "root_twist", "joint_names", "positions",
        "velocities", "future",
    ]
    assert FutureFrame.get_fields_and_field_types()["positions"] == "sequence<double>"
    assert Seek.Request.get_fields_and_field_types() == {"time": "double"}
    assert Seek.Response.get_fields_and_field_types() == {"success": "boolean", "message": "string"}


def test_reference_frame_and_seek_across_processes(ros_context):
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=str(DOMAIN_ID))
    receiver = subprocess.Popen(
        [sys.executable, "-c", RECEIVER], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    node = None
    try:
        # Join the graph after the receiver: Fast DDS then discovers both sides in well under
        # a second; the other way round it sometimes waits for its next 3 s announcement.
        if _read_line(receiver, TIMEOUT) != "ready":
            receiver.kill()
            out, err = receiver.communicate(timeout=TIMEOUT)
            pytest.fail(f"receiver not up within 5 s:\n{out}\n{err}")
        node = rclpy.create_node(f"mimic_test_sender_{SUFFIX}", context=ros_context)
        executor = SingleThreadedExecutor(context=ros_context)
        executor.add_node(node)
        matched = []
        publisher = node.create_publisher(
            ReferenceFrame, TOPIC, QOS,
            event_callbacks=PublisherEventCallbacks(matched=lambda info: matched.append(info.current_count)),
        )
        client = node.create_client(Seek, SERVICE)
        # Discovery: wait for the publisher's "matched" event (bounded), no fixed sleep.
        assert spin_until(executor, lambda: bool(matched) and matched[-1] > 0, timeout=TIMEOUT), \
            "no subscription matched within 5 s"
        sent = _reference_frame()
        publisher.publish(sent)

        assert spin_until(executor, client.service_is_ready, timeout=TIMEOUT), "Seek service not discovered within 5 s"
        future = client.call_async(Seek.Request(time=1.5))
        assert spin_until(executor, future.done, timeout=TIMEOUT), "no Seek response within 5 s"
        response = future.result()
        assert response.success is True
        assert response.message == "seek to 1.5"

        out, err = receiver.communicate(timeout=TIMEOUT)
        assert receiver.returncode == 0, f"receiver failed ({receiver.returncode}):\n{out}\n{err}"
        lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
        assert lines["frame"] == repr(sent)
        assert lines["seek"] == "1.5"
        assert "future=[mimic_msgs.msg.FutureFrame(offset=builtin_interfaces.msg.Duration(sec=0, nanosec=33333333)" in (
            lines["frame"]
        )
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.communicate(timeout=TIMEOUT)
        if node is not None:
            executor.shutdown(timeout_sec=TIMEOUT)
            node.destroy_node()
