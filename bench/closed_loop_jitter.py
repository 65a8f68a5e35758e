"""Closed loop over DDS at 50 Hz: control-period jitter and missed deadlines of ``policy_node``.

``sim_node`` (MuJoCo at 1 kHz physics, a multiple of 50 Hz, paced to the wall clock,
50 Hz control) and ``policy_node`` (timer trigger, 50 Hz, a default-size policy: 302 -> 1024-512 -> 28, torch) run as
separate processes for ``--seconds`` (default 600); this process records when each
``pd_command`` was stamped by the policy node and when it arrived.  Figures: the
period between commands (jitter = |period - 20 ms|, p50/p99/max), missed deadlines
(a period longer than 1.5 x 20 ms: a tick that produced no command in time), and the
delivery latency stamp -> arrival.  Peer in the same run: the jitter of ``sim_node``'s
own 50 Hz state stream (the same rclpy timers without a policy).  Targets (policy
serving issue): 0 missed, p99 jitter under 5 ms.

Usage:  python bench/closed_loop_jitter.py [--seconds 600] [--no-record]
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

import numpy as np
from benchlib import record_section
from policy_latency import make_policy

PERIOD = 1.0 / 50.0


def period_figures(stamps: np.ndarray) -> dict[str, float]:
    periods = np.diff(stamps)
    jitter = np.abs(periods - PERIOD) * 1e3
    return {"periods": len(periods), "period_mean_ms": float(periods.mean() * 1e3),
            "jitter_p50_ms": float(np.percentile(jitter, 50)), "jitter_p99_ms": float(np.percentile(jitter, 99)),
            "jitter_max_ms": float(jitter.max()), "missed": int(np.count_nonzero(periods > 1.5 * PERIOD))}


def run(seconds: float, policy: Path) -> dict:
    import rclpy
    from sensor_msgs.msg import JointState

    from mimic_msgs.msg import JointPDCommand

    bin_dir = Path(sys.executable).parent
    sim = subprocess.Popen([str(bin_dir / "sim_node"), "--ros-args", "-p", "control_hz:=50.0",
                            "-p", "physics_hz:=1000.0", "-p", "realtime:=true", "-p", "initial_pose:=walk",
                            "-p", "publish_tf:=false"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    node_proc = subprocess.Popen([str(bin_dir / "policy_node"), "--ros-args", "-p", f"policy:={policy}",
                                  "-p", "rate_hz:=50.0", "-p", "autostart:=true", "-p", "reference_source:=clip"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rclpy.init()
    node = rclpy.create_node("jitter_probe")
    commands: list[tuple[float, float, bool]] = []  # (stamp, arrival, damping), wall-clock seconds
    states: list[float] = []

    def on_command(msg: JointPDCommand) -> None:
        commands.append((msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, time.time(),
                         not any(msg.kp)))

    node.create_subscription(JointPDCommand, "pd_command", on_command, 100)
    node.create_subscription(JointState, "joint_states", lambda m: states.append(
        m.header.stamp.sec + m.header.stamp.nanosec * 1e-9), 100)
    deadline = time.monotonic() + 120.0
    while sum(not d for _, _, d in commands) < 50 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    if not commands:
        for proc in (node_proc, sim):
            proc.kill()
        raise RuntimeError("no pd_command within 120 s: policy_node output:\n" + node_proc.communicate()[0])
    commands.clear()
    states.clear()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    for proc in (node_proc, sim):
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    node.destroy_node()
    rclpy.shutdown()
    stamps = np.array([c[0] for c in commands])
    latency = np.array([c[1] - c[0] for c in commands]) * 1e3
    return {"commands": len(commands), "damping_commands": int(sum(d for _, _, d in commands)),
            "policy": period_figures(stamps), "sim_states": period_figures(np.array(states)),
            "latency_p50_ms": float(np.percentile(latency, 50)), "latency_p99_ms": float(np.percentile(latency, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.seconds, make_policy(Path(tmp)))
    p, s = result["policy"], result["sim_states"]
    print(f"policy_node commands: {result['commands']} over {args.seconds:g} s ({result['damping_commands']} damping); "
          f"period mean {p['period_mean_ms']:.3f} ms, jitter p50 {p['jitter_p50_ms']:.3f} / p99 "
          f"{p['jitter_p99_ms']:.3f} / max {p['jitter_max_ms']:.3f} ms, missed {p['missed']}")
    print(f"peer, sim_node states: jitter p99 {s['jitter_p99_ms']:.3f} ms, missed {s['missed']}")
    met = p["missed"] == 0 and p["jitter_p99_ms"] < 5.0
    print(f"delivery latency p50 {result['latency_p50_ms']:.3f} ms, p99 {result['latency_p99_ms']:.3f} ms; "
          f"targets: 0 missed, p99 jitter < 5 ms: {'met' if met else 'not met'}")
    if not args.no_record:
        command = "python bench/closed_loop_jitter.py" + ("" if args.seconds == 600 else f" --seconds {args.seconds:g}")
        record_section("closed_loop_jitter", command, [
            f"sim_node (MuJoCo, real time, 50 Hz) + policy_node (50 Hz timer, torch, 1024-512) for "
            f"{args.seconds:g} s; {result['commands']} commands ({result['damping_commands']} damping).", "",
            "| stream | period mean | jitter p50 | jitter p99 | jitter max | missed (> 30 ms) |",
            "|---|---|---|---|---|---|",
            *(f"| {label} | {f['period_mean_ms']:.3f} ms | {f['jitter_p50_ms']:.3f} ms | {f['jitter_p99_ms']:.3f} ms | "
              f"{f['jitter_max_ms']:.3f} ms | {f['missed']} |" for label, f in
              (("policy_node pd_command", p), ("peer: sim_node joint_states", s))),
            "", f"Delivery latency (stamp to arrival in another process): p50 {result['latency_p50_ms']:.3f} ms, "
                f"p99 {result['latency_p99_ms']:.3f} ms. Targets: 0 missed, p99 jitter under 5 ms.",
        ])
    print(json.dumps({"benchmark": "closed_loop_jitter", "seconds": args.seconds, **result,
                      "target_met": met}))


if __name__ == "__main__":
    main()
