"""Quaternion and rotation helpers used throughout mimic.

Convention: quaternions are ``(w, x, y, z)`` (scalar first, as in MuJoCo and the
DeepMimic motion format) and act on column vectors; frames are Z-up, x forward,
y left.  Every function accepts arrays with any leading batch shape.  Conversions
that need care (matrices, Euler angles) go through ``scipy.spatial.transform``;
the few products used in the per-step hot path are written out in numpy.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


# Structure tensors: quaternion product and cross product as one einsum call each.
# (Each small-array numpy call has a fixed cost; these run many times per control step.)
_QMUL = np.zeros((4, 4, 4))
for _i, _j, _k, _sign in [
    (0, 0, 0, 1), (0, 1, 1, -1), (0, 2, 2, -1), (0, 3, 3, -1),
    (1, 0, 1, 1), (1, 1, 0, 1), (1, 2, 3, 1), (1, 3, 2, -1),
    (2, 0, 2, 1), (2, 1, 3, -1), (2, 2, 0, 1), (2, 3, 1, 1),
    (3, 0, 3, 1), (3, 1, 2, 1), (3, 2, 1, -1), (3, 3, 0, 1),
]:
    _QMUL[_i, _j, _k] = _sign
_LEVI_CIVITA = np.zeros((3, 3, 3))
for _i, _j, _k in [(0, 1, 2), (1, 2, 0), (2, 0, 1)]:
    _LEVI_CIVITA[_i, _j, _k] = 1.0
    _LEVI_CIVITA[_i, _k, _j] = -1.0


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b``."""
    return np.einsum("ijk,...j,...k->...i", _QMUL, a, b)


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product over the last axis (``np.cross`` is slow on small arrays: docs/architecture.md)."""
    return np.einsum("ijk,...j,...k->...i", _LEVI_CIVITA, a, b)


def quat_conj(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=float)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_normalize(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=float)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def quat_positive(q: np.ndarray) -> np.ndarray:
    """The representative with ``w >= 0`` (q and -q are the same rotation)."""
    q = np.asarray(q, dtype=float)
    return np.where(q[..., :1] < 0.0, -q, q)


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v`` by unit quaternions ``q``."""
    q = np.asarray(q, dtype=float)
    v = np.asarray(v, dtype=float)
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * cross(u, v)
    return v + w * t + cross(u, t)


def quat_inv_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v`` by the inverse of ``q``."""
    return quat_rotate(quat_conj(q), v)


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, angle in [0, pi]) of unit quaternions."""
    q = quat_positive(q)
    v = q[..., 1:]
    s = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., :1])
    # angle / s -> 2 as s -> 0 (first-order expansion), avoids 0/0.
    scale = np.where(s > 1e-12, angle / np.maximum(s, 1e-12), 2.0)
    return v * scale


def rotvec_to_quat(r: np.ndarray) -> np.ndarray:
    r = np.asarray(r, dtype=float)
    angle = np.linalg.norm(r, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(half)/angle -> 0.5 as angle -> 0.
    k = np.where(angle > 1e-12, np.sin(half) / np.maximum(angle, 1e-12), 0.5)
    return np.concatenate([np.cos(half), r * k], axis=-1)


def quat_angle(q: np.ndarray) -> np.ndarray:
    """Rotation angle in [0, pi] of unit quaternions."""
    q = np.asarray(q, dtype=float)
    s = np.linalg.norm(q[..., 1:], axis=-1)
    return 2.0 * np.arctan2(s, np.abs(q[..., 0]))


def quat_slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Spherical linear interpolation along the shorter arc."""
    q0 = np.asarray(q0, dtype=float)
    q1 = np.asarray(q1, dtype=float)
    t = np.asarray(t, dtype=float)[..., None] if np.ndim(t) else float(t)
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0.0, -q1, q1)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_theta = np.sin(theta)
    small = sin_theta < 1e-8
    safe = np.where(small, 1.0, sin_theta)
    w0 = np.where(small, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    w1 = np.where(small, t, np.sin(t * theta) / safe)
    return quat_normalize(w0 * q0 + w1 * q1)


def quat_to_mat(q: np.ndarray) -> np.ndarray:
    """Rotation matrices of unit quaternions."""
    q = np.asarray(q, dtype=float)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    m = np.empty((*q.shape[:-1], 3, 3))
    m[..., 0, 0] = 1 - 2 * (y * y + z * z)
    m[..., 0, 1] = 2 * (x * y - w * z)
    m[..., 0, 2] = 2 * (x * z + w * y)
    m[..., 1, 0] = 2 * (x * y + w * z)
    m[..., 1, 1] = 1 - 2 * (x * x + z * z)
    m[..., 1, 2] = 2 * (y * z - w * x)
    m[..., 2, 0] = 2 * (x * z - w * y)
    m[..., 2, 1] = 2 * (y * z + w * x)
    m[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return m


def mat_to_quat(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=float)
    q = Rotation.from_matrix(m.reshape(-1, 3, 3)).as_quat(scalar_first=True)
    return quat_positive(q.reshape((*m.shape[:-2], 4)))


def mat_to_quat_fast(m: np.ndarray) -> np.ndarray:
    """Unit quaternions (w >= 0) of rotation matrices (..., 3, 3), closed form.

    Each component's magnitude comes from the diagonal, its sign from the
    antisymmetric part; accurate to ~1e-8 for rotation matrices, faster than scipy
    on small batches (docs/architecture.md).
    """
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    q = np.empty((*m.shape[:-2], 4))
    q[..., 0] = 0.5 * np.sqrt(np.maximum(0.0, 1.0 + m00 + m11 + m22))
    q[..., 1] = np.copysign(0.5 * np.sqrt(np.maximum(0.0, 1.0 + m00 - m11 - m22)), m[..., 2, 1] - m[..., 1, 2])
    q[..., 2] = np.copysign(0.5 * np.sqrt(np.maximum(0.0, 1.0 - m00 + m11 - m22)), m[..., 0, 2] - m[..., 2, 0])
    q[..., 3] = np.copysign(0.5 * np.sqrt(np.maximum(0.0, 1.0 - m00 - m11 + m22)), m[..., 1, 0] - m[..., 0, 1])
    near_half_turn = q[..., 0] < 1e-4  # signs from the antisymmetric part are unreliable there
    if np.any(near_half_turn):
        q[near_half_turn] = mat_to_quat(m[near_half_turn])
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def axis_angle_quat(axis: np.ndarray, angle: np.ndarray | float) -> np.ndarray:
    axis = np.asarray(axis, dtype=float)
    angle = np.asarray(angle, dtype=float)[..., None]
    return np.concatenate([np.cos(0.5 * angle), np.sin(0.5 * angle) * axis], axis=-1)


def heading(q: np.ndarray) -> np.ndarray:
    """Yaw of the body's forward (x) axis about world z, in radians."""
    fwd = quat_rotate(q, np.array([1.0, 0.0, 0.0]))
    return np.arctan2(fwd[..., 1], fwd[..., 0])


def heading_quat(yaw: np.ndarray | float) -> np.ndarray:
    """Rotation about world z by ``yaw``."""
    return axis_angle_quat(np.array([0.0, 0.0, 1.0]), yaw)


_AXIS_INDEX = {"x": 0, "y": 1, "z": 2}


def euler_indices(order: str) -> tuple[int, int, int, float]:
    """Axis indices (i, j, k) of a hinge order and its parity (+1 for xyz, yzx, zxy)."""
    i, j, k = (_AXIS_INDEX[a] for a in order)
    if sorted((i, j, k)) != [0, 1, 2]:
        raise ValueError(f"hinge order must be a permutation of 'xyz', got {order!r}")
    parity = 1.0 if (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0
    return i, j, k, parity


def euler_from_mat(m: np.ndarray, i: np.ndarray, j: np.ndarray, k: np.ndarray, parity: np.ndarray) -> np.ndarray:
    """Angles (a, b, c) with M = R_i(a) R_j(b) R_k(c), for arrays of matrices and axis orders.

    ``i``, ``j``, ``k``, ``parity`` are per-matrix arrays from :func:`euler_indices`, so
    joints with different hinge orders are split in one vectorized call.  The middle
    angle is in [-pi/2, pi/2].
    """
    n = np.arange(m.shape[0])
    b = np.arcsin(np.clip(parity * m[n, i, k], -1.0, 1.0))
    a = np.arctan2(-parity * m[n, j, k], m[n, k, k])
    c = np.arctan2(-parity * m[n, i, j], m[n, i, i])
    return np.stack([a, b, c], axis=-1)


def euler_from_quat(q: np.ndarray, order: str) -> np.ndarray:
    """Angles (a, b, c) with q = R_order[0](a) R_order[1](b) R_order[2](c).

    ``order`` names three distinct axes, e.g. ``"xyz"``: the rotations of a chain
    of three hinge joints, the first nearest the parent body.  Of the two
    solutions, the one with the middle angle in [-pi/2, pi/2] is returned; use
    :func:`euler_nearest` to follow a continuous trajectory.
    """
    q = np.asarray(q, dtype=float)
    flat = q.reshape(-1, 4)
    i, j, k, parity = euler_indices(order)
    n = flat.shape[0]
    ang = euler_from_mat(quat_to_mat(flat), np.full(n, i), np.full(n, j), np.full(n, k), np.full(n, parity))
    return ang.reshape((*q.shape[:-1], 3))


def euler_alternative(angles: np.ndarray) -> np.ndarray:
    """The second Tait-Bryan solution (a + pi, pi - b, c + pi), same rotation."""
    angles = np.asarray(angles, dtype=float)
    alt = np.stack([angles[..., 0] + np.pi, np.pi - angles[..., 1], angles[..., 2] + np.pi], axis=-1)
    return alt


def wrap_near(angles: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Add multiples of 2*pi so each angle is within pi of ``reference``."""
    return reference + np.remainder(angles - reference + np.pi, 2.0 * np.pi) - np.pi


def euler_nearest(q: np.ndarray, order: str, reference: np.ndarray) -> np.ndarray:
    """Euler angles of ``q`` (see :func:`euler_from_quat`) closest to ``reference``.

    Chooses between the two Tait-Bryan solutions and the 2*pi branches of each so
    that a sampled trajectory stays continuous.
    """
    a = wrap_near(euler_from_quat(q, order), reference)
    b = wrap_near(euler_alternative(a), reference)
    da = np.sum((a - reference) ** 2, axis=-1, keepdims=True)
    db = np.sum((b - reference) ** 2, axis=-1, keepdims=True)
    return np.where(db < da, b, a)


def quat_from_euler(angles: np.ndarray, order: str) -> np.ndarray:
    angles = np.asarray(angles, dtype=float)
    rot = Rotation.from_euler(order.upper(), angles.reshape(-1, 3))
    return rot.as_quat(scalar_first=True).reshape((*angles.shape[:-1], 4))


def axis_vector(name: str) -> np.ndarray:
    v = np.zeros(3)
    v[_AXIS_INDEX[name]] = 1.0
    return v
