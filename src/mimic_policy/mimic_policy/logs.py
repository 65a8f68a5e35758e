"""Training logs a person can follow: CSV, TensorBoard, and a learning-curve PNG."""

from __future__ import annotations

import csv
from pathlib import Path

from mimic_sim.paths import atomic_write_bytes
from mimic_sim.reward import TERMS


class TrainingLog:
    """Appends one row per iteration to ``progress.csv``, TensorBoard scalars, and redraws
    ``learning_curve.png`` every ``plot_every`` iterations (written atomically)."""

    def __init__(self, run_dir: Path, plot_every: int = 10, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.run_dir / "progress.csv"
        self.plot_path = self.run_dir / "learning_curve.png"
        self.plot_every = plot_every
        self.rows: list[dict[str, float]] = []
        if self.csv_path.exists():  # resuming: keep the history for the plot
            with self.csv_path.open() as f:
                self.rows = [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
        self._fields = list(self.rows[0]) if self.rows else None
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "tensorboard"))

    def log(self, stats: dict[str, float]) -> None:
        self.rows.append(stats)
        if self._fields is None:
            self._fields = list(stats)
        new_file = not self.csv_path.exists()
        with self.csv_path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._fields, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerow(stats)
        if self._writer is not None:
            step = int(stats.get("samples", len(self.rows)))
            for key, value in stats.items():
                self._writer.add_scalar(key, value, step)
            self._writer.flush()
        if len(self.rows) % self.plot_every == 0:
            self.plot()

    def plot(self) -> None:
        import io

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = [r for r in self.rows if "mean_return" in r]
        if not rows:
            return
        samples = [r["samples"] / 1e6 for r in rows]
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
        top.plot(samples, [r["mean_return"] for r in rows], label="mean episode return")
        top.set_ylabel("return")
        top.grid(alpha=0.3)
        for key in (f"reward_{term}" for term in TERMS):
            if key in rows[-1]:
                bottom.plot(samples, [r.get(key, float("nan")) for r in rows], label=key.removeprefix("reward_"))
        bottom.set_xlabel("samples (millions)")
        bottom.set_ylabel("mean reward term")
        bottom.grid(alpha=0.3)
        bottom.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        plt.close(fig)
        atomic_write_bytes(self.plot_path, buffer.getvalue())

    def close(self) -> None:
        self.plot()
        if self._writer is not None:
            self._writer.close()
