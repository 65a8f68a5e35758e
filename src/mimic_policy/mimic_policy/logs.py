"""Training logs a person can follow: CSV, TensorBoard, and a learning-curve PNG."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from mimic_sim.paths import atomic_write_bytes, atomic_write_text
from mimic_sim.reward import TERMS


class TrainingLog:
    """Appends one row per iteration to ``progress.csv``, TensorBoard scalars, and redraws
    ``learning_curve.png`` every ``plot_every`` iterations (written atomically).

    A run continued from a checkpoint passes the checkpoint's ``iteration`` and ``samples``:
    rows the run logged after that checkpoint, before it stopped, are dropped from
    ``progress.csv`` and hidden in TensorBoard (its ``purge_step``), so the iterations the
    continued run logs again appear once.
    """

    def __init__(self, run_dir: Path, plot_every: int = 10, tensorboard: bool = True, iteration: int = 0,
                 samples: int = 0):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.run_dir / "progress.csv"
        self.plot_path = self.run_dir / "learning_curve.png"
        self.plot_every = plot_every
        self.rows: list[dict[str, float]] = []
        self._fields: list[str] | None = None
        if self.csv_path.exists():  # resuming: keep the history up to the checkpoint, for the plot
            self._keep_rows_until(iteration)
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=samples + 1)

    def _keep_rows_until(self, iteration: int) -> None:
        text = self.csv_path.read_text()
        lines = text.splitlines(keepends=True)
        complete = lines if text.endswith("\n") else lines[:-1]  # a row cut short by a crash is dropped
        reader = csv.DictReader(complete)
        self._fields = reader.fieldnames
        self.rows = [{k: float(v) for k, v in row.items() if v != ""} for row in reader]
        kept = [row for row in self.rows if row.get("iteration", 0.0) <= iteration]
        if len(kept) < len(self.rows) or len(complete) < len(lines):
            self.rows = kept
            atomic_write_text(self.csv_path, self._csv_text(kept, header=True) if self._fields else "")

    def _csv_text(self, rows: list[dict[str, float]], header: bool) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self._fields, extrasaction="ignore")
        if header:
            writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()

    def log(self, stats: dict[str, float]) -> None:
        self.rows.append(stats)
        new_file = self._fields is None
        if new_file:
            self._fields = list(stats)
        with self.csv_path.open("a", newline="") as f:
            f.write(self._csv_text([stats], header=new_file))  # one write: a row is never split by a signal
        if self._writer is not None:
            step = int(stats.get("samples", len(self.rows)))
            for key, value in stats.items():
                self._writer.add_scalar(key, value, step)
            self._writer.flush()
        if len(self.rows) % self.plot_every == 0:
            self.plot()

    def plot(self) -> None:
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
