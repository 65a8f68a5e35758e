"""DeepMimic's imitation reward, defined here and nowhere else.

    r = 0.65 r_pose + 0.10 r_velocity + 0.15 r_end_effector + 0.10 r_com

    r_pose         = exp(-2   * sum_j angle(q_ref_j^-1 q_j)^2)
    r_velocity     = exp(-0.1 * sum_j |w_ref_j - w_j|^2)
    r_end_effector = exp(-40  * sum_e |p_ref_e - p_e|^2)
    r_com          = exp(-10  * |c_ref - c|^2)

(Peng et al. 2018, eq. 6-10).  Joints j are every tracked body: a body's rotation
and angular velocity relative to its parent body, expressed in the parent's frame
(the local joint rotation a hinge chain or a ball joint produces), plus the root's
world orientation and angular velocity.  End-effector positions are taken relative
to the root in its heading frame, height kept absolute, as DeepMimic's released code
does, so a character that drifts sideways is not punished twice (the centre-of-mass
term already sees the drift).  The centre of mass is compared in the world.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mimic_sim.backends.base import BodyStates


@dataclass(frozen=True)
class RewardConfig:
    pose_weight: float = 0.65
    velocity_weight: float = 0.10
    end_effector_weight: float = 0.15
    com_weight: float = 0.10
    pose_scale: float = 2.0
    velocity_scale: float = 0.1
    end_effector_scale: float = 40.0
    com_scale: float = 10.0


TERMS = ("pose", "velocity", "end_effector", "com")


def _local_rotations(states: BodyStates, parents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per body: rotation matrix and angular velocity relative to the parent body, in the parent frame."""
    root = parents < 0
    parent_mat = states.rotmat[..., parents, :, :]
    parent_mat[..., root, :, :] = np.eye(3)
    rel_ang = states.ang_vel - states.ang_vel[..., parents, :]
    rel_ang[..., root, :] = states.ang_vel[..., root, :]
    local = np.matmul(np.swapaxes(parent_mat, -1, -2), states.rotmat)
    local_ang = np.einsum("...ji,...j->...i", parent_mat, rel_ang)
    return local, local_ang


def heading_rotation(rotmat: np.ndarray) -> np.ndarray:
    """3x3 rotations by minus the heading (the yaw of the body's x axis) about world z.

    ``rotmat`` is (..., 3, 3); ``vectors @ heading_rotation(R).T`` expresses world
    vectors in the heading frame of one body.
    """
    c, s = rotmat[..., 0, 0], rotmat[..., 1, 0]
    norm = np.hypot(c, s)
    vertical = norm < 1e-9  # x axis vertical: heading undefined, use the world's
    if vertical.any():
        c, s, norm = np.where(vertical, 1.0, c), np.where(vertical, 0.0, s), np.where(vertical, 1.0, norm)
    c, s = c / norm, s / norm
    out = np.zeros((*c.shape, 3, 3))
    out[..., 0, 0], out[..., 0, 1], out[..., 1, 0], out[..., 1, 1], out[..., 2, 2] = c, s, -s, c, 1.0
    return out


def _end_effectors_in_root_frame(states: BodyStates, root: int, effectors: np.ndarray) -> np.ndarray:
    heading = heading_rotation(states.rotmat[..., root, :, :])
    rel = np.einsum("...ij,...ej->...ei", heading, states.pos[..., effectors, :] - states.pos[..., root, None, :])
    rel[..., 2] = states.pos[..., effectors, 2]
    return rel


@dataclass(frozen=True)
class TrackingFeatures:
    """What the reward compares, for one character state (computed once per reference time),
    or for a batch of them (a leading batch axis on every array)."""

    local_rot: np.ndarray  # (..., B, 3, 3) rotation relative to the parent body
    local_ang_vel: np.ndarray  # (..., B, 3) angular velocity relative to the parent, in its frame
    end_effectors: np.ndarray  # (..., E, 3) root-relative in the heading frame, absolute height
    com: np.ndarray  # (..., 3)


def tracking_features(states: BodyStates, parents: np.ndarray, end_effectors: np.ndarray) -> TrackingFeatures:
    root = int(np.flatnonzero(parents < 0)[0])
    local, local_ang = _local_rotations(states, parents)
    return TrackingFeatures(local, local_ang, _end_effectors_in_root_frame(states, root, end_effectors), states.com)


def imitation_rewards(
    sim: TrackingFeatures, ref: TrackingFeatures, config: RewardConfig = RewardConfig()
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Total reward and each term (each in [0, 1]) per simulated/reference pair of a batch."""
    # angle of R_ref^T R_sim from its trace
    cos = 0.5 * (np.einsum("...bij,...bij->...b", ref.local_rot, sim.local_rot) - 1.0)
    angle = np.arccos(np.minimum(np.maximum(cos, -1.0), 1.0))  # ufuncs: np.clip's wrapper costs more here
    pose_err = np.einsum("...b,...b->...", angle, angle)
    vel_err = np.square(ref.local_ang_vel - sim.local_ang_vel).sum(axis=(-2, -1))
    ee_err = np.square(ref.end_effectors - sim.end_effectors).sum(axis=(-2, -1))
    com_err = np.square(ref.com - sim.com).sum(axis=-1)
    terms = {
        "pose": np.exp(-config.pose_scale * pose_err),
        "velocity": np.exp(-config.velocity_scale * vel_err),
        "end_effector": np.exp(-config.end_effector_scale * ee_err),
        "com": np.exp(-config.com_scale * com_err),
    }
    total = (config.pose_weight * terms["pose"] + config.velocity_weight * terms["velocity"]
             + config.end_effector_weight * terms["end_effector"] + config.com_weight * terms["com"])
    return total, terms


def imitation_reward(
    sim: TrackingFeatures, ref: TrackingFeatures, config: RewardConfig = RewardConfig()
) -> tuple[float, dict[str, float]]:
    """:func:`imitation_rewards` of one simulated and one reference character, as floats."""
    total, terms = imitation_rewards(sim, ref, config)
    return float(total), {k: float(v) for k, v in terms.items()}
