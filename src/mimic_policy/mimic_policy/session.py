"""A training run with checkpoints: save, restore, and exact continuation.

Every ``checkpoint_every`` iterations every environment restarts from a seed derived
from the iteration, and a checkpoint is taken.  A checkpoint can also be taken at any
other iteration (a stop by signal, the trainer node's ``~/save``): it then also holds the
actions taken since the environments last restarted, and restoring it restarts them from
the same seed and steps them through those actions again, which brings them back to the
state they had (the simulation is deterministic; up to ``checkpoint_every - 1``
iterations of environment steps, without the policy).  Everything else the next
iteration depends on is in the checkpoint (weights, normalizer, optimizer state, the
trainer's random stream, counters, episode statistics), so a resumed run continues
exactly as the uninterrupted run would have, whenever it stopped.

A checkpoint is only ever taken between iterations: an iteration interrupted by an
exception leaves the session :attr:`~TrainingSession.consistent` False, and
:meth:`~TrainingSession.final_checkpoint` then saves nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mimic_policy.checkpoint import (
    INIT_FROM,
    META_FILE,
    Restored,
    check_expect,
    iteration_path,
    prune,
    save_run_checkpoint,
)
from mimic_policy.runner import Trainer

ENV_SEED_STRIDE = 7919
"""Seed of the environments restarted at iteration ``i``: ``seed + ENV_SEED_STRIDE * i``."""


class TrainingSession:
    """``trainer`` plus checkpointing into ``run_dir`` every ``checkpoint_every`` iterations."""

    def __init__(self, trainer: Trainer, config: Any, run_dir: Path, meta: dict | None = None,
                 expect: dict | None = None):
        self.trainer = trainer
        self.config = config
        self.run_dir = Path(run_dir)
        self.meta = dict(meta or {})
        self.expect = dict(expect or {})
        self.consistent = True
        """False while an iteration runs, and after one was interrupted (its state is half updated)."""
        self.saved_iteration: int | None = None
        """The iteration whose checkpoint is the latest, once one is saved or restored."""
        self._restart_envs()

    def _restart_envs(self) -> None:
        """Restart every environment from a seed derived from the iteration (see module doc)."""
        self._env_seed = int(self.config.seed) + ENV_SEED_STRIDE * self.trainer.iteration
        self.trainer.reset_envs(self._env_seed)
        self._actions: list[torch.Tensor] = []  # taken since, one (steps, envs, action size) block per iteration

    def iterate(self, log: Callable[[dict[str, float]], None] | None = None) -> dict[str, float]:
        """One iteration, its statistics passed to ``log`` before a checkpoint is taken (so
        that every checkpoint's iteration is logged); the statistics."""
        self.consistent = False
        stats = self.trainer.iterate()
        self._actions.append(self.trainer.storage.actions.clone())
        if log is not None:
            log(stats)
        if self.trainer.iteration % self.config.checkpoint_every == 0:
            self._restart_envs()
            self.checkpoint()
        self.consistent = True
        return stats

    def checkpoint(self) -> Path:
        """Save the current state, between iterations, as the run's latest checkpoint."""
        t = self.trainer
        tensors, state = t.state()
        tensors["replay.actions"] = (torch.cat(self._actions) if self._actions
                                     else torch.zeros(0, *t.storage.actions.shape[1:]))
        meta = {**self.meta, **self.expect, **state, "env_seed": self._env_seed}
        path = save_run_checkpoint(self.run_dir, t.iteration, tensors, meta)
        self.saved_iteration = t.iteration
        prune(self.run_dir, keep=getattr(self.config, "keep_checkpoints", 3))
        return path

    def final_checkpoint(self) -> Path | None:
        """The checkpoint of the current iteration, saved now unless it is already; None after an
        interrupted iteration (nothing is saved, the last checkpoint stays the latest)."""
        if not self.consistent:
            return None
        if self.saved_iteration == self.trainer.iteration:
            return iteration_path(self.run_dir, self.trainer.iteration)
        return self.checkpoint()

    def restore(self, checkpoint: Restored) -> None:
        """Continue from ``checkpoint`` (:func:`mimic_policy.checkpoint.resume_checkpoint`'s, read once)."""
        tensors, meta = dict(checkpoint.tensors), checkpoint.meta
        if self.expect:
            check_expect(meta, self.expect, checkpoint.path / META_FILE)
        actions = tensors.pop("replay.actions")
        self._env_seed = int(meta["env_seed"])
        self.trainer.reset_envs(self._env_seed)
        self._actions = [actions] if len(actions) else []
        if len(actions):
            self.trainer.envs.replay(actions.numpy())
        self.trainer.load_state(tensors, meta)
        self.saved_iteration = self.trainer.iteration
        if INIT_FROM in meta:  # where the run's network started from is the run's, kept in every checkpoint
            self.meta[INIT_FROM] = meta[INIT_FROM]
