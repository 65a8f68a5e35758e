"""Rollout storage: generalized advantage estimation against 3-step cases worked out by hand."""

from __future__ import annotations

import pytest
import torch

from mimic_policy.storage import RolloutStorage


def _storage(rewards: list[list[float]], values: list[list[float]], dones: list[list[float]]) -> RolloutStorage:
    steps, envs = len(rewards), len(rewards[0])
    storage = RolloutStorage(num_steps=steps, num_envs=envs, obs_size=2, action_size=2)
    index = torch.arange(steps * envs, dtype=torch.float32).reshape(steps, envs)
    obs = torch.stack([2 * index, 2 * index + 1], dim=-1)
    actions = torch.stack([index, -index], dim=-1)
    storage.fill(obs, actions, -index, torch.tensor(values), torch.tensor(rewards), torch.tensor(dones))
    return storage


def test_gae_of_three_steps_by_hand():
    """gamma 0.9, lambda 0.8; rewards 1, 0, 2; values 1, 2, 3; value after the last step 4.

    delta_2 = 2 + 0.9 * 4 - 3 = 2.6                     A_2 = 2.6
    delta_1 = 0 + 0.9 * 3 - 2 = 0.7                     A_1 = 0.7 + 0.9 * 0.8 * 2.6   = 2.572
    delta_0 = 1 + 0.9 * 2 - 1 = 1.8                     A_0 = 1.8 + 0.9 * 0.8 * 2.572 = 3.65184
    returns = A + V = 4.65184, 4.572, 5.6
    """
    storage = _storage([[1.0], [0.0], [2.0]], [[1.0], [2.0], [3.0]], [[0.0], [0.0], [0.0]])
    storage.compute_returns(last_values=torch.tensor([4.0]), gamma=0.9, lam=0.8)
    assert storage.advantages[:, 0].tolist() == pytest.approx([3.65184, 2.572, 2.6], rel=1e-6)
    assert storage.returns[:, 0].tolist() == pytest.approx([4.65184, 4.572, 5.6], rel=1e-6)


def test_an_episode_end_cuts_both_the_bootstrap_and_the_recursion():
    """The same three steps, the episode ending after step 1 (environment 0), and an environment
    1 that runs on with other numbers (gamma 0.5, lambda 0.5).

    env 0: delta_2 = 2 + 0.5 * 4 - 3 = 1                 A_2 = 1
           delta_1 = 0 - 2 = -2 (no future)             A_1 = -2 (step 2 belongs to the next episode)
           delta_0 = 1 + 0.5 * 2 - 1 = 1                A_0 = 1 + 0.25 * -2 = 0.5
    env 1: rewards 0, 0, 1; values 0, 0, 0; after the last step 2
           delta = 0, 0, 1 + 0.5 * 2 = 2                A = 0.25 * 0.5, 0.25 * 2, 2 = 0.125, 0.5, 2
    """
    storage = _storage([[1.0, 0.0], [0.0, 0.0], [2.0, 1.0]], [[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]],
                       [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    storage.compute_returns(last_values=torch.tensor([4.0, 2.0]), gamma=0.5, lam=0.5)
    assert storage.advantages[:, 0].tolist() == pytest.approx([0.5, -2.0, 1.0], rel=1e-6)
    assert storage.advantages[:, 1].tolist() == pytest.approx([0.125, 0.5, 2.0], rel=1e-6)
    assert storage.returns[:, 0].tolist() == pytest.approx([1.5, 0.0, 4.0], rel=1e-6)
    assert storage.returns[:, 1].tolist() == pytest.approx([0.125, 0.5, 2.0], rel=1e-6)


def test_lambda_one_gives_discounted_returns_and_zero_gives_one_step_targets():
    """rewards 1, 1, 1; values 0.5 each; after the last step 2; gamma 0.5.

    lambda 1: return_t = sum of discounted rewards + bootstrap: 1 + 0.5 + 0.25 + 0.125 * 2 = 2,
              1 + 0.5 + 0.25 * 2 = 2, 1 + 0.5 * 2 = 2
    lambda 0: return_t = r_t + gamma V_{t+1} = 1.25, 1.25, 2
    """
    for lam, expected in ((1.0, [2.0, 2.0, 2.0]), (0.0, [1.25, 1.25, 2.0])):
        storage = _storage([[1.0]] * 3, [[0.5]] * 3, [[0.0]] * 3)
        storage.compute_returns(last_values=torch.tensor([2.0]), gamma=0.5, lam=lam)
        assert storage.returns[:, 0].tolist() == pytest.approx(expected, rel=1e-6), lam


def test_compute_returns_again_starts_afresh():
    storage = _storage([[1.0], [0.0], [2.0]], [[1.0], [2.0], [3.0]], [[0.0], [0.0], [0.0]])
    storage.compute_returns(last_values=torch.tensor([100.0]), gamma=0.9, lam=0.8)
    storage.compute_returns(last_values=torch.tensor([4.0]), gamma=0.9, lam=0.8)
    assert storage.returns[:, 0].tolist() == pytest.approx([4.65184, 4.572, 5.6], rel=1e-6)


def test_minibatches_partition_the_rollout_and_keep_rows_together():
    storage = _storage([[float(t * 10 + e) for e in range(3)] for t in range(4)], [[0.0] * 3] * 4, [[0.0] * 3] * 4)
    storage.compute_returns(last_values=torch.zeros(3), gamma=0.0, lam=0.0)  # returns = rewards
    assert storage.num_steps == 4
    batches = list(storage.minibatches(3, torch.Generator().manual_seed(0)))
    assert len(batches) == 3 and all(len(b["obs"]) == 4 for b in batches)
    seen = torch.cat([b["actions"][:, 0] for b in batches])
    assert sorted(seen.tolist()) == [float(i) for i in range(12)]  # each sample once
    assert seen.tolist() != [float(i) for i in range(12)]  # in a shuffled order
    for batch in batches:
        index = batch["actions"][:, 0].long()  # the sample's (step, env) is index = step * 3 + env
        step, env = index // 3, index % 3
        assert batch["actions"][:, 1].tolist() == (-index.float()).tolist()
        assert batch["obs"].tolist() == torch.stack([2 * index, 2 * index + 1], dim=1).float().tolist()
        assert batch["log_probs"].tolist() == (-index.float()).tolist()
        assert batch["returns"].tolist() == (step * 10 + env).float().tolist()
        assert batch["advantages"].tolist() == batch["returns"].tolist()  # values are 0
        assert batch["values"].tolist() == [0.0] * 4


def test_the_minibatch_order_comes_from_the_generator_given():
    storage = _storage([[0.0] * 3] * 4, [[0.0] * 3] * 4, [[0.0] * 3] * 4)
    storage.compute_returns(last_values=torch.zeros(3), gamma=0.0, lam=0.0)

    def order(seed: int) -> list[float]:
        torch.manual_seed(123)  # the global stream, the same each time: only the generator differs
        return torch.cat([b["actions"][:, 0] for b in storage.minibatches(2, torch.Generator().manual_seed(seed))])\
            .tolist()

    assert order(0) == order(0) and order(0) != order(1)
