"""One PPO update (mimic_policy.ppo.ppo_update) on a four-sample batch worked out by hand.

The model is linear with all-zero observations, so the policy is N(actor bias, exp(log_std)) and the
value is the critic's bias: actor bias 0, log std 0 (std 1), critic bias 0.5.  The batch:

    sample  action  new log-prob           ratio  advantage  return
    0       0       -ln(2 pi)/2            1.5    +1         1
    1       1       -ln(2 pi)/2 - 1/2      0.5    -1         0
    2       0       -ln(2 pi)/2            1.1    +1         2
    3       1       -ln(2 pi)/2 - 1/2      1.0    -1         0.5

(old log-prob = new log-prob - ln(ratio)).  Advantages normalized: mean 0, sample std sqrt(4/3),
so +-A with A = sqrt(3)/2 = 0.8660254.  With clip 0.2:

    surrogate = min(r A, clip(r, 0.8, 1.2) A):  1.2 A, -0.8 A, 1.1 A, -1.0 A;  mean 0.5 A / 4
    policy loss = -0.10825318;  clip fraction (|r - 1| > 0.2) = 2 / 4
    approx KL = mean(r - 1 - ln r) = (0.5 - ln 1.5 + -0.5 - ln 0.5 + 0.1 - ln 1.1 + 0) / 4 = 0.07309297
    value loss = 0.5 * mean((0.5 - return)^2) = 0.5 * (0.25 + 0.25 + 2.25 + 0) / 4 = 0.34375
    entropy of N(0, 1) = ln(2 pi e) / 2 = 1.41893853

Gradients (samples 0 and 1 are clipped: no policy gradient):
    actor bias:  -(1/4) * r_3 * (-A) * d ln p_3 / d mean (= a - mean = 1)  = A / 4     = 0.21650635
    log std:     -(1/4) * r_2 * A * d ln p_2 / d log std (= a^2 - 1 = -1) = 1.1 A / 4 = 0.23815698
    critic bias: mean(value - return) = (-0.5 + 0.5 - 1.5 + 0) / 4                  = -0.375
"""

from __future__ import annotations

import math

import pytest
import torch

from mimic_policy.networks import ActorCritic
from mimic_policy.ppo import PPOConfig, ppo_update
from mimic_policy.storage import RolloutStorage

A = 0.8660254037844386
STATS = {"policy_loss": -0.10825317547, "value_loss": 0.34375, "entropy": 1.41893853320, "approx_kl": 0.07309297316,
         "clip_fraction": 0.5}
GRADIENTS = {"actor.0.bias": 0.21650635094, "log_std": 0.23815698398, "critic.0.bias": -0.375}


def _setup(**config) -> tuple[ActorCritic, RolloutStorage, PPOConfig]:
    model = ActorCritic(1, 1, hidden=(), init_log_std=0.0)
    with torch.no_grad():
        model.normalizer.var.fill_(1.0 - 1e-8)  # identity normalization (it divides by sqrt(var + 1e-8))
        model.actor[0].weight.fill_(0.3)  # obs are all zero: weights get no gradient
        model.critic[0].weight.fill_(-0.7)
        model.critic[0].bias.fill_(0.5)
    storage = RolloutStorage(num_steps=4, num_envs=1, obs_size=1, action_size=1)
    storage.actions[:, 0, 0] = torch.tensor([0.0, 1.0, 0.0, 1.0])
    storage.log_probs[:, 0] = torch.tensor([-1.3244036413, -0.7257913526, -1.0142487130, -1.4189385332])
    storage.advantages[:, 0] = torch.tensor([1.0, -1.0, 1.0, -1.0])
    storage.returns[:, 0] = torch.tensor([1.0, 0.0, 2.0, 0.5])
    return model, storage, PPOConfig(**{"epochs": 1, "minibatches": 1, **config})  # the default clip, 0.2


def _update(model: ActorCritic, storage: RolloutStorage, config: PPOConfig) -> dict[str, float]:
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)  # parameter change = -(clipped) gradient
    return ppo_update(model, optimizer, storage, config, torch.Generator().manual_seed(0))


def _params(model: ActorCritic) -> dict[str, float]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_losses_and_diagnostics_by_hand():
    model, storage, config = _setup()
    assert _update(model, storage, config) == pytest.approx(STATS, rel=1e-6)  # float32
    assert storage.advantages[:, 0].tolist() == pytest.approx([A, -A, A, -A], rel=1e-6)


def test_the_step_follows_the_hand_worked_gradient():
    model, storage, config = _setup()
    before = _params(model)
    _update(model, storage, config)
    after = _params(model)
    for name, gradient in GRADIENTS.items():
        assert (after[name] - before[name]).item() == pytest.approx(-gradient, rel=1e-6), name
    for name in ("actor.0.weight", "critic.0.weight"):
        assert torch.equal(after[name], before[name]), name


def test_coefficients_weigh_the_losses():
    """value_coef 2 doubles the critic's step; entropy_coef 1 adds -1 to log std's gradient (no
    gradient clipping here)."""
    model, storage, config = _setup(value_coef=2.0, entropy_coef=1.0, max_grad_norm=100.0)
    before = _params(model)
    _update(model, storage, config)
    after = _params(model)
    assert (after["critic.0.bias"] - before["critic.0.bias"]).item() == pytest.approx(0.75, rel=1e-6)
    assert (after["log_std"] - before["log_std"]).item() == pytest.approx(1 - 0.23815698398, rel=1e-6)


def test_gradient_norm_is_clipped():
    """Gradient norm sqrt(0.21650635^2 + 0.23815698^2 + 0.375^2) = 0.49418493: clipped to 0.1
    (torch divides by the norm + 1e-6)."""
    model, storage, config = _setup(max_grad_norm=0.1)
    before = _params(model)
    _update(model, storage, config)
    after = _params(model)
    for name, gradient in GRADIENTS.items():
        step = (after[name] - before[name]).item()
        assert step == pytest.approx(-gradient * 0.1 / 0.49418593320, rel=1e-6), name


def test_value_clip_bounds_the_value_change_around_the_old_values():
    """Old values 0, clip 0.2: the clipped prediction 0.2 gives squared errors 0.64, 0.04, 3.24, 0.09;
    the larger of each pair (0.64, 0.25, 3.24, 0.09): value loss 0.5 * 4.22 / 4 = 0.5275."""
    model, storage, config = _setup(value_clip=0.2)
    assert _update(model, storage, config)["value_loss"] == pytest.approx(0.5275, rel=1e-6)


def test_every_epoch_and_minibatch_counts_in_the_means():
    """Without a step (learning rate 0) 3 epochs of 2 minibatches of 2 average to the same figures."""
    model, storage, config = _setup(epochs=3, minibatches=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    stats = ppo_update(model, optimizer, storage, config, torch.Generator().manual_seed(0))
    assert stats == pytest.approx(STATS, rel=1e-6)


def test_defaults_are_deepmimics():
    config = PPOConfig()
    assert (config.gamma, config.lam, config.epochs) == (0.95, 0.95, 1)
    assert math.isclose(math.exp(config.init_log_std), 0.1, rel_tol=0.01)
