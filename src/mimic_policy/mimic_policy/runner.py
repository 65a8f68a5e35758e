"""The training loop: vectorized environments, rollouts, PPO updates, episode statistics."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch

from mimic_policy.checkpoint import flatten_state, unflatten_state
from mimic_policy.networks import ActorCritic
from mimic_policy.ppo import PPOConfig, ppo_update
from mimic_policy.rollout import LocalRollouts, Rollout
from mimic_policy.storage import RolloutStorage
from mimic_policy.vec_env import WorkerVectorEnv


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
            values = np.asarray(values, dtype=float).ravel()
            queue.extend(values[np.isfinite(values)].tolist())

    def state(self) -> tuple[dict[str, torch.Tensor], list[str]]:
        """The windows as tensors, and the reward terms' names in their order."""
        tensors = {"stats.returns": torch.tensor(list(self.returns), dtype=torch.float64),
                   "stats.lengths": torch.tensor(list(self.lengths), dtype=torch.int64),
                   "stats.falls": torch.tensor(list(self.falls), dtype=torch.bool)}
        tensors.update({f"stats.terms.{name}": torch.tensor(list(values), dtype=torch.float64)
                        for name, values in self.terms.items()})
        return tensors, list(self.terms)

    def load_state(self, tensors: dict[str, torch.Tensor], terms: list[str]) -> None:
        self.returns = deque(tensors["stats.returns"].tolist())
        self.lengths = deque(tensors["stats.lengths"].tolist())
        self.falls = deque(tensors["stats.falls"].tolist())
        self.terms = {name: deque(tensors[f"stats.terms.{name}"].tolist(), maxlen=self.window * 50) for name in terms}

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
    """PPO on ``envs``: a :class:`~mimic_policy.vec_env.WorkerVectorEnv` (rollouts in its
    workers) or a gymnasium vector env with same-step autoreset (rollouts in this process)."""

    def __init__(self, envs: gym.vector.VectorEnv | WorkerVectorEnv, config: PPOConfig, seed: int = 0,
                 action_offset: np.ndarray | None = None):
        self.envs = envs if hasattr(envs, "rollout") else LocalRollouts(envs)
        self.config = config
        self.num_envs = envs.num_envs
        obs_size = int(np.prod(envs.single_observation_space.shape))
        action_size = int(np.prod(envs.single_action_space.shape))
        torch.manual_seed(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.model = ActorCritic(obs_size, action_size, config.hidden, config.init_log_std, action_offset)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.storage = RolloutStorage(config.num_steps, self.num_envs, obs_size, action_size)
        self.envs.reset(seed=seed)
        # First normalization statistics from one rollout of the untrained policy, which is not
        # learned from: the first update then sees inputs on the scale later ones have (with
        # only the start states' statistics, inputs that barely vary there reached the clip
        # and the first update changed the policy by a KL of 17).
        warmup = self.envs.rollout(self.model, config.num_steps, self._next_seed())
        self.model.normalizer.update(torch.as_tensor(warmup.obs))
        self._episode_return = np.zeros(self.num_envs)
        self._episode_length = np.zeros(self.num_envs, dtype=int)
        self.stats = EpisodeStats()
        self.iteration = 0
        self.samples = 0

    def _next_seed(self) -> int:
        """A rollout's action-noise seed, from the trainer's own (checkpointed) stream."""
        return int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))

    def reset_envs(self, seed: int) -> None:
        """Restart every environment from ``seed`` (environment ``i`` from ``seed + i``)."""
        self.envs.reset(seed=seed)
        self._episode_return[:] = 0.0
        self._episode_length[:] = 0

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Everything the next iteration depends on but the environments' state, and the episode
        statistics: tensors, and JSON-ready meta."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        optimizer_tensors, optimizer_skeleton = flatten_state("optimizer", self.optimizer.state_dict())
        tensors.update(optimizer_tensors)
        tensors["trainer.generator"] = self.generator.get_state()
        tensors["trainer.episode_return"] = torch.from_numpy(self._episode_return.copy())
        tensors["trainer.episode_length"] = torch.from_numpy(self._episode_length.astype(np.int64))
        stats, terms = self.stats.state()
        tensors.update(stats)
        meta = {"iteration": self.iteration, "samples": self.samples, "optimizer": optimizer_skeleton,
                "episode_stats_terms": terms}
        return tensors, meta

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Inverse of :meth:`state`."""
        self.model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
        self.optimizer.load_state_dict(unflatten_state("optimizer", tensors, meta["optimizer"]))
        self.generator.set_state(tensors["trainer.generator"])
        self._episode_return[:] = tensors["trainer.episode_return"].numpy()
        self._episode_length[:] = tensors["trainer.episode_length"].numpy()
        self.stats.load_state(tensors, meta["episode_stats_terms"])
        self.iteration, self.samples = int(meta["iteration"]), int(meta["samples"])

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        """Start from another run's network (``mimic train --init-from``): ``weights``, model state
        entries of the same shapes, replace the model's; where they hold no value network (a policy
        folder's) this model's fresh one stays. The optimizer's state is still empty: nothing to match."""
        self.model.load_stored(weights)

    def collect(self) -> tuple[float, np.ndarray]:
        """Fill the storage with one rollout; its wall time and observations."""
        start = time.perf_counter()
        rollout = self.envs.rollout(self.model, self.config.num_steps, self._next_seed())
        steps, envs = rollout.rewards.shape
        obs = torch.as_tensor(rollout.obs)
        rewards = torch.as_tensor(rollout.rewards, dtype=torch.float32)
        with torch.no_grad():  # values in one batch, while the workers wait anyway
            values = self.model.value(obs.reshape(steps * envs, -1)).reshape(steps, envs)
            last_values = self.model.value(torch.as_tensor(rollout.last_obs))
            if len(rollout.final_index):
                # Time limit, not failure: bootstrap with the value of the state reached.
                t, i = rollout.final_index.T
                rewards[t, i] += self.config.gamma * self.model.value(torch.as_tensor(rollout.final_obs))
        dones = torch.as_tensor(rollout.terminated | rollout.truncated, dtype=torch.float32)
        self.storage.fill(obs, torch.as_tensor(rollout.actions), torch.as_tensor(rollout.log_probs), values,
                          rewards, dones)
        self.storage.compute_returns(last_values, self.config.gamma, self.config.lam)
        self._track(rollout)
        self.samples += steps * envs
        return time.perf_counter() - start, rollout.obs

    def _track(self, rollout: Rollout) -> None:
        """Episode returns, lengths and falls from a rollout (rewards as the environments gave them)."""
        for t in range(rollout.rewards.shape[0]):
            self._episode_return += rollout.rewards[t]
            self._episode_length += 1
            ended = rollout.terminated[t] | rollout.truncated[t]
            for i in np.flatnonzero(ended):
                self.stats.add(float(self._episode_return[i]), int(self._episode_length[i]),
                               bool(rollout.terminated[t, i]))
            self._episode_return[ended] = 0.0
            self._episode_length[ended] = 0
        self.stats.add_terms(rollout.terms)

    def iterate(self) -> dict[str, float]:
        """One rollout and one PPO update; statistics for logging."""
        collect_seconds, obs = self.collect()
        start = time.perf_counter()
        losses = ppo_update(self.model, self.optimizer, self.storage, self.config, self.generator)
        # Normalization statistics move after the update, so the update saw the inputs exactly as
        # the rollout's policy did (its likelihood ratios start at 1).
        self.model.normalizer.update(torch.as_tensor(obs))
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
