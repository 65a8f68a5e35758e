"""Physics backends behind one interface (:class:`~mimic_sim.backends.base.PhysicsBackend`)."""

from __future__ import annotations

from mimic_sim.backends.base import BodyStates, PhysicsBackend, SimConfig
from mimic_sim.character import Character

BACKENDS = ("mujoco", "pybullet")


def backend_class(name: str) -> type[PhysicsBackend]:
    """A backend's class by name: ``mujoco`` (default, fastest) or ``pybullet``."""
    if name == "mujoco":
        from mimic_sim.backends.mujoco_backend import MujocoBackend

        return MujocoBackend
    if name == "pybullet":
        from mimic_sim.backends.pybullet_backend import PyBulletBackend

        return PyBulletBackend
    raise ValueError(f"unknown physics backend '{name}', expected one of {BACKENDS}")


def make_backend(name: str, character: Character, config: SimConfig | None = None) -> PhysicsBackend:
    """A backend by name (:func:`backend_class`) simulating ``character``."""
    return backend_class(name)(character, config)


def default_physics_hz(name: str, character: Character) -> float:
    """The physics rate a backend runs ``character`` at when ``SimConfig.physics_hz`` is None."""
    return backend_class(name).physics_rate_for(character)


__all__ = ["BACKENDS", "BodyStates", "PhysicsBackend", "SimConfig", "backend_class", "default_physics_hz",
           "make_backend"]
