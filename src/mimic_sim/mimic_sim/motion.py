"""The reference-motion data model: a clip that every source converts into.

A :class:`Motion` holds keyframes at (possibly uneven) times: root position and
rotation in a Z-up world, and joint values by joint name, either a local rotation
quaternion (spherical joints) or an angle (revolute joints).  :meth:`Motion.sample`
evaluates it at any time: slerp for rotations, linear interpolation for angles
and root position, filtered keyframe velocities (below), and, for wrapped clips, the
root carried forward by the clip's displacement on every cycle (as DeepMimic does), so
a looping walk keeps walking instead of snapping back.  Wrapped clips are made
continuous across the wrap (see :meth:`Motion._close_loop`), which also returns
the heading to its start each cycle: the displacement then always points along the
clip's own direction of travel and a 20 s walk goes straight.

Velocities: each keyframe gets the central difference of its neighbours, the
sequence of keyframe velocities is low-passed (:data:`VELOCITY_CUTOFF_HZ`), and a
time between two keyframes gets the linear blend of theirs.  Episodes start with
these velocities and the reward tracks them; raw differences of mocap keyframes are
noisy and step at every keyframe (docs/simulation.md).  DeepMimic's ``cMotion``
filters and blends the same way but gives keyframe k the difference to frame k + 1,
which puts the velocity half a frame ahead of the pose (31 ms in a 16 frames/s clip).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from mimic_sim import rotations as rot


class MotionError(ValueError):
    """A motion file or array is malformed.  The message names the source, frame and field."""

    def __init__(self, source: str, message: str, frame: int | None = None, field: str | None = None):
        self.source = source
        self.frame = frame
        self.field = field
        where = [source]
        if frame is not None:
            where.append(f"frame {frame}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {message}")


QUAT_NORM_TOLERANCE = 0.5
"""How far from 1 a stored quaternion's norm may be before the clip is rejected.

Stored quaternions are normalized on load, as DeepMimic does.  The shipped clips
need a wide tolerance: the right hip of ``humanoid3d_kick`` reaches norm 1.42 and
``roll`` and ``backflip`` deviate by 0.1-0.2; a zero or wildly scaled quaternion is
still rejected."""
VELOCITY_CUTOFF_HZ = 6.0
"""Cutoff of the zero-phase 2nd-order Butterworth low-pass over keyframe velocities
(DeepMimic's ``VelFilterCutoff`` default).  Clips sampled at 12 frames/s or slower
are left unfiltered; uneven frame times are filtered at their mean rate."""


def blend_keyframes(keyed: np.ndarray, i: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Rows ``i`` and ``i + 1`` of a per-keyframe table blended linearly at fractions ``alpha``."""
    w = alpha.reshape(-1, *[1] * (keyed.ndim - 1))
    return (1.0 - w) * keyed[i] + w * keyed[i + 1]


def _unit(quats: np.ndarray) -> np.ndarray:
    """``quats`` normalized; those unit to rounding already are kept as they are, since normalizing
    again moves their last bits: a motion saved and loaded back (a task stored in a checkpoint) must
    come back the same, hash included."""
    norms = np.linalg.norm(quats, axis=-1, keepdims=True)
    return np.where(np.abs(norms - 1.0) > 1e-12, quats / norms, quats)


@dataclass(frozen=True)
class MotionSample:
    """A motion evaluated at one time.  Velocities: see the module docstring."""

    time: float
    phase: float
    root_pos: np.ndarray
    root_rot: np.ndarray
    root_lin_vel: np.ndarray  # world frame
    root_ang_vel: np.ndarray  # world frame
    joints: dict[str, np.ndarray]  # quaternion (4,) or angle (1,)
    joint_vel: dict[str, np.ndarray]  # local angular velocity (3,) or rate (1,)


@dataclass
class Motion:
    """Keyframed reference motion.

    ``joints`` maps a joint name to an ``(N, 4)`` array of local rotations (spherical
    joint) or an ``(N,)`` array of angles (revolute joint).  ``frame_times`` starts at
    0 and increases strictly.
    """

    name: str
    frame_times: np.ndarray
    root_pos: np.ndarray
    root_rot: np.ndarray
    joints: dict[str, np.ndarray]
    loop: bool = False
    source: str = "<memory>"
    close_loop: bool = True
    """Make a wrapped clip continuous across the wrap (see ``_close_loop``)."""

    def __post_init__(self) -> None:
        self.frame_times = np.asarray(self.frame_times, dtype=float)
        self.root_pos = np.asarray(self.root_pos, dtype=float)
        self.root_rot = np.asarray(self.root_rot, dtype=float)
        self.joints = {k: np.asarray(v, dtype=float) for k, v in self.joints.items()}
        self._validate()
        self.root_rot = _unit(self.root_rot)
        for name, values in self.joints.items():
            if values.ndim == 2:
                self.joints[name] = _unit(values)
        self._precompute()

    # ------------------------------------------------------------------ checks
    def _validate(self) -> None:
        n = self.frame_times.shape[0] if self.frame_times.ndim == 1 else -1
        if n < 2:
            raise MotionError(self.source, "a motion needs at least 2 frames", field="frame_times")
        if self.frame_times[0] != 0.0:
            raise MotionError(self.source, "frame times must start at 0", frame=0, field="frame_times")
        steps = np.diff(self.frame_times)
        bad = np.flatnonzero(~(steps > 0.0))
        if bad.size:
            raise MotionError(self.source, "frame duration must be positive", frame=int(bad[0]), field="duration")
        arrays: list[tuple[str, np.ndarray, tuple[int, ...]]] = [
            ("root_pos", self.root_pos, (n, 3)),
            ("root_rot", self.root_rot, (n, 4)),
        ]
        for name, values in self.joints.items():
            expected = (n, 4) if values.ndim == 2 else (n,)
            arrays.append((name, values, expected))
        for name, values, shape in arrays:
            if values.shape != shape:
                raise MotionError(self.source, f"shape {values.shape}, expected {shape}", field=name)
            finite = np.isfinite(values).reshape(n, -1).all(axis=1)
            if not finite.all():
                raise MotionError(self.source, "value is NaN or infinite", frame=int(np.argmin(finite)), field=name)
            if shape[-1] == 4 and values.ndim == 2:
                err = np.abs(np.linalg.norm(values, axis=1) - 1.0)
                if (err > QUAT_NORM_TOLERANCE).any():
                    i = int(np.argmax(err))
                    raise MotionError(
                        self.source,
                        f"quaternion norm {np.linalg.norm(values[i]):.4f} is not 1 (tolerance {QUAT_NORM_TOLERANCE})",
                        frame=i,
                        field=name,
                    )

    # --------------------------------------------------------------- structure
    @property
    def num_frames(self) -> int:
        return int(self.frame_times.shape[0])

    @property
    def duration(self) -> float:
        """Length of one cycle in seconds (time of the last frame)."""
        return float(self.frame_times[-1])

    @property
    def fps(self) -> float:
        return (self.num_frames - 1) / self.duration

    @property
    def spherical_joints(self) -> list[str]:
        return [k for k, v in self.joints.items() if v.ndim == 2]

    @property
    def revolute_joints(self) -> list[str]:
        return [k for k, v in self.joints.items() if v.ndim == 1]

    @property
    def rotation_table(self) -> np.ndarray:
        """Keyframe rotations ``(N, 1 + S, 4)``: root, then ``spherical_joints``."""
        return self._quats

    @property
    def angle_table(self) -> np.ndarray:
        """Keyframe angles ``(N, R)`` of ``revolute_joints``."""
        return self._angles

    def _precompute(self) -> None:
        self._spherical = self.spherical_joints
        self._revolute = self.revolute_joints
        n = self.num_frames
        # Rotations in one table, root first, so one slerp serves every joint.
        self._quats = np.concatenate(
            [self.root_rot[:, None, :]] + [self.joints[k][:, None, :] for k in self._spherical], axis=1
        )
        self._angles = (np.stack([self.joints[k] for k in self._revolute], axis=1) if self._revolute
                        else np.zeros((n, 0)))
        self.loop_closure: dict[str, float] = {}
        if self.loop and self.close_loop:
            self._close_loop()
        # Keep consecutive quaternions on one hemisphere so slerp takes the short arc.
        for i in range(1, n):
            flip = np.sum(self._quats[i] * self._quats[i - 1], axis=-1) < 0.0
            self._quats[i, flip] *= -1.0
        dt = np.diff(self.frame_times)
        self._dt = dt
        q0, q1 = self._quats[:-1], self._quats[1:]
        # root: world-frame angular velocity, q_{i+1} = exp(w dt) q_i
        root_w = rot.quat_to_rotvec(rot.quat_mul(q1[:, 0], rot.quat_conj(q0[:, 0])))
        # joints: local (child-frame) angular velocity, q_{i+1} = q_i exp(w dt)
        joint_w = rot.quat_to_rotvec(rot.quat_mul(rot.quat_conj(q0[:, 1:]), q1[:, 1:]))
        self._root_lin_vel = self.keyframe_velocities(np.diff(self.root_pos, axis=0) / dt[:, None])
        self._ang_vel = self.keyframe_velocities(np.concatenate([root_w[:, None], joint_w], axis=1) / dt[:, None, None])
        self._angle_vel = self.keyframe_velocities(np.diff(self._angles, axis=0) / dt[:, None])
        self._cycle_shift = np.array(
            [self.root_pos[-1, 0] - self.root_pos[0, 0], self.root_pos[-1, 1] - self.root_pos[0, 1], 0.0]
        )

    def _close_loop(self) -> None:
        """Make a wrapped clip continuous across the wrap.

        Mocap loops rarely end exactly where they start (the walk's right shoulder is
        0.5 rad off, its root heading 0.12 rad).  The mismatch between the last and
        the first frame is spread linearly over the cycle: frame k at time t_k is
        corrected by the fraction t_k / T of it, so the last frame equals the first
        (but for the horizontal displacement, carried by the cycle offset).  The
        largest correction per joint, in radians, is kept in ``loop_closure``.
        """
        s = (self.frame_times / self.duration)[:, None]
        first, last = self._quats[0], self._quats[-1]
        # root: world-frame correction, joints: local-frame correction
        d_root = rot.quat_to_rotvec(rot.quat_mul(first[0], rot.quat_conj(last[0])))
        d_joint = rot.quat_to_rotvec(rot.quat_mul(rot.quat_conj(last[1:]), first[1:]))
        self._quats[:, 0] = rot.quat_mul(rot.rotvec_to_quat(s * d_root), self._quats[:, 0])
        self._quats[:, 1:] = rot.quat_mul(self._quats[:, 1:], rot.rotvec_to_quat(s[:, :, None] * d_joint))
        d_angle = self._angles[0] - self._angles[-1]
        self._angles = self._angles + s * d_angle
        dz = self.root_pos[0, 2] - self.root_pos[-1, 2]
        self.root_pos = self.root_pos.copy()
        self.root_pos[:, 2] += s[:, 0] * dz
        self.loop_closure = {"root_rotation": float(np.linalg.norm(d_root)), "root_height": float(abs(dz))}
        for k, name in enumerate(self._spherical):
            self.loop_closure[name] = float(np.linalg.norm(d_joint[k]))
        for k, name in enumerate(self._revolute):
            self.loop_closure[name] = float(abs(d_angle[k]))
        self.root_rot = self._quats[:, 0].copy()
        for k, name in enumerate(self._spherical):
            self.joints[name] = self._quats[:, k + 1].copy()
        for k, name in enumerate(self._revolute):
            self.joints[name] = self._angles[:, k].copy()

    # ---------------------------------------------------------------- sampling
    def keyframe_velocities(self, interval: np.ndarray) -> np.ndarray:
        """Velocities at the N keyframes from the N - 1 intervals' (``interval``, leading
        axis), as the module docstring defines them; :func:`blend_keyframes` samples them.

        A keyframe takes the central difference over its two intervals; the ends of a
        clip that does not wrap take their one interval.  A wrapped clip's last frame
        is its first (``_close_loop``), and its filter runs over three cycles so that
        the two ends meet; a clip that does not wrap is extended by its end values.
        """
        n = interval.shape[0]
        w = self._dt.reshape(-1, *[1] * (interval.ndim - 1))
        if self.loop:
            before, w_before = np.roll(interval, 1, axis=0), np.roll(w, 1, axis=0)
            keyed = (w_before * before + w * interval) / (w_before + w)
        else:
            inner = (w[:-1] * interval[:-1] + w[1:] * interval[1:]) / (w[:-1] + w[1:])
            keyed = np.concatenate([interval[:1], inner, interval[-1:]])
        if self.fps > 2.0 * VELOCITY_CUTOFF_HZ and n >= 2:
            b, a = signal.butter(2, VELOCITY_CUTOFF_HZ, fs=self.fps)
            if self.loop:
                keyed = signal.filtfilt(b, a, np.concatenate([keyed] * 3), axis=0, padtype=None)[n:2 * n]
            else:
                keyed = signal.filtfilt(b, a, keyed, axis=0, padtype="constant", padlen=min(n, 3 * len(a)))
        return np.concatenate([keyed, keyed[:1]]) if self.loop else keyed

    def locate(self, time: float) -> tuple[int, int, float]:
        """(cycle, keyframe interval, fraction within it) for a time in seconds."""
        cycle, i, alpha = self.locate_many(np.array([time], dtype=float))
        return int(cycle[0]), int(i[0]), float(alpha[0])

    def locate_many(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`locate` for an array of times: (cycles, intervals, fractions), arrays."""
        times = np.asarray(times, dtype=float)
        if self.loop:
            cycle = np.floor(times / self.duration)
            local = times - cycle * self.duration
        else:
            cycle = np.zeros_like(times)
            local = np.minimum(np.maximum(times, 0.0), self.duration)
        i = np.searchsorted(self.frame_times, local, side="right") - 1
        i = np.minimum(np.maximum(i, 0), self.num_frames - 2)
        alpha = np.minimum(np.maximum((local - self.frame_times[i]) / self._dt[i], 0.0), 1.0)
        return cycle, i, alpha

    def phase(self, time: float) -> float:
        """Fraction of the cycle in [0, 1); 1.0 past the end of a non-looping clip."""
        if self.loop:
            return float(np.remainder(time / self.duration, 1.0))
        return float(min(max(time / self.duration, 0.0), 1.0))

    def sample_arrays(self, time: float) -> tuple[np.ndarray, ...]:
        """The clip at ``time`` as arrays, for hot loops.

        Returns (root_pos (3,), rotations (1 + S, 4) root first then
        ``spherical_joints``, angles (R,) in ``revolute_joints`` order, root linear
        velocity (3,) world, angular velocities (1 + S, 3) root in world then joints
        in their local frame, angle rates (R,)).  Past the end of a non-looping clip
        the last frame is held with zero velocity.
        """
        return tuple(a[0] for a in self.sample_many(np.array([time], dtype=float)))

    def sample_many(self, times: np.ndarray,
                    located: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, ...]:
        """:meth:`sample_arrays` at an array of T times: every array with a leading T axis.
        ``located``: :meth:`locate_many` of the times, when the caller has it already."""
        times = np.asarray(times, dtype=float)
        cycle, i, a = self.locate_many(times) if located is None else located
        root_pos = blend_keyframes(self.root_pos, i, a) + cycle[:, None] * self._cycle_shift
        quats = rot.quat_slerp(self._quats[i], self._quats[i + 1], a[:, None])
        angles = blend_keyframes(self._angles, i, a)
        lin_vel, ang_vel, angle_vel = (blend_keyframes(v, i, a)
                                       for v in (self._root_lin_vel, self._ang_vel, self._angle_vel))
        if not self.loop:
            held = (times > self.duration) | (times < 0.0)
            lin_vel, ang_vel, angle_vel = (np.where(held.reshape(-1, *[1] * (v.ndim - 1)), 0.0, v)
                                           for v in (lin_vel, ang_vel, angle_vel))
        return root_pos, quats, angles, lin_vel, ang_vel, angle_vel

    def sample(self, time: float) -> MotionSample:
        root_pos, quats, angles, lin_vel, ang_vel, angle_vel = self.sample_arrays(time)
        joints: dict[str, np.ndarray] = {}
        joint_vel: dict[str, np.ndarray] = {}
        for k, name in enumerate(self._spherical):
            joints[name] = quats[k + 1]
            joint_vel[name] = ang_vel[k + 1]
        for k, name in enumerate(self._revolute):
            joints[name] = angles[k : k + 1]
            joint_vel[name] = angle_vel[k : k + 1]
        return MotionSample(
            time=float(time),
            phase=self.phase(time),
            root_pos=root_pos,
            root_rot=quats[0],
            root_lin_vel=lin_vel,
            root_ang_vel=ang_vel[0],
            joints=joints,
            joint_vel=joint_vel,
        )
