"""End-to-end PPO training throughput on this machine (humanoid walk, default settings).

Runs ``--iterations`` iterations of the training loop ``mimic train`` uses (its
defaults: 32 environments over 2 worker processes, rollouts in the workers, PPO with
DeepMimic's 1024-512 networks, the humanoid's 960 Hz physics): samples per second
including the PPO updates; and the same loop at MuJoCo's own default of 120 Hz
physics, to show what the physics rate costs.  Peers in the same run: the
environments alone (random actions through the same workers, no policy), the issue's
target of 4000 samples/s, and, when installed
(``pip install -e .[bench]``), stable-baselines3's PPO on the same environment with
the same sizes (rollout length, batch, epochs, networks), with its in-process and its
subprocess vector env.

Usage:  python bench/train_throughput.py [--iterations 16] [--no-record]
Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import time

from benchlib import record_section

TARGET = 4000.0


def sb3_rate(vec_env: str, config, iterations: int) -> float:
    """stable-baselines3 PPO samples/s on the imitation environment with mimic's default sizes."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    from mimic_sim.envs.imitation import ImitationEnv

    make = functools.partial(ImitationEnv, clip=config.clip)
    envs = (DummyVecEnv([make] * config.num_envs) if vec_env == "dummy"
            else SubprocVecEnv([make] * config.num_envs, start_method="spawn"))
    ppo = config.ppo
    batch = ppo.num_steps * config.num_envs
    model = PPO("MlpPolicy", envs, n_steps=ppo.num_steps, batch_size=batch // ppo.minibatches, n_epochs=ppo.epochs,
                gamma=ppo.gamma, gae_lambda=ppo.lam, learning_rate=ppo.learning_rate, device="cpu", seed=0,
                policy_kwargs={"net_arch": {"pi": list(ppo.hidden), "vf": list(ppo.hidden)},
                               "log_std_init": ppo.init_log_std})
    model.learn(batch)  # warm-up iteration
    start = time.perf_counter()
    model.learn(batch * iterations, reset_num_timesteps=False)
    rate = batch * iterations / (time.perf_counter() - start)
    envs.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=16)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    import numpy as np

    from mimic_policy.runner import Trainer
    from mimic_policy.train_cli import TrainConfig, make_envs
    from mimic_sim.backends import default_physics_hz
    from mimic_sim.backends.mujoco_backend import MujocoBackend
    from mimic_sim.character import load_character

    coarse_hz = MujocoBackend.default_physics_hz

    def loop_rate(config: TrainConfig) -> tuple[float, float, float, float]:
        """(training loop, collection, update, environments alone) samples/s for a config."""
        envs = make_envs(config)
        rng = np.random.default_rng(0)
        envs.reset(seed=0)
        low, high = envs.single_action_space.low, envs.single_action_space.high
        steps = 200
        start = time.perf_counter()
        for _ in range(steps):
            envs.step(rng.uniform(low, high, (config.num_envs, len(low))) * 0.02)
        env_rate = steps * config.num_envs / (time.perf_counter() - start)
        trainer = Trainer(envs, config.ppo, seed=0)
        trainer.iterate()  # warm-up: reference caches, allocator
        results = [trainer.iterate() for _ in range(args.iterations)]
        envs.close()
        batch = config.num_envs * config.ppo.num_steps * len(results)
        return (batch / sum(r["collect_seconds"] + r["update_seconds"] for r in results),
                batch / sum(r["collect_seconds"] for r in results), batch / sum(r["update_seconds"] for r in results),
                env_rate)

    config = TrainConfig()
    overall, collect, update, env_rate = loop_rate(config)
    physics = default_physics_hz(config.backend, load_character(config.character))
    coarse, _, _, coarse_env_rate = loop_rate(TrainConfig(physics_hz=coarse_hz))
    print(f"environments alone: {env_rate:.0f} samples/s")
    print(f"training loop: {overall:.0f} samples/s (collection {collect:.0f}/s, PPO update {update:.0f}/s); "
          f"target {TARGET:.0f}: {overall / TARGET:.2f}x")
    print(f"at {coarse_hz:.0f} Hz physics: training loop {coarse:.0f} samples/s, "
          f"environments alone {coarse_env_rate:.0f}")
    peers = {}
    if importlib.util.find_spec("stable_baselines3") is not None:
        for vec_env in ("dummy", "subproc"):
            peers[f"sb3_{vec_env}"] = sb3_rate(vec_env, config, 2)
            print(f"stable-baselines3 PPO ({vec_env} vec env): {peers[f'sb3_{vec_env}']:.0f} samples/s "
                  f"(mimic {overall / peers[f'sb3_{vec_env}']:.2f}x)")
    ppo = config.ppo
    if not args.no_record:
        sizes = (f"{config.backend} at {physics:.0f} Hz physics, {config.num_envs} envs, {config.num_workers} workers, "
                 f"{ppo.num_steps} steps, "
                 f"{'-'.join(map(str, ppo.hidden))}, {ppo.epochs} epochs x {ppo.minibatches} minibatches")
        record_section("train_throughput", "python bench/train_throughput.py", [
            f"Settings: `mimic train` defaults ({sizes}).", "",
            "| figure | samples/s |", "|---|---|",
            f"| mimic training loop, PPO updates included | {overall:.0f} ({overall / TARGET:.2f}x the 4000 target) |",
            f"| collection (rollouts in the workers, values in the trainer) | {collect:.0f} |",
            f"| PPO update | {update:.0f} |",
            f"| peer: environments alone, random actions | {env_rate:.0f} |",
            f"| the training loop at {coarse_hz:.0f} Hz physics (MuJoCo's default) | {coarse:.0f} "
            f"({coarse / TARGET:.2f}x the target) |",
            f"| environments alone at {coarse_hz:.0f} Hz physics | {coarse_env_rate:.0f} |",
            *(f"| peer: stable-baselines3 PPO, {name.removeprefix('sb3_')} vec env, same sizes | {rate:.0f} "
              f"(mimic {overall / rate:.2f}x) |" for name, rate in peers.items()),
        ])
    print(json.dumps({"benchmark": "train_throughput", "samples_per_second": overall, "collection": collect,
                      "update": update, "environments_alone": env_rate, "physics_hz": physics,
                      f"samples_per_second_at_{coarse_hz:.0f}_hz": coarse,
                      f"environments_alone_at_{coarse_hz:.0f}_hz": coarse_env_rate, "target": TARGET,
                      "target_met": overall >= TARGET, **peers,
                      **{f"ratio_vs_{k}": overall / v for k, v in peers.items()}}))


if __name__ == "__main__":
    main()
