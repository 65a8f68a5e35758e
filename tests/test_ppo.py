"""PPO learns: a one-joint PD tracking task improves within seconds."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from mimic_policy.ppo import PPOConfig
from mimic_policy.runner import Trainer


class OneJointTracking(gym.Env):
    """A pendulum-free joint (unit inertia) under stable PD; track a sine with the PD target.

    Observation: angle, velocity, phase features and the target; the best action is the
    target itself (shifted by damping lag), which a random policy is far from.
    """

    observation_space = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)
    action_space = gym.spaces.Box(-3.0, 3.0, (1,), np.float32)

    def __init__(self) -> None:
        self.dt, self.kp, self.kd = 1 / 30, 50.0, 10.0

    def _target(self) -> float:
        return float(np.sin(2 * np.pi * self.t / 2.0))

    def _obs(self) -> np.ndarray:
        phase = 2 * np.pi * self.t / 2.0
        return np.array([self.q, self.qd, np.sin(phase), np.cos(phase), self._target()], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = float(self.np_random.uniform(0, 2))
        self.q, self.qd, self.steps = self._target(), 0.0, 0
        return self._obs(), {}

    def step(self, action):
        target = float(np.clip(action[0], -3, 3))
        # implicit damping, as mimic's PD law
        self.qd = (self.qd + self.dt * self.kp * (target - self.q)) / (1 + self.dt * (self.kd + self.kp * self.dt))
        self.q += self.dt * self.qd
        self.t += self.dt
        self.steps += 1
        error = self.q - self._target()
        reward = float(np.exp(-10 * error**2))
        return self._obs(), reward, False, self.steps >= 60, {"reward_tracking": reward}


def _envs(n: int = 4) -> gym.vector.VectorEnv:
    return gym.vector.SyncVectorEnv([OneJointTracking for _ in range(n)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def test_ppo_improves_a_one_joint_tracking_task():
    config = PPOConfig(learning_rate=3e-3, num_steps=120, hidden=(64, 64), init_log_std=-0.5, epochs=5,
                       minibatches=4, gamma=0.9)
    trainer = Trainer(_envs(), config, seed=0)
    first = trainer.iterate()["mean_return"]
    for _ in range(25):
        stats = trainer.iterate()
    assert stats["mean_return"] > first + 10, (first, stats["mean_return"])
    assert stats["mean_return"] > 40  # of 60: tracks the sine closely
    assert stats["reward_tracking"] > 0.6 and stats["episodes"] > 0


def test_same_seed_gives_the_same_training():
    config = PPOConfig(num_steps=32, hidden=(16,), epochs=2, minibatches=2)
    a, b = Trainer(_envs(2), config, seed=3), Trainer(_envs(2), config, seed=3)
    for _ in range(2):
        a.iterate()
        b.iterate()
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)


class CountingSteps(gym.Env):
    """Observation: the steps taken in the episode; reward 1 per step; truncated after 2 steps."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.steps += 1
        return np.array([float(self.steps)], dtype=np.float32), 1.0, False, self.steps == 2, {}


def _collect_with_value_obs_plus_one(env_class: type[gym.Env]) -> Trainer:
    """A trainer on one ``env_class`` whose critic is V(obs) = obs + 1, after one 3-step rollout from a reset."""
    envs = gym.vector.SyncVectorEnv([env_class], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    trainer = Trainer(envs, PPOConfig(num_steps=3, hidden=(), gamma=0.5, lam=0.5), seed=0)
    with torch.no_grad():
        trainer.model.normalizer.mean.zero_()
        trainer.model.normalizer.var.fill_(1.0 - 1e-8)  # the normalizer divides by sqrt(var + 1e-8)
        trainer.model.critic[0].weight.fill_(1.0)
        trainer.model.critic[0].bias.fill_(1.0)
    trainer.reset_envs(seed=0)
    trainer.collect()
    return trainer


def test_truncation_bootstraps_with_the_value_of_the_state_reached():
    """A time limit adds gamma * V(final observation) to the step's reward, and then cuts the recursion.

    V(obs) = obs + 1 (a linear critic, identity normalization); gamma 0.5, lambda 0.5; 3 steps from a reset:
      step 0: obs 0 (V 1), reward 1
      step 1: obs 1 (V 2), reward 1, truncated at obs 2 (V 3): reward 1 + 0.5 * 3 = 2.5; the next episode starts
      step 2: obs 0 (V 1), reward 1, then obs 1 (V 2)
    A_2 = 1 + 0.5 * 2 - 1 = 1;  A_1 = 2.5 - 2 = 0.5;  A_0 = (1 + 0.5 * 2 - 1) + 0.25 * 0.5 = 1.125
    returns = A + V = 2.125, 2.5, 2.0.  (Bootstrapping from the next episode's first state (V 1)
    would give 1.5 at step 1, no bootstrap 1.0.)
    """
    trainer = _collect_with_value_obs_plus_one(CountingSteps)
    assert trainer.storage.rewards[:, 0].tolist() == pytest.approx([1.0, 2.5, 1.0])
    assert trainer.storage.dones[:, 0].tolist() == [0.0, 1.0, 0.0]
    assert trainer.storage.returns[:, 0].tolist() == pytest.approx([2.125, 2.5, 2.0])


def test_termination_does_not_bootstrap():
    """The same, but the episode fails at step 1: its reward stays 1 (return 1.0) and nothing follows."""

    class Failing(CountingSteps):
        def step(self, action):
            obs, reward, _, truncated, info = super().step(action)
            return obs, reward, truncated, False, info

    trainer = _collect_with_value_obs_plus_one(Failing)
    # A_1 = 1 - 2 = -1;  A_0 = 1 + 0.25 * -1 = 0.75;  returns 1.75, 1.0, 2.0
    assert trainer.storage.rewards[:, 0].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert trainer.storage.returns[:, 0].tolist() == pytest.approx([1.75, 1.0, 2.0])


@dataclasses.dataclass
class _RunConfig:
    """What a TrainingSession reads of a run's settings."""

    seed: int = 5
    checkpoint_every: int = 3
    keep_checkpoints: int = 2


def _assert_same_state(a: Trainer, b: Trainer) -> None:
    """Everything a checkpoint holds of a trainer: weights, optimizer, random stream, counters, episode statistics."""
    (tensors_a, meta_a), (tensors_b, meta_b) = a.state(), b.state()
    assert meta_a == meta_b
    assert tensors_a.keys() == tensors_b.keys()
    for key, value in tensors_a.items():
        assert torch.equal(value, tensors_b[key]), key


@pytest.mark.parametrize("stop_at", [3, 4])
def test_a_run_resumed_from_any_iteration_continues_exactly(tmp_path, stop_at):
    """Stopped at a periodic checkpoint (3) or between two (4: the environments are brought back by
    replaying the actions since they restarted), the resumed run equals the uninterrupted one."""
    from mimic_policy.checkpoint import CheckpointError, latest_checkpoint, resume_checkpoint
    from mimic_policy.session import TrainingSession

    ppo = PPOConfig(num_steps=32, hidden=(16,), epochs=2, minibatches=2)
    expect = {"task": "one_joint_tracking", "observation_size": 5}
    uninterrupted = TrainingSession(Trainer(_envs(2), ppo, seed=5), _RunConfig(), tmp_path / "a", expect=expect)
    expected_stats = [uninterrupted.iterate() for _ in range(6)]

    stopped = TrainingSession(Trainer(_envs(2), ppo, seed=5), _RunConfig(), tmp_path / "b", expect=expect)
    for _ in range(stop_at):
        stopped.iterate()
    assert stopped.final_checkpoint().name == f"iter_{stop_at:06d}"

    resumed = TrainingSession(Trainer(_envs(2), ppo, seed=99), _RunConfig(), tmp_path / "b", expect=expect)
    assert latest_checkpoint(tmp_path / "b").name == f"iter_{stop_at:06d}"
    resumed.restore(resume_checkpoint(tmp_path / "b"))
    stats = [resumed.iterate() for _ in range(6 - stop_at)]
    _assert_same_state(uninterrupted.trainer, resumed.trainer)
    timing = ("samples_per_second", "collect_seconds", "update_seconds")
    for got, want in zip(stats, expected_stats[stop_at:], strict=True):  # episode statistics included
        assert {k: v for k, v in got.items() if k not in timing} == {k: v for k, v in want.items() if k not in timing}

    other = TrainingSession(Trainer(_envs(2), ppo, seed=5), _RunConfig(), tmp_path / "b",
                            expect={"task": "two_joint_tracking", "observation_size": 5})
    with pytest.raises(CheckpointError, match="task"):
        other.restore(resume_checkpoint(tmp_path / "b"))


def test_an_interrupted_iteration_saves_no_final_checkpoint(tmp_path):
    """An exception in the middle of an iteration (an error, a second Ctrl-C) leaves the last
    checkpoint the latest: the half-updated state is never saved."""
    from mimic_policy.checkpoint import latest_checkpoint
    from mimic_policy.session import TrainingSession

    ppo = PPOConfig(num_steps=32, hidden=(16,), epochs=1, minibatches=2)
    session = TrainingSession(Trainer(_envs(2), ppo, seed=5), _RunConfig(checkpoint_every=2), tmp_path,
                              expect={"observation_size": 5})
    for _ in range(2):
        session.iterate()
    assert session.final_checkpoint() == latest_checkpoint(tmp_path)  # iteration 2: saved already, not again

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    session.trainer.optimizer.step = interrupted  # in the middle of the update, after the rollout
    with pytest.raises(KeyboardInterrupt):
        session.iterate()
    assert session.final_checkpoint() is None
    assert latest_checkpoint(tmp_path).name == "iter_000002"


def test_worker_vector_env_matches_a_sequential_one():
    """Same seed, same results whether 4 environments live in 1 or 2 worker processes or in this one."""
    from mimic_policy.vec_env import WorkerVectorEnv

    rng = np.random.default_rng(0)
    actions = rng.uniform(-3, 3, (130, 4, 1)).astype(np.float32)  # 130 steps: two autoresets per env

    def run(envs) -> list:
        out = [envs.reset(seed=11)[0]]
        for a in actions:
            obs, rewards, _terminated, truncated, infos = envs.step(a)
            out += [obs, rewards, truncated]
            if truncated.any():
                out.append(np.stack([infos["final_obs"][i] for i in np.flatnonzero(truncated)]))
        envs.close()
        return out

    expected = run(_envs(4))
    for workers in (1, 2):
        got = run(WorkerVectorEnv(_envs, 4, workers))
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            assert np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float))


def test_rollouts_in_workers_match_rollouts_in_process():
    """A policy's rollout in one worker process equals the in-process one; two workers repeat exactly."""
    from mimic_policy.networks import ActorCritic
    from mimic_policy.rollout import LocalRollouts
    from mimic_policy.vec_env import WorkerVectorEnv

    torch.manual_seed(0)
    model = ActorCritic(5, 1, hidden=(16,), init_log_std=0.0)

    def rollouts(envs) -> list:
        envs.reset(seed=4)
        out = [envs.rollout(model, 70, seed=9) for _ in range(2)]  # 140 steps: episodes end and restart
        envs.close()
        return out

    local = rollouts(LocalRollouts(_envs(4)))
    assert local[0].truncated.any() and len(local[0].final_index) == local[0].truncated.sum()
    for workers, expected in ((1, local), (2, rollouts(WorkerVectorEnv(_envs, 4, 2)))):
        got = rollouts(WorkerVectorEnv(_envs, 4, workers))
        for a, b in zip(got, expected, strict=True):
            for name in ("obs", "actions", "log_probs", "rewards", "truncated", "final_index", "final_obs", "last_obs"):
                assert np.array_equal(getattr(a, name), getattr(b, name)), (workers, name)
            assert np.allclose(a.terms["tracking"], b.terms["tracking"], equal_nan=True)


class _FailsOnSecondStep(OneJointTracking):
    def step(self, action):
        if self.steps == 1:
            raise ValueError("simulated failure in an environment")
        return super().step(action)


def _failing_envs(n: int) -> gym.vector.VectorEnv:
    return gym.vector.SyncVectorEnv([_FailsOnSecondStep for _ in range(n)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def test_a_worker_error_is_raised_with_the_workers_message_and_traceback():
    from mimic_policy.vec_env import WorkerError, WorkerVectorEnv

    envs = WorkerVectorEnv(_failing_envs, 4, 2)
    envs.reset(seed=0)
    envs.step(np.zeros((4, 1), np.float32))
    with pytest.raises(WorkerError) as exc:
        envs.step(np.zeros((4, 1), np.float32))
    assert str(exc.value) == "environment worker 0 failed: ValueError: simulated failure in an environment"
    assert 'raise ValueError("simulated failure in an environment")' in str(exc.value.__cause__)
    envs.close()
    assert not any(p.is_alive() for p in envs.processes)

    envs = WorkerVectorEnv(_envs, 2, 2)
    envs.reset(seed=0)
    envs.processes[1].kill()
    with pytest.raises(WorkerError, match="environment worker 1 ended unexpectedly: it was killed by SIGKILL"):
        envs.reset(seed=0)
    envs.close()
