"""Telling a simulation that blew up from one that did not.

A command within every limit can still make a physics engine diverge (gains a robot's
drives hold but the engine's step size does not).  Divergence shows as a non-finite
state, as speeds no character reaches (the root flying off at 90 m/s), or, in MuJoCo,
as the engine's own warning: MuJoCo resets a simulation whose accelerations became
NaN or huge by itself, and the character silently reappears in the model's default
pose.  :func:`instability` names the first sign; the sim node then resets the
character and logs an error instead of letting it pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mimic_sim.backends.base import PhysicsBackend


@dataclass(frozen=True)
class StateBounds:
    """Speeds beyond which a simulated character is taken to have blown up."""

    max_root_speed: float = 20.0
    """m/s: a fall from 20 m; the shipped clips' roots move at 5.3 m/s at most (roll)."""
    max_angular_speed: float = 200.0
    """rad/s, of the root and of each joint: twice PyBullet's own joint speed clamp (100 rad/s),
    which its characters reach in ordinary falls."""

    def __post_init__(self) -> None:
        for name in ("max_root_speed", "max_angular_speed"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value}")


def engine_warnings(backend: PhysicsBackend) -> list[str]:
    """The engine's own instability warnings since the last reset of ``backend``: MuJoCo's
    bad position, velocity and acceleration warnings (its reset of a diverged simulation
    leaves the bad-acceleration count set); nothing for PyBullet, which has none."""
    if backend.name != "mujoco":
        return []
    import mujoco

    data = backend.data
    return [f"MuJoCo warning {kind.name} (x{data.warning[kind].number})"
            for kind in (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL,
                         mujoco.mjtWarning.mjWARN_BADQACC) if data.warning[kind].number]


def instability(qpos: np.ndarray, qvel: np.ndarray, joint_names: list[str], bounds: StateBounds,
                warnings: Sequence[str] = ()) -> str | None:
    """Why a state (mimic's layout, see ``Character``) is not one of a sane simulation, or
    None: a non-finite value, the root or a joint beyond ``bounds``, or an engine warning."""
    if warnings:
        return "; ".join(warnings)
    names = ["root x", "root y", "root z", "root qw", "root qx", "root qy", "root qz", *joint_names]
    bad = np.flatnonzero(~np.isfinite(qpos))
    if bad.size:
        return f"position of {names[bad[0]]} is {qpos[bad[0]]}"
    bad = np.flatnonzero(~np.isfinite(qvel))
    if bad.size:
        velocity_names = ["root vx", "root vy", "root vz", "root wx", "root wy", "root wz", *joint_names]
        return f"velocity of {velocity_names[bad[0]]} is {qvel[bad[0]]}"
    speed = float(np.linalg.norm(qvel[:3]))
    if speed > bounds.max_root_speed:
        return f"root speed {speed:.1f} m/s, beyond {bounds.max_root_speed:g} m/s"
    spin = float(np.linalg.norm(qvel[3:6]))
    if spin > bounds.max_angular_speed:
        return f"root angular speed {spin:.1f} rad/s, beyond {bounds.max_angular_speed:g} rad/s"
    joint_speeds = np.abs(qvel[6:])
    if joint_speeds.size and joint_speeds.max() > bounds.max_angular_speed:
        fastest = int(np.argmax(joint_speeds))
        return (f"joint '{joint_names[fastest]}' speed {joint_speeds[fastest]:.1f} rad/s, beyond "
                f"{bounds.max_angular_speed:g} rad/s")
    return None
