"""A motion expressed in a character's generalized coordinates.

Motion joints map to model joints by name: a revolute motion joint drives the
model joint of the same name, a spherical motion joint ``j`` drives the hinge chain
``j_<a>``, ``j_<b>``, ``j_<c>`` in the order the character config gives.  The
spherical rotation is sampled by slerp and then split into the three hinge angles
exactly (the chain reproduces the rotation), choosing the 2*pi branch nearest the
keyframes' continuous angles so that trajectories do not jump.
"""

from __future__ import annotations

import numpy as np

from mimic_sim import rotations as rot
from mimic_sim.character import Character
from mimic_sim.motion import Motion, MotionError, blend_keyframes


class ReferenceMotion:
    """``state(t) -> (qpos, qvel)`` of a character following a motion."""

    def __init__(self, motion: Motion, character: Character):
        self.motion = motion
        self.character = character
        names = character.joint_names
        index = {n: i for i, n in enumerate(names)}
        covered: set[str] = set()
        rows, cols, axes = [], [], []
        for k, joint in enumerate(motion.spherical_joints):
            order = character.spherical_joints.get(joint)
            if order is None:
                raise MotionError(motion.source, f"character '{character.name}' has no spherical joint '{joint}' "
                                  f"(its spherical joints: {sorted(character.spherical_joints)})", field=joint)
            rows.append(k + 1)  # row 0 of the motion's rotation table is the root
            cols.append([index[f"{joint}_{a}"] for a in order])
            axes.append(rot.euler_indices(order))
            covered.update(f"{joint}_{a}" for a in order)
        self._rows = np.array(rows, dtype=int)
        self._cols = np.array(cols, dtype=int).reshape(-1, 3)
        self._axes = [np.array(a) for a in zip(*axes, strict=False)] if axes else [np.zeros(0, int)] * 3 + [np.zeros(0)]
        revolute_cols = []
        for joint in motion.revolute_joints:
            if joint not in index:
                raise MotionError(motion.source, f"character '{character.name}' has no joint '{joint}'", field=joint)
            revolute_cols.append(index[joint])
            covered.add(joint)
        self._revolute_cols = np.array(revolute_cols, dtype=int)
        missing = [n for n in names if n not in covered]
        if missing:
            raise MotionError(motion.source, f"motion does not drive joints {missing} of character "
                              f"'{character.name}'")
        self._lower = character.joint_lower
        self._upper = character.joint_upper
        self._key_angles = self._keyframe_angles()
        # The hinges' rates, keyed and sampled as the motion's own velocities are.
        self._key_rates = motion.keyframe_velocities(np.diff(self._key_angles, axis=0)
                                                     / np.diff(motion.frame_times)[:, None])

    @property
    def duration(self) -> float:
        return self.motion.duration

    def _split(self, quats: np.ndarray, near: np.ndarray) -> np.ndarray:
        """Hinge angles of the spherical joints in ``quats`` ((..., rows as in the motion, 4)), near
        ``near`` ((..., joints)); a leading batch axis is kept."""
        out = near.copy()
        if not len(self._rows):
            return out
        cols = self._cols[:, [0, 2]]  # outer hinges; the middle one stays in [-pi/2, pi/2]
        mats = rot.quat_to_mat(quats[..., self._rows, :])
        batch = mats.shape[:-3]
        count = int(np.prod(batch, dtype=int))
        axes = [np.tile(a, count) for a in self._axes]
        angles = rot.euler_from_mat(mats.reshape(-1, 3, 3), *axes).reshape(*batch, len(self._rows), 3)
        outer = rot.wrap_near(angles[..., [0, 2]], near[..., cols])
        # Stay inside the joint range: take the other 2*pi branch if needed.
        outer = np.where(outer > self._upper[cols], outer - 2 * np.pi, outer)
        outer = np.where(outer < self._lower[cols], outer + 2 * np.pi, outer)
        out[..., cols] = outer
        out[..., self._cols[:, 1]] = angles[..., 1]
        return out

    def _keyframe_angles(self) -> np.ndarray:
        m = self.motion
        table = np.zeros((m.num_frames, self.character.num_joints))
        prev = np.zeros(self.character.num_joints)
        for i in range(m.num_frames):
            table[i] = self._split(m.rotation_table[i], prev)
            table[i, self._revolute_cols] = m.angle_table[i]
            prev = table[i]
        return table

    def state(self, time: float) -> tuple[np.ndarray, np.ndarray]:
        qpos, qvel = self.states(np.array([time], dtype=float))
        return qpos[0], qvel[0]

    def states(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`state` at an array of T times: (qpos (T, 7 + joints), qvel (T, 6 + joints))."""
        m = self.motion
        times = np.asarray(times, dtype=float)
        located = m.locate_many(times)
        root_pos, quats, angles, lin_vel, ang_vel, angle_vel = m.sample_many(times, located)
        _, i, a = located
        near = blend_keyframes(self._key_angles, i, a)
        joints = self._split(quats, near)
        joints[:, self._revolute_cols] = angles
        rates = blend_keyframes(self._key_rates, i, a)
        if not m.loop:
            rates[(times > m.duration) | (times < 0.0)] = 0.0
        rates[:, self._revolute_cols] = angle_vel
        qpos = np.concatenate([root_pos, quats[:, 0], joints], axis=1)
        qvel = np.concatenate([lin_vel, ang_vel[:, 0], rates], axis=1)
        return qpos, qvel

    def phase(self, time: float) -> float:
        return self.motion.phase(time)
