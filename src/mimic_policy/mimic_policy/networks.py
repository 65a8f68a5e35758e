"""Policy and value networks, and the running observation normalizer."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class RunningNormalizer(nn.Module):
    """Observation normalization by running mean and variance (Welford, batched), clipped.

    The statistics are buffers, so they travel with the weights into checkpoints and
    the policy node normalizes exactly as training did.
    """

    def __init__(self, size: int, clip: float = 10.0, epsilon: float = 1e-8):
        super().__init__()
        self.register_buffer("mean", torch.zeros(size, dtype=torch.float64))
        self.register_buffer("var", torch.ones(size, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(epsilon, dtype=torch.float64))
        self.clip = clip

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        batch = batch.to(torch.float64).reshape(-1, self.mean.shape[0])
        n = batch.shape[0]
        batch_mean = batch.mean(0)
        batch_var = batch.var(0, unbiased=False)
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        self.var = (self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total
        self.count = total

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        std = torch.sqrt(self.var + 1e-8).to(obs.dtype)
        return torch.clamp((obs - self.mean.to(obs.dtype)) / std, -self.clip, self.clip)


def mlp(sizes: list[int], activation: type[nn.Module], out_gain: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        nn.init.orthogonal_(linear.weight, gain=out_gain if last else np.sqrt(2))
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(activation())
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """Gaussian policy over PD targets (state-independent std) and a value function.

    The policy's mean is an offset from ``action_offset`` (the neutral targets), so a
    freshly initialized policy commands the neutral pose plus exploration noise.
    """

    def __init__(self, obs_size: int, action_size: int, hidden: tuple[int, ...] = (1024, 512),
                 init_log_std: float = -1.0, action_offset: np.ndarray | None = None,
                 activation: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.spec = {"obs_size": obs_size, "action_size": action_size, "hidden": tuple(hidden),
                     "init_log_std": float(init_log_std)}
        """Constructor arguments: with :meth:`policy_state`, what a copy of the policy is built from."""
        self.normalizer = RunningNormalizer(obs_size)
        self.actor = mlp([obs_size, *hidden, action_size], activation, out_gain=0.01)
        self.critic = mlp([obs_size, *hidden, 1], activation, out_gain=1.0)
        self.log_std = nn.Parameter(torch.full((action_size,), float(init_log_std)))
        offset = torch.zeros(action_size) if action_offset is None else torch.as_tensor(action_offset)
        self.register_buffer("action_offset", offset.to(torch.float32))

    def mean(self, obs: torch.Tensor) -> torch.Tensor:
        """The Gaussian's mean: the action a deployed policy commands."""
        return self.actor(self.normalizer(obs)) + self.action_offset

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Normal:
        mean = self.mean(obs)
        # no argument checks: the scale is an exponential, the mean a network's output; the checks cost a
        # rollout step about a sixth of its policy inference
        return torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean), validate_args=False)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self.normalizer(obs)).squeeze(-1)

    @torch.no_grad()
    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(sampled action, its log-probability) for a batch of observations."""
        dist = self.distribution(obs)
        noise = torch.randn(dist.mean.shape, generator=generator)  # a stream of its own: reproducible runs
        action = dist.mean + dist.stddev * noise
        return action, dist.log_prob(action).sum(-1)

    def policy_state(self) -> dict[str, torch.Tensor]:
        """What acting needs (the state dict without the value network), for copies in rollout workers."""
        return {k: v.detach().clone() for k, v in self.state_dict().items() if not k.startswith("critic.")}

    def load_stored(self, state: dict[str, torch.Tensor]) -> None:
        """Load a stored model state strictly; one without a value network (a policy folder's: training
        alone uses it) keeps this model's own, every other entry still required."""
        if not any(k.startswith("critic.") for k in state):
            state = {**state, **{k: v for k, v in self.state_dict().items() if k.startswith("critic.")}}
        self.load_state_dict(state)

    @torch.no_grad()
    def act_deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        return self.mean(obs)
