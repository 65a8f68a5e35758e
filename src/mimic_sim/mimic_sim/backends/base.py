"""The interface every physics backend implements, and the state it reports."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace

import numpy as np

from mimic_sim.character import Character
from mimic_sim.pd import PDGains, clamp_targets, require_finite


@dataclass(frozen=True)
class SimConfig:
    """Rates and options shared by all backends."""

    control_hz: float = 30.0
    """Policy rate: PD targets are held for one control period."""
    physics_hz: float | None = None
    """Physics rate, a multiple of ``control_hz``; None takes the character's ``physics_hz``
    (the humanoid: 240 Hz) or else the backend's default (MuJoCo 120 Hz, PyBullet 240 Hz;
    see ``docs/simulation.md``)."""
    self_collision: bool = False
    """Collide the character's bodies with each other (DeepMimic: no)."""
    gravity: float = 9.81
    """Gravitational acceleration, m/s^2, pointing down (-z)."""

    def resolved(self, default_physics_hz: float) -> SimConfig:
        """This config with the physics rate filled in and checked."""
        physics = self.physics_hz if self.physics_hz is not None else default_physics_hz
        n = physics / self.control_hz
        if abs(n - round(n)) > 1e-9 or round(n) < 1:
            raise ValueError(f"physics rate {physics} Hz is not a multiple of control rate {self.control_hz} Hz")
        return replace(self, physics_hz=float(physics))

    @property
    def substeps(self) -> int:
        return round(self.physics_hz / self.control_hz)

    @property
    def physics_dt(self) -> float:
        return 1.0 / self.physics_hz

    @property
    def control_dt(self) -> float:
        return 1.0 / self.control_hz


@dataclass
class BodyStates:
    """World-frame state of the character's tracked bodies (``Character.tracked_bodies``).

    Positions and velocities are of the body frame origins (the joint positions, as
    DeepMimic's reward uses), not of the body centres of mass.
    """

    pos: np.ndarray  # (B, 3)
    quat: np.ndarray  # (B, 4) w, x, y, z
    rotmat: np.ndarray  # (B, 3, 3), the same rotations as matrices
    lin_vel: np.ndarray  # (B, 3)
    ang_vel: np.ndarray  # (B, 3)
    com: np.ndarray  # (3,) centre of mass of the whole character
    com_vel: np.ndarray  # (3,) its velocity

    @staticmethod
    def stack(states: list[BodyStates]) -> BodyStates:
        """Several characters' states as one batch (a leading axis on every array)."""
        return BodyStates(*(np.stack([getattr(s, k) for s in states]) for k in
                            ("pos", "quat", "rotmat", "lin_vel", "ang_vel", "com", "com_vel")))


def _checked_velocities(velocities: np.ndarray | None) -> np.ndarray | None:
    return None if velocities is None else require_finite(velocities, "PD target velocity")


def horizontal_push(velocity_change: float, angle: float, mass: float, seconds: float) -> np.ndarray:
    """The horizontal force (N) that, held ``seconds`` on a body of ``mass``, changes its velocity by
    ``velocity_change`` (m/s) in the direction ``angle`` (rad from +x): a push's size as the whole-body
    velocity change it gives (:meth:`PhysicsBackend.set_root_force`)."""
    return velocity_change * mass / seconds * np.array([np.cos(angle), np.sin(angle), 0.0])


class PhysicsBackend(ABC):
    """A character in a physics engine, driven by stable-PD targets (see :mod:`mimic_sim.pd`)."""

    name: str
    default_physics_hz: float

    def __init__(self, character: Character, config: SimConfig | None = None):
        self.character = character
        self.config = (config or SimConfig()).resolved(self.physics_rate_for(character))
        self.gains = PDGains(character.kp, character.kd, character.torque_limit)
        self._lower = character.joint_lower
        self._upper = character.joint_upper

    @classmethod
    def physics_rate_for(cls, character: Character) -> float:
        """The rate ``SimConfig(physics_hz=None)`` means: a character whose gains need a finer
        step than the backend's default says so in its config (``physics_hz``)."""
        return character.physics_hz or cls.default_physics_hz

    @abstractmethod
    def reset(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Put the character in a state (see ``Character`` for the coordinate layout)."""

    def reset_clear_of_floor(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """:meth:`reset`, with the root raised by the depth of the deepest point below the floor: the
        start of an episode or a scenario from a clip's state.  Mocap and reconstructed clips put a
        foot or a hand up to ~8 cm into the floor in some frames; a character started there is thrown
        out by its contacts (hard in PyBullet), as DeepMimic avoids by lifting the character it resets
        (``ResolveCharGroundIntersect``).  Returns the qpos it was reset to (``qpos`` itself where
        nothing was below; a raised copy otherwise)."""
        self.reset(qpos, qvel)
        depth = self.floor_penetration()
        if depth > 0:
            qpos = np.array(qpos, dtype=float)
            qpos[2] += depth
            self.reset(qpos, qvel)
        return qpos

    @abstractmethod
    def floor_penetration(self) -> float:
        """Depth (m) of the character's deepest collision geometry below the floor in the current
        state; 0 where none is below."""

    def set_gains(self, kp: np.ndarray, kd: np.ndarray) -> None:
        """Use these PD gains (one per joint, >= 0, finite) from the next step on; the torque
        limits stay the character's.  ``kp = 0`` with ``kd > 0`` is a damping command."""
        kp, kd = np.asarray(kp, dtype=float), np.asarray(kd, dtype=float)
        n = self.character.num_joints
        if kp.shape != (n,) or kd.shape != (n,):
            raise ValueError(f"gains must have one value per joint ({n}), got {kp.shape} and {kd.shape}")
        for name, values in (("kp", kp), ("kd", kd)):
            bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
            if bad.size:
                raise ValueError(f"{name} of joint '{self.character.joint_names[bad[0]]}' is {values[bad[0]]}")
        self.gains = PDGains(kp.copy(), kd.copy(), self.character.torque_limit)

    def step(self, targets: np.ndarray, target_velocities: np.ndarray | None = None) -> None:
        """Hold PD targets (one per ``Character.joint_names``), and target velocities
        (default zero), for one control period."""
        self._step(clamp_targets(targets, self._lower, self._upper), _checked_velocities(target_velocities))

    @classmethod
    def step_many(cls, backends: list[PhysicsBackend], targets: np.ndarray,
                  target_velocities: np.ndarray | None = None) -> None:
        """:meth:`step` for several characters (same character), one row of targets each,
        with the targets checked and clamped at once."""
        first = backends[0]
        cls._step_many(backends, clamp_targets(targets, first._lower, first._upper),
                       _checked_velocities(target_velocities))

    @classmethod
    def _step_many(cls, backends: list[PhysicsBackend], targets: np.ndarray,
                   target_velocities: np.ndarray | None) -> None:
        """``_step`` of each character, its row of the checked targets."""
        for i, backend in enumerate(backends):
            backend._step(targets[i], None if target_velocities is None else target_velocities[i])

    @abstractmethod
    def _step(self, targets: np.ndarray, target_velocities: np.ndarray | None) -> None: ...

    def set_root_force(self, force: np.ndarray) -> None:
        """Apply a world-frame force (N, three components) at the root body's centre of mass on
        every physics step from now on, until it is changed (zeros: no force) or :meth:`reset`:
        an external push (:mod:`mimic_policy.push`).  Held for ``t`` seconds it gives the character
        the impulse ``force * t`` (N s), a whole-body velocity change of that over the total mass."""
        force = require_finite(np.asarray(force, dtype=float), "root force component")
        if force.shape != (3,):
            raise ValueError(f"root force must have three components (x, y, z), got shape {force.shape}")
        self._set_root_force(force)

    @abstractmethod
    def _set_root_force(self, force: np.ndarray) -> None: ...

    @abstractmethod
    def get_state(self) -> tuple[np.ndarray, np.ndarray]:
        """(qpos, qvel) of the simulated character."""

    @abstractmethod
    def body_states(self) -> BodyStates:
        """Tracked bodies of the simulated character."""

    @classmethod
    def body_states_of(cls, backends: list[PhysicsBackend]) -> BodyStates:
        """Tracked bodies of several simulated characters (same character), as one batch."""
        return BodyStates.stack([b.body_states() for b in backends])

    @abstractmethod
    def kinematics(self, qpos: np.ndarray, qvel: np.ndarray) -> BodyStates:
        """Tracked bodies of a character in the given state, without simulating it."""

    def kinematics_many(self, qpos: np.ndarray, qvel: np.ndarray) -> BodyStates:
        """:meth:`kinematics` of T states ((T, ...) arrays) as one batch."""
        return BodyStates.stack([self.kinematics(p, v) for p, v in zip(qpos, qvel, strict=True)])

    @abstractmethod
    def ground_contacts(self) -> np.ndarray:
        """Boolean per tracked body: is it touching the ground."""

    @classmethod
    def ground_contacts_of(cls, backends: list[PhysicsBackend]) -> np.ndarray:
        """:meth:`ground_contacts` of several characters (same character), one row each."""
        return np.stack([b.ground_contacts() for b in backends])

    @abstractmethod
    def close(self) -> None:
        """Release the engine."""
