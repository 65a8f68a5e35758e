"""Where an estimator's landmarks lie on the humanoid: offsets from its keypoints.

A pose estimator marks where a person's joints look to be, not where the humanoid's joint
centres are: MediaPipe puts the ankle at the ankle bones of a foot as tall as a person's
(about 2 cm above the humanoid's ankle joint, which sits 5 cm over its sole), the
shoulders in front of and inside the humanoid's shoulder joints.  Reconstruction fits
the estimator's points with these offsets added to the humanoid's keypoints, each in the
frame of the body its keypoint moves with (x forward, y left, z up at rest), and reports
the humanoid's own keypoints.  The offsets of an estimator live in
``config/landmarks/<estimator>.yaml``; :mod:`mimic_retarget.landmark_calibration`
measures them on rendered clips.  An estimator without a file gets none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from mimic_retarget.pose_track import TRACK_KEYPOINTS
from mimic_sim.paths import find_config, read_yaml

LANDMARKS_DIR = "landmarks"
"""Folder of the estimators' landmark files under ``config/``."""


class LandmarkError(ValueError):
    """A landmark file that cannot be used (the message names the file and the field)."""


@dataclass(frozen=True)
class LandmarkOffsets:
    """Per keypoint, the estimator's landmark minus the character's keypoint (metres, body frame)."""

    estimator: str
    character: str
    offsets: dict[str, np.ndarray]
    source: str = "<memory>"

    def to_yaml(self, header: str = "") -> str:
        """The landmark file's text: ``header`` lines as comments, then the fields."""
        comments = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
        body = {"estimator": self.estimator, "character": self.character,
                "offsets": {name: [round(float(v), 4) + 0.0 for v in o]  # + 0.0: no "-0.0"
                            for name, o in self.offsets.items()}}
        return comments + yaml.safe_dump(body, sort_keys=False, default_flow_style=None)


def read_landmark_offsets(path: Path) -> LandmarkOffsets:
    """A landmark file (offsets of track keypoints only: :data:`TRACK_KEYPOINTS`)."""
    data = read_yaml(path, LandmarkError, "landmark file")
    if not isinstance(data, dict):
        raise LandmarkError(f"{path}: a landmark file is a mapping (estimator, character, offsets)")
    for field, kind in (("estimator", str), ("character", str), ("offsets", dict)):
        if not isinstance(data.get(field), kind):
            raise LandmarkError(f"{path}: field '{field}' must be a {kind.__name__}, got {data.get(field)!r}")
    extra = sorted(set(data) - {"estimator", "character", "offsets"})
    if extra:
        raise LandmarkError(f"{path}: unknown field '{extra[0]}'")
    offsets = {}
    for name, value in data["offsets"].items():
        if name not in TRACK_KEYPOINTS:
            raise LandmarkError(f"{path}: field 'offsets': unknown keypoint '{name}'")
        array = np.asarray(value, dtype=float) if isinstance(value, list) else np.zeros(0)
        if array.shape != (3,) or not np.isfinite(array).all() or np.abs(array).max() > 0.2:
            raise LandmarkError(f"{path}: field 'offsets', keypoint '{name}': expected [x, y, z] in metres, each "
                                f"within 0.2, got {value!r}")
        offsets[str(name)] = array
    return LandmarkOffsets(data["estimator"], data["character"], offsets, str(path))


def landmark_offsets(estimator: str, character: str) -> LandmarkOffsets | None:
    """The offsets of ``estimator``'s landmarks on ``character`` (``config/landmarks/<estimator>.yaml``);
    None for an estimator without a file or with a file for another character."""
    try:
        path = find_config(f"{LANDMARKS_DIR}/{estimator}.yaml")
    except FileNotFoundError:
        return None
    found = read_landmark_offsets(path)
    return found if found.character == character else None
