"""The training loop: vectorized environments, rollouts, PPO updates, episode statistics."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch

from mimic_policy.networks import ActorCritic
from mimic_policy.ppo import PPOConfig, ppo_update
from mimic_policy.storage import RolloutStorage


@dataclass
class EpisodeStats:
    """Recent finished episodes (returns, lengths, falls) and reward-term means."""

    window: int = 100
    returns: deque = field(default_factory=deque)
    lengths: deque = field(default_factory=deque)
    falls: deque = field(default_factory=deque)
    terms: dict[str, deque] = field(default_factory=dict)

    def add(self, episode_return: float, length: int, fell: bool) -> None:
        for queue, value in ((self.returns, episode_return), (self.lengths, length), (self.falls, fell)):
            queue.append(value)
            if len(queue) > self.window:
                queue.popleft()

    def add_terms(self, terms: dict[str, np.ndarray]) -> None:
        for name, values in terms.items():
            queue = self.terms.setdefault(name, deque(maxlen=self.window * 50))
            queue.extend(np.asarray(values, dtype=float).ravel().tolist())

    def summary(self) -> dict[str, float]:
        out = {"episodes": float(len(self.returns))}
        if self.returns:
            out.update(mean_return=float(np.mean(self.returns)), mean_length=float(np.mean(self.lengths)),
                       fall_rate=float(np.mean(self.falls)))
        for name, values in self.terms.items():
            if values:
                out[f"reward_{name}"] = float(np.mean(values))
        return out


class Trainer:
    """PPO on ``envs`` (a gymnasium vector env with same-step autoreset)."""

    def __init__(self, envs: gym.vector.VectorEnv, config: PPOConfig, seed: int = 0,
                 action_offset: np.ndarray | None = None):
        self.envs = envs
        self.config = config
        self.num_envs = envs.num_envs
        obs_size = int(np.prod(envs.single_observation_space.shape))
        action_size = int(np.prod(envs.single_action_space.shape))
        torch.manual_seed(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.model = ActorCritic(obs_size, action_size, config.hidden, config.init_log_std, action_offset)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.storage = RolloutStorage(config.num_steps, self.num_envs, obs_size, action_size)
        obs, _ = envs.reset(seed=seed)
        self.obs = torch.as_tensor(obs, dtype=torch.float32)
        self._episode_return = np.zeros(self.num_envs)
        self._episode_length = np.zeros(self.num_envs, dtype=int)
        self.stats = EpisodeStats()
        self.iteration = 0
        self.samples = 0

    def collect(self) -> float:
        """Fill the storage with one rollout; the wall time it took."""
        start = time.perf_counter()
        model, storage = self.model, self.storage
        storage.clear()
        # Inference on a few dozen observations gains nothing from a second thread, and an idle
        # OpenMP thread spins on the core an environment worker needs.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        for _ in range(storage.num_steps):
            model.normalizer.update(self.obs)
            actions, log_probs, values = model.act(self.obs, self.generator)
            obs, rewards, terminated, truncated, infos = self.envs.step(actions.numpy())
            rewards = torch.as_tensor(rewards, dtype=torch.float32)
            truncated_t = torch.as_tensor(truncated)
            if truncated_t.any():
                # Time limit, not failure: bootstrap with the value of the state reached.
                final = np.stack([infos["final_obs"][i] for i in np.flatnonzero(truncated)])
                with torch.no_grad():
                    rewards[truncated_t] += self.config.gamma * model.value(torch.as_tensor(final, dtype=torch.float32))
            dones = torch.as_tensor(terminated | truncated, dtype=torch.float32)
            storage.add(self.obs, actions, log_probs, values, rewards, dones)
            self._track(np.asarray(rewards), terminated, truncated, infos)
            self.obs = torch.as_tensor(obs, dtype=torch.float32)
        with torch.no_grad():
            storage.compute_returns(model.value(self.obs), self.config.gamma, self.config.lam)
        torch.set_num_threads(threads)
        self.samples += storage.num_steps * self.num_envs
        return time.perf_counter() - start

    def _track(self, rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray, infos: dict) -> None:
        self._episode_return += rewards
        self._episode_length += 1
        terms = {k.removeprefix("reward_"): v for k, v in infos.items() if k.startswith("reward_")}
        if terms:
            self.stats.add_terms(terms)
        for i in np.flatnonzero(terminated | truncated):
            self.stats.add(float(self._episode_return[i]), int(self._episode_length[i]), bool(terminated[i]))
            self._episode_return[i] = 0.0
            self._episode_length[i] = 0

    def iterate(self) -> dict[str, float]:
        """One rollout and one PPO update; statistics for logging."""
        collect_seconds = self.collect()
        start = time.perf_counter()
        losses = ppo_update(self.model, self.optimizer, self.storage, self.config, self.generator)
        update_seconds = time.perf_counter() - start
        self.iteration += 1
        batch = self.storage.num_steps * self.num_envs
        return {"iteration": float(self.iteration), "samples": float(self.samples),
                "samples_per_second": batch / (collect_seconds + update_seconds),
                "collect_seconds": collect_seconds, "update_seconds": update_seconds,
                "action_std": float(self.model.log_std.detach().exp().mean()), **losses, **self.stats.summary()}

    def train(self, total_samples: int, on_iteration: Callable[[dict[str, float]], None] | None = None) -> None:
        while self.samples < total_samples:
            stats = self.iterate()
            if on_iteration is not None:
                on_iteration(stats)
