"""Recording bags without rosbag2: mimic_sim.tools.bag (BagWriter, read_bag, reindex) and the recorder node.

The BagWriter tests need only rosbags and the installed mimic_msgs interface files; the recorder
tests need the ROS 2 wheels and mimic_msgs (scripts/install_ros.sh) and are skipped without them.
DDS stays on loopback in a domain of this test run's own; the recorder runs as a subprocess and
every wait is bounded (graph events and polling, 10 s at most).
"""

import dataclasses
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from ros_helpers import spin_until, unique_domain_id

from mimic_sim.tools.bag import BagWriter, find_interface_file, read_bag, reindex, scan_mcap

TIMEOUT = 10.0
DOMAIN_ID = unique_domain_id()
SUFFIX = f"p{os.getpid()}"
NAMES = [f"joint_{j:02d}" for j in range(30)]

needs_mimic_msgs = pytest.mark.skipif(
    find_interface_file("mimic_msgs/msg/ReferenceFrame") is None, reason="mimic_msgs is not installed"
)


def plain(value):
    """A message (rclpy or rosbags) as nested dicts and lists, for comparing contents."""
    if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "__msgtype__"}
    if hasattr(value, "get_fields_and_field_types"):
        return {name: plain(getattr(value, name)) for name in value.get_fields_and_field_types()}
    if isinstance(value, np.ndarray) or type(value).__name__ == "array":
        return [plain(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def frame_fields(i: int) -> dict:
    """Contents of the i-th test ReferenceFrame; odd ones end with empty arrays."""
    return {
        "stamp": (i, 1000 * i),
        "clip": f"clip_{i}",
        "phase": i / 200.0,
        "positions": [0.01 * i + j for j in range(len(NAMES))],
        "velocities": [] if i % 2 else [-0.5 * j for j in range(len(NAMES))],
        "future": [] if i % 2 else [(k, [0.1 * k] * len(NAMES)) for k in range(2)],
    }


# --------------------------------------------------------------------------------------------------
# BagWriter core (no rclpy)


def rosbags_frame(store, i: int):
    f = frame_fields(i)
    T = store.types  # noqa: N806
    pose = T["geometry_msgs/msg/Pose"](
        position=T["geometry_msgs/msg/Point"](x=0.1 * i, y=0.0, z=0.9),
        orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
    )
    zero = T["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0)
    return T["mimic_msgs/msg/ReferenceFrame"](
        header=T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](*f["stamp"]), frame_id="world"),
        clip=f["clip"],
        phase=f["phase"],
        clip_time=0.0,
        root_pose=pose,
        root_twist=T["geometry_msgs/msg/Twist"](linear=zero, angular=zero),
        joint_names=NAMES,
        positions=np.array(f["positions"]),
        velocities=np.array(f["velocities"], dtype=float),
        future=[
            T["mimic_msgs/msg/FutureFrame"](
                offset=T["builtin_interfaces/msg/Duration"](sec=k, nanosec=0), root_pose=pose, positions=np.array(p)
            )
            for k, p in f["future"]
        ],
    )


def write_frames(bag: BagWriter, topic: str, start: int, stop: int) -> list:
    store = bag.types.store
    sent = []
    for i in range(start, stop):
        msg = rosbags_frame(store, i)
        bag.write(topic, 1_000_000 * (i + 1), store.serialize_cdr(msg, "mimic_msgs/msg/ReferenceFrame"))
        sent.append(plain(msg))
    return sent


@needs_mimic_msgs
def test_bag_writer_round_trip(tmp_path):
    path = tmp_path / "bag"
    with BagWriter(path) as bag:
        store = bag.types.store
        bag.add_topic("/chatter", "std_msgs/msg/String")
        bag.add_topic("/reference", "mimic_msgs/msg/ReferenceFrame")
        bag.add_topic("/reference", "mimic_msgs/ReferenceFrame")  # same again: no-op
        with pytest.raises(ValueError, match="already in the bag"):
            bag.add_topic("/reference", "std_msgs/msg/String")
        with pytest.raises(ValueError, match="not added"):
            bag.write("/nowhere", 1, b"")
        for i in range(3):
            text = store.types["std_msgs/msg/String"](data=f"hello {i}")
            bag.write("/chatter", 500_000 * (2 * i + 1), store.serialize_cdr(text, "std_msgs/msg/String"))
        sent = write_frames(bag, "/reference", 0, 5)
    bag.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        bag.write("/chatter", 1, b"")

    meta = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == 9
    assert meta["storage_identifier"] == "mcap"
    assert meta["relative_file_paths"] == ["bag.mcap"] and (path / "bag.mcap").is_file()
    assert meta["message_count"] == 8
    topics = {t["topic_metadata"]["name"]: t for t in meta["topics_with_message_count"]}
    assert topics["/reference"]["topic_metadata"]["type"] == "mimic_msgs/msg/ReferenceFrame"
    assert topics["/reference"]["topic_metadata"]["type_description_hash"].startswith("RIHS01_")
    assert topics["/reference"]["message_count"] == 5

    got = list(read_bag(path))
    assert [t for t, _, _ in got] == ["/chatter", "/reference", "/chatter", "/reference", "/chatter"] + [
        "/reference"
    ] * 3
    assert [m.data for t, _, m in got if t == "/chatter"] == ["hello 0", "hello 1", "hello 2"]
    assert [plain(m) for t, _, m in got if t == "/reference"] == sent
    assert [ts for t, ts, _ in got if t == "/reference"] == [1_000_000 * (i + 1) for i in range(5)]

    with pytest.raises(FileExistsError, match=str(path)):
        BagWriter(path)
    with BagWriter(tmp_path / "sqlite", storage="sqlite3") as bag:
        bag.add_topic("/reference", "mimic_msgs/msg/ReferenceFrame")
        sent = write_frames(bag, "/reference", 0, 3)
        bag.flush()
    assert (tmp_path / "sqlite" / "sqlite.db3").is_file()
    assert [plain(m) for _, _, m in read_bag(tmp_path / "sqlite")] == sent
    with pytest.raises(ValueError, match="chunk_size"):
        BagWriter(tmp_path / "other", chunk_size=0)


@needs_mimic_msgs
def test_interrupted_bag_is_readable_after_reindex(tmp_path):
    """A copy of the folder taken mid-recording is what a SIGKILL leaves behind."""
    bag = BagWriter(tmp_path / "live", chunk_size=4096)
    bag.add_topic("/reference", "mimic_msgs/msg/ReferenceFrame")
    sent = write_frames(bag, "/reference", 0, 123)
    bag.flush()  # everything so far is now on disk
    sent += write_frames(bag, "/reference", 123, 124)  # smaller than a chunk: still pending
    crashed = tmp_path / "crashed"
    shutil.copytree(bag.path, crashed)
    bag.close()

    assert not (crashed / "metadata.yaml").exists()
    with pytest.raises(FileNotFoundError, match="reindex"):
        next(read_bag(crashed))
    truncated = tmp_path / "truncated"  # killed while writing a chunk: a partial record at the end
    shutil.copytree(crashed, truncated)
    mcap = truncated / "live.mcap"
    os.truncate(mcap, mcap.stat().st_size * 2 // 3)

    assert reindex(crashed) == 123
    assert [plain(m) for _, _, m in read_bag(crashed)] == sent[:123]
    assert reindex(crashed) == 123  # complete now: left alone
    kept = reindex(truncated)
    assert 0 < kept < 123
    assert [plain(m) for _, _, m in read_bag(truncated)] == sent[:kept]
    assert not list(tmp_path.glob(".*reindex*"))
    assert sum(e[0] == "message" for e in scan_mcap(crashed / "live.mcap")) == 123


# --------------------------------------------------------------------------------------------------
# The recorder node, as a subprocess


@pytest.fixture
def ros():
    """Start ROS in this process, in a context of its own: call it after the recorder is up.

    Fast DDS discovers a participant that joins after the other one at once; the other way round
    the first samples sometimes wait for its next heartbeat (3 s).
    """
    rclpy = pytest.importorskip("rclpy")
    pytest.importorskip("mimic_msgs.msg")
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    started = []

    def start():
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=DOMAIN_ID, signal_handler_options=SignalHandlerOptions.NO)
        started.append((context, SingleThreadedExecutor(context=context)))
        return (rclpy, *started[-1])

    try:
        yield start
    finally:
        for context, executor in started:
            executor.shutdown()
            context.try_shutdown()


def recorder_command() -> list[str]:
    script = Path(sys.executable).parent / "recorder"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mimic_sim.nodes.recorder"]


def start_recorder(*params: str) -> subprocess.Popen:
    """Start the recorder and wait (bounded) until it has created its bag and joined the graph."""
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=str(DOMAIN_ID))
    args = [*recorder_command(), "--ros-args", "-p", "discovery_period:=0.2"]
    for param in params:
        args += ["-p", param]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + TIMEOUT
    seen = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b" into " not in seen and selector.select(max(0.0, deadline - time.monotonic())):
            data = os.read(process.stdout.fileno(), 65536)  # unbuffered: select() sees what is left
            if not data:
                break
            seen += data
    if b" into " in seen:
        return process
    process.kill()
    out = process.communicate(timeout=TIMEOUT)[0]
    pytest.fail(f"recorder not up within {TIMEOUT} s:\n{(seen + out).decode(errors='replace')}")


def stop_recorder(process: subprocess.Popen, sig: int) -> tuple[int, str]:
    process.send_signal(sig)
    try:
        out = process.communicate(timeout=TIMEOUT)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        out = process.communicate(timeout=TIMEOUT)[0]
        pytest.fail(f"recorder did not exit within {TIMEOUT} s of signal {sig}:\n{out.decode(errors='replace')}")
    return process.returncode, out.decode(errors="replace")




def rclpy_frame(i: int):
    from builtin_interfaces.msg import Duration, Time
    from geometry_msgs.msg import Point, Pose, Quaternion, Twist
    from std_msgs.msg import Header

    from mimic_msgs.msg import FutureFrame, ReferenceFrame

    f = frame_fields(i)
    pose = Pose(position=Point(x=0.1 * i, y=0.0, z=0.9), orientation=Quaternion(w=1.0))
    return ReferenceFrame(
        header=Header(stamp=Time(sec=f["stamp"][0], nanosec=f["stamp"][1]), frame_id="world"),
        clip=f["clip"],
        phase=f["phase"],
        root_pose=pose,
        root_twist=Twist(),
        joint_names=NAMES,
        positions=f["positions"],
        velocities=f["velocities"],
        future=[FutureFrame(offset=Duration(sec=k), root_pose=pose, positions=p) for k, p in f["future"]],
    )


def publish_frames(ros, name: str, topic: str, count: int) -> list:
    """Publish `count` frames once the recorder subscribes; return them once it has acknowledged all."""
    rclpy, context, executor = ros()
    from rclpy.duration import Duration
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    from mimic_msgs.msg import ReferenceFrame

    node = rclpy.create_node(name, context=context)
    executor.add_node(node)
    try:
        qos = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
        publisher = node.create_publisher(ReferenceFrame, topic, qos)
        assert spin_until(executor, lambda: publisher.get_subscription_count() > 0, timeout=TIMEOUT), \
            "recorder did not subscribe"
        sent = [rclpy_frame(i) for i in range(count)]
        for msg in sent:
            publisher.publish(msg)
        assert publisher.wait_for_all_acked(Duration(seconds=TIMEOUT)), "recorder did not acknowledge"
        return [plain(m) for m in sent]
    finally:
        executor.remove_node(node)
        node.destroy_node()


def test_recorder_sigint_records_everything(ros, tmp_path):
    topic = f"/mimic_rec_{SUFFIX}/reference"
    out = tmp_path / "bag"
    recorder = start_recorder(f"topics:=[{topic}]", f"output:={out}")
    try:
        sent = publish_frames(ros, f"mimic_rec_pub_{SUFFIX}", topic, 200)
        code, log = stop_recorder(recorder, signal.SIGINT)
    finally:
        recorder.kill()
    assert code == 0, log
    assert "recorded 200 messages on 1 topics" in log, log
    got = list(read_bag(out))
    assert {t for t, _, _ in got} == {topic}
    assert [plain(m) for _, _, m in got] == sent
    stamps = [ts for _, ts, _ in got]
    assert stamps == sorted(stamps) and abs(stamps[0] / 1e9 - time.time()) < 60


def test_recorder_sigterm_all_topics(ros, tmp_path):
    topic = f"/mimic_rec_{SUFFIX}/all"
    out = tmp_path / "bag"
    recorder = start_recorder(f"output:={out}")  # no topics: everything on the graph
    try:
        sent = publish_frames(ros, f"mimic_rec_pub_all_{SUFFIX}", topic, 20)
        code, log = stop_recorder(recorder, signal.SIGTERM)
    finally:
        recorder.kill()
    assert code == 0, log
    meta = yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    topics = {t["topic_metadata"]["name"]: t for t in meta["topics_with_message_count"]}
    assert topics[topic]["message_count"] == 20
    assert topics[topic]["topic_metadata"]["offered_qos_profiles"], "publisher QoS kept for playback"
    assert [plain(m) for _, _, m in read_bag(out, topics=[topic])] == sent


def test_recorder_sigkill_leaves_flushed_chunks(ros, tmp_path):
    topic = f"/mimic_rec_{SUFFIX}/killed"
    out = tmp_path / "bag"
    chunk = 2048
    recorder = start_recorder(f"topics:=[{topic}]", f"output:={out}", f"chunk_size_bytes:={chunk}", "flush_period:=0.0")
    try:
        sent = publish_frames(ros, f"mimic_rec_pub_kill_{SUFFIX}", topic, 200)
        mcap = out / "bag.mcap"
        # Wait (bounded) until the recorder has written many chunks, then kill it mid-recording.
        deadline = time.monotonic() + TIMEOUT
        while mcap.stat().st_size < 20 * chunk and time.monotonic() < deadline:
            time.sleep(0.02)
        assert mcap.stat().st_size >= 20 * chunk
        recorder.kill()
        recorder.communicate(timeout=TIMEOUT)
    finally:
        recorder.kill()
    assert recorder.returncode == -signal.SIGKILL
    assert not (out / "metadata.yaml").exists()
    kept = reindex(out)
    assert 5 <= kept <= 200
    assert (out / "metadata.yaml").is_file()
    assert [plain(m) for _, _, m in read_bag(out)] == sent[:kept]
