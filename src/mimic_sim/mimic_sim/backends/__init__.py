"""Physics backends behind one interface (:class:`~mimic_sim.backends.base.PhysicsBackend`)."""

from __future__ import annotations

from mimic_sim.backends.base import BodyStates, PhysicsBackend, SimConfig
from mimic_sim.character import Character

BACKENDS = ("mujoco", "pybullet")


def make_backend(name: str, character: Character, config: SimConfig | None = None) -> PhysicsBackend:
    """A backend by name: ``mujoco`` (default, fastest) or ``pybullet``."""
    if name == "mujoco":
        from mimic_sim.backends.mujoco_backend import MujocoBackend

        return MujocoBackend(character, config)
    if name == "pybullet":
        from mimic_sim.backends.pybullet_backend import PyBulletBackend

        return PyBulletBackend(character, config)
    raise ValueError(f"unknown physics backend '{name}', expected one of {BACKENDS}")


def default_physics_hz(name: str, character: Character | None = None) -> float:
    """The physics rate of a backend (for a character) when ``SimConfig.physics_hz`` is None."""
    if character is not None and character.physics_hz:
        return character.physics_hz
    if name == "mujoco":
        from mimic_sim.backends.mujoco_backend import MujocoBackend

        return MujocoBackend.default_physics_hz
    if name == "pybullet":
        from mimic_sim.backends.pybullet_backend import PyBulletBackend

        return PyBulletBackend.default_physics_hz
    raise ValueError(f"unknown physics backend '{name}', expected one of {BACKENDS}")


__all__ = ["BACKENDS", "BodyStates", "PhysicsBackend", "SimConfig", "default_physics_hz", "make_backend"]
