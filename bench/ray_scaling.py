"""Projected training throughput of ``mimic train --ray`` on 4, 16 and 64 nodes, from measured figures.

Measures here, with local worker processes and ``mimic train``'s defaults (or ``--envs``,
``--steps``), per iteration: the collection time (rollouts in the workers, values in the
learner), the PPO update time, and the bytes one worker exchanges with the learner (the
rollout command with the policy's weights, and its reply, as pickled, which is what Ray
sends).  Then projects synchronous PPO on ``nodes`` nodes of ``--cores`` cores, one
worker per core, each worker keeping its block of environments (the batch grows with the
cluster):

    batch(n)      = n * cores * envs_per_worker * steps
    iteration(n)  = rollout + batch(n) * (update + values) per sample
                    + (n * sent + n * cores * received) / bandwidth
    samples/s(n)  = batch(n) / iteration(n)

where ``sent`` is the rollout command (the weights: each node fetches it once from the object
store), ``received`` a worker's reply, ``rollout`` a worker's share of the measured collection
(its steps, in parallel on every node) and the learner's per-sample costs (value evaluation, update) come from
the measurement.  The learner is the bottleneck once its part of the iteration exceeds the
rollout; samples/s then tends to 1 / (its per-sample cost) whatever the cluster's size.

Usage:  python bench/ray_scaling.py [--iterations 8] [--cores 2] [--bandwidth-gbit 10] [--no-record]
Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import sys
import time

from benchlib import record_section

NODES = (1, 4, 16, 64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=8, help="timed iterations")
    parser.add_argument("--envs", type=int, default=None, help="environments here (default: mimic train's)")
    parser.add_argument("--steps", type=int, default=None, help="steps per environment and iteration")
    parser.add_argument("--cores", type=int, default=2, help="cores per projected node (one worker each)")
    parser.add_argument("--bandwidth-gbit", type=float, default=10.0, help="the learner's network, Gbit/s")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    import torch

    from mimic_policy.runner import Trainer
    from mimic_policy.train_cli import TrainConfig, make_envs
    from mimic_sim.task import Task

    config = TrainConfig()
    if args.envs is not None:
        config = dataclasses.replace(config, num_envs=args.envs)
    if args.steps is not None:
        config = dataclasses.replace(config, ppo=dataclasses.replace(config.ppo, num_steps=args.steps))
    envs = make_envs(config, Task.resolve(config.task))
    trainer = Trainer(envs, config.ppo, seed=0)
    trainer.iterate()  # warm-up
    start = time.perf_counter()
    results = [trainer.iterate() for _ in range(args.iterations)]
    wall = (time.perf_counter() - start) / args.iterations
    workers = len(envs.blocks)
    command = ("rollout", (trainer.model.spec, trainer.model.policy_state(), config.ppo.num_steps, 0))
    sent = len(pickle.dumps(command, protocol=5))
    reply = envs.rollout(trainer.model, config.ppo.num_steps, 0)  # all workers' replies, joined
    received = len(pickle.dumps(reply, protocol=5)) / workers
    with torch.no_grad():  # the learner's value pass over one iteration's observations
        obs = torch.as_tensor(reply.obs).reshape(-1, reply.obs.shape[-1])
        start = time.perf_counter()
        trainer.model.value(obs)
        values = time.perf_counter() - start
    envs.close()

    batch = config.num_envs * config.ppo.num_steps
    collect = sum(r["collect_seconds"] for r in results) / args.iterations
    update = sum(r["update_seconds"] for r in results) / args.iterations
    rollout = collect - values  # the workers' part: steps and acting, in parallel
    per_sample = (update + values) / batch  # the learner's part, per sample
    envs_per_worker = config.num_envs / workers
    bandwidth = args.bandwidth_gbit * 1e9 / 8
    table = {}
    for nodes in NODES:
        n_workers = nodes * args.cores
        samples = n_workers * envs_per_worker * config.ppo.num_steps
        learner = samples * per_sample
        transfer = (nodes * sent + n_workers * received) / bandwidth  # the command is fetched once per node
        table[nodes] = {"workers": n_workers, "batch": samples, "samples_per_second": samples / (
            rollout + learner + transfer), "learner_share": learner / (rollout + learner + transfer)}
    bound = 1 / per_sample
    crossover = rollout / (per_sample * envs_per_worker * config.ppo.num_steps)  # workers where learner = rollout
    lines = [f"{n} nodes x {args.cores} cores: {row['workers']} workers, batch {row['batch']:.0f}, "
             f"{row['samples_per_second']:.0f} samples/s (learner {row['learner_share']:.0%} of the iteration)"
             for n, row in table.items()]
    print(f"measured here ({workers} local workers, {config.num_envs} envs, {config.ppo.num_steps} steps): "
          f"iteration {wall:.3f} s, collection {collect:.3f} s (values {values:.3f} s), update {update:.3f} s; "
          f"per worker and iteration {sent / 1e6:.2f} MB sent, {received / 1e6:.2f} MB received")
    print("\n".join(lines))
    print(f"learner bound: {bound:.0f} samples/s; the learner's part equals the rollout at {crossover:.0f} workers")
    if not args.no_record:
        record_section("ray_scaling", " ".join(["python bench/ray_scaling.py", *sys.argv[1:]]), [
            f"Measured with {workers} local workers, {config.num_envs} environments, {config.ppo.num_steps} steps: "
            f"collection {collect:.3f} s per iteration (learner's value pass {values:.3f} s), update {update:.3f} s; "
            f"per worker and iteration {sent / 1e6:.2f} MB sent and {received / 1e6:.2f} MB received. "
            f"Projection at {args.cores} cores per node, {args.bandwidth_gbit:g} Gbit/s to the learner:", "",
            "| nodes | workers | batch | samples/s | learner's share |", "|---|---|---|---|---|",
            *(f"| {n} | {row['workers']} | {row['batch']:.0f} | {row['samples_per_second']:.0f} | "
              f"{row['learner_share']:.0%} |" for n, row in table.items()),
            "", f"Learner bound {bound:.0f} samples/s; its part equals the rollout at {crossover:.0f} workers.",
        ])
    print(json.dumps({"benchmark": "ray_scaling", "iterations": args.iterations, "workers_measured": workers,
                      "collect_seconds": collect, "value_seconds": values, "update_seconds": update,
                      "iteration_seconds": wall, "bytes_sent_per_worker": sent,
                      "bytes_received_per_worker": received, "cores_per_node": args.cores,
                      "bandwidth_gbit": args.bandwidth_gbit, "learner_bound": bound,
                      "learner_equals_rollout_at_workers": crossover,
                      **{f"samples_per_second_{n}_nodes": row["samples_per_second"] for n, row in table.items()}}))


if __name__ == "__main__":
    main()
