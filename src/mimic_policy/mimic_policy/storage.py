"""Rollout storage and generalized advantage estimation."""

from __future__ import annotations

import torch


class RolloutStorage:
    """``num_steps`` transitions of ``num_envs`` environments.

    Time-limit truncation is not failure: a truncated step's reward gets
    ``gamma * V(final observation)`` added (the bootstrap the episode would have had),
    and then, like a termination, cuts the advantage recursion.  A fall (termination)
    gets no bootstrap: its future is worth nothing.
    """

    def __init__(self, num_steps: int, num_envs: int, obs_size: int, action_size: int):
        self.obs = torch.zeros(num_steps, num_envs, obs_size)
        self.actions = torch.zeros(num_steps, num_envs, action_size)
        self.log_probs = torch.zeros(num_steps, num_envs)
        self.values = torch.zeros(num_steps, num_envs)
        self.rewards = torch.zeros(num_steps, num_envs)
        self.dones = torch.zeros(num_steps, num_envs)  # episode ended after this step (either way)
        self.advantages = torch.zeros(num_steps, num_envs)
        self.returns = torch.zeros(num_steps, num_envs)

    @property
    def num_steps(self) -> int:
        return self.obs.shape[0]

    def fill(self, obs: torch.Tensor, actions: torch.Tensor, log_probs: torch.Tensor, values: torch.Tensor,
             rewards: torch.Tensor, dones: torch.Tensor) -> None:
        """A whole rollout, every argument shaped (num_steps, num_envs, ...)."""
        self.obs[:], self.actions[:], self.log_probs[:], self.values[:] = obs, actions, log_probs, values
        self.rewards[:], self.dones[:] = rewards, dones

    def compute_returns(self, last_values: torch.Tensor, gamma: float, lam: float) -> None:
        advantage = torch.zeros_like(last_values)
        for t in reversed(range(self.num_steps)):
            next_values = last_values if t == self.num_steps - 1 else self.values[t + 1]
            alive = 1.0 - self.dones[t]
            delta = self.rewards[t] + gamma * next_values * alive - self.values[t]
            advantage = delta + gamma * lam * alive * advantage
            self.advantages[t] = advantage
        self.returns = self.advantages + self.values

    def minibatches(self, count: int, generator: torch.Generator):
        total = self.num_steps * self.obs.shape[1]
        order = torch.randperm(total, generator=generator)
        size = total // count
        flat = {
            "obs": self.obs.reshape(total, -1), "actions": self.actions.reshape(total, -1),
            "log_probs": self.log_probs.reshape(total), "values": self.values.reshape(total),
            "advantages": self.advantages.reshape(total), "returns": self.returns.reshape(total),
        }
        for i in range(count):
            index = order[i * size : (i + 1) * size]
            yield {k: v[index] for k, v in flat.items()}

