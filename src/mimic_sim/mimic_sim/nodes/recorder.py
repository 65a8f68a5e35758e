"""recorder: record topics into a rosbag2 bag (MCAP) without rosbag2, like `ros2 bag record`.

Subscribes with `raw=True` and writes the bytes as they came off the wire (no re-serialization),
stamped with their reception time (the middleware's, kept non-decreasing per topic), or with the
/clock time when they are taken if use_sim_time is true. Messages that publishers sent but the
recorder never saw (queue overflow) are counted from gaps in the publishers' sequence numbers and
reported on close, with the middleware's message-lost events. Topics are
found on the graph every `discovery_period` s: the ones named in `topics`, or every visible topic
when `topics` is empty. A topic is subscribed once it has a publisher, with QoS that matches its
publishers (best effort if any publisher is best effort, transient local if all are), keep last
`queue_depth`.

Memory stays bounded: each message goes straight into the bag writer, which holds at most one MCAP
chunk (`chunk_size_bytes`) before writing it out and flushing the file; `flush_period` writes a
partly filled chunk as well. On SIGINT/SIGTERM the recorder takes what is still queued, closes the
bag (summary and metadata.yaml) and logs a summary. After a SIGKILL the bag holds every chunk
written so far but no metadata.yaml: repair it with `python -m mimic_sim.tools.bag reindex BAG` or
`mimic_sim.tools.bag.reindex(path)`.

    recorder --ros-args -p topics:="[/reference, /joint_states]" -p output:=bags/walk
"""

from __future__ import annotations

import functools
import importlib
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

from mimic_sim.nodes.common import run_node
from mimic_sim.nodes.parameters import declare_settings
from mimic_sim.tools.bag import BagWriter
from mimic_sim.tools.node_params import RecorderParams

# How long close() keeps taking messages that were already received but not yet handled.
DRAIN_SECONDS = 2.0


def default_output() -> str:
    return f"bags/mimic_{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"


def is_hidden(topic: str) -> bool:
    """Hidden topics (a name component starting with '_'), which `ros2 bag record -a` skips too."""
    return any(part.startswith("_") for part in topic.split("/"))


def import_message(msgtype: str) -> Any:
    """'pkg/msg/Name' -> the generated Python class."""
    package, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def subscription_qos(publishers: list[Any], depth: int) -> QoSProfile:
    """A subscription QoS that every publisher's offered QoS is compatible with."""
    qos = [p.qos_profile for p in publishers]
    best_effort = any(q.reliability == ReliabilityPolicy.BEST_EFFORT for q in qos)
    transient = bool(qos) and all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in qos)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if transient else DurabilityPolicy.VOLATILE,
    )


def bag_qos(profile: QoSProfile) -> Qos:
    """rclpy QoS -> rosbags' (rmw's enum numbering is the same), for the bag's offered_qos_profiles."""

    def duration(d: Any) -> QosTime:
        ns = d.nanoseconds
        return QosTime(ns // 1_000_000_000, ns % 1_000_000_000)

    return Qos(
        history=QosHistory(int(profile.history)),
        depth=profile.depth,
        reliability=QosReliability(int(profile.reliability)),
        durability=QosDurability(int(profile.durability)),
        deadline=duration(profile.deadline),
        lifespan=duration(profile.lifespan),
        liveliness=QosLiveliness(int(profile.liveliness)),
        liveliness_lease_duration=duration(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=profile.avoid_ros_namespace_conventions,
    )


class RecorderNode(Node):
    def __init__(self) -> None:
        super().__init__("recorder")
        params = declare_settings(self, RecorderParams(), read_only=True)
        self._depth = params.queue_depth
        self._wanted = {self.resolve_topic_name(t) for t in params.topics} or None
        path = Path(params.output or default_output())
        try:
            self._bag = BagWriter(path, storage=params.storage, chunk_size=params.chunk_size_bytes)
        except (FileExistsError, ValueError) as err:
            self.get_logger().fatal(str(err))
            raise SystemExit(2) from None
        self._subs: dict[str, Any] = {}
        self._skipped: set[str] = set()
        self._lost: dict[str, int] = {}  # reported by the middleware (message-lost events)
        self._gaps: dict[str, int] = {}  # missing publisher sequence numbers: dropped before we took them
        self._last_seq: dict[tuple[str, bytes], int] = {}  # (topic, publisher gid) -> last sequence number
        self._last_stamp: dict[str, int] = {}
        self._write_errors = 0
        self._drained = 0
        self._closed = False
        self._started = time.monotonic()

        # Timers on the steady clock: with use_sim_time they must run before /clock does.
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._discover()
        self.create_timer(params.discovery_period, self._discover, clock=steady)
        if params.flush_period > 0:
            self.create_timer(params.flush_period, self._bag.flush, clock=steady)
        what = "every topic" if self._wanted is None else ", ".join(sorted(self._wanted))
        self.get_logger().info(f"recording {what} into {path}")

    # ----------------------------------------------------------------------------------------------

    def _discover(self) -> None:
        if self._closed:
            return
        for name, types in self.get_topic_names_and_types():
            if name in self._subs or name in self._skipped:
                continue
            if self._wanted is None and is_hidden(name):
                continue
            if self._wanted is not None and name not in self._wanted:
                continue
            publishers = self.get_publishers_info_by_topic(name)
            if not publishers:
                continue  # nothing to record yet, and no QoS to match
            if len(types) > 1:
                self.get_logger().warning(f"topic {name} has several types {types}; recording {types[0]}")
            self._subscribe(name, types[0], publishers)

    def _subscribe(self, name: str, msgtype: str, publishers: list[Any]) -> None:
        try:
            msg_class = import_message(msgtype)
            self._bag.add_topic(name, msgtype, [bag_qos(p.qos_profile) for p in publishers])
        except Exception as err:  # no Python class or no definition for the type: record the rest
            self.get_logger().error(f"not recording {name} ({msgtype}): {err}")
            self._skipped.add(name)
            return
        qos = subscription_qos(publishers, self._depth)
        callback = functools.partial(self._on_message, name)
        self._lost[name] = 0
        self._gaps[name] = 0
        try:
            events = SubscriptionEventCallbacks(message_lost=functools.partial(self._on_lost, name))
            sub = self.create_subscription(msg_class, name, callback, qos, raw=True, event_callbacks=events)
        except UnsupportedEventTypeError:  # middleware without message-lost events
            sub = self.create_subscription(msg_class, name, callback, qos, raw=True)
        self._subs[name] = sub
        self.get_logger().info(
            f"recording {name} ({msgtype}, {qos.reliability.name.lower()}, {qos.durability.name.lower()})"
        )

    def _on_message(self, topic: str, data: bytes, info: dict[str, Any]) -> None:
        if self._closed:
            return
        clock = self.get_clock()
        # Reception time from the middleware (system clock) where it is the node's clock too: exact
        # even when messages waited in the queue; with /clock, the ROS time now. Never earlier than
        # the previous message of the topic: a repaired (resent) sample arrives after later ones
        # but is delivered in order, and playback should keep that order.
        stamp = info.get("received_timestamp") or 0
        if stamp > 0 and not clock.ros_time_is_active:
            stamp = max(stamp, self._last_stamp.get(topic, 0))
            self._last_stamp[topic] = stamp
        else:
            stamp = clock.now().nanoseconds
        seq = info.get("publication_sequence_number")
        gid = (info.get("publisher_gid") or {}).get("data")
        if seq and gid is not None:
            last = self._last_seq.get((topic, gid))
            if last is not None and seq > last + 1:
                self._gaps[topic] += seq - last - 1
            self._last_seq[topic, gid] = seq
        try:
            self._bag.write(topic, stamp, data)
        except Exception as err:  # keep recording the other messages; report at the end
            self._write_errors += 1
            if self._write_errors == 1:
                self.get_logger().error(f"cannot write a message of {topic}: {err}")

    def _on_lost(self, topic: str, info: Any) -> None:
        self._lost[topic] += info.total_count_change

    def _drain(self) -> None:
        """Write what the middleware already received but the executor did not hand out yet."""
        deadline = time.monotonic() + DRAIN_SECONDS
        for name, sub in self._subs.items():
            while time.monotonic() < deadline:
                try:
                    with sub.handle:
                        taken = sub.handle.take_message(sub.msg_type, True)
                except Exception:
                    break
                if taken is None:
                    break
                self._on_message(name, taken[0], taken[1])
                self._drained += 1

    def close(self) -> None:
        """Drain, close the bag (summary, metadata.yaml), log what was recorded. Idempotent."""
        if self._closed:
            return
        self._drain()
        self._closed = True
        for sub in self._subs.values():
            self.destroy_subscription(sub)
        log = self.get_logger()
        try:
            self._bag.close()
        except Exception as err:
            log.error(f"closing {self._bag.path} failed: {err}")
        seconds = time.monotonic() - self._started
        counts = self._bag.counts
        lines = [
            f"  {t}: {n} messages, {self._gaps.get(t, 0)} dropped, {self._lost.get(t, 0)} lost"
            for t, n in sorted(counts.items())
        ]
        log.info(
            f"recorded {self._bag.message_count} messages on {len(counts)} topics in {seconds:.1f} s into "
            f"{self._bag.path}; dropped (publisher sequence gaps, e.g. queue_depth overflow): "
            f"{sum(self._gaps.values())}, lost (middleware events): {sum(self._lost.values())}, "
            f"write errors: {self._write_errors}, "
            f"taken at shutdown: {self._drained}" + ("\n" + "\n".join(lines) if lines else "")
        )


def main(args: list[str] | None = None) -> int:
    return run_node(lambda: RecorderNode(), args)


if __name__ == "__main__":
    sys.exit(main())
