"""Videos the tests make: the shipped walk rendered, a person-like figure for the pose estimator."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def render_walk(path: Path, width: int = 480, height: int = 360, seconds: float | None = None) -> Path:
    """The shipped walk (its whole clip unless ``seconds``) rendered at 30 frames/s into a video file."""
    from mimic_sim.character import load_character
    from mimic_sim.motion_file import load_clip
    from mimic_sim.reference import ReferenceMotion
    from mimic_sim.render import CharacterRenderer, write_video

    character = load_character("humanoid")
    motion = load_clip("walk")
    reference = ReferenceMotion(motion, character)
    end = motion.duration if seconds is None else seconds
    with CharacterRenderer(character, width, height, distance=3.0) as renderer:
        frames = [renderer.render(reference.state(t)[0]) for t in np.arange(0.0, end, 1 / 30)]
    return write_video(frames, path, 30.0)
