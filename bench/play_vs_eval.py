"""A trained policy over DDS against the same policy in-process: does the closed loop lose anything?

Runs ``mimic launch play`` (reference_player + sim_node + policy_node + recorder, in
lockstep) for ``--seconds`` of simulated time from clip time 0 with a trained policy,
scores the recorded bag with ``mimic report``, and compares its normalized return with
the in-process episode of the same deterministic policy from the same start in the
training environment (same physics rate, the checkpoint's), and with ``mimic eval``'s
5 random-start episodes.  Target (the serving issue): the bag's normalized return within
0.03 of the in-process figure.  The bag also scores the initial state (the reference
pose itself, reward 1), so its mean runs over one state more.

Usage:  python bench/play_vs_eval.py RUN_OR_CHECKPOINT [--seconds 20] [--no-record]
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
import threading
import time
from pathlib import Path

from benchlib import record_section

TARGET = 0.03


def in_process(policy: Path, seconds: float) -> dict:
    """The deterministic policy from clip time 0, and from 5 random starts, in the training environment."""
    from mimic_policy.evaluate import evaluate, load_policy

    model, meta = load_policy(policy)
    (episode,) = evaluate(model, meta, episodes=1, seconds=seconds, start_time=0.0)["per_episode"]
    random_starts = evaluate(model, meta, episodes=5, seconds=seconds)
    sim = meta["task"]["config"]["sim"]
    fell_at = episode["steps"] / float(sim["control_hz"]) if episode["fell"] else None
    return {"normalized_return": episode["normalized_return"], "first_fall_seconds": fell_at,
            "physics_hz": sim["physics_hz"], "eval_normalized_return": random_starts["normalized_return"],
            "eval_fall_rate": random_starts["fall_rate"]}


def over_dds(policy: Path, seconds: float, physics_hz: float | None, bag: Path) -> tuple[dict, float]:
    """``mimic launch play`` for ``seconds`` of sim time; the bag's report and the wall time."""
    from mimic_sim.character import load_character
    from mimic_sim.tools.report import report

    command = [sys.executable, "-m", "mimic_sim.tools.cli", "launch", "play", f"policy:={policy}",
               f"duration:={seconds}", f"output:={bag}", f"physics_hz:={physics_hz or 0.0}"]
    start = time.monotonic()
    launch = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=dict(os.environ, PYTHONUNBUFFERED="1"))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(launch.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60 + 30 * seconds
    while not any("reached duration" in line for line in lines) and time.monotonic() < deadline \
            and launch.poll() is None:
        reader.join(0.2)
    wall = time.monotonic() - start
    launch.send_signal(signal.SIGINT)
    if launch.wait(timeout=60) != 0 or not any("reached duration" in line for line in lines):
        raise RuntimeError("mimic launch play failed:\n" + "".join(lines[-60:]))
    return report(bag, load_character("humanoid")), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("policy", type=Path, help="a run folder or checkpoint")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

    local = in_process(args.policy, args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        bag_report, wall = over_dds(args.policy, args.seconds, local["physics_hz"], Path(tmp) / "bag")
    difference = bag_report["normalized_return"] - local["normalized_return"]
    print(f"in-process from clip time 0: normalized return {local['normalized_return']:.4f}, "
          f"first fall {local['first_fall_seconds']}")
    print(f"over DDS (mimic launch play, {wall:.0f} s wall): bag normalized return "
          f"{bag_report['normalized_return']:.4f}, falls {bag_report['falls']}, "
          f"MPJPE {bag_report['mpjpe_mm']:.0f} mm; difference {difference:+.4f} (target within {TARGET})")
    print(f"mimic eval, 5 random starts: {local['eval_normalized_return']:.4f}, "
          f"fall rate {local['eval_fall_rate']:.2f}")
    met = abs(difference) <= TARGET
    if not args.no_record:
        record_section("play_vs_eval", f"python bench/play_vs_eval.py {args.policy} --seconds {args.seconds:g}", [
            f"Policy: {args.policy}, {local['physics_hz']:.0f} Hz physics, {args.seconds:g} s from clip time 0.", "",
            "| figure | normalized return |", "|---|---|",
            f"| in-process episode (training environment) | {local['normalized_return']:.4f} |",
            f"| bag of `mimic launch play` (`mimic report`) | {bag_report['normalized_return']:.4f} |",
            f"| difference | {difference:+.4f} (target within {TARGET}: {'met' if met else 'not met'}) |",
            f"| `mimic eval`, 5 random starts | {local['eval_normalized_return']:.4f} |", "",
            f"Falls: in-process first at {local['first_fall_seconds']} s, bag {bag_report['falls']}; "
            f"the lockstep run took {wall:.0f} s of wall time.",
        ])
    print(json.dumps({"benchmark": "play_vs_eval", "in_process": local["normalized_return"],
                      "bag": bag_report["normalized_return"], "difference": difference, "target": TARGET,
                      "target_met": met, "bag_falls": bag_report["falls"], "bag_mpjpe_mm": bag_report["mpjpe_mm"],
                      "eval_random_starts": local["eval_normalized_return"], "wall_seconds": wall}))


if __name__ == "__main__":
    main()
