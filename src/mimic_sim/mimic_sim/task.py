"""The imitation task, defined once: its settings, and the task as a portable whole.

:class:`ImitationConfig` holds the settings (character and clip by name, backend, rates,
reward, episode, action and observation options).  :class:`Task` is those settings
resolved into what they name: the character (its config's content, so PD gains, torque
limits and armature included) and the reference motion (its keyframes), with the physics
rate filled in.  ``Task.to_dict`` is what a checkpoint and an ONNX export carry and
``Task.from_dict`` rebuilds it from, with no clip file, clip cache or character config
needed where the policy is evaluated or served: the trainer, ``mimic eval``,
``mimic export``, ``mimic report``, the policy node and the trainer node all build
their environment or controller from a ``Task``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np

from mimic_sim.backends import SimConfig, default_physics_hz
from mimic_sim.character import Character, CharacterError, character_from_config, load_character
from mimic_sim.motion import Motion
from mimic_sim.motion_file import load_clip, motion_from_dict, motion_to_dict
from mimic_sim.reward import RewardConfig
from mimic_sim.settings import SettingsError, from_dict, to_dict

CLIP_PROVIDERS = "mimic.clip_providers"
"""Entry-point group of ``(clip, character) -> None`` functions that store a missing clip where
:func:`mimic_sim.motion_file.load_clip` finds it."""
TASK_FORMAT = "mimic.task"
TASK_VERSION = 1


@dataclass(frozen=True)
class ImitationConfig:
    """Everything that defines an imitation task."""

    character: str = field(default="humanoid", metadata={"aliases": ("robot",)})
    """Character or robot: a config name under config/characters (humanoid, atlas, h1, g1) or a YAML path."""
    clip: str = "walk"
    """Clip to imitate: a shipped clip name (walk, backflip, ...; for a robot, retargeted onto it) or a
    motion file (DeepMimic .txt or mimic .motion.json)."""
    backend: str = "mujoco"
    """Physics engine: mujoco or pybullet."""
    sim: SimConfig = field(default_factory=SimConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    episode_seconds: float = 20.0
    """Time limit of an episode, in seconds (truncation)."""
    random_start: bool = True
    """Reference state initialization: start each episode at a random clip time (see ``init``)."""
    init: str = "random"
    """How random starts are drawn: random (RSI: uniform over the clip) or adaptive (SFV's ASI: more
    often where the policy does worst; mimic_sim.envs.imitation.AdaptiveStarts)."""
    early_termination: bool = True
    """End the episode when a body not listed in the character's ground_contact_allowed touches the ground."""
    ground_contact_allowed: tuple[str, ...] = ()
    """Tracked bodies that may also touch the ground in this task without ending it (a cartwheel's
    hands: right_wrist,left_wrist), besides the character's ground_contact_allowed."""
    target_observation: bool = True
    """Append the reference pose of the end of the control period to the observation; off: DeepMimic's
    observation (phase only)."""
    residual_actions: bool = True
    """Actions are offsets from the reference motion at the end of the control period (PD target =
    reference angle + action, PD target velocity = reference velocity), so an untrained policy already
    plays the clip open loop and learning only has to find the feedback; off: actions are the PD targets
    themselves, at target velocity zero (DeepMimic's parameterization)."""


    def __post_init__(self) -> None:
        if self.init not in INIT_MODES:
            raise ValueError(f"init must be one of {', '.join(INIT_MODES)}, got {self.init!r}")
        if self.init == "adaptive" and not self.random_start:
            raise ValueError("init 'adaptive' draws random starts: it needs random_start")


INIT_MODES = ("random", "adaptive")


def default_config() -> ImitationConfig:
    return ImitationConfig()


def content_sha256(value: Any) -> str:
    """SHA-256 of a JSON value's canonical text (sorted keys, no spaces): equal content, equal hash."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def with_defaults(stored: Any) -> Any:
    """A stored task (:meth:`Task.to_dict`'s form) with the settings added since it was written
    filled in at their defaults (what :meth:`Task.from_dict` reads it as), so that a run trained
    before them compares equal to the same task now; anything malformed is returned as it is."""
    if not isinstance(stored, dict) or not isinstance(stored.get("config"), dict):
        return stored
    try:
        return {**stored, "config": to_dict(from_dict(ImitationConfig, stored["config"]))}
    except SettingsError:
        return stored


class TaskError(ValueError):
    """A stored task is malformed or inconsistent; the message names the source and the field."""


@dataclass(frozen=True)
class Task:
    """An imitation task resolved: settings (physics rate filled in), character and reference motion."""

    config: ImitationConfig
    character: Character
    motion: Motion

    @staticmethod
    def resolve(config: ImitationConfig | None = None, **overrides: Any) -> Task:
        """The task that ``config`` (with ``overrides``) names, read from the character config and clip."""
        config = replace(config or default_config(), **overrides)
        character = load_character(config.character)
        # Packages that can make a clip for a character (mimic_retarget: a shipped clip retargeted
        # onto a robot) do so here if it is missing; this package does not depend on them.
        for provider in entry_points(group=CLIP_PROVIDERS):
            provider.load()(config.clip, character)
        motion = load_clip(config.clip, character.name)
        return Task._with_rate(config, character, motion)

    @staticmethod
    def _with_rate(config: ImitationConfig, character: Character, motion: Motion) -> Task:
        character.fall_mask(config.ground_contact_allowed)  # names checked against the character's bodies
        sim = config.sim.resolved(default_physics_hz(config.backend, character))
        return Task(replace(config, sim=sim), character, motion)

    def replace(self, **changes: Any) -> Task:
        """This task with other settings; the character and clip stay (they are what was resolved)."""
        fixed = [k for k in ("character", "clip") if k in changes and changes[k] != getattr(self.config, k)]
        if fixed:
            raise TaskError(f"a resolved task's {fixed[0]} cannot change ({getattr(self.config, fixed[0])!r} -> "
                            f"{changes[fixed[0]]!r}); resolve a new task instead")
        return Task._with_rate(replace(self.config, **changes), self.character, self.motion)

    @property
    def fall_mask(self) -> np.ndarray:
        """Per tracked body, whether its touching the ground is a fall in this task."""
        return self.character.fall_mask(self.config.ground_contact_allowed)

    @property
    def clip_name(self) -> str:
        return self.motion.name

    def to_dict(self) -> dict:
        """The whole task as JSON: settings, the character config's content and the motion's keyframes
        (with content hashes, checked by :meth:`from_dict`)."""
        character = self.character.content
        motion = motion_to_dict(self.motion, self.character.name)
        return {
            "format": TASK_FORMAT,
            "version": TASK_VERSION,
            "config": to_dict(self.config),
            "character": character,
            "character_sha256": content_sha256(character),
            "reference": {"clip": self.config.clip, "name": self.motion.name, "sha256": content_sha256(motion),
                          "motion": motion},
        }

    @staticmethod
    def from_dict(data: Any, source: str = "task") -> Task:
        """Rebuild a task stored by :meth:`to_dict`; a malformed or altered one raises :class:`TaskError`."""
        if not isinstance(data, dict) or data.get("format") != TASK_FORMAT:
            raise TaskError(f"{source}: not a mimic task (expected \"format\": \"{TASK_FORMAT}\")")
        if data.get("version") != TASK_VERSION:
            raise TaskError(f"{source}: field 'version': {data.get('version')!r} is not supported "
                            f"(this mimic reads {TASK_VERSION})")
        for key in ("config", "character", "character_sha256", "reference"):
            if key not in data:
                raise TaskError(f"{source}: field '{key}' is missing")
        try:
            config = from_dict(ImitationConfig, data["config"], f"{source}: config")
        except SettingsError as exc:
            raise TaskError(str(exc)) from exc
        character_cfg = data["character"]
        if content_sha256(character_cfg) != data["character_sha256"]:
            raise TaskError(f"{source}: field 'character' does not match its hash 'character_sha256'")
        reference = data["reference"]
        if not isinstance(reference, dict) or "motion" not in reference:
            raise TaskError(f"{source}: field 'reference' must hold the motion's keyframes ('motion')")
        if content_sha256(reference["motion"]) != reference.get("sha256"):
            raise TaskError(f"{source}: field 'reference.motion' does not match its hash 'reference.sha256'")
        try:
            character = character_from_config(character_cfg, Path(f"{source}#character"))
        except CharacterError as exc:
            raise TaskError(str(exc)) from exc
        motion = motion_from_dict(reference["motion"], f"{source}#reference")
        if config.sim.physics_hz is None:
            raise TaskError(f"{source}: field 'config.sim.physics_hz' must be set in a stored task")
        try:
            character.fall_mask(config.ground_contact_allowed)
        except ValueError as exc:
            raise TaskError(f"{source}: config.{exc}") from exc
        return Task(config, character, motion)
