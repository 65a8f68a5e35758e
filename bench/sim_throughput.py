"""Control steps per second of the humanoid walk imitation loop, on one core.

Each contender runs the same loop for the same wall time, in its own process pinned
to one CPU: observation, PD targets held for one control period (1/30 s), reward,
early-termination check, and a reset (random start on the clip) whenever an episode
ends.  All are driven the same way: every action is the all-zero PD target (the
neutral standing pose, identical in both models), so each run is a sequence of
reference-initialized episodes that end in a fall, like early training.

Contenders: the ``pybullet_envs`` DeepMimic port (the peer: its own humanoid,
stable PD in PyBullet at 240 Hz), mimic's MuJoCo backend and mimic's PyBullet
backend, each at its backend's default physics rate (MuJoCo 120 Hz, PyBullet 240 Hz:
the targets are checked there) and at the other one, all in DeepMimic's formulation
as the port computes it (197-number state, actions are the PD targets:
``target_observation=False, residual_actions=False``); and, not compared with a
target, MuJoCo at the humanoid's own rate (``mujoco@default``: its config's 240 Hz
with joint armature, which training uses, docs/simulation.md), with DeepMimic's formulation and with
mimic's training defaults (``mujoco@default+ref``: 302-number observation with the
reference pose, actions are offsets from the reference, so the all-zero action plays
the clip open loop).  Then the same with 16 environments stepped as one batch, as a
training worker steps its block (``mujoco@default+ref/16``: every environment's step
counts), and the limit for it: the same physics with no Python around it
(``physics/16``: ``mujoco.rollout`` of 16 environments on one thread, open loop on the
reference's PD targets, as bench/train_throughput.py's physics alone).

Usage:  python bench/sim_throughput.py [--seconds 20] [--no-record]
Prints one line per contender, the ratios to the port, appends a section to
docs/benchmarks.md, and ends with one JSON line holding every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import multiprocessing as mp
import os
import sys
import time
import types

from benchlib import record_section

TARGETS = {"mujoco": 5.0, "pybullet": 1.0}


def _one_core() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def run_port(seconds: float) -> dict:
    """The pybullet_envs DeepMimic port driven like mimic's environment."""
    _one_core()
    import numpy as np

    # `import pybullet_envs` fails with current gym; load its deep_mimic modules without the package __init__.
    spec = importlib.util.find_spec("pybullet_envs")
    package = types.ModuleType("pybullet_envs")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["pybullet_envs"] = package
    from pybullet_envs.deep_mimic.env.pybullet_deep_mimic_env import InitializationStrategy, PyBulletDeepMimicEnv

    class Args:  # the two arguments the environment reads (DeepMimic's humanoid3d walk settings)
        def parse_strings(self, key):
            return ["data/motions/humanoid3d_walk.txt"]

        def parse_ints(self, key):
            return [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14]  # every body but the feet

    with contextlib.redirect_stdout(io.StringIO()):
        env = PyBulletDeepMimicEnv(Args(), enable_draw=False, init_strategy=InitializationStrategy.RANDOM)
    action = np.zeros(env.get_action_size(0))
    steps = episodes = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.record_state(0)
        env.set_action(0, action)
        for _ in range(8):  # 240 Hz physics, 30 Hz control
            env.update(1.0 / 240.0)
        env.calc_reward(0)
        steps += 1
        if env.is_episode_end():
            with contextlib.redirect_stdout(io.StringIO()):
                env.reset()
            episodes += 1
    elapsed = time.perf_counter() - start
    return {"steps_per_s": steps / elapsed, "steps": steps, "episodes": episodes, "physics_hz": 240.0}


def run_mimic(seconds: float, backend: str, physics_hz: float | None, deepmimic: bool = True,
              batch: int = 1) -> dict:
    """One environment stepped alone, or ``batch`` of them as one vector env (same-step autoreset)."""
    _one_core()
    import numpy as np

    from mimic_sim.backends import SimConfig
    from mimic_sim.envs.imitation_vector import ImitationVectorEnv

    formulation = {"target_observation": False, "residual_actions": False} if deepmimic else {}
    envs = ImitationVectorEnv(batch, clip="walk", backend=backend, sim=SimConfig(physics_hz=physics_hz), **formulation)
    envs.reset(seed=0)
    actions = np.zeros(envs.action_space.shape, dtype=np.float32)
    steps = episodes = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, _ = envs.step(actions)
        steps += batch
        episodes += int((terminated | truncated).sum())
    elapsed = time.perf_counter() - start
    result = {"steps_per_s": steps / elapsed, "steps": steps, "episodes": episodes,
              "physics_hz": envs.envs[0].sim_config.physics_hz}
    envs.close()
    return result


def run_physics(seconds: float, batch: int) -> dict:
    """The default task's physics alone: ``mujoco.rollout`` of ``batch`` environments on one thread."""
    _one_core()
    from train_throughput import physics_only_rate

    from mimic_sim.backends.mujoco_backend import MujocoBackend
    from mimic_sim.task import Task, default_config

    task = Task.resolve(default_config())
    steps = 64  # control steps per rollout, a training iteration's
    rate = physics_only_rate(task, batch, steps, 1, threads=1)  # a first estimate, to fill the wall time
    rollouts = max(1, round(seconds * rate / (batch * steps)))
    rate = physics_only_rate(task, batch, steps, rollouts, threads=1)
    return {"steps_per_s": rate, "steps": rollouts * batch * steps, "episodes": 0,
            "physics_hz": task.config.sim.physics_hz or MujocoBackend.physics_rate_for(task.character)}


def _worker(queue: mp.Queue, name: str, seconds: float) -> None:
    name, _, batch = name.partition("/")
    if name == "port":
        queue.put(run_port(seconds))
    elif name == "physics":
        queue.put(run_physics(seconds, int(batch)))
    else:
        backend, rate = name.split("@")
        hz, _, defaults = rate.partition("+")
        queue.put(run_mimic(seconds, backend, float(hz) if hz != "default" else None, deepmimic=not defaults,
                            batch=int(batch or 1)))


def measure(name: str, seconds: float) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(queue, name, seconds))
    proc.start()
    result = queue.get(timeout=seconds + 300)
    proc.join()
    return result


def record(results: dict, ratios: dict, physics_share: float, command: str) -> None:
    lines = [
        "Each contender alone on one pinned core.",
        "",
        "| contender | physics | control steps/s | ratio to port | episodes |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        ratio = "1.00" if name == "port" else f"{ratios[name]:.2f}"
        lines.append(f"| {name} | {r['physics_hz']:.0f} Hz | {r['steps_per_s']:.0f} | {ratio} | {r['episodes']} |")
    lines += ["", f"16 environments stepped as one batch: {physics_share:.2f} of their physics alone."]
    record_section("sim_throughput", command, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="wall time per contender")
    parser.add_argument("--no-record", action="store_true", help="do not append to docs/benchmarks.md")
    args = parser.parse_args()
    contenders = ["port", "mujoco@120", "mujoco@240", "pybullet@240", "pybullet@120", "mujoco@default",
                  "mujoco@default+ref", "mujoco@default+ref/16", "physics/16"]
    results = {}
    for name in contenders:
        results[name] = measure(name, args.seconds)
        r = results[name]
        print(f"{name:18s} {r['physics_hz']:5.0f} Hz  {r['steps_per_s']:8.0f} control steps/s  "
              f"({r['steps']} steps, {r['episodes']} episodes)", flush=True)
    port = results["port"]["steps_per_s"]
    ratios = {name: r["steps_per_s"] / port for name, r in results.items() if name != "port"}
    for name, ratio in ratios.items():
        print(f"{name:18s} {ratio:5.2f}x the port")
    physics_share = results["mujoco@default+ref/16"]["steps_per_s"] / results["physics/16"]["steps_per_s"]
    print(f"16 environments stepped as one batch: {physics_share:.2f} of their physics alone")
    verdict = {
        "mujoco_target_met": ratios["mujoco@120"] >= TARGETS["mujoco"],
        "pybullet_target_met": ratios["pybullet@240"] >= TARGETS["pybullet"],
    }
    command = "python bench/sim_throughput.py" + (f" --seconds {args.seconds:g}" if args.seconds != 20.0 else "")
    if not args.no_record:
        record(results, ratios, physics_share, command)
    summary = {
        "benchmark": "sim_throughput",
        "clip": "walk",
        "seconds_per_contender": args.seconds,
        "steps_per_s": {name: round(r["steps_per_s"], 1) for name, r in results.items()},
        "physics_hz": {name: r["physics_hz"] for name, r in results.items()},
        "ratio_to_port": {name: round(v, 3) for name, v in ratios.items()},
        "batch_physics_share": round(physics_share, 3),
        "targets": {"mujoco@120": TARGETS["mujoco"], "pybullet@240": TARGETS["pybullet"]},
        **verdict,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
