"""mimic export: an ONNX policy that computes what the checkpoint's policy computes, with its metadata."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import onnxruntime
import torch

from mimic_policy.evaluate import load_policy
from mimic_policy.export import read_metadata
from mimic_policy.ppo import PPOConfig
from mimic_policy.runner import Trainer
from mimic_policy.session import TrainingSession
from mimic_policy.train_cli import TrainConfig, describe
from mimic_sim.envs.imitation import ImitationEnv
from mimic_sim.task import Task
from mimic_sim.tools.cli import main


def test_onnx_export_matches_torch_and_carries_the_deployment_facts(tmp_path):
    config = TrainConfig(num_envs=1, checkpoint_every=1, ppo=PPOConfig(num_steps=16, hidden=(64, 32), epochs=1))
    envs = gym.vector.SyncVectorEnv([ImitationEnv], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    meta, expect = describe(config, Task.resolve(config.task), envs)
    session = TrainingSession(Trainer(envs, config.ppo, seed=0), config, tmp_path / "run", meta=meta, expect=expect)
    session.iterate()  # a checkpoint whose normalizer and weights are no longer the initial ones
    envs.close()

    out = tmp_path / "policy.onnx"
    assert main(["export", str(tmp_path / "run"), "-o", str(out)]) == 0
    model, meta = load_policy(tmp_path / "run")
    exported = read_metadata(out)
    assert exported["joint_names"] == meta["joint_names"] and len(exported["joint_names"]) == 28
    assert exported["pd"]["kp"] == meta["pd"]["kp"] and exported["control_hz"] == 30.0
    assert exported["observation_layout"] == meta["observation_layout"] and exported["observation_size"] == 302
    assert exported["residual_actions"] is True and exported["weights_sha256"] == meta["weights_sha256"]

    session = onnxruntime.InferenceSession(str(out))
    rng = np.random.default_rng(0)
    env = ImitationEnv()
    observations = [env.reset(seed=s)[0] for s in range(4)]  # real states and random ones, batched
    observations += list(rng.normal(0.0, 2.0, (12, 302)).astype(np.float32))
    obs = np.stack(observations).astype(np.float32)
    got = session.run(["action"], {"observation": obs})[0]
    with torch.no_grad():
        expected = model.act_deterministic(torch.as_tensor(obs)).numpy()
    assert got.shape == (16, 28)
    assert np.abs(got - expected).max() < 1e-5
    assert np.abs(expected).max() > 1e-3  # a policy that outputs something, not zeros
    env.close()
