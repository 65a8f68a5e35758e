"""Push robustness: the largest shove a trained policy survives (``mimic eval --push``).

DeepMimic's viewer throws boxes at the character; here a push is a horizontal force on
the root body's centre of mass (:meth:`PhysicsBackend.set_root_force`) held for
``duration`` seconds (whole control periods).  Its size is given as the impulse
(force x duration, N s) and as the whole-body velocity change it equals, impulse /
total mass (m/s), so characters of different mass compare.

One trial: the deterministic policy starts at a random clip time (reference state
initialization, as in evaluation), is pushed at a random time ``earliest``-``latest``
seconds later in a random horizontal direction, and survives if it does not fall
(early termination: a body other than the feet touches the ground) within ``window``
seconds after the push ends.  All draws come from ``seed``, and every push size is
tried on the same trials (same starts, times and directions), so survival falls with
the size as the pushes alone make it.

The search: no push first (a policy that falls unpushed gets 0), then velocity changes
doubling from ``first_velocity`` until one is not survived in ``survival`` of the
trials (at most ``max_velocity``), then bisection between the last survived and the
first failed size until they are ``resolution`` m/s apart.  A size stops being tried
as soon as more trials have failed than ``survival`` allows.  Reported: the largest
size survived, every size tried with its survival count, and the settings.  A clip
that does not loop is refused: its episodes end with the clip, before a trial would.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
import torch

from mimic_policy.networks import ActorCritic
from mimic_sim.backends.base import horizontal_push
from mimic_sim.settings import field_docs

if TYPE_CHECKING:
    from mimic_sim.envs.imitation import ImitationEnv


@dataclass(frozen=True)
class PushConfig:
    """How pushes are drawn and searched (the ``--push-*`` options of ``mimic eval``)."""

    trials: int = 20
    """Trials per push size; survival in ``survival`` of them passes the size."""
    duration: float = 0.1
    """Seconds the force is held: a whole number of control periods."""
    window: float = 2.0
    """Seconds after the push's end the character must stay up."""
    earliest: float = 0.5
    """Earliest push, seconds after the episode's start (the policy settles in first)."""
    latest: float = 1.5
    """Latest push, seconds after the episode's start."""
    survival: float = 0.9
    """Fraction of trials that must survive a push size."""
    first_velocity: float = 0.5
    """First push size tried, as a velocity change (m/s); doubled until one is not survived."""
    max_velocity: float = 8.0
    """Largest push size tried (m/s): a policy surviving it is reported as surviving at least that."""
    resolution: float = 0.05
    """Bisection stops when the survived and failed sizes are this close (m/s)."""

    def __post_init__(self) -> None:
        checks = [("trials", self.trials >= 1, "at least 1"), ("duration", self.duration > 0, "positive"),
                  ("window", self.window > 0, "positive"),
                  ("earliest", 0 <= self.earliest <= self.latest, "between 0 and the latest push time"),
                  ("survival", 0 < self.survival <= 1, "in (0, 1]"),
                  ("first_velocity", 0 < self.first_velocity <= self.max_velocity, "positive, at most max_velocity"),
                  ("resolution", self.resolution > 0, "positive")]
        for name, ok, expected in checks:
            value = getattr(self, name)
            if not ok or not math.isfinite(value):
                raise ValueError(f"push {name} (--push-{name.replace('_', '-')}) must be {expected}, got {value}")

    def steps(self, control_hz: float) -> int:
        """Control periods the force is held for."""
        steps = self.duration * control_hz
        if abs(steps - round(steps)) > 1e-6:
            raise ValueError(f"push duration (--push-duration) {self.duration} s is not a whole number of control "
                             f"periods (1/{control_hz:g} s)")
        return round(steps)


def push_robustness(model: ActorCritic, meta: dict, config: PushConfig | None = None, seed: int = 0,
                    backend: str | None = None, physics_hz: float | None = None,
                    progress: Callable[[str], None] | None = None) -> dict:
    """The largest push the checkpoint's deterministic policy survives in ``config.survival`` of
    ``config.trials`` trials (see the module docstring), in its simulator or another
    (``backend``/``physics_hz``); ``progress`` gets a line per push size tried."""
    from mimic_policy.evaluate import evaluation_env

    config = config or PushConfig()
    env = evaluation_env(meta, config.latest + config.duration + config.window + 1.0, backend, physics_hz)
    try:
        if not env.motion.loop:
            raise ValueError(f"--push needs a looping clip: clip '{env.task.config.clip}' does not loop "
                             "(its episodes end with the clip, before a trial would)")
        hz = env.sim_config.control_hz
        push_steps = config.steps(hz)
        rng = np.random.default_rng(seed)
        trials = [(float(rng.uniform(0.0, 2.0 * np.pi)),
                   int(rng.integers(round(config.earliest * hz), round(config.latest * hz) + 1)))
                  for _ in range(config.trials)]
        mass = env.character.total_mass
        allowed_failures = config.trials - math.ceil(config.survival * config.trials - 1e-9)
        levels: list[dict] = []

        def survives(velocity: float) -> bool:
            survived = failed = 0
            for trial, (angle, push_at) in enumerate(trials):
                force = horizontal_push(velocity, angle, mass, config.duration)
                if _trial(model, env, seed + trial, force, push_at, push_steps, round(config.window * hz)):
                    survived += 1
                else:
                    failed += 1
                    if failed > allowed_failures:
                        break
            passed = failed <= allowed_failures
            levels.append({"velocity_change_m_s": velocity, "impulse_ns": velocity * mass, "survived": survived,
                           "trials_run": survived + failed, "passed": passed})
            if progress is not None:
                progress(f"push {velocity:.3f} m/s ({velocity * mass:.1f} N s): survived {survived} of "
                         f"{survived + failed} trials run, {'passed' if passed else 'failed'}")
            return passed

        best, failed_at = 0.0, None
        if survives(0.0):
            velocity = config.first_velocity
            while failed_at is None and velocity <= config.max_velocity + 1e-9:
                if survives(velocity):
                    best, velocity = velocity, velocity * 2
                else:
                    failed_at = velocity
            while failed_at is not None and failed_at - best > config.resolution:
                middle = (best + failed_at) / 2
                best, failed_at = (middle, failed_at) if survives(middle) else (best, middle)
        else:
            failed_at = 0.0
    finally:
        env.close()
    return {"velocity_change_m_s": best, "impulse_ns": best * mass, "total_mass_kg": mass,
            "at_least": failed_at is None, "falls_unpushed": failed_at == 0.0, "seed": seed,
            "backend": env.task.config.backend, "physics_hz": env.sim_config.physics_hz,
            "config": asdict(config), "levels": levels}


def _trial(model: ActorCritic, env: ImitationEnv, seed: int, force: np.ndarray, push_at: int, push_steps: int,
           window_steps: int) -> bool:
    """One episode from the seed's random clip time, pushed with ``force`` during control steps
    ``push_at`` to ``push_at + push_steps``; True if it does not fall within ``window_steps`` after."""
    obs, _ = env.reset(seed=seed)
    for step in range(push_at + push_steps + window_steps):
        if step == push_at:
            env.backend.set_root_force(force)
        elif step == push_at + push_steps:
            env.backend.set_root_force(np.zeros(3))
        with torch.no_grad():
            action = model.act_deterministic(torch.as_tensor(obs[None], dtype=torch.float32))[0].numpy()
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated:
            return False
        if truncated:  # the episode is longer than any trial: an end here is a bug, not a survival
            raise RuntimeError(f"push trial truncated at step {step + 1}")
    return True


def add_push_arguments(parser: argparse.ArgumentParser) -> None:
    """``--push-<setting>`` for every :class:`PushConfig` field (unset: the default)."""
    docs = field_docs(PushConfig)
    group = parser.add_argument_group("push settings (with --push)")
    for f in fields(PushConfig):
        group.add_argument(f"--push-{f.name.replace('_', '-')}", dest=f"push_{f.name}", type=type(f.default),
                           default=f.default, help=f"{docs[f.name]} (default: {f.default})")


def push_config_from(args: argparse.Namespace) -> PushConfig:
    """The :class:`PushConfig` the ``--push-*`` options give (checked: a one-line error names the option)."""
    return PushConfig(**{f.name: getattr(args, f"push_{f.name}") for f in fields(PushConfig)})
