"""PD commands arriving from outside (ROS topics, hardware bridges), checked before use.

A command names its joints; they are matched to the character's joints by name, in
any order.  A bad command (unknown or repeated joint, arrays of different lengths,
NaN or infinite values, negative gains, a target outside the joint range, or a gain,
target velocity or effort beyond :class:`CommandLimits`) is rejected whole with a
reason naming the field and the joint: nothing of it is applied.

Why limits beyond "finite and non-negative": a finite but absurd gain (``kp = 1e9``)
makes the physics diverge (MuJoCo resets itself, the root flies away), and a robot
driver would pass it on to its motors.  The limits are the character's own
configuration: gains up to a multiple of its configured ``kp`` and ``kd``, target
velocities up to a bound in rad/s, feed-forward effort up to its ``torque_limit``
(which bounds the PD law's torque too, :mod:`mimic_sim.pd`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from mimic_sim.character import Character

DEFAULT_GAIN_FACTOR = 10.0
"""Largest commanded gain as a multiple of the character's configured one (see docs/simulation.md)."""
DEFAULT_MAX_TARGET_VELOCITY = 50.0
"""Largest commanded target velocity, rad/s: above every shipped clip's reference joint speed
(backflip's 26 rad/s) but one artefact (see docs/simulation.md)."""


class CommandError(ValueError):
    """Why a PD command was rejected: ``field`` (``joint_names``, ``positions``, ``kp``, ...)
    and ``joint`` (a joint of the character, or '' where the reason is not one joint's)."""

    def __init__(self, message: str, field: str, joint: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.joint = joint


@dataclass(frozen=True)
class CommandLimits:
    """The largest gains, target speeds and efforts a command may carry, per joint in the
    character's order (``Character.joint_names``)."""

    kp: np.ndarray
    kd: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray

    @classmethod
    def of(cls, character: Character, max_gain_factor: float = DEFAULT_GAIN_FACTOR,
           max_target_velocity: float = DEFAULT_MAX_TARGET_VELOCITY) -> CommandLimits:
        """Gains up to ``max_gain_factor`` times the configured ones, target velocities up to
        ``max_target_velocity`` (rad/s), efforts up to the torque limits."""
        for name, value in (("max_gain_factor", max_gain_factor), ("max_target_velocity", max_target_velocity)):
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value}")
        return cls(character.kp * max_gain_factor, character.kd * max_gain_factor,
                   np.full(character.num_joints, float(max_target_velocity)), character.torque_limit.copy())


@dataclass(frozen=True)
class PDCommand:
    """A checked command in the character's joint order (``Character.joint_names``)."""

    targets: np.ndarray
    target_velocities: np.ndarray | None = None
    kp: np.ndarray | None = None
    kd: np.ndarray | None = None
    effort: np.ndarray | None = None


def check_command(
    character: Character,
    joint_names: Sequence[str],
    positions: Sequence[float],
    velocities: Sequence[float] = (),
    kp: Sequence[float] = (),
    kd: Sequence[float] = (),
    effort: Sequence[float] = (),
    require_all: bool = True,
    current: np.ndarray | None = None,
    limits: CommandLimits | None = None,
) -> PDCommand:
    """Map a named command onto the character's joints, or raise :class:`CommandError`.

    Optional arrays may be empty (not given) or as long as ``joint_names``.  With
    ``require_all`` every joint of the character must be commanded; otherwise joints
    left out keep ``current`` targets.  With ``limits``, gains, target velocities and
    efforts beyond them (in magnitude) are refused.
    """
    names = list(joint_names)
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise CommandError(f"joint(s) named more than once: {repeated}", "joint_names")
    index = {n: i for i, n in enumerate(character.joint_names)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise CommandError(f"unknown joint(s) {unknown} for character '{character.name}'", "joint_names")
    if require_all:
        missing = [n for n in character.joint_names if n not in set(names)]
        if missing:
            raise CommandError(f"joint(s) {missing} not commanded", "joint_names")
    order = np.array([index[n] for n in names], dtype=int)
    bounds = {} if limits is None else {"velocities": limits.velocity, "kp": limits.kp, "kd": limits.kd,
                                        "effort": limits.effort}
    arrays = {"positions": positions, "velocities": velocities, "kp": kp, "kd": kd, "effort": effort}
    checked: dict[str, np.ndarray | None] = {}
    for field, values in arrays.items():
        values = np.asarray(values, dtype=float)
        if field != "positions" and values.size == 0:
            checked[field] = None
            continue
        if values.shape != (len(names),):
            raise CommandError(f"'{field}' has {values.size} values for {len(names)} joints", field)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise CommandError(f"'{field}' of joint '{names[bad[0]]}' is {values[bad[0]]}", field, names[bad[0]])
        if field in ("kp", "kd") and (values < 0).any():
            j = int(np.flatnonzero(values < 0)[0])
            raise CommandError(f"'{field}' of joint '{names[j]}' is negative ({values[j]})", field, names[j])
        if field in bounds:
            beyond = np.flatnonzero(np.abs(values) > bounds[field][order])
            if beyond.size:
                j = int(beyond[0])
                raise CommandError(f"'{field}' of joint '{names[j]}' is {values[j]:.6g}, beyond its limit "
                                   f"{bounds[field][order[j]]:.6g}", field, names[j])
        checked[field] = values
    lower, upper = character.joint_lower[order], character.joint_upper[order]
    outside = np.flatnonzero((checked["positions"] < lower) | (checked["positions"] > upper))
    if outside.size:
        j = int(outside[0])
        raise CommandError(f"target {checked['positions'][j]:.4f} of joint '{names[j]}' is outside its range "
                           f"[{lower[j]:.4f}, {upper[j]:.4f}]", "positions", names[j])

    def full(values: np.ndarray | None, default: np.ndarray | None) -> np.ndarray | None:
        if values is None:
            return None
        out = np.array(default, dtype=float) if default is not None else np.zeros(character.num_joints)
        out[order] = values
        return out

    base = current if current is not None else np.zeros(character.num_joints)
    return PDCommand(
        targets=full(checked["positions"], base),
        target_velocities=full(checked["velocities"], None),
        kp=full(checked["kp"], character.kp),
        kd=full(checked["kd"], character.kd),
        effort=full(checked["effort"], None),
    )


class LogThrottle:
    """Which of a stream of warnings to log, so that a peer sending bad input at any rate
    cannot flood the log: a warning of a new kind is logged at once, the same kind again at
    most once per ``interval`` seconds, and never more than ``most`` warnings per
    ``interval``.  Kinds are hashable keys; keep them few (a field and a joint name of the
    character, not a name the peer chose), as each is remembered.
    """

    def __init__(self, interval: float = 1.0, most: int = 5, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.most = most
        self._clock = clock
        self._last: dict[Hashable, float] = {}
        self._recent: deque[float] = deque()
        self._suppressed = 0

    def __call__(self, kind: Hashable) -> int | None:
        """None: do not log this one; else log it, and the number of warnings not logged since
        the last one that was is returned with it."""
        now = self._clock()
        while self._recent and now - self._recent[0] >= self.interval:
            self._recent.popleft()
        if now - self._last.get(kind, -np.inf) < self.interval or len(self._recent) >= self.most:
            self._suppressed += 1
            return None
        self._last[kind] = now
        self._recent.append(now)
        suppressed, self._suppressed = self._suppressed, 0
        return suppressed
