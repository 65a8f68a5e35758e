"""mimic eval on a checkpoint of the humanoid: metrics, files, and their definitions."""

from __future__ import annotations

import copy
import json

import gymnasium as gym
import numpy as np

from mimic_policy.ppo import PPOConfig
from mimic_policy.runner import Trainer
from mimic_policy.session import TrainingSession
from mimic_policy.train_cli import TrainConfig, describe
from mimic_sim.envs.imitation import ImitationEnv
from mimic_sim.task import Task
from mimic_sim.tools.cli import main


def test_eval_reports_normalized_return_mpjpe_and_falls(tmp_path):
    config = TrainConfig(num_envs=1, checkpoint_every=1, ppo=PPOConfig(num_steps=16, hidden=(32,), epochs=1))
    envs = gym.vector.SyncVectorEnv([ImitationEnv], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    meta, expect = describe(config, Task.resolve(config.task), envs)
    session = TrainingSession(Trainer(envs, config.ppo, seed=0), config, tmp_path / "run", meta=meta, expect=expect)
    session.iterate()  # writes checkpoints/iter_000001
    envs.close()

    out = tmp_path / "eval"
    # 1.4 s = 42 control steps: the untrained policy falls in some episodes and not in others
    assert main(["eval", str(tmp_path / "run"), "--episodes", "2", "--seconds", "1.4", "--out", str(out)]) == 0
    result = json.loads((out / "eval.json").read_text())
    assert (out / "tracking_error.png").stat().st_size > 1000 and (out / "eval.mp4").stat().st_size > 1000
    assert set(result["reward_terms"]) == {"pose", "velocity", "end_effector", "root", "com"}
    episodes = result["per_episode"]
    for episode in episodes:
        # normalized by the steps of a full episode: a fall caps it at the fraction of the episode lived
        assert 0.0 <= episode["normalized_return"] <= episode["steps"] / 42 + 1e-9
        assert episode["mpjpe_root_relative_mm"] > 0 and episode["mpjpe_mm"] > 0  # an untrained policy errs
        # an episode ends before its 42 steps only by falling; one that lasts them did not fall
        assert episode["fell"] == (episode["steps"] < 42), episode
    shorter = [e["steps"] < 42 for e in episodes]
    assert result["fall_rate"] == {0: 0.0, 1: 0.5, 2: 1.0}[sum(shorter)], episodes
    assert np.isclose(result["normalized_return"], np.mean([e["normalized_return"] for e in result["per_episode"]]))


def test_eval_starts_uniform_whatever_the_run_trained_with(tmp_path):
    """A run trained with adaptive starts (ASI) is evaluated from the same seeded uniform clip times as one
    trained with uniform starts: the protocol's, comparable between policies."""
    from policy_helpers import tiny_checkpoint

    from mimic_policy.evaluate import evaluate, load_policy

    model, meta = load_policy(tiny_checkpoint(tmp_path))
    adaptive = copy.deepcopy(meta)
    adaptive["task"]["config"]["init"] = "adaptive"
    starts = [[e["start_time"] for e in evaluate(model, m, episodes=6, seconds=0.2)["per_episode"]]
              for m in (meta, adaptive)]
    assert starts[0] == starts[1] and len(set(starts[0])) == 6, starts
