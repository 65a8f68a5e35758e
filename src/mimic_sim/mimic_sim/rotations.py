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


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b``."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, dtype=float), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, dtype=float), -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


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


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product over the last axis (``np.cross`` costs ~70 us a call on small arrays)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    out[..., 0] = ay * bz - az * by
    out[..., 1] = az * bx - ax * bz
    out[..., 2] = ax * by - ay * bx
    return out


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
    q = np.asarray(q, dtype=float)
    return Rotation.from_quat(q.reshape(-1, 4), scalar_first=True).as_matrix().reshape(q.shape[:-1] + (3, 3))


def mat_to_quat(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=float)
    q = Rotation.from_matrix(m.reshape(-1, 3, 3)).as_quat(scalar_first=True)
    return quat_positive(q.reshape(m.shape[:-2] + (4,)))


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


def euler_from_quat(q: np.ndarray, order: str) -> np.ndarray:
    """Angles (a, b, c) with q = R_order[0](a) R_order[1](b) R_order[2](c).

    ``order`` names three distinct axes, e.g. ``"xyz"``: the rotations of a chain
    of three hinge joints, the first nearest the parent body.  Of the two
    solutions, the one with the middle angle in [-pi/2, pi/2] is returned; use
    :func:`euler_nearest` to follow a continuous trajectory.
    """
    q = np.asarray(q, dtype=float)
    rot = Rotation.from_quat(q.reshape(-1, 4), scalar_first=True)
    # Upper-case sequences are intrinsic rotations, i.e. a hinge chain.
    ang = rot.as_euler(order.upper(), suppress_warnings=True)
    return ang.reshape(q.shape[:-1] + (3,))


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
    return rot.as_quat(scalar_first=True).reshape(angles.shape[:-1] + (4,))


def axis_vector(name: str) -> np.ndarray:
    v = np.zeros(3)
    v[_AXIS_INDEX[name]] = 1.0
    return v
