"""A small trained checkpoint for the tests that serve a policy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import gymnasium as gym

from mimic_policy.evaluate import load_policy
from mimic_policy.export import export_onnx
from mimic_policy.ppo import PPOConfig
from mimic_policy.runner import Trainer
from mimic_policy.session import TrainingSession
from mimic_policy.train_cli import TrainConfig, describe
from mimic_sim.envs.imitation import ImitationEnv
from mimic_sim.task import Task


def tiny_checkpoint(root: Path, clip: str = "walk") -> Path:
    """``root/run``: a run folder after one PPO update of a 64-32 policy on ``clip`` (its
    normalizer and weights no longer the initial ones), and ``root/policy.onnx``, its export."""
    config = TrainConfig(num_envs=1, checkpoint_every=1, ppo=PPOConfig(num_steps=16, hidden=(64, 32), epochs=1))
    config = replace(config, task=replace(config.task, clip=clip))
    task = Task.resolve(config.task)
    envs = gym.vector.SyncVectorEnv([lambda: ImitationEnv(task=task)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    meta, expect = describe(config, task, envs)
    session = TrainingSession(Trainer(envs, config.ppo, seed=0), config, root / "run", meta=meta, expect=expect)
    session.iterate()
    envs.close()
    model, meta = load_policy(root / "run")
    export_onnx(model, meta, root / "policy.onnx")
    return root / "run"
