"""Policy inference latency on one core: torch vs ONNX Runtime, the network alone and the policy node's whole step.

The policy has the default sizes (302 observations, 1024-512 hidden, 28 joints) and is
saved and exported the way ``mimic train`` and ``mimic export`` do; the process is
pinned to one core and both runtimes use one thread.  Two figures per runtime:
``network`` (one observation through the deterministic policy) and ``command`` (what
the policy node does each period: observation from the robot state with Pinocchio,
the reference pose, the network, clamping; ``PolicyController.command``).  Peer: the
control period at the default 30 Hz (and 50 Hz), of which the step may use a share.

Usage:  python bench/policy_latency.py [--iterations 3000] [--no-record]
Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from benchlib import record_section


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.array(samples) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max())}


def timed(call, iterations: int) -> dict[str, float]:
    for _ in range(50):  # warm-up: allocator, caches, lazy initialization
        call()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return percentiles(samples)


def make_policy(folder: Path) -> Path:
    """A run folder holding one checkpoint of a default-size policy (one tiny PPO update), and its ONNX export."""
    import gymnasium as gym

    from mimic_policy.evaluate import load_policy
    from mimic_policy.export import export_onnx
    from mimic_policy.ppo import PPOConfig
    from mimic_policy.runner import Trainer
    from mimic_policy.session import TrainingSession
    from mimic_policy.train_cli import TrainConfig, describe
    from mimic_sim.envs.imitation import ImitationEnv
    from mimic_sim.task import Task

    config = TrainConfig(num_envs=1, checkpoint_every=1, ppo=PPOConfig(num_steps=32))
    envs = gym.vector.SyncVectorEnv([ImitationEnv], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    meta, expect = describe(config, Task.resolve(config.task), envs)
    session = TrainingSession(Trainer(envs, config.ppo, seed=0), config, folder / "run", meta=meta, expect=expect)
    session.iterate()
    envs.close()
    model, meta = load_policy(folder / "run")
    export_onnx(model, meta, folder / "policy.onnx")
    return folder / "run"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    from mimic_policy.serving import OnnxPolicyModel, PolicyController, RobotState, TorchPolicyModel
    from mimic_sim.envs.imitation import ImitationEnv

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        run = make_policy(Path(tmp))
        env = ImitationEnv()
        obs, _ = env.reset(seed=0)
        for _ in range(5):
            obs, *_ = env.step(env.reference_action())
        state, clip_time = RobotState(*env.backend.get_state()), env.time
        env.close()
        for name, model in (("torch", TorchPolicyModel(run)), ("onnx", OnnxPolicyModel(Path(tmp) / "policy.onnx"))):
            controller = PolicyController(model)
            batch = obs[None]
            results[f"{name}_network"] = timed(lambda m=model, b=batch: m.act(b), args.iterations)
            results[f"{name}_command"] = timed(lambda c=controller: c.command(state, clip_time), args.iterations)

    for key, figures in results.items():
        print(f"{key:16s} p50 {figures['p50_ms']:.3f} ms  p99 {figures['p99_ms']:.3f} ms  "
              f"max {figures['max_ms']:.3f} ms")
    period_30, period_50 = 1000 / 30, 1000 / 50
    ratios = {f"{k}_p99_share_of_50hz_period": v["p99_ms"] / period_50 for k, v in results.items()
              if k.endswith("command")}
    ratios["onnx_vs_torch_network_p50"] = results["torch_network"]["p50_ms"] / results["onnx_network"]["p50_ms"]
    for key, value in ratios.items():
        print(f"{key}: {value:.3f}")
    if not args.no_record:
        record_section("policy_latency", "python bench/policy_latency.py", [
            "One core (pinned), one thread per runtime; default policy sizes (302 -> 1024-512 -> 28).", "",
            "| runtime | what | p50 | p99 | max |", "|---|---|---|---|---|",
            *(f"| {k.split('_')[0]} | {'network alone' if k.endswith('network') else 'policy node step (command)'} | "
              f"{v['p50_ms']:.3f} ms | {v['p99_ms']:.3f} ms | {v['max_ms']:.3f} ms |" for k, v in results.items()),
            "",
            f"Control period: {period_30:.1f} ms at 30 Hz, {period_50:.1f} ms at 50 Hz. ONNX Runtime network p50 is "
            f"{ratios['onnx_vs_torch_network_p50']:.2f}x faster than torch.",
        ])
    print(json.dumps({"benchmark": "policy_latency", **{f"{k}_{m}": v for k, f in results.items()
                                                          for m, v in f.items()}, **ratios}))


if __name__ == "__main__":
    main()
