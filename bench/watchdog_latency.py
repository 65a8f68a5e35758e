"""Watchdog latency over DDS: control periods from the last state to ``policy_node``'s first damping command.

``policy_node`` (a subprocess: 30 Hz timer, default ``state_timeout``, a default-size
torch policy playing its clip) is fed a standing robot's ``joint_states``, ``base_pose``
and ``base_twist`` at 30 Hz from this process.  Each trial lets the node command,
stops the states after a last one at a random phase of the node's control timer, and
takes the first damping command after that: its stamp (the node's clock at publishing)
minus the wall time at which the last state was published, in control periods.  Then
the states resume until the node commands again.  Figures over the trials: p50/p99/max, in periods
after the last state and after the timeout.  Target (issue 13): the first damping
command within 2 control periods of the last state.

Usage:  python bench/watchdog_latency.py [--trials 60] [--state-timeout 0] [--no-record]
Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchlib import record_section
from policy_latency import make_policy

RATE_HZ = 30.0
PERIOD = 1.0 / RATE_HZ
TARGET_PERIODS = 2.0
WAIT = 30.0  # s, bound of every wait on the node


def standing_state() -> tuple[list[str], np.ndarray, np.ndarray]:
    """Joint names, qpos and qvel of the humanoid standing in the walk's first frame."""
    from mimic_sim.envs.imitation import ImitationEnv

    env = ImitationEnv()
    env.reset(options={"start_time": 0.0})
    qpos, qvel = env.backend.get_state()
    names = list(env.character.joint_names)
    env.close()
    return names, qpos, qvel


def run(trials: int, policy: Path, state_timeout: float) -> dict:
    import rclpy
    from geometry_msgs.msg import PoseStamped, TwistStamped
    from sensor_msgs.msg import JointState

    from mimic_msgs.msg import JointPDCommand

    names, qpos, qvel = standing_state()
    node_proc = subprocess.Popen([str(Path(sys.executable).parent / "policy_node"), "--ros-args",
                                  "-p", f"policy:={policy}", "-p", f"rate_hz:={RATE_HZ}",
                                  "-p", f"state_timeout:={state_timeout}", "-p", "autostart:=true",
                                  "-p", "reference_source:=clip"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rclpy.init()
    node = rclpy.create_node("watchdog_probe")
    joints = JointState(name=names, position=qpos[7:].tolist(), velocity=qvel[6:].tolist())
    pose = PoseStamped()
    pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in qpos[:3])
    o = pose.pose.orientation
    o.w, o.x, o.y, o.z = (float(v) for v in qpos[3:7])
    twist = TwistStamped()
    publishers = [(node.create_publisher(JointState, "joint_states", 10), joints),
                  (node.create_publisher(PoseStamped, "base_pose", 10), pose),
                  (node.create_publisher(TwistStamped, "base_twist", 10), twist)]
    commands: list[tuple[float, bool]] = []  # (stamp, damping), wall-clock seconds

    def on_command(msg: JointPDCommand) -> None:
        commands.append((msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, not any(msg.kp)))

    node.create_subscription(JointPDCommand, "pd_command", on_command, 100)
    state = {"on": True, "next": time.monotonic(), "last": 0.0}

    def publish() -> None:
        stamp = node.get_clock().now().to_msg()
        for publisher, msg in publishers:
            msg.header.stamp = stamp
            publisher.publish(msg)
        state["last"] = time.time()

    def spin_until(condition, timeout: float = WAIT) -> bool:
        """Spin, publishing the states at 30 Hz while they are on, until ``condition()`` or the timeout."""
        deadline = time.monotonic() + timeout
        while not condition():
            now = time.monotonic()
            if now > deadline:
                return False
            if state["on"] and now >= state["next"]:
                publish()
                state["next"] = max(state["next"] + PERIOD, now)
            wait = state["next"] - time.monotonic() if state["on"] else 0.01
            rclpy.spin_once(node, timeout_sec=min(max(wait, 0.0), 0.01))
        return True

    def commanding(count: int) -> bool:
        return sum(not damping for _, damping in commands[count:]) >= 5

    after_state: list[float] = []
    try:
        if not spin_until(lambda: commanding(0), timeout=120.0):
            raise RuntimeError("policy_node sent no command within 120 s")
        rng = random.Random(0)
        for _ in range(trials):
            # the last state at a random phase of the node's control timer: a random time after a
            # command (the node's tick) arrived
            count = len(commands)
            spin_until(lambda c=count: len(commands) > c)
            last_at = time.monotonic() + rng.uniform(0.0, PERIOD)
            spin_until(lambda at=last_at: time.monotonic() >= at)
            publish()
            state["on"] = False
            last, count = state["last"], len(commands)
            if not spin_until(lambda c=count: any(d for _, d in commands[c:])):
                raise RuntimeError("no damping command within 30 s of the last state")
            first = next(stamp for stamp, damping in commands[count:] if damping)
            after_state.append((first - last) / PERIOD)
            state["on"], state["next"] = True, time.monotonic()
            count = len(commands)
            if not spin_until(lambda c=count: commanding(c)):
                raise RuntimeError("policy_node did not resume commanding within 30 s")
    finally:
        node_proc.terminate()
        output = node_proc.communicate(timeout=30)[0]
        node.destroy_node()
        rclpy.shutdown()
    timeout_line = next((line for line in output.splitlines() if "state timeout" in line), "")
    timeout_ms = float(timeout_line.split("state timeout ")[1].split(" ms")[0]) if timeout_line else float("nan")
    periods = np.array(after_state)
    beyond = periods - timeout_ms * 1e-3 / PERIOD
    figures = {name: {"p50": float(np.percentile(values, 50)), "p99": float(np.percentile(values, 99)),
                      "max": float(values.max())} for name, values in (("after_last_state", periods),
                                                                       ("after_timeout", beyond))}
    return {"trials": trials, "rate_hz": RATE_HZ, "state_timeout_ms": timeout_ms, "periods": figures,
            "load_average_1min": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--state-timeout", type=float, default=0.0,
                        help="policy_node's state_timeout in s (default 0: the node's default)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.trials, make_policy(Path(tmp)), args.state_timeout)
    p = result["periods"]
    met = p["after_last_state"]["p99"] <= TARGET_PERIODS
    lines = [
        f"policy_node at {RATE_HZ:g} Hz, state timeout {result['state_timeout_ms']:.1f} ms "
        f"({result['state_timeout_ms'] * 1e-3 / PERIOD:.2f} periods), {result['trials']} trials; "
        f"1-minute load average {result['load_average_1min']:.2f} on {os.cpu_count()} cores.", "",
        "| first damping command, in control periods | p50 | p99 | max |",
        "|---|---|---|---|",
        *(f"| after the {label} | {p[key]['p50']:.2f} | {p[key]['p99']:.2f} | {p[key]['max']:.2f} |"
          for key, label in (("after_last_state", "last state"), ("after_timeout", "timeout"))),
        "", f"Target: within {TARGET_PERIODS:g} periods of the last state (p99): {'met' if met else 'not met'}.",
    ]
    print("\n".join(lines))
    if not args.no_record:
        command = "python bench/watchdog_latency.py" + ("" if args.trials == 60 else f" --trials {args.trials}") + \
            ("" if args.state_timeout == 0 else f" --state-timeout {args.state_timeout:g}")
        record_section("watchdog_latency", command, lines)
    print(json.dumps({"benchmark": "watchdog_latency", **result, "target_periods": TARGET_PERIODS,
                      "target_met": met}))


if __name__ == "__main__":
    main()
