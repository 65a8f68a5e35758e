"""3D pose errors against ground truth, as the human-pose literature defines them (e.g. HMMR, VIBE).

All take keypoint arrays (T, K, 3) in metres, estimate and truth over the same keypoint
names, and return per-frame errors in millimetres (the mean over keypoints), so that a
caller can average over the frames it chooses (all of them, or those where the estimator
found the person):

* :func:`mpjpe`: mean per-joint position error, as given;
* :func:`root_relative_mpjpe`: after subtracting each pose's hip centre (the midpoint of the
  hips: the humanoid's pelvis) from it, so the root's path does not count;
* :func:`pa_mpjpe`: after the similarity transform (rotation, translation, scale) that best
  aligns each estimated pose to its true one (Procrustes, Umeyama's closed form): what is left
  is the pose's shape;
* :func:`acceleration_error`: the mean absolute difference between the estimate's and the
  truth's root-relative keypoint accelerations, second differences over consecutive frames,
  in mm/frame^2 (multiply by fps^2 / 1000 for m/s^2): how jittery the estimate is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

HIPS = ("left_hip", "right_hip")


def mpjpe(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-frame mean keypoint distance (T,), mm."""
    return 1000.0 * np.linalg.norm(np.asarray(estimate) - np.asarray(truth), axis=-1).mean(axis=-1)


def hip_relative(points: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Keypoints (T, K, 3) less their frame's hip centre."""
    hips = [list(names).index(n) for n in HIPS]
    return points - points[:, hips].mean(axis=1, keepdims=True)


def root_relative_mpjpe(estimate: np.ndarray, truth: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Per-frame MPJPE (T,) after putting both poses' hip centres at the origin, mm."""
    return mpjpe(hip_relative(estimate, names), hip_relative(truth, names))


def procrustes_align(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Each frame of ``estimate`` (T, K, 3) moved by the similarity transform that best fits it to ``truth``."""
    x, y = np.asarray(estimate, dtype=float), np.asarray(truth, dtype=float)
    mx, my = x.mean(axis=1, keepdims=True), y.mean(axis=1, keepdims=True)
    x0, y0 = x - mx, y - my
    u, s, vt = np.linalg.svd(np.swapaxes(x0, 1, 2) @ y0)  # (T, 3, 3) cross-covariance
    # A reflection is not a pose: flip the weakest axis when the best orthogonal fit has det -1.
    d = np.sign(np.linalg.det(u @ vt))
    s[:, -1] *= d
    u[:, :, -1] *= d[:, None]
    r = u @ vt  # x0 @ r fits y0
    scale = s.sum(axis=1) / (x0**2).sum(axis=(1, 2))
    return scale[:, None, None] * (x0 @ r) + my


def pa_mpjpe(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-frame MPJPE (T,) after Procrustes (similarity) alignment of each frame, mm."""
    return mpjpe(procrustes_align(estimate, truth), truth)


def acceleration_error(estimate: np.ndarray, truth: np.ndarray, names: Sequence[str],
                       valid: np.ndarray | None = None) -> np.ndarray:
    """Per-triple error (T - 2,) of root-relative accelerations, mm/frame^2; NaN where a frame of the
    triple is not ``valid`` (T,) (e.g. the estimator missed the person there)."""
    acc = [np.diff(hip_relative(p, names), n=2, axis=0) for p in (estimate, truth)]
    error = 1000.0 * np.linalg.norm(acc[0] - acc[1], axis=-1).mean(axis=-1)
    if valid is not None:
        ok = valid[2:] & valid[1:-1] & valid[:-2]
        error = np.where(ok, error, np.nan)
    return error
