"""Several imitation environments of one task stepped together in one process.

A gymnasium ``VectorEnv`` over :class:`~mimic_sim.envs.imitation.ImitationEnv`
instances whose steps go through :meth:`ImitationEnv.step_batch`: the physics runs
per character, the reward, termination checks and observations once over arrays of
all of them.  Results are those of the same environments stepped one by one
(``gymnasium.vector.SyncVectorEnv`` with same-step autoreset): environment ``i`` is
seeded ``seed + i``, an episode that ends is reset in the same step and its last
observation is in ``infos["final_obs"]`` (rows where ``infos["_final_obs"]``).
"""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np

from mimic_sim.envs.imitation import ImitationConfig, ImitationEnv
from mimic_sim.task import Task


class ImitationVectorEnv(gym.vector.VectorEnv):
    metadata: ClassVar[dict] = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int, config: ImitationConfig | None = None, task: Task | None = None,
                 **overrides):
        if num_envs < 1:
            raise ValueError(f"need at least one environment, got {num_envs}")
        first = ImitationEnv(config, task=task, **overrides)  # resolves the task once, for all of them
        self.envs = [first] + [ImitationEnv(task=first.task) for _ in range(num_envs - 1)]
        first = self.envs[0]
        for env in self.envs[1:]:  # one task: the reference cache is shared
            env._ref_cache = first._ref_cache
        self.num_envs = num_envs
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = gym.vector.utils.batch_space(first.observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(first.action_space, num_envs)
        self.config = first.config

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        results = [env.reset(seed=None if seed is None else seed + i, options=options)
                   for i, env in enumerate(self.envs)]
        infos = {k: np.array([r[1][k] for r in results]) for k in results[0][1]}
        return np.stack([r[0] for r in results]), infos

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, rewards, terminated, truncated, infos = ImitationEnv.step_batch(self.envs, np.asarray(actions))
        done = terminated | truncated
        if done.any():
            infos["final_obs"] = obs.copy()
            infos["_final_obs"] = done
            obs[done] = ImitationEnv.reset_batch([self.envs[i] for i in np.flatnonzero(done)])
        return obs, rewards, terminated, truncated, infos

    def close_extras(self, **kwargs) -> None:
        for env in self.envs:
            env.close()
