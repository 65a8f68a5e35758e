"""A robot's retargeting map: which human keypoint each robot link follows, and how strongly.

It lives in the robot's character config (``config/characters/<robot>.yaml``), so
adding a robot is one YAML file::

    retarget:
      keypoints:                 # canonical human keypoint -> robot link
        pelvis: {link: pelvis, position: 1.0, orientation: 1.0}
        left_knee: {link: left_knee_link}
        left_ankle: {link: left_ankle_link, offset: [0, 0, 0], position: 1.0, orientation: 0.3}
      scale: auto                # human -> robot size: auto (leg length ratio) or a number

``position`` and ``orientation`` are the IK weights (defaults 1 and 0); ``offset`` is
the followed point in the link's frame.  Orientations are followed for ``pelvis``,
``chest`` and the ankles only: their targets are frames built from the keypoints'
positions (hips, shoulders, toes), so any source works, with or without rotations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mimic_retarget.keypoints import HUMAN_KEYPOINTS
from mimic_sim.character import Character

ORIENTED_KEYPOINTS = ("pelvis", "chest", "left_ankle", "right_ankle")
"""Keypoints whose frame a mapping may ask a link to follow."""


class MappingError(ValueError):
    """A retargeting map is malformed or names what the robot or the human lacks."""


@dataclass(frozen=True)
class KeypointLink:
    keypoint: str
    link: str
    offset: tuple[float, float, float]
    position_weight: float
    orientation_weight: float


@dataclass(frozen=True)
class RetargetMapping:
    source: Path
    links: list[KeypointLink]
    scale: float | None
    """Human -> robot scale; None: the ratio of leg lengths (thigh + shank)."""

    @property
    def keypoints(self) -> list[str]:
        return [k.keypoint for k in self.links]


def _number(value: object, where: str, source: Path, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < minimum:
        raise MappingError(f"{source}: field '{where}' must be a number >= {minimum}, got {value!r}")
    return float(value)


def load_mapping(character: Character, links: set[str]) -> RetargetMapping:
    """The ``retarget`` section of a character's config, checked against the robot's ``links``."""
    source = character.config_path
    section = character.config.get("retarget")
    if not isinstance(section, dict):
        raise MappingError(f"{source}: no 'retarget' section: character '{character.name}' has no retargeting map")
    entries = section.get("keypoints")
    if not isinstance(entries, dict) or not entries:
        raise MappingError(f"{source}: field 'retarget.keypoints' must map human keypoints to robot links")
    mapped = []
    for keypoint, entry in entries.items():
        where = f"retarget.keypoints.{keypoint}"
        if keypoint not in HUMAN_KEYPOINTS:
            raise MappingError(f"{source}: field '{where}': '{keypoint}' is not a human keypoint "
                               f"(known: {', '.join(HUMAN_KEYPOINTS)})")
        if not isinstance(entry, dict) or not isinstance(entry.get("link"), str):
            raise MappingError(f"{source}: field '{where}' must be a mapping with a 'link'")
        if entry["link"] not in links:
            raise MappingError(f"{source}: field '{where}.link': robot model {character.model_path.name} has no link "
                               f"'{entry['link']}'")
        offset = entry.get("offset", [0.0, 0.0, 0.0])
        if not (isinstance(offset, list) and len(offset) == 3):
            raise MappingError(f"{source}: field '{where}.offset' must be [x, y, z] in the link's frame")
        orientation = _number(entry.get("orientation", 0.0), f"{where}.orientation", source)
        if orientation > 0 and keypoint not in ORIENTED_KEYPOINTS:
            raise MappingError(f"{source}: field '{where}.orientation': only {', '.join(ORIENTED_KEYPOINTS)} "
                               "have a followed orientation")
        mapped.append(KeypointLink(keypoint, entry["link"],
                                   tuple(_number(v, f"{where}.offset", source, -np.inf) for v in offset),
                                   _number(entry.get("position", 1.0), f"{where}.position", source), orientation))
    needed = {"pelvis", "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle"}
    missing = sorted(needed - set(entries))
    if missing:
        raise MappingError(f"{source}: field 'retarget.keypoints' lacks {missing} (scale and root need the legs)")
    scale = section.get("scale", "auto")
    return RetargetMapping(source=source, links=mapped,
                           scale=None if scale == "auto" else _number(scale, "retarget.scale", source, 1e-6))
