"""A training run with checkpoints: save, restore, and exact continuation.

Checkpoints are taken between iterations, right after every environment restarts
from a seed derived from the iteration.  Everything the next iteration depends on is
then in the checkpoint (weights, normalizer, optimizer state, the trainer's random
stream, counters) or re-created identically (the environments), so a resumed run's
next update equals the uninterrupted run's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mimic_policy.checkpoint import (
    flatten_state,
    latest_checkpoint,
    load_checkpoint,
    prune,
    save_run_checkpoint,
    unflatten_state,
)
from mimic_policy.runner import Trainer


class TrainingSession:
    """``trainer`` plus checkpointing into ``run_dir`` every ``checkpoint_every`` iterations."""

    def __init__(self, trainer: Trainer, config: Any, run_dir: Path, meta: dict | None = None,
                 expect: dict | None = None):
        self.trainer = trainer
        self.config = config
        self.run_dir = Path(run_dir)
        self.meta = dict(meta or {})
        self.expect = dict(expect or {})
        self._restart_envs()

    def _restart_envs(self) -> None:
        """Restart every environment from a seed derived from the iteration (see module doc)."""
        self.trainer.reset_envs(int(self.config.seed) + 7919 * self.trainer.iteration)

    def iterate(self) -> dict[str, float]:
        stats = self.trainer.iterate()
        if self.trainer.iteration % self.config.checkpoint_every == 0:
            self.checkpoint()
        return stats

    def checkpoint(self) -> Path:
        t = self.trainer
        self._restart_envs()
        tensors = {f"model.{k}": v for k, v in t.model.state_dict().items()}
        optimizer_tensors, optimizer_skeleton = flatten_state("optimizer", t.optimizer.state_dict())
        tensors.update(optimizer_tensors)
        tensors["trainer.generator"] = t.generator.get_state()
        meta = {**self.meta, **self.expect, "iteration": t.iteration, "samples": t.samples,
                "optimizer": optimizer_skeleton}
        path = save_run_checkpoint(self.run_dir, t.iteration, tensors, meta)
        prune(self.run_dir, keep=getattr(self.config, "keep_checkpoints", 3))
        return path

    def restore(self, path: Path) -> None:
        tensors, meta = load_checkpoint(path, expect=self.expect or None)
        t = self.trainer
        t.model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
        t.optimizer.load_state_dict(unflatten_state("optimizer", tensors, meta["optimizer"]))
        t.generator.set_state(tensors["trainer.generator"])
        t.iteration, t.samples = int(meta["iteration"]), int(meta["samples"])
        self._restart_envs()

    def restore_latest(self) -> Path:
        path = latest_checkpoint(self.run_dir)
        if path is None:
            raise FileNotFoundError(f"no checkpoint in {self.run_dir / 'checkpoints'} to resume from")
        self.restore(path)
        return path
