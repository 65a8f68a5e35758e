"""The DeepMimic imitation task as a gymnasium environment.

A PD-controlled character must track a reference clip.  Each step the policy sets
PD targets for every actuated joint, held for one control period (1/30 s by
default); the reward (:mod:`mimic_sim.reward`) compares the simulated character with
the reference at the same time.  Episodes start at a uniformly random time of the
clip in the reference state (reference state initialization), end as *terminated*
when a body other than the feet touches the ground (early termination), and as
*truncated* at the time limit (20 s) or at the end of a non-looping clip.

With ``init="adaptive"`` the start times follow SFV's adaptive state initialization
instead (:class:`AdaptiveStarts`): more often where the policy does worst.

Episode start times are drawn on the physics-step grid, so every reference time the
environment asks for is a whole number of physics steps.  The reference state, its
body kinematics and the reward's reference features are then computed once per grid
time and reused by later episodes: exact, and after warm-up the reference costs a
dictionary lookup instead of a slerp, an Euler split and forward kinematics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import ClassVar

import gymnasium as gym
import numpy as np

from mimic_sim.backends import BodyStates, make_backend
from mimic_sim.observation import build_observation, observation_size
from mimic_sim.reference import ReferenceMotion
from mimic_sim.reward import TrackingFeatures, imitation_rewards, tracking_features
from mimic_sim.task import ImitationConfig, Task, default_config

REFERENCE_BATCH = 16
"""Control steps of reference computed together when the cache misses (see ``_reference_at``)."""


class AdaptiveStarts:
    """Start times drawn where the policy does worst (SFV's adaptive state initialization, ASI).

    The clip is cut into ``bins`` equal spans of time. Each episode's score is its mean reward
    over its first ``horizon`` steps (a fall counts as zero for the rest of them, as in the
    normalized return): how well the policy does from that start. A bin keeps an exponential
    average of its episodes' scores (rate ``rate``; its first episode sets it; a bin not yet
    visited counts as failing, so every bin is tried early), and a bin is drawn with probability
    proportional to ``1 - score + floor``: starts concentrate where the policy fails, and
    every bin keeps some mass so that a recovered phase is still visited. SFV learns its start
    distribution with a policy gradient on the same signal; this keeps the estimate explicit.
    Each environment keeps its own statistics, rebuilt from its own episodes (after a resume
    too, as the environments restart).
    """

    def __init__(self, bins: int = 20, horizon: int = 30, rate: float = 0.1, floor: float = 0.1):
        self.bins, self.horizon, self.rate, self.floor = bins, horizon, rate, floor
        self.scores = np.zeros(bins)
        self.episodes = np.zeros(bins, dtype=int)
        self._bin: int | None = None
        self._sum = 0.0
        self._steps = 0
        self._limit = horizon

    def probabilities(self) -> np.ndarray:
        weights = np.clip(1.0 - self.scores, 0.0, None) + self.floor
        return weights / weights.sum()

    def draw(self, rng: np.random.Generator, ticks: int, steps_left: Callable[[int], int]) -> int:
        """A start tick among ``ticks`` of the clip; ``steps_left(tick)`` is how many steps an
        episode from there can last (a clip that does not loop ends)."""
        b = int(rng.choice(self.bins, p=self.probabilities()))
        lo, hi = b * ticks // self.bins, max((b + 1) * ticks // self.bins, b * ticks // self.bins + 1)
        tick = int(rng.integers(lo, hi))
        self._bin, self._sum, self._steps = b, 0.0, 0
        self._limit = max(1, min(self.horizon, steps_left(tick)))
        return tick

    def record(self, reward: float, done: bool) -> None:
        """One step's reward of the current episode; its score is kept once ``horizon`` steps are
        in, or when it ends before."""
        if self._bin is None:
            return
        self._sum += reward
        self._steps += 1
        if self._steps >= self._limit or done:
            b, score = self._bin, self._sum / self._limit
            # a bin's first episode sets its score: no prior to unlearn
            self.scores[b] = score if self.episodes[b] == 0 else self.scores[b] + self.rate * (score - self.scores[b])
            self.episodes[b] += 1
            self._bin = None


class ImitationEnv(gym.Env):
    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, config: ImitationConfig | None = None, render_mode: str | None = None,
                 task: Task | None = None, **overrides):
        """The task ``task`` (as a checkpoint carries it) or the one ``config`` names; ``overrides``
        change settings of either (``ImitationEnv(clip="run")``, ``gymnasium.make(..., clip="run")``)."""
        if task is None:
            task = Task.resolve(config or default_config(), **overrides)
        elif config is not None or overrides:
            task = task.replace(**{**vars(config or task.config), **overrides})
        self.task = task
        self.config = cfg = task.config
        self.character = task.character
        self.motion = task.motion
        self.reference = ReferenceMotion(self.motion, self.character)
        self.backend = make_backend(cfg.backend, self.character, cfg.sim)
        self.metadata = {**self.metadata, "render_fps": cfg.sim.control_hz}
        self.render_mode = render_mode
        c = self.character
        self._parents = c.tracked_parents
        self._root = int(np.flatnonzero(self._parents < 0)[0])
        self._effectors = c.body_index(c.end_effectors)
        self._forbidden = task.fall_mask
        if cfg.residual_actions:  # any offset that can reach the whole joint range from the reference
            span = (c.joint_upper - c.joint_lower).astype(np.float32)
            self.action_space = gym.spaces.Box(-span, span)
        else:
            self.action_space = gym.spaces.Box(c.joint_lower.astype(np.float32), c.joint_upper.astype(np.float32))
        n = observation_size(len(c.tracked_bodies), cfg.target_observation)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n,), np.float32)
        self.sim_config = self.backend.config  # with the backend's physics rate filled in
        self._dt = cfg.sim.control_dt
        self._start = 0.0
        self._time = 0.0
        self._steps = 0
        self._max_steps = round(cfg.episode_seconds * cfg.sim.control_hz)
        self._renderer = None
        self.adaptive_starts = AdaptiveStarts() if cfg.init == "adaptive" else None
        self._ticks_per_second = self.sim_config.physics_hz
        self._ref_cache: dict[int, tuple] = {}
        b, e, j = len(c.tracked_bodies), len(self._effectors), c.num_joints
        # packed reference entries: qpos, qvel, TrackingFeatures fields, BodyStates fields
        shapes = [(7 + j,), (6 + j,), (b, 3, 3), (b, 3), (e, 3), (3,), (3,), (3,),
                  (b, 3), (b, 4), (b, 3, 3), (b, 3), (b, 3), (3,), (3,)]
        ends = np.cumsum([int(np.prod(shape)) for shape in shapes])
        self._packed_parts = [(int(end - np.prod(shape)), int(end), shape) for shape, end in zip(shapes, ends,
                                                                                                   strict=True)]
        self._states_part = 8  # the first BodyStates part: what a step needs ahead is the span before

    # ------------------------------------------------------------------ API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        obs = self.reset_batch([self], options)[0]
        return obs, {"time": self._time, "phase": self.reference.phase(self._time)}

    @staticmethod
    def reset_batch(envs: Sequence[ImitationEnv], options: dict | None = None) -> np.ndarray:
        """Start a new episode in environments of one task, each drawing from its own generator, and
        return their first observations, computed together.  ``reset`` is this with one environment."""
        for env in envs:
            env._start_episode(options or {})
        sim = type(envs[0].backend).body_states_of([env.backend for env in envs])
        return ImitationEnv._observations(envs, sim)[0]

    def _start_episode(self, options: dict) -> None:
        """The start time (given, drawn or 0) and the character in the reference state there, lifted
        clear of the floor."""
        if "start_time" in options:
            self._start = float(options["start_time"])
        elif self.config.random_start:
            ticks = max(1, int(self.motion.duration * self._ticks_per_second))
            if self.adaptive_starts is not None:
                tick = self.adaptive_starts.draw(self.np_random, ticks,
                                                 lambda t: self.steps_possible(t / self._ticks_per_second))
            else:
                tick = int(self.np_random.integers(ticks))
            self._start = float(tick) / self._ticks_per_second
        else:
            self._start = 0.0
        self._time = self._start
        self._steps = 0
        qpos, qvel = self._reference_at(self._time)[:2]
        self.backend.reset_clear_of_floor(qpos, qvel)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """One control period; ``action`` has one value per joint (a shorter one is an error, not
        broadcast to every joint)."""
        action = np.asarray(action, dtype=float)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action has shape {action.shape}, expected {self.action_space.shape}: one value per "
                             f"joint of character '{self.character.name}'")
        obs, rewards, terminated, truncated, info = self.step_batch([self], action[None])
        return obs[0], float(rewards[0]), bool(terminated[0]), bool(truncated[0]), {k: v[0].item()
                                                                                      for k, v in info.items()}

    @staticmethod
    def step_batch(envs: Sequence[ImitationEnv], actions: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Step environments of one task (same config) together: the physics one by one, the
        controls, body states, ground contacts, reward, termination and observation as arrays over
        all of them (per-call numpy overhead is most of their cost on one character).  ``step`` is
        this with one environment."""
        first = envs[0]
        backends = [env.backend for env in envs]
        # the reference at the end of the coming period: PD targets now, the reward's reference after
        ahead_qpos, ahead_qvel, ahead_features = first._references_ahead(envs)
        actions = np.asarray(actions, dtype=float)
        expected = (len(envs), *first.action_space.shape)
        if actions.shape != expected:
            raise ValueError(f"actions have shape {actions.shape}, expected {expected}: one row per environment, one "
                             f"value per joint of character '{first.character.name}'")
        if first.config.residual_actions:
            type(first.backend).step_many(backends, ahead_qpos[:, 7:] + actions, ahead_qvel[:, 6:])
        else:
            type(first.backend).step_many(backends, actions)
        for env in envs:
            env._time += env._dt
            env._steps += 1
        times = np.array([env._time for env in envs])
        sim = type(first.backend).body_states_of(backends)
        rewards, terms = imitation_rewards(tracking_features(sim, first._parents, first._effectors),
                                           ahead_features, first.character.pose_weights, first._root,
                                           first.config.reward)
        finite = np.isfinite(sim.pos).all(axis=(-2, -1)) & np.isfinite(sim.lin_vel).all(axis=(-2, -1))
        fell = (type(first.backend).ground_contacts_of(backends) & first._forbidden).any(axis=1)
        fell &= first.config.early_termination
        terminated = fell | ~finite
        rewards = np.where(terminated, 0.0, rewards)
        clip_over = (not first.motion.loop) & (times >= first.motion.duration)
        steps = np.array([env._steps for env in envs])
        truncated = ~terminated & ((steps >= first._max_steps) | clip_over)
        obs, phases = ImitationEnv._observations(envs, sim)
        obs[~finite] = 0.0
        if first.adaptive_starts is not None:
            for env, reward, done in zip(envs, rewards, terminated | truncated, strict=True):
                env.adaptive_starts.record(float(reward), bool(done))
        info = {f"reward_{k}": v for k, v in terms.items()}
        info.update(time=times, phase=phases, fell=fell)
        return obs, rewards, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None:
            from mimic_sim.render import CharacterRenderer

            self._renderer = CharacterRenderer(self.character)
        qpos, _ = self.backend.get_state()
        ref_qpos = self._reference_at(self._time)[0]
        return self._renderer.render(qpos, ghost=ref_qpos)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self.backend.close()

    # ------------------------------------------------------------- helpers
    @property
    def time(self) -> float:
        return self._time

    def steps_possible(self, start_time: float) -> int:
        """Control steps an episode started at ``start_time`` can last: the time limit, or the end of
        a clip that does not loop."""
        if self.motion.loop:
            return self._max_steps
        seconds = self.motion.duration - start_time
        return min(self._max_steps, max(1, round(seconds * self.config.sim.control_hz)))

    def _reference_at(self, time: float) -> tuple[np.ndarray, np.ndarray, TrackingFeatures, BodyStates, np.ndarray]:
        """Reference (qpos, qvel, reward features, body states, all of them packed in one vector)
        at a time, memoized on the physics-step grid."""
        tick = round(time * self._ticks_per_second)
        if abs(time * self._ticks_per_second - tick) >= 1e-6:  # off the grid (a start time given): not kept
            return self._reference_entries(np.array([time]))[0]
        if tick not in self._ref_cache:
            # An episode asks for the control steps ahead in order: compute them as one batch
            # (the per-call overhead of one state is most of its cost).
            ticks = [t for t in tick + self.sim_config.substeps * np.arange(REFERENCE_BATCH)
                     if int(t) not in self._ref_cache]
            for t, entry in zip(ticks, self._reference_entries(np.array(ticks) / self._ticks_per_second),
                                strict=True):
                self._ref_cache[int(t)] = entry
        return self._ref_cache[tick]

    def _reference_entries(self, times: np.ndarray) -> list[tuple]:
        """``_reference_at`` entries of the reference at an array of times, computed as one batch."""
        qpos, qvel = self.reference.states(times)
        states = self.backend.kinematics_many(qpos, qvel)
        features = tracking_features(states, self._parents, self._effectors)
        feature_parts = [getattr(features, f.name) for f in fields(features)]
        state_parts = [getattr(states, f.name) for f in fields(states)]
        n = len(times)
        packed = np.concatenate([p.reshape(n, -1) for p in (qpos, qvel, *feature_parts, *state_parts)], axis=1)
        return [(qpos[k], qvel[k], TrackingFeatures(*(p[k] for p in feature_parts)),
                 BodyStates(*(p[k] for p in state_parts)), packed[k]) for k in range(n)]

    def _references_ahead(self, envs: Sequence[ImitationEnv]) -> tuple[np.ndarray, np.ndarray, TrackingFeatures]:
        """Reference qpos, qvel and reward features of environments at the end of their coming control
        period, batched."""
        parts = self._unpack_references([env._reference_at(env._time + env._dt) for env in envs], 0,
                                        self._states_part)
        return parts[0], parts[1], TrackingFeatures(*parts[2:])

    def _unpack_references(self, entries: list[tuple], first: int, stop: int) -> list[np.ndarray]:
        """Packed parts ``first`` to ``stop - 1`` of several ``_reference_at`` entries as batched arrays,
        from one copy of that span of their packed vectors (np.array of a list: a third of np.stack's cost)."""
        lo, hi = self._packed_parts[first][0], self._packed_parts[stop - 1][1]
        packed = np.array([e[4][lo:hi] for e in entries])
        return [packed[:, start - lo : end - lo].reshape(len(entries), *shape)
                for start, end, shape in self._packed_parts[first:stop]]

    @staticmethod
    def _observations(envs: Sequence[ImitationEnv], sim: BodyStates) -> tuple[np.ndarray, np.ndarray]:
        """Observations of environments of one task whose characters are in states ``sim`` (a batch),
        and their phases."""
        first = envs[0]
        phases = np.array([first.reference.phase(env._time) for env in envs])
        target = None
        if first.config.target_observation:
            entries = [env._reference_at(env._time + env._dt) for env in envs]
            target = BodyStates(*first._unpack_references(entries, first._states_part, len(first._packed_parts)))
        with np.errstate(invalid="ignore"):  # a diverged character's row (zeroed by step_batch)
            return build_observation(sim, first._root, phases, target).astype(np.float32), phases

    def reference_action(self) -> np.ndarray:
        """The action whose PD targets are the reference pose at the end of the control period
        (a baseline policy: it plays the clip open loop, and falls without feedback)."""
        if self.config.residual_actions:
            return np.zeros(self.action_space.shape, np.float32)
        qpos = self._reference_at(self._time + self._dt)[0]
        return np.clip(qpos[7:], self.action_space.low, self.action_space.high).astype(np.float32)
