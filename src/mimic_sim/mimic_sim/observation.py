"""DeepMimic's state observation, built the same way for training and for the policy node.

Layout (``observation_size(B) = 2 + 13 B`` for B tracked bodies; 197 for the humanoid):

    [phase, root height,
     body positions relative to the root (B x 3),
     body rotations w, x, y, z with w >= 0 (B x 4),
     body linear velocities (B x 3),
     body angular velocities (B x 3)]

and, with a target (``observation_size(B, target=True) = 2 + 20 B``; 302), the
reference pose the character should reach at the end of the control period:

     target body positions relative to the (simulated) root (B x 3),
     target body rotations (B x 4)

everything but the height expressed in the character's heading frame: the root's
position with the world rotated so that the root faces +x.  The policy so sees the
same state wherever and whichever way the character walks.  DeepMimic gave the
policy only the phase, so it had to learn the whole clip as a function of phase;
the target (as later motion trackers do) tells it where to go and leaves it to learn
how, which learns faster.
"""

from __future__ import annotations

import numpy as np

from mimic_sim import rotations as rot
from mimic_sim.backends.base import BodyStates
from mimic_sim.reward import heading_cos_sin, unturn


def observation_size(num_bodies: int, target: bool = False) -> int:
    return 2 + (20 if target else 13) * num_bodies


def observation_layout(body_names: list[str], target: bool = False) -> list[tuple[str, int, int]]:
    """(name, start, length) of each block, for checkpoints and the policy node."""
    n = len(body_names)
    blocks = [("phase", 1), ("root_height", 1), ("body_pos", 3 * n), ("body_quat", 4 * n),
              ("body_lin_vel", 3 * n), ("body_ang_vel", 3 * n)]
    if target:
        blocks += [("target_body_pos", 3 * n), ("target_body_quat", 4 * n)]
    out, start = [], 0
    for name, length in blocks:
        out.append((name, start, length))
        start += length
    return out


def build_observation(states: BodyStates, root: int, phase: float | np.ndarray,
                      target: BodyStates | None = None) -> np.ndarray:
    """The observation of one character, or of a batch (``states``, ``phase`` and ``target``
    with a leading axis); ``target``: the reference pose to append (see the module doc)."""
    cos, sin = heading_cos_sin(states.rotmat[..., root, :, :])
    n = states.pos.shape[-2]
    batch = states.pos.shape[:-2]
    root_pos = states.pos[..., root, None, :]
    blocks = [states.pos - root_pos, states.lin_vel, states.ang_vel]
    if target is not None:
        blocks.append(target.pos - root_pos)
    vectors = unturn(cos, sin, np.concatenate(blocks, axis=-2))
    # heading quaternion^-1 * body quaternion; the heading is a yaw h with cos h = cos
    half_cos = np.sqrt(np.maximum(0.5 * (1.0 + cos), 0.0))  # |cos| <= 1 up to rounding
    half_sin = np.copysign(np.sqrt(np.maximum(0.5 * (1.0 - cos), 0.0)), sin)
    out = np.empty((*batch, observation_size(n, target is not None)))
    out[..., 0] = phase
    out[..., 1] = states.pos[..., root, 2]
    out[..., 2 : 2 + 3 * n] = vectors[..., :n, :].reshape(*batch, 3 * n)
    quats = states.quat if target is None else np.concatenate([states.quat, target.quat], axis=-2)
    quats = rot.quat_positive(_unturn_quaternions(half_cos[..., None], half_sin[..., None], quats))
    out[..., 2 + 3 * n : 2 + 7 * n] = quats[..., :n, :].reshape(*batch, 4 * n)
    out[..., 2 + 7 * n : 2 + 13 * n] = vectors[..., n : 3 * n, :].reshape(*batch, 6 * n)
    if target is not None:
        out[..., 2 + 13 * n : 2 + 16 * n] = vectors[..., 3 * n :, :].reshape(*batch, 3 * n)
        out[..., 2 + 16 * n :] = quats[..., n:, :].reshape(*batch, 4 * n)
    return out


def _unturn_quaternions(half_cos: np.ndarray, half_sin: np.ndarray, quats: np.ndarray) -> np.ndarray:
    """The yaw quaternion (half_cos, 0, 0, -half_sin) times ``quats``: ``rot.quat_mul`` with the zero
    terms left out (the same values, for a fraction of the cost of its einsum)."""
    w, x, y, z = quats[..., 0], quats[..., 1], quats[..., 2], quats[..., 3]
    return np.stack([half_cos * w + half_sin * z, half_cos * x + half_sin * y,
                     half_cos * y - half_sin * x, half_cos * z - half_sin * w], axis=-1)
