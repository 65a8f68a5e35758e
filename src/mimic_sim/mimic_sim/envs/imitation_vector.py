"""Several imitation environments of one task stepped together in one process.

A gymnasium ``VectorEnv`` over :class:`~mimic_sim.envs.imitation.ImitationEnv`
instances whose steps go through :meth:`ImitationEnv.step_batch`: the physics runs
per character, the reward, termination checks and observations once over arrays of
all of them.  Results are those of the same environments stepped one by one
(``gymnasium.vector.SyncVectorEnv`` with same-step autoreset): environment ``i`` is
seeded ``seed + i``, an episode that ends is reset in the same step and its last
observation is in ``infos["final_obs"]`` (rows where ``infos["_final_obs"]``).

With :class:`TrainingPushes`, environments are also pushed at random while they run (training
for robustness): a horizontal force on the root body, as ``mimic eval --push`` applies it, drawn
from each environment's own generator, so a run is reproducible and the same over any split of
environments into workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import numpy as np

from mimic_sim.backends.base import horizontal_push
from mimic_sim.envs.imitation import ImitationConfig, ImitationEnv
from mimic_sim.task import Task


@dataclass(frozen=True)
class TrainingPushes:
    """Random pushes during training: in each control period an environment not already being pushed
    starts one with probability ``control period / every``, a horizontal force on the root body for
    ``steps`` control periods, its direction uniform and its size uniform up to the whole-body velocity
    change ``velocity`` (m/s)."""

    velocity: float
    every: float
    steps: int

    def __post_init__(self) -> None:
        if not (self.velocity > 0 and self.every > 0 and self.steps >= 1):
            raise ValueError(f"training pushes need a positive velocity and interval and at least one step, got "
                             f"{self.velocity} m/s every {self.every} s for {self.steps} steps")


class ImitationVectorEnv(gym.vector.VectorEnv):
    metadata: ClassVar[dict] = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int, config: ImitationConfig | None = None, task: Task | None = None,
                 pushes: TrainingPushes | None = None, **overrides):
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
        self.pushes = pushes
        self._push_left = np.zeros(num_envs, dtype=int)  # control periods each push still holds

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        self._push_left[:] = 0
        results = [env.reset(seed=None if seed is None else seed + i, options=options)
                   for i, env in enumerate(self.envs)]
        infos = {k: np.array([r[1][k] for r in results]) for k in results[0][1]}
        return np.stack([r[0] for r in results]), infos

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        if self.pushes is not None:
            self._push()
        obs, rewards, terminated, truncated, infos = ImitationEnv.step_batch(self.envs, np.asarray(actions))
        done = terminated | truncated
        if done.any():
            self._push_left[done] = 0  # a reset ends the push (PhysicsBackend.set_root_force)
            infos["final_obs"] = obs.copy()
            infos["_final_obs"] = done
            obs[done] = ImitationEnv.reset_batch([self.envs[i] for i in np.flatnonzero(done)])
        return obs, rewards, terminated, truncated, infos

    def _push(self) -> None:
        """End the pushes that have run their time, and start new ones where drawn."""
        pushes = self.pushes
        for i, env in enumerate(self.envs):
            if self._push_left[i] > 0:
                self._push_left[i] -= 1
                if self._push_left[i] == 0:
                    env.backend.set_root_force(np.zeros(3))
            elif env.np_random.random() < env.sim_config.control_dt / pushes.every:
                angle = env.np_random.uniform(0.0, 2.0 * np.pi)
                velocity = env.np_random.uniform(0.0, pushes.velocity)
                env.backend.set_root_force(horizontal_push(velocity, angle, env.character.total_mass,
                                                           pushes.steps * env.sim_config.control_dt))
                self._push_left[i] = pushes.steps

    def close_extras(self, **kwargs) -> None:
        for env in self.envs:
            env.close()
