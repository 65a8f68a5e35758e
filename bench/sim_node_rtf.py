"""Real-time factor of ``sim_node`` (humanoid, MuJoCo) under a 30 Hz PD command stream.

``sim_node`` runs as fast as it can (``realtime:=false``, publishing ``/clock``) while
this process sends a full 28-joint ``JointPDCommand`` every 1/30 s of wall time and
listens to ``/clock``: real-time factor = simulated seconds / wall seconds.  A second
run paces ``sim_node`` to the wall clock (``realtime:=true``) and checks it keeps up
(factor ~1).  The peer, in the same run: the same backend stepped in-process with no
ROS, which bounds what the node can reach.

Usage:  python bench/sim_node_rtf.py [--seconds 20] [--no-record]
Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchlib import record_section


def core_rtf(seconds: float) -> float:
    import numpy as np

    from mimic_sim.backends import make_backend
    from mimic_sim.backends.mujoco_backend import standing_height
    from mimic_sim.character import load_character

    character = load_character("humanoid")
    backend = make_backend("mujoco", character)
    qpos = np.zeros(7 + character.num_joints)
    qpos[3], qpos[2] = 1.0, standing_height(character)
    backend.reset(qpos, np.zeros(6 + character.num_joints))
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        backend.step(qpos[7:])
        backend.get_state()
        backend.ground_contacts()
        steps += 1
    return steps * backend.config.control_dt / (time.perf_counter() - start)


def node_rtf(seconds: float, realtime: bool) -> dict:
    import numpy as np
    import rclpy
    from rosgraph_msgs.msg import Clock

    from mimic_msgs.msg import JointPDCommand
    from mimic_sim.character import load_character

    character = load_character("humanoid")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "sim_node"), "--ros-args", "-p",
                             f"realtime:={str(realtime).lower()}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    rclpy.init()
    node = rclpy.create_node("rtf_probe")
    clocks: list[tuple[float, float]] = []
    stamps: list[float] = []
    if realtime:
        from sensor_msgs.msg import JointState

        node.create_subscription(JointState, "joint_states", lambda m: stamps.append(time.monotonic()), 100)
    else:
        node.create_subscription(Clock, "/clock", lambda m: clocks.append(
            (time.monotonic(), m.clock.sec + m.clock.nanosec * 1e-9)), 1000)
    pub = node.create_publisher(JointPDCommand, "pd_command", 10)
    deadline = time.monotonic() + 20.0
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    command = JointPDCommand(joint_names=character.joint_names, positions=[0.0] * character.num_joints)
    start = time.monotonic()
    next_send = start
    sent = 0
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        if now >= next_send:
            pub.publish(command)
            sent += 1
            next_send += 1.0 / 30.0
        rclpy.spin_once(node, timeout_sec=max(0.0, min(0.005, next_send - time.monotonic())))
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    node.destroy_node()
    rclpy.shutdown()
    if realtime:
        intervals = np.diff(np.array(stamps[5:]))
        return {"commands_sent": sent, "steps": len(stamps), "rtf": float(len(intervals) / 30.0 / intervals.sum()),
                "period_ms": {"mean": float(intervals.mean() * 1e3), "p99": float(np.percentile(intervals, 99) * 1e3)}}
    wall = np.array([c[0] for c in clocks[5:]])
    sim = np.array([c[1] for c in clocks[5:]])
    return {"commands_sent": sent, "clock_messages": len(clocks),
            "rtf": float((sim[-1] - sim[0]) / (wall[-1] - wall[0]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    fast = node_rtf(args.seconds, realtime=False)
    print(f"sim_node as fast as possible: real-time factor {fast['rtf']:.1f} ({fast['commands_sent']} commands)")
    paced = node_rtf(args.seconds, realtime=True)
    print(f"sim_node paced to real time: factor {paced['rtf']:.3f}, period mean {paced['period_ms']['mean']:.2f} ms, "
          f"p99 {paced['period_ms']['p99']:.2f} ms")
    core = core_rtf(args.seconds)
    print(f"core backend in-process: real-time factor {core:.1f}; sim_node reaches {fast['rtf'] / core:.2f} of it")
    if not args.no_record:
        command = "python bench/sim_node_rtf.py" + ("" if args.seconds == 20 else f" --seconds {args.seconds:g}")
        lines = ["| run | real-time factor |", "|---|---|",
                 f"| sim_node, as fast as possible, 30 Hz commands | {fast['rtf']:.1f} |",
                 f"| sim_node, paced (period mean {paced['period_ms']['mean']:.2f} ms, p99 "
                 f"{paced['period_ms']['p99']:.2f} ms) | {paced['rtf']:.3f} |",
                 f"| peer: backend in-process, no ROS | {core:.1f} |"]
        record_section("sim_node_rtf", command, lines)
    print(json.dumps({"benchmark": "sim_node_rtf", "seconds": args.seconds, "fast": fast, "paced": paced,
                      "core_rtf": core, "node_vs_core": fast["rtf"] / core}))


if __name__ == "__main__":
    main()
