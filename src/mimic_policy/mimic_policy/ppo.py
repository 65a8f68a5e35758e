"""Proximal policy optimization (Schulman et al. 2017), as DeepMimic trains its policies.

One update, given a filled :class:`~mimic_policy.storage.RolloutStorage`: advantages
normalized per batch, then ``epochs`` passes over ``minibatches`` random minibatches
of the clipped surrogate objective, a clipped value loss and an optional entropy
bonus, with gradient-norm clipping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from mimic_policy.networks import ActorCritic
from mimic_policy.storage import RolloutStorage


@dataclass
class PPOConfig:
    learning_rate: float = 1e-4
    """Adam step size, fixed (DeepMimic used SGD with momentum; Adam needs far less tuning;
    why not KL-adaptive: docs/architecture.md)."""
    num_steps: int = field(default=64, metadata={"aliases": ("steps_per_env",)})
    """Steps per environment per iteration (samples per iteration = num_steps * num_envs).
    Short rollouts mean more policy updates per sample, each bounded in size
    (docs/architecture.md)."""
    epochs: int = 1
    """Passes over the batch per iteration (DeepMimic's 1; more cost time and did not learn
    faster per sample: docs/architecture.md)."""
    minibatches: int = 4
    """Minibatches per pass (512 samples each at the default sizes)."""
    gamma: float = 0.95
    """Discount (DeepMimic's value)."""
    lam: float = 0.95
    """GAE lambda (DeepMimic's TD(lambda) value)."""
    clip_coef: float = 0.2
    """Likelihood-ratio clip of the surrogate objective."""
    value_clip: float = 0.0
    """Clip of value updates around the old values (0: none).  Off by default: returns here
    reach tens, and a 0.2 clip lets the critic move 0.2 per iteration (Andrychowicz et al.
    2021 found it hurts too)."""
    value_coef: float = 1.0
    """Weight of the value loss in the total loss."""
    entropy_coef: float = 0.0
    """DeepMimic uses none: exploration comes from the (learned) action std."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip of each minibatch step."""
    hidden: tuple[int, ...] = (1024, 512)
    """Hidden layer sizes of the policy and value networks (DeepMimic: 1024, 512)."""
    init_log_std: float = -2.3
    """Initial log std of the Gaussian policy, in radians of PD target (std 0.1; DeepMimic
    explored with 0.05 of its normalized action range)."""


def ppo_update(model: ActorCritic, optimizer: torch.optim.Optimizer, storage: RolloutStorage, config: PPOConfig,
               generator: torch.Generator) -> dict[str, float]:
    """Update the model on one batch; the mean losses and diagnostics."""
    advantages = storage.advantages
    storage.advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    stats = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clip_fraction": 0.0}
    updates = 0
    for _ in range(config.epochs):
        for batch in storage.minibatches(config.minibatches, generator):
            dist = model.distribution(batch["obs"])
            log_probs = dist.log_prob(batch["actions"]).sum(-1)
            log_ratio = log_probs - batch["log_probs"]
            ratio = log_ratio.exp()
            surrogate = torch.min(ratio * batch["advantages"],
                                  ratio.clamp(1 - config.clip_coef, 1 + config.clip_coef) * batch["advantages"])
            policy_loss = -surrogate.mean()

            values = model.value(batch["obs"])
            value_loss = (values - batch["returns"]) ** 2
            if config.value_clip > 0:
                clipped = batch["values"] + (values - batch["values"]).clamp(-config.value_clip, config.value_clip)
                value_loss = torch.max(value_loss, (clipped - batch["returns"]) ** 2)
            value_loss = 0.5 * value_loss.mean()
            entropy = dist.entropy().sum(-1).mean()

            loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()

            with torch.no_grad():
                stats["policy_loss"] += policy_loss.item()
                stats["value_loss"] += value_loss.item()
                stats["entropy"] += entropy.item()
                stats["approx_kl"] += ((ratio - 1) - log_ratio).mean().item()
                stats["clip_fraction"] += ((ratio - 1).abs() > config.clip_coef).float().mean().item()
            updates += 1
    return {k: v / updates for k, v in stats.items()}
