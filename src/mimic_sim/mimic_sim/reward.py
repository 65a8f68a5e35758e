"""DeepMimic's imitation reward, defined here and nowhere else.

    r = 0.50 r_pose + 0.05 r_velocity + 0.15 r_end_effector + 0.20 r_root + 0.10 r_com

    r_pose         = exp(-2   * sum_j w_j angle(q_ref_j^-1 q_j)^2)
    r_velocity     = exp(-0.1 * sum_j w_j |w_ref_j - w_j|^2)
    r_end_effector = exp(-40  * mean_e |p_ref_e - p_e|^2)
    r_root         = exp(-5   * (|x_ref - x|^2 + 0.1 angle(q_ref_0^-1 q_0)^2
                                 + 0.01 |v_ref - v|^2 + 0.001 |w_ref_0 - w_0|^2))
    r_com          = exp(-10  * 0.1 |c'_ref - c'|^2)

This is the reward of DeepMimic's released code (``cSceneImitate::CalcRewardImitate``),
which its published results, the 0.985 normalized return of the walk (quoted) included, were
measured with; the paper's equations (Peng et al. 2018, eq. 6-10) sum the pose error
over joints unweighted, have no root term and compare centre-of-mass positions, and
score the same motion far lower (docs/simulation.md).  Joints j are every tracked body,
weighted by the character's ``pose_weights`` (summing to 1): a body's rotation and
angular velocity relative to its parent body, in the parent's frame (the local joint
rotation a hinge chain or a ball joint produces), and for the root its world
orientation and angular velocity.  End-effector positions are taken relative to the
root in its heading frame, height kept absolute, so a character that drifts sideways
is not punished twice (the root term sees the drift).  The root position x and
velocity v and the centre-of-mass velocity c' are compared in the world.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mimic_sim.backends.base import BodyStates


@dataclass(frozen=True)
class RewardConfig:
    """Weights (summing to 1) and error scales of the terms, DeepMimic's values."""

    pose_weight: float = 0.50
    """Weight of the pose term (joint rotations)."""
    velocity_weight: float = 0.05
    """Weight of the velocity term (joint angular velocities)."""
    end_effector_weight: float = 0.15
    """Weight of the end-effector term (hand and foot positions)."""
    root_weight: float = 0.20
    """Weight of the root term (root position, orientation and velocities)."""
    com_weight: float = 0.10
    """Weight of the centre-of-mass velocity term."""
    pose_scale: float = 2.0
    """Error scale of the pose term: exp(-scale * weighted squared angle error)."""
    velocity_scale: float = 0.1
    """Error scale of the velocity term."""
    end_effector_scale: float = 40.0
    """Error scale of the end-effector term (per squared metre, mean over end effectors)."""
    root_scale: float = 5.0
    """Error scale of the root term."""
    com_scale: float = 1.0
    """Of the squared centre-of-mass velocity error (DeepMimic: 10 times a 0.1 factor)."""

    @property
    def weights(self) -> dict[str, float]:
        return {"pose": self.pose_weight, "velocity": self.velocity_weight,
                "end_effector": self.end_effector_weight, "root": self.root_weight, "com": self.com_weight}


TERMS = ("pose", "velocity", "end_effector", "root", "com")
ROOT_ERROR_FACTORS = (1.0, 0.1, 0.01, 0.001)
"""The root error's factors of squared position, orientation angle, velocity, angular velocity errors."""


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


def heading_cos_sin(rotmat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine and sine of the heading (the yaw of the body's x axis) of rotations ``rotmat`` (..., 3, 3)."""
    c, s = rotmat[..., 0, 0], rotmat[..., 1, 0]
    norm = np.hypot(c, s)
    vertical = norm < 1e-9  # x axis vertical: heading undefined, use the world's
    if vertical.any():
        c, s, norm = np.where(vertical, 1.0, c), np.where(vertical, 0.0, s), np.where(vertical, 1.0, norm)
    return c / norm, s / norm


def heading_rotation(rotmat: np.ndarray) -> np.ndarray:
    """3x3 rotations by minus the heading (the yaw of the body's x axis) about world z.

    ``rotmat`` is (..., 3, 3); ``vectors @ heading_rotation(R).T`` expresses world
    vectors in the heading frame of one body.
    """
    c, s = heading_cos_sin(rotmat)
    out = np.zeros((*c.shape, 3, 3))
    out[..., 0, 0], out[..., 0, 1], out[..., 1, 0], out[..., 1, 1], out[..., 2, 2] = c, s, -s, c, 1.0
    return out


def unturn(cos: np.ndarray, sin: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``vectors`` (..., V, 3) in the heading frame of headings ``cos``, ``sin`` (...): rotated by minus
    the heading about z, as ``heading_rotation``'s matrices do (two products per component: the same
    values as the matrix product, for a fraction of its per-call cost)."""
    c, s = cos[..., None], sin[..., None]
    x, y = vectors[..., 0], vectors[..., 1]
    return np.stack([c * x + s * y, c * y - s * x, vectors[..., 2]], axis=-1)


def _end_effectors_in_root_frame(states: BodyStates, root: int, effectors: np.ndarray) -> np.ndarray:
    cos, sin = heading_cos_sin(states.rotmat[..., root, :, :])
    rel = unturn(cos, sin, states.pos[..., effectors, :] - states.pos[..., root, None, :])
    rel[..., 2] = states.pos[..., effectors, 2]
    return rel


@dataclass(frozen=True)
class TrackingFeatures:
    """What the reward compares, for one character state (computed once per reference time),
    or for a batch of them (a leading batch axis on every array)."""

    local_rot: np.ndarray  # (..., B, 3, 3) rotation relative to the parent body (the root's: in the world)
    local_ang_vel: np.ndarray  # (..., B, 3) angular velocity relative to the parent, in its frame
    end_effectors: np.ndarray  # (..., E, 3) root-relative in the heading frame, absolute height
    root_pos: np.ndarray  # (..., 3) world
    root_vel: np.ndarray  # (..., 3) world
    com_vel: np.ndarray  # (..., 3) world


def tracking_features(states: BodyStates, parents: np.ndarray, end_effectors: np.ndarray) -> TrackingFeatures:
    root = int(np.flatnonzero(parents < 0)[0])
    local, local_ang = _local_rotations(states, parents)
    return TrackingFeatures(local, local_ang, _end_effectors_in_root_frame(states, root, end_effectors),
                            states.pos[..., root, :], states.lin_vel[..., root, :], states.com_vel)


def imitation_rewards(
    sim: TrackingFeatures, ref: TrackingFeatures, pose_weights: np.ndarray, root: int,
    config: RewardConfig = RewardConfig(),
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Total reward and each term (each in [0, 1]) per simulated/reference pair of a batch;
    ``pose_weights`` per tracked body (``Character.pose_weights``), ``root`` its index."""
    # angle of R_ref^T R_sim from its trace
    cos = 0.5 * (np.einsum("...bij,...bij->...b", ref.local_rot, sim.local_rot) - 1.0)
    angle = np.arccos(np.minimum(np.maximum(cos, -1.0), 1.0))  # ufuncs: np.clip's wrapper costs more here
    squared_angle = angle * angle
    pose_err = squared_angle @ pose_weights
    ang_vel_err = np.square(ref.local_ang_vel - sim.local_ang_vel).sum(axis=-1)
    vel_err = ang_vel_err @ pose_weights
    ee_err = np.square(ref.end_effectors - sim.end_effectors).sum(axis=-1).mean(axis=-1)
    pos_f, rot_f, vel_f, ang_f = ROOT_ERROR_FACTORS
    root_err = (pos_f * np.square(ref.root_pos - sim.root_pos).sum(axis=-1) + rot_f * squared_angle[..., root]
                + vel_f * np.square(ref.root_vel - sim.root_vel).sum(axis=-1) + ang_f * ang_vel_err[..., root])
    com_err = np.square(ref.com_vel - sim.com_vel).sum(axis=-1)
    terms = {
        "pose": np.exp(-config.pose_scale * pose_err),
        "velocity": np.exp(-config.velocity_scale * vel_err),
        "end_effector": np.exp(-config.end_effector_scale * ee_err),
        "root": np.exp(-config.root_scale * root_err),
        "com": np.exp(-config.com_scale * com_err),
    }
    weights = config.weights
    total = sum(weights[name] * value for name, value in terms.items())
    return total, terms


def imitation_reward(
    sim: TrackingFeatures, ref: TrackingFeatures, pose_weights: np.ndarray, root: int,
    config: RewardConfig = RewardConfig(),
) -> tuple[float, dict[str, float]]:
    """:func:`imitation_rewards` of one simulated and one reference character, as floats."""
    total, terms = imitation_rewards(sim, ref, pose_weights, root, config)
    return float(total), {k: float(v) for k, v in terms.items()}
