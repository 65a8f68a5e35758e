"""Quaternion and Euler helpers, checked against scipy.spatial.transform.Rotation (w, x, y, z = scalar_first)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.spatial.transform import Rotation, Slerp

from mimic_sim import rotations as rot

ORDERS = ["".join(p) for p in itertools.permutations("xyz")]
N = 200


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def random_quats(rng, n=N):
    q = rng.normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def scipy_rot(q):
    return Rotation.from_quat(q, scalar_first=True)


def same_rotation(a, b, atol=1e-10):
    """q and -q are the same rotation."""
    a, b = np.asarray(a), np.asarray(b)
    dot = np.abs(np.sum(a * b, axis=-1))
    np.testing.assert_allclose(dot, 1.0, atol=atol)


def test_quat_mul_matches_scipy(rng):
    a, b = random_quats(rng), random_quats(rng)
    expected = (scipy_rot(a) * scipy_rot(b)).as_quat(scalar_first=True)
    same_rotation(rot.quat_mul(a, b), expected)
    # Hamilton product is exact, not just up to sign: check the literal formula on one pair.
    i, j, k = np.eye(4)[1], np.eye(4)[2], np.eye(4)[3]
    np.testing.assert_array_equal(rot.quat_mul(i, j), k)
    np.testing.assert_array_equal(rot.quat_mul(j, i), -k)
    np.testing.assert_array_equal(rot.quat_mul(j, k), i)
    np.testing.assert_array_equal(rot.quat_mul(k, i), j)
    np.testing.assert_array_equal(rot.quat_mul(i, i), -rot.IDENTITY)


def test_quat_mul_broadcasts(rng):
    a = random_quats(rng, 6).reshape(2, 3, 4)
    b = random_quats(rng, 1)[0]
    out = rot.quat_mul(a, b)
    assert out.shape == (2, 3, 4)
    np.testing.assert_allclose(out[1, 2], rot.quat_mul(a[1, 2], b), atol=1e-15)


def test_quat_conj_is_inverse(rng):
    q = random_quats(rng)
    np.testing.assert_allclose(rot.quat_mul(q, rot.quat_conj(q)), np.tile(rot.IDENTITY, (N, 1)), atol=1e-12)


def test_cross_matches_numpy(rng):
    a, b = rng.normal(size=(N, 3)), rng.normal(size=(N, 3))
    np.testing.assert_allclose(rot.cross(a, b), np.cross(a, b), atol=1e-12)


def test_quat_rotate_matches_scipy(rng):
    q, v = random_quats(rng), rng.normal(size=(N, 3))
    np.testing.assert_allclose(rot.quat_rotate(q, v), scipy_rot(q).apply(v), atol=1e-12)
    np.testing.assert_allclose(rot.quat_inv_rotate(q, v), scipy_rot(q).inv().apply(v), atol=1e-12)
    np.testing.assert_allclose(rot.quat_inv_rotate(q, rot.quat_rotate(q, v)), v, atol=1e-12)
    # A quarter turn about z takes x to y.
    qz = rot.axis_angle_quat(np.array([0.0, 0.0, 1.0]), np.pi / 2)
    np.testing.assert_allclose(rot.quat_rotate(qz, np.array([1.0, 0.0, 0.0])), [0.0, 1.0, 0.0], atol=1e-15)


def test_quat_to_mat_matches_scipy(rng):
    q = random_quats(rng)
    m = rot.quat_to_mat(q)
    np.testing.assert_allclose(m, scipy_rot(q).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-12)
    assert rot.quat_to_mat(q.reshape(10, 20, 4)).shape == (10, 20, 3, 3)


def test_mat_to_quat_round_trip(rng):
    q = random_quats(rng)
    m = scipy_rot(q).as_matrix()
    back = rot.mat_to_quat(m)
    assert np.all(back[:, 0] >= 0.0)
    same_rotation(back, q)
    np.testing.assert_allclose(rot.quat_to_mat(back), m, atol=1e-12)
    assert rot.mat_to_quat(m.reshape(4, 50, 3, 3)).shape == (4, 50, 4)


def test_rotvec_matches_scipy(rng):
    q = random_quats(rng)
    r = rot.quat_to_rotvec(q)
    np.testing.assert_allclose(r, scipy_rot(q).as_rotvec(), atol=1e-10)
    assert np.all(np.linalg.norm(r, axis=-1) <= np.pi + 1e-12)
    # Either sign of the quaternion gives the same rotation vector.
    np.testing.assert_allclose(rot.quat_to_rotvec(-q), r, atol=1e-12)
    same_rotation(rot.rotvec_to_quat(r), q)
    axis = rng.normal(size=(N, 3))
    v = axis / np.linalg.norm(axis, axis=-1, keepdims=True) * rng.uniform(0.0, np.pi - 1e-6, size=(N, 1))
    np.testing.assert_allclose(rot.rotvec_to_quat(v), Rotation.from_rotvec(v).as_quat(scalar_first=True), atol=1e-12)
    # Angles below pi survive the round trip exactly, not just up to a 2 pi branch.
    np.testing.assert_allclose(rot.quat_to_rotvec(rot.rotvec_to_quat(v)), v, atol=1e-10)


@pytest.mark.parametrize("angle", [0.0, 1e-14, 1e-9, 1e-6])
def test_rotvec_small_angles(angle):
    r = np.array([angle, -2.0 * angle, 0.5 * angle])
    q = rot.rotvec_to_quat(r)
    assert np.all(np.isfinite(q))
    np.testing.assert_allclose(np.linalg.norm(q), 1.0, atol=1e-15)
    np.testing.assert_allclose(rot.quat_to_rotvec(q), r, atol=1e-20, rtol=1e-8)


def test_quat_angle_matches_scipy(rng):
    q = random_quats(rng)
    np.testing.assert_allclose(rot.quat_angle(q), scipy_rot(q).magnitude(), atol=1e-10)
    np.testing.assert_allclose(rot.quat_angle(-q), rot.quat_angle(q), atol=1e-15)


def test_axis_angle_quat_matches_scipy(rng):
    axis = rng.normal(size=(N, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = rng.uniform(-np.pi, np.pi, size=N)
    expected = Rotation.from_rotvec(axis * angle[:, None]).as_quat(scalar_first=True)
    same_rotation(rot.axis_angle_quat(axis, angle), expected)


def test_quat_normalize_and_positive(rng):
    q = rng.normal(size=(N, 4)) * 5.0
    n = rot.quat_normalize(q)
    np.testing.assert_allclose(np.linalg.norm(n, axis=-1), 1.0, atol=1e-15)
    p = rot.quat_positive(n)
    assert np.all(p[:, 0] >= 0.0)
    same_rotation(p, n)


# ---------------------------------------------------------------------- slerp
def test_slerp_endpoints(rng):
    q0, q1 = random_quats(rng), random_quats(rng)
    np.testing.assert_allclose(rot.quat_slerp(q0, q1, 0.0), q0, atol=1e-12)
    same_rotation(rot.quat_slerp(q0, q1, 1.0), q1, atol=1e-12)
    # Endpoints with per-element t.
    t = np.where(np.arange(N) % 2 == 0, 0.0, 1.0)
    out = rot.quat_slerp(q0, q1, t)
    np.testing.assert_allclose(out[::2], q0[::2], atol=1e-12)
    same_rotation(out[1::2], q1[1::2], atol=1e-12)


def test_slerp_matches_scipy_and_is_constant_speed(rng):
    q0, q1 = random_quats(rng, 50), random_quats(rng, 50)
    for t in (0.1, 0.3, 0.5, 0.9):
        out = rot.quat_slerp(q0, q1, t)
        np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-12)
        for a, b, o in zip(q0, q1, out, strict=True):
            ref = Slerp([0.0, 1.0], scipy_rot(np.stack([a, b])))(t).as_quat(scalar_first=True)
            same_rotation(o, ref, atol=1e-9)
        total = rot.quat_angle(rot.quat_mul(rot.quat_conj(q0), q1))
        np.testing.assert_allclose(rot.quat_angle(rot.quat_mul(rot.quat_conj(q0), out)), t * total, atol=1e-9)


def test_slerp_shortest_arc(rng):
    q0, q1 = random_quats(rng), random_quats(rng)
    mid = rot.quat_slerp(q0, q1, 0.5)
    mid_neg = rot.quat_slerp(q0, -q1, 0.5)
    same_rotation(mid, mid_neg)
    total = rot.quat_angle(rot.quat_mul(rot.quat_conj(q0), q1))  # in [0, pi]
    np.testing.assert_allclose(rot.quat_angle(rot.quat_mul(rot.quat_conj(q0), mid)), 0.5 * total, atol=1e-9)
    assert np.all(rot.quat_angle(rot.quat_mul(rot.quat_conj(q0), mid)) <= 0.5 * np.pi + 1e-9)
    # A 3 rad turn written as the long way round (-q1) still goes the short way.
    a = rot.axis_angle_quat(np.array([0.0, 0.0, 1.0]), 3.0)
    halfway = rot.quat_slerp(rot.IDENTITY, -a, 0.5)
    np.testing.assert_allclose(rot.heading(halfway), 1.5, atol=1e-12)


def test_slerp_nearly_equal_quaternions(rng):
    q0 = random_quats(rng, 1)[0]
    q1 = rot.quat_normalize(q0 + 1e-12)
    out = rot.quat_slerp(q0, q1, 0.5)
    assert np.all(np.isfinite(out))
    same_rotation(out, q0, atol=1e-12)


# ---------------------------------------------------------------------- euler
@pytest.mark.parametrize("order", ORDERS)
def test_euler_from_quat_matches_scipy(rng, order):
    q = random_quats(rng)
    angles = rot.euler_from_quat(q, order)
    np.testing.assert_allclose(angles, scipy_rot(q).as_euler(order.upper()), atol=1e-9)
    assert np.all(np.abs(angles[:, 1]) <= np.pi / 2 + 1e-12)


@pytest.mark.parametrize("order", ORDERS)
def test_euler_round_trip(rng, order):
    q = random_quats(rng)
    same_rotation(rot.quat_from_euler(rot.euler_from_quat(q, order), order), q, atol=1e-10)
    angles = np.stack(
        [rng.uniform(-np.pi, np.pi, N), rng.uniform(-1.5, 1.5, N), rng.uniform(-np.pi, np.pi, N)], axis=-1
    )
    np.testing.assert_allclose(rot.euler_from_quat(rot.quat_from_euler(angles, order), order), angles, atol=1e-9)


@pytest.mark.parametrize("order", ORDERS)
def test_euler_convention_is_hinge_chain(rng, order):
    """q = R_order[0](a) R_order[1](b) R_order[2](c), independent of scipy."""
    angles = np.stack(
        [rng.uniform(-np.pi, np.pi, N), rng.uniform(-1.5, 1.5, N), rng.uniform(-np.pi, np.pi, N)], axis=-1
    )
    q = rot.IDENTITY
    for axis, a in zip(order, angles.T, strict=True):
        q = rot.quat_mul(q, rot.axis_angle_quat(rot.axis_vector(axis), a))
    same_rotation(rot.quat_from_euler(angles, order), q)
    np.testing.assert_allclose(rot.euler_from_quat(q, order), angles, atol=1e-9)


def test_euler_batch_shape(rng):
    q = random_quats(rng, 24).reshape(2, 3, 4, 4)
    assert rot.euler_from_quat(q, "zyx").shape == (2, 3, 4, 3)
    assert rot.quat_from_euler(np.zeros((2, 5, 3)), "xzy").shape == (2, 5, 4)


def test_euler_from_mat_mixed_orders(rng):
    q = random_quats(rng, 60)
    orders = [ORDERS[k % 6] for k in range(60)]
    idx = np.array([rot.euler_indices(o) for o in orders])
    i, j, k = idx[:, 0].astype(int), idx[:, 1].astype(int), idx[:, 2].astype(int)
    out = rot.euler_from_mat(rot.quat_to_mat(q), i, j, k, idx[:, 3])
    for n, order in enumerate(orders):
        np.testing.assert_allclose(out[n], rot.euler_from_quat(q[n], order), atol=1e-12)
        np.testing.assert_allclose(out[n], scipy_rot(q[n]).as_euler(order.upper()), atol=1e-9)


def test_euler_indices():
    assert rot.euler_indices("xyz") == (0, 1, 2, 1.0)
    assert rot.euler_indices("zxy") == (2, 0, 1, 1.0)
    assert rot.euler_indices("yzx") == (1, 2, 0, 1.0)
    assert rot.euler_indices("xzy") == (0, 2, 1, -1.0)
    assert rot.euler_indices("zyx") == (2, 1, 0, -1.0)
    for bad in ("xxy", "zzz", "xyy"):
        with pytest.raises(ValueError, match="permutation"):
            rot.euler_indices(bad)


@pytest.mark.parametrize("order", ORDERS)
def test_euler_alternative_same_rotation(rng, order):
    q = random_quats(rng)
    alt = rot.euler_alternative(rot.euler_from_quat(q, order))
    same_rotation(rot.quat_from_euler(alt, order), q, atol=1e-10)


@pytest.mark.parametrize("order", ["xyz", "zyx"])
def test_euler_nearest_follows_a_trajectory(order):
    # A smooth path whose middle angle passes beyond pi/2 and whose outer angles cross +-pi.
    t = np.linspace(0.0, 1.0, 400)
    path = np.stack([2.5 + 2.0 * t, 0.5 + 1.8 * t, -3.0 - 1.0 * t], axis=-1)
    q = rot.quat_from_euler(path, order)
    out = np.empty_like(path)
    ref = path[0]
    for n in range(len(t)):
        out[n] = rot.euler_nearest(q[n], order, ref)
        ref = out[n]
    np.testing.assert_allclose(out, path, atol=1e-8)


def test_wrap_near(rng):
    ref = rng.uniform(-10.0, 10.0, size=500)
    angles = rng.uniform(-30.0, 30.0, size=500)
    out = rot.wrap_near(angles, ref)
    assert np.all(np.abs(out - ref) <= np.pi + 1e-12)
    turns = (out - angles) / (2.0 * np.pi)
    np.testing.assert_allclose(turns, np.round(turns), atol=1e-9)
    np.testing.assert_allclose(rot.wrap_near(0.1 + 6 * np.pi, 0.0), 0.1, atol=1e-12)
    np.testing.assert_allclose(
        rot.wrap_near(np.array([3.0, -3.0]), np.array([-3.0, 3.0])), [3.0 - 2 * np.pi, 2 * np.pi - 3.0], atol=1e-12
    )


def test_heading_quat_and_heading(rng):
    yaw = rng.uniform(-np.pi + 1e-6, np.pi - 1e-6, N)
    hq = rot.heading_quat(yaw)
    np.testing.assert_allclose(rot.heading(hq), yaw, atol=1e-12)
    same_rotation(hq, Rotation.from_euler("z", yaw[:, None]).as_quat(scalar_first=True))
    # Pitch and roll in the body frame do not change the heading.
    pitch = rng.uniform(-1.4, 1.4, N)
    roll = rng.uniform(-np.pi, np.pi, N)
    q = rot.quat_mul(
        rot.quat_mul(hq, rot.axis_angle_quat(np.array([0.0, 1.0, 0.0]), pitch)),
        rot.axis_angle_quat(np.array([1.0, 0.0, 0.0]), roll),
    )
    np.testing.assert_allclose(rot.heading(q), yaw, atol=1e-10)
    # Heading is the first angle of a z-y-x decomposition.
    r = random_quats(rng)
    np.testing.assert_allclose(rot.heading(r), scipy_rot(r).as_euler("ZYX")[:, 0], atol=1e-9)


def test_axis_vector():
    np.testing.assert_array_equal(rot.axis_vector("x"), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(rot.axis_vector("y"), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(rot.axis_vector("z"), [0.0, 0.0, 1.0])


def test_mat_to_quat_fast_matches_scipy_including_half_turns():
    from scipy.spatial.transform import Rotation

    from mimic_sim.rotations import mat_to_quat_fast, quat_positive

    q = quat_positive(Rotation.random(500, random_state=4).as_quat(scalar_first=True))
    half_turns = Rotation.from_rotvec(np.pi * np.array([[1, 1, 0], [0, 1, -1], [1, 0, 0]]) /
                                      np.linalg.norm([[1, 1, 0], [0, 1, -1], [1, 0, 0]], axis=1, keepdims=True))
    mats = np.concatenate([Rotation.from_quat(q, scalar_first=True).as_matrix(), half_turns.as_matrix()])
    got = mat_to_quat_fast(mats)
    back = Rotation.from_quat(got, scalar_first=True).as_matrix()
    assert np.abs(back - mats).max() < 1e-9
    assert np.abs(got[:500] - q).max() < 1e-9
