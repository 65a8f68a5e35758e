"""PD commands arriving from outside (ROS topics, hardware bridges), checked before use.

A command names its joints; they are matched to the character's joints by name, in
any order.  A bad command (unknown or repeated joint, arrays of different lengths,
NaN or infinite values, negative gains, a target outside the joint range) is
rejected whole with a reason naming the joint: nothing of it is applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mimic_sim.character import Character


class CommandError(ValueError):
    """Why a PD command was rejected."""


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
) -> PDCommand:
    """Map a named command onto the character's joints, or raise :class:`CommandError`.

    Optional arrays may be empty (not given) or as long as ``joint_names``.  With
    ``require_all`` every joint of the character must be commanded; otherwise joints
    left out keep ``current`` targets.
    """
    names = list(joint_names)
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise CommandError(f"joint(s) named more than once: {repeated}")
    index = {n: i for i, n in enumerate(character.joint_names)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise CommandError(f"unknown joint(s) {unknown} for character '{character.name}'")
    if require_all:
        missing = [n for n in character.joint_names if n not in set(names)]
        if missing:
            raise CommandError(f"joint(s) {missing} not commanded")
    arrays = {"positions": positions, "velocities": velocities, "kp": kp, "kd": kd, "effort": effort}
    checked: dict[str, np.ndarray | None] = {}
    for field, values in arrays.items():
        values = np.asarray(values, dtype=float)
        if field != "positions" and values.size == 0:
            checked[field] = None
            continue
        if values.shape != (len(names),):
            raise CommandError(f"'{field}' has {values.size} values for {len(names)} joints")
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise CommandError(f"'{field}' of joint '{names[bad[0]]}' is {values[bad[0]]}")
        if field in ("kp", "kd") and (values < 0).any():
            j = int(np.flatnonzero(values < 0)[0])
            raise CommandError(f"'{field}' of joint '{names[j]}' is negative ({values[j]})")
        checked[field] = values
    order = np.array([index[n] for n in names], dtype=int)
    lower, upper = character.joint_lower[order], character.joint_upper[order]
    outside = np.flatnonzero((checked["positions"] < lower) | (checked["positions"] > upper))
    if outside.size:
        j = int(outside[0])
        raise CommandError(f"target {checked['positions'][j]:.4f} of joint '{names[j]}' is outside its range "
                           f"[{lower[j]:.4f}, {upper[j]:.4f}]")

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
