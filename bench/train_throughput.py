"""End-to-end PPO training throughput on this machine (humanoid walk, default settings).

Runs ``--iterations`` iterations of the training loop ``mimic train`` uses (its
defaults: 32 environments over 2 worker processes, rollouts in the workers, PPO with
DeepMimic's 1024-512 networks, the humanoid's 240 Hz physics): samples per second
including the PPO updates; and the same loop at MuJoCo's own default of 120 Hz
physics, to show what the physics rate costs.  Peers in the same run: the
environments alone (random actions, no policy, the same workers), stepped by one message per
step and, as training's rollouts step them, in the workers (one message per worker for a
rollout's steps: ``replay``); the issue's target of 4000 samples/s, and, when installed
(``pip install -e .[bench]``), stable-baselines3's PPO on the same environment with
the same sizes (rollout length, batch, epochs, networks), with its in-process and its
subprocess vector env; and rsl-rl-lib's PPO (``OnPolicyRunner``) with the same sizes on
mimic's own worker vector env (``make_envs``, the processes ``mimic train`` uses),
behind a small adapter to rsl-rl's ``VecEnv`` interface.

Every contender is timed the same way: by wall clock over the same ``--iterations``
training iterations (rollout and PPO update), after one warm-up iteration that is not
timed; the environments-alone peers step the same number of samples.

The physics limit, measured in the same run: the same number of control steps of the same
physics with no Python around them, ``mujoco.rollout`` over all environments in C with one
thread per worker core, each environment open loop on the reference's PD targets (kp q* +
kd qdot*, held over the control period's substeps, as the environment commands with a zero
residual) from the same kind of random clip starts; ``physics_share`` is the training loop's
fraction of it (issue 16's target: 0.75).  ``ceiling`` is the loop's bound with no Python
around the physics: a sample's physics (physics alone) plus its share of the PPO update (as
timed in the loop), the two taking turns on the same cores.

With ``--ray``, the same loop again with its workers as Ray actors
(``mimic train --ray``) on a Ray cluster of one node per worker on this machine, one CPU
each (:class:`mimic_policy.ray_workers.LocalCluster`): the same cores as the local
workers, so the ratio is Ray's overhead (target: at least 0.9).

Usage:  python bench/train_throughput.py [--iterations 16] [--envs 32] [--steps 64] [--ray] [--no-record]
Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import io
import json
import math
import sys
import time

from benchlib import record_section

TARGET = 4000.0


def sb3_rate(vec_env: str, config, task, iterations: int) -> float:
    """stable-baselines3 PPO samples/s on the imitation environment with mimic's sizes."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    from mimic_sim.envs.imitation import ImitationEnv

    make = functools.partial(ImitationEnv, task=task)
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


class RslRlVecEnv:
    """mimic's worker vector env (``train_cli.make_envs``) as rsl-rl's ``VecEnv``.

    Duck-typed rather than a subclass of ``rsl_rl.env.VecEnv``, so that this module
    imports without rsl-rl installed.  rsl-rl steps torch tensors and reads observations
    as a TensorDict of named groups; the worker env takes and returns numpy arrays.
    """

    def __init__(self, envs, max_episode_length: int):
        self.envs = envs
        self.num_envs = envs.num_envs
        self.num_actions = envs.single_action_space.shape[0]
        # The environments truncate episodes themselves; rsl-rl reads this only for
        # learn(init_at_random_ep_len=True), which this benchmark does not use.
        self.max_episode_length = max_episode_length
        self.device = "cpu"
        self.cfg = {}  # environment settings rsl-rl's logger would store with a run
        self.obs = self._observations(envs.reset(seed=0)[0])

    def _observations(self, obs):
        import torch
        from tensordict import TensorDict

        # One group, "policy": the train config maps it to both the actor and the critic.
        return TensorDict({"policy": torch.from_numpy(obs)}, batch_size=[self.num_envs])

    def get_observations(self):
        return self.obs

    def step(self, actions):
        import torch

        obs, rewards, terminated, truncated, _ = self.envs.step(actions.numpy())
        # Same-step autoreset: an ended environment's row already holds its next episode's
        # first observation, which is what rsl-rl expects after a done.
        self.obs = self._observations(obs)
        # time_outs are the truncations: rsl-rl bootstraps them with gamma * V of the
        # observation before the step, so the workers' final_obs is not needed.
        extras = {"time_outs": torch.from_numpy(truncated)}
        return (self.obs, torch.from_numpy(rewards).float(), torch.from_numpy(terminated | truncated), extras)


def rsl_rl_rate(config, task, iterations: int) -> float:
    """rsl-rl-lib PPO samples/s on mimic's worker vector env with mimic's sizes."""
    from rsl_rl.runners import OnPolicyRunner

    from mimic_policy.train_cli import make_envs

    ppo = config.ppo
    episode_steps = round(task.config.episode_seconds * task.config.sim.control_hz)
    env = RslRlVecEnv(make_envs(config, task), episode_steps)
    # As mimic's networks: ReLU, running observation normalization, a state-independent log std.
    model = {"class_name": "MLPModel", "hidden_dims": list(ppo.hidden), "activation": "relu",
             "obs_normalization": True}
    train_cfg = {
        "num_steps_per_env": ppo.num_steps,
        "save_interval": 100,  # unused: without a log directory the runner saves nothing
        "obs_groups": {"actor": ["policy"], "critic": ["policy"]},
        "actor": {**model, "distribution_cfg": {"class_name": "GaussianDistribution", "std_type": "log",
                                                "init_std": math.exp(ppo.init_log_std)}},
        "critic": model,
        "algorithm": {"class_name": "PPO", "num_learning_epochs": ppo.epochs, "num_mini_batches": ppo.minibatches,
                      "clip_param": ppo.clip_coef, "gamma": ppo.gamma, "lam": ppo.lam,
                      "learning_rate": ppo.learning_rate, "schedule": "fixed", "value_loss_coef": ppo.value_coef,
                      "entropy_coef": ppo.entropy_coef, "max_grad_norm": ppo.max_grad_norm,
                      "use_clipped_value_loss": False},  # mimic's default value_clip is 0: none
    }
    with contextlib.redirect_stdout(io.StringIO()):  # the runner prints both networks
        runner = OnPolicyRunner(env, train_cfg, log_dir=None, device="cpu")
    batch = ppo.num_steps * config.num_envs
    runner.learn(1)  # warm-up iteration
    start = time.perf_counter()
    runner.learn(iterations)
    rate = batch * iterations / (time.perf_counter() - start)
    env.envs.close()
    return rate


def physics_only_rate(task, num_envs: int, num_steps: int, iterations: int, threads: int) -> float:
    """Control steps per second of the task's MuJoCo physics alone: ``mujoco.rollout`` of
    ``num_envs`` environments for ``num_steps`` control steps, ``iterations`` times, on
    ``threads`` threads, the controls computed beforehand (no Python between the substeps)."""
    import mujoco
    import numpy as np
    from mujoco import rollout

    from mimic_sim.backends.mujoco_backend import MujocoBackend
    from mimic_sim.reference import ReferenceMotion

    backend = MujocoBackend(task.character, task.config.sim)
    model, substeps, dt = backend.model, backend.config.substeps, backend.config.control_dt
    reference = ReferenceMotion(task.motion, task.character)
    rng = np.random.default_rng(0)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    initial = np.empty((num_envs, mujoco.mj_stateSize(model, spec)))
    control = np.zeros((num_envs, num_steps * substeps, model.nu))
    for i, start in enumerate(rng.uniform(0.0, task.motion.duration, num_envs)):
        backend.reset(*reference.state(start))
        mujoco.mj_getState(model, backend.data, initial[i], spec)
        for k in range(num_steps):  # the reference's PD targets at the end of each control period
            qpos, qvel = reference.state(start + (k + 1) * dt)
            control[i, k * substeps:(k + 1) * substeps] = backend.controls(qpos[7:], qvel[6:])
    datas = [mujoco.MjData(model) for _ in range(threads)]
    rollout.rollout(model, datas, initial, control, persistent_pool=True)  # warm-up: the thread pool
    start = time.perf_counter()
    for _ in range(iterations):
        rollout.rollout(model, datas, initial, control, persistent_pool=True)
    rate = num_envs * num_steps * iterations / (time.perf_counter() - start)
    backend.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=16, help="timed iterations of every contender")
    parser.add_argument("--envs", type=int, default=None, help="environments (default: mimic train's)")
    parser.add_argument("--steps", type=int, default=None, help="steps per environment and iteration (default: "
                                                                  "mimic train's)")
    parser.add_argument("--ray", action="store_true",
                        help="also time the loop with its workers as Ray actors on a two-node Ray cluster on this "
                             "machine (one CPU per node: the same cores as the local workers)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    import dataclasses

    import numpy as np

    from mimic_policy.runner import Trainer
    from mimic_policy.train_cli import TrainConfig, make_envs
    from mimic_sim.backends.mujoco_backend import MujocoBackend
    from mimic_sim.task import Task

    coarse_hz = MujocoBackend.default_physics_hz

    def loop_rate(config: TrainConfig) -> tuple[float, float, float, float, float]:
        """(training loop, collection, update, environments alone by messages per step, environments
        alone in the workers) samples/s for a config: the loop by wall clock over the timed iterations,
        collection and update from the trainer's own timers."""
        envs = make_envs(config, Task.resolve(config.task))
        rng = np.random.default_rng(0)
        envs.reset(seed=0)
        low, high = envs.single_action_space.low, envs.single_action_space.high
        steps = args.iterations * config.ppo.num_steps  # as many samples as the timed training iterations
        start = time.perf_counter()
        for _ in range(steps):
            envs.step(rng.uniform(low, high, (config.num_envs, len(low))) * 0.02)
        env_rate = steps * config.num_envs / (time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(args.iterations):
            envs.replay(rng.uniform(low, high, (config.ppo.num_steps, config.num_envs, len(low))) * 0.02)
        in_workers = steps * config.num_envs / (time.perf_counter() - start)
        trainer = Trainer(envs, config.ppo, seed=0)
        trainer.iterate()  # warm-up: reference caches, allocator
        start = time.perf_counter()
        results = [trainer.iterate() for _ in range(args.iterations)]
        wall = time.perf_counter() - start
        envs.close()
        batch = config.num_envs * config.ppo.num_steps * len(results)
        return (batch / wall, batch / sum(r["collect_seconds"] for r in results),
                batch / sum(r["update_seconds"] for r in results), env_rate, in_workers)

    config = TrainConfig()
    if args.envs is not None:
        config = dataclasses.replace(config, num_envs=args.envs)
    if args.steps is not None:
        config = dataclasses.replace(config, ppo=dataclasses.replace(config.ppo, num_steps=args.steps))
    task = Task.resolve(config.task)
    overall, collect, update, env_rate, in_workers = loop_rate(config)
    physics_only = physics_only_rate(task, config.num_envs, config.ppo.num_steps, args.iterations,
                                     config.num_workers)
    physics = task.config.sim.physics_hz
    coarse_task = dataclasses.replace(config.task, sim=dataclasses.replace(config.task.sim, physics_hz=coarse_hz))
    coarse, _, _, coarse_env_rate, _ = loop_rate(dataclasses.replace(config, task=coarse_task))
    ray_figures = {}
    if args.ray:
        import os
        import secrets
        import tempfile

        # before Ray is imported, which reads them (LocalCluster takes the token)
        os.environ.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
        from mimic_policy.ray_workers import LocalCluster

        with tempfile.TemporaryDirectory(prefix="mray", dir="/tmp") as temp, \
                LocalCluster(temp, nodes=config.num_workers, cpus=1) as cluster:
            ray_overall, ray_collect, ray_update, ray_env_rate, _ = loop_rate(dataclasses.replace(config,
                                                                                              ray=cluster.address))
        ray_figures = {"ray_samples_per_second": ray_overall, "ray_collection": ray_collect, "ray_update": ray_update,
                       "ray_environments_alone": ray_env_rate, "ray_ratio": ray_overall / overall}
        print(f"with Ray ({config.num_workers} nodes of one CPU on this machine): training loop {ray_overall:.0f} "
              f"samples/s, {ray_overall / overall:.2f}x the local workers (target 0.9); collection "
              f"{ray_collect:.0f}/s, environments alone {ray_env_rate:.0f}/s")
    print(f"environments alone: {env_rate:.0f} samples/s by one message per step, {in_workers:.0f} in the workers")
    print(f"training loop: {overall:.0f} samples/s by wall clock over {args.iterations} iterations "
          f"(collection {collect:.0f}/s, PPO update {update:.0f}/s by the trainer's timers); "
          f"target {TARGET:.0f}: {overall / TARGET:.2f}x")
    print(f"physics alone (mujoco.rollout, {config.num_workers} threads, no Python between substeps): "
          f"{physics_only:.0f} control steps/s; the training loop is {overall / physics_only:.2f} of it "
          f"(target 0.75), the environments alone {env_rate / physics_only:.2f} "
          f"({in_workers / physics_only:.2f} in the workers)")
    # Collection and update take turns on the same cores: with no Python at all around the
    # physics, a sample would still cost its physics plus its share of the update.
    ceiling = 1.0 / (1.0 / physics_only + 1.0 / update)
    print(f"ceiling with no Python around the physics and the update as measured: {ceiling:.0f} samples/s, "
          f"{ceiling / physics_only:.2f} of physics alone (issue 16's targets: 8000 samples/s and 0.75)")
    print(f"at {coarse_hz:.0f} Hz physics: training loop {coarse:.0f} samples/s, "
          f"environments alone {coarse_env_rate:.0f}")
    peers, peer_rows = {}, {}  # figure name -> samples/s, and its label in the recorded table
    if importlib.util.find_spec("stable_baselines3") is not None:
        for vec_env in ("dummy", "subproc"):
            peers[f"sb3_{vec_env}"] = sb3_rate(vec_env, config, task, args.iterations)
            peer_rows[f"sb3_{vec_env}"] = f"stable-baselines3 PPO, {vec_env} vec env, same sizes"
            print(f"stable-baselines3 PPO ({vec_env} vec env): {peers[f'sb3_{vec_env}']:.0f} samples/s "
                  f"(mimic {overall / peers[f'sb3_{vec_env}']:.2f}x)")
    if importlib.util.find_spec("rsl_rl") is not None:
        peers["rsl_rl"] = rsl_rl_rate(config, task, args.iterations)
        peer_rows["rsl_rl"] = "rsl-rl-lib PPO (OnPolicyRunner) on mimic's worker vector env, same sizes"
        print(f"rsl-rl-lib PPO: {peers['rsl_rl']:.0f} samples/s (mimic {overall / peers['rsl_rl']:.2f}x)")
    ppo = config.ppo
    if not args.no_record:
        sizes = (f"{config.task.backend} at {physics:.0f} Hz physics, {config.num_envs} envs, "
                 f"{config.num_workers} workers, {ppo.num_steps} steps, "
                 f"{'-'.join(map(str, ppo.hidden))}, {ppo.epochs} epochs x {ppo.minibatches} minibatches")
        command = " ".join(["python bench/train_throughput.py", *sys.argv[1:]])
        record_section("train_throughput", command, [
            f"Settings: {sizes}. Every contender timed by wall clock over {args.iterations} iterations after "
            f"one untimed warm-up iteration.", "",
            "| figure | samples/s |", "|---|---|",
            f"| mimic training loop, PPO updates included | {overall:.0f} ({overall / TARGET:.2f}x the 4000 target) |",
            f"| collection (rollouts in the workers, values in the trainer; trainer's timers) | {collect:.0f} |",
            f"| PPO update (trainer's timers) | {update:.0f} |",
            f"| peer: environments alone, random actions, one message per step | {env_rate:.0f} |",
            f"| peer: environments alone in the workers, random actions (as rollouts step them) | {in_workers:.0f} |",
            f"| physics alone: `mujoco.rollout` of the same steps, {config.num_workers} threads, no Python "
            f"| {physics_only:.0f} (training loop {overall / physics_only:.2f} of it, target 0.75; environments "
            f"alone {env_rate / physics_only:.2f}, in the workers {in_workers / physics_only:.2f}) |",
            f"| ceiling: physics alone then the PPO update as measured, taking turns on the same cores (no "
            f"Python around the physics) | {ceiling:.0f} ({ceiling / physics_only:.2f} of physics alone) |",
            f"| the training loop at {coarse_hz:.0f} Hz physics (MuJoCo's default) | {coarse:.0f} "
            f"({coarse / TARGET:.2f}x the target) |",
            f"| environments alone at {coarse_hz:.0f} Hz physics | {coarse_env_rate:.0f} |",
            *(f"| peer: {peer_rows[name]} | {rate:.0f} (mimic {overall / rate:.2f}x) |"
              for name, rate in peers.items()),
            *([f"| the training loop with Ray: workers as actors on a {config.num_workers}-node cluster on this "
               f"machine, one CPU per node | {ray_figures['ray_samples_per_second']:.0f} "
               f"({ray_figures['ray_ratio']:.2f}x the local workers; target 0.9) |"] if ray_figures else []),
        ])
    print(json.dumps({"benchmark": "train_throughput", "iterations": args.iterations, "samples_per_second": overall,
                      "collection": collect, "update": update, "environments_alone": env_rate,
                      "environments_alone_in_workers": in_workers,
                      "physics_only": physics_only, "physics_share": overall / physics_only,
                      "ceiling": ceiling, "ceiling_share": ceiling / physics_only,
                      "physics_hz": physics, f"samples_per_second_at_{coarse_hz:.0f}_hz": coarse,
                      f"environments_alone_at_{coarse_hz:.0f}_hz": coarse_env_rate, "target": TARGET,
                      "target_met": overall >= TARGET, **peers,
                      **{f"ratio_vs_{k}": overall / v for k, v in peers.items()}, **ray_figures}))


if __name__ == "__main__":
    main()
