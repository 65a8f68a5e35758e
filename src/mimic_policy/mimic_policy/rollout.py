"""Rollouts: the policy acting in a block of environments for a number of steps.

A rollout runs where the environments are: in each worker process, on a copy of the
policy (:class:`~mimic_policy.vec_env.WorkerVectorEnv`), so a step costs no message
and no wait on the trainer, or in the trainer's process for environments that live
there (:class:`LocalRollouts`).  Both call :func:`collect_rollout`.  The value
network is not needed to act: the trainer evaluates it on the whole batch afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from mimic_policy.networks import ActorCritic


@dataclass
class Rollout:
    """``T`` steps of ``N`` environments; rows of ``final_obs`` belong to ``final_index``."""

    obs: np.ndarray  # (T, N, D) the observations acted on
    actions: np.ndarray  # (T, N, A)
    log_probs: np.ndarray  # (T, N)
    rewards: np.ndarray  # (T, N)
    terminated: np.ndarray  # (T, N) bool: failure, no future
    truncated: np.ndarray  # (T, N) bool: time limit, the future is bootstrapped
    final_index: np.ndarray  # (K, 2) (step, env) of each truncation
    final_obs: np.ndarray  # (K, D) the last observation of each truncated episode
    terms: dict[str, np.ndarray]  # (T, N) per reward term, from the environments' infos (NaN: not given)
    last_obs: np.ndarray  # (N, D) the observations after the last step

    @staticmethod
    def concatenate(parts: list[Rollout]) -> Rollout:
        """Rollouts of consecutive blocks of environments as one."""
        offsets = np.cumsum([0] + [p.obs.shape[1] for p in parts[:-1]])
        cat = {name: np.concatenate([getattr(p, name) for p in parts], axis=1)
               for name in ("obs", "actions", "log_probs", "rewards", "terminated", "truncated")}
        index = np.concatenate([p.final_index + np.array([0, offset])
                                for p, offset in zip(parts, offsets, strict=True)])
        return Rollout(**cat, final_index=index, final_obs=np.concatenate([p.final_obs for p in parts]),
                       terms={k: np.concatenate([p.terms[k] for p in parts], axis=1) for k in parts[0].terms},
                       last_obs=np.concatenate([p.last_obs for p in parts]))


def collect_rollout(envs: gym.vector.VectorEnv, obs: np.ndarray, model: ActorCritic, steps: int,
                    generator: torch.Generator) -> Rollout:
    """Act ``steps`` times from ``obs`` in ``envs`` (same-step autoreset) with the policy's samples."""
    num_envs = len(obs)
    observations, actions, log_probs, rewards, terminated, truncated = [], [], [], [], [], []
    final_index, final_obs, terms = [], [], {}
    for t in range(steps):
        action, log_prob = model.sample(torch.as_tensor(obs, dtype=torch.float32), generator)
        observations.append(obs)
        actions.append(action.numpy())
        log_probs.append(log_prob.numpy())
        obs, reward, term, trunc, infos = envs.step(action.numpy())
        rewards.append(reward)
        terminated.append(term)
        truncated.append(trunc)
        for i in np.flatnonzero(trunc):
            final_index.append((t, i))
            final_obs.append(infos["final_obs"][i])
        for key, value in infos.items():
            if key.startswith("reward_"):  # NaN where an environment did not report the term
                rows = terms.get(key)
                if rows is None:
                    rows = terms[key] = np.full((steps, num_envs), np.nan)
                given = infos.get(f"_{key}")
                if given is None:  # every environment reports it (the imitation task): no mask to apply
                    rows[t] = value
                else:
                    rows[t, given] = np.asarray(value, dtype=float)[given]
    size = int(np.prod(obs.shape[1:]))
    return Rollout(
        obs=np.asarray(observations, dtype=np.float32), actions=np.asarray(actions, dtype=np.float32),
        log_probs=np.asarray(log_probs, dtype=np.float32), rewards=np.asarray(rewards, dtype=np.float32),
        terminated=np.asarray(terminated, dtype=bool), truncated=np.asarray(truncated, dtype=bool),
        final_index=np.asarray(final_index, dtype=int).reshape(-1, 2),
        final_obs=np.asarray(final_obs, dtype=np.float32).reshape(-1, size),
        terms={key.removeprefix("reward_"): rows for key, rows in terms.items()}, last_obs=np.asarray(obs, np.float32),
    )


def policy_copy(spec: dict, state: dict[str, torch.Tensor], model: ActorCritic | None = None) -> ActorCritic:
    """A model built from ``ActorCritic.spec`` (or ``model``, reused) with a policy state loaded."""
    if model is None:
        model = ActorCritic(**spec)
    model.load_state_dict(state, strict=False)
    return model


class LocalRollouts:
    """Rollouts of a vector env that lives in this process, with the trainer's own model."""

    def __init__(self, envs: gym.vector.VectorEnv):
        self.envs = envs
        self.num_envs = envs.num_envs
        self.single_observation_space = envs.single_observation_space
        self.single_action_space = envs.single_action_space
        self.obs: np.ndarray | None = None

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict]:
        self.obs, infos = self.envs.reset(seed=seed)
        return self.obs, infos

    def rollout(self, model: ActorCritic, steps: int, seed: int) -> Rollout:
        """Environment ``i`` continues its episode; action noise from a stream seeded ``seed``."""
        rollout = collect_rollout(self.envs, self.obs, model, steps, torch.Generator().manual_seed(seed))
        self.obs = rollout.last_obs
        return rollout

    def replay(self, actions: np.ndarray) -> None:
        """Step the environments through ``actions`` (steps, num_envs, ...)."""
        for step_actions in actions:
            self.obs = self.envs.step(step_actions)[0]

    def close(self) -> None:
        self.envs.close()
