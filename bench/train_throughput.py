"""End-to-end PPO training throughput on this machine (humanoid walk, default settings).

Runs ``--iterations`` iterations of the training loop ``mimic train`` uses (16
environments over 2 worker processes, 512 steps each, PPO with DeepMimic's 1024-512
networks, 5 epochs): samples per second including the PPO updates.  Peers in the
same run: the environments alone (stepping with random actions through the same
workers, no policy) and the PPO update alone, the two bounds of the loop; and the
issue's target of 4000 samples/s.

Usage:  python bench/train_throughput.py [--iterations 4] [--no-record]
Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import functools
import json
import time

from benchlib import record_section

TARGET = 4000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--envs", type=int, default=16)
    parser.add_argument("--steps-per-env", type=int, default=512)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    import numpy as np

    from mimic_policy.ppo import PPOConfig
    from mimic_policy.runner import Trainer
    from mimic_policy.vec_env import WorkerVectorEnv
    from mimic_sim.envs.imitation_vector import ImitationVectorEnv

    envs = WorkerVectorEnv(functools.partial(ImitationVectorEnv, clip="walk"), args.envs, 2)
    # environments alone
    rng = np.random.default_rng(0)
    envs.reset(seed=0)
    low, high = envs.single_action_space.low, envs.single_action_space.high
    steps = 200
    start = time.perf_counter()
    for _ in range(steps):
        envs.step(rng.uniform(low, high, (args.envs, len(low))) * 0.1)
    env_rate = steps * args.envs / (time.perf_counter() - start)
    # the training loop
    trainer = Trainer(envs, PPOConfig(num_steps=args.steps_per_env), seed=0)
    trainer.iterate()  # warm-up: reference caches, allocator
    results = [trainer.iterate() for _ in range(args.iterations)]
    envs.close()
    batch = args.envs * args.steps_per_env
    total = sum(r["collect_seconds"] + r["update_seconds"] for r in results)
    overall = batch * len(results) / total
    collect = batch * len(results) / sum(r["collect_seconds"] for r in results)
    update = batch * len(results) / sum(r["update_seconds"] for r in results)
    print(f"environments alone: {env_rate:.0f} samples/s")
    print(f"training loop: {overall:.0f} samples/s (collection {collect:.0f}/s, PPO update {update:.0f}/s); "
          f"target {TARGET:.0f}: {overall / TARGET:.2f}x")
    if not args.no_record:
        record_section("train_throughput", "python bench/train_throughput.py", [
            "| figure | samples/s |", "|---|---|",
            f"| training loop, PPO updates included ({args.envs} envs, 2 workers) | {overall:.0f} "
            f"({overall / TARGET:.2f}x the 4000 target) |",
            f"| collection with the policy | {collect:.0f} |",
            f"| PPO update (1024-512, 5 epochs) | {update:.0f} |",
            f"| peer: environments alone, random actions | {env_rate:.0f} |",
        ])
    print(json.dumps({"benchmark": "train_throughput", "samples_per_second": overall, "collection": collect,
                      "update": update, "environments_alone": env_rate, "target": TARGET,
                      "target_met": overall >= TARGET}))


if __name__ == "__main__":
    main()
