"""Tracking error of a simulated character against its reference: one definition of MPJPE
and of its plot, for ``mimic eval`` (in-process episodes) and ``mimic report`` (bags)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from mimic_sim.backends.base import BodyStates
from mimic_sim.paths import atomic_write_bytes


def position_errors_mm(sim: BodyStates, ref: BodyStates, root: int) -> tuple[float, float]:
    """Mean per-body position error (MPJPE) in mm: in the world, and with both roots at the origin."""
    world = np.linalg.norm(sim.pos - ref.pos, axis=-1)
    local = np.linalg.norm((sim.pos - sim.pos[..., root, None, :]) - (ref.pos - ref.pos[..., root, None, :]), axis=-1)
    return float(world.mean() * 1e3), float(local.mean() * 1e3)


def plot_tracking_error(curve: np.ndarray, path: Path, xlabel: str = "clip time (s)") -> None:
    """``curve`` rows (time, MPJPE world, MPJPE root-relative) as a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(curve[:, 0], curve[:, 1], label="MPJPE (world)")
    ax.plot(curve[:, 0], curve[:, 2], label="MPJPE (root-relative)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean body position error (mm)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
