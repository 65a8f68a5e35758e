"""A reference clip played against a clock: what the reference player streams.

Pure Python (the ROS node is a thin adapter): play, pause, seek, time scale, and
looping, with the clip time derived from the clock rather than accumulated, so a
stream neither drifts nor depends on how often it is sampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mimic_sim.reference import ReferenceMotion


@dataclass(frozen=True)
class StreamFrame:
    clip_time: float
    phase: float
    qpos: np.ndarray
    qvel: np.ndarray
    future: tuple[tuple[float, np.ndarray], ...]  # (offset in seconds, qpos)
    finished: bool  # a non-looping stream has reached the end of the clip


class ReferenceStream:
    """Clip time as a function of a clock, with play/pause/seek.

    ``loop=False`` plays the clip once and then holds its last frame; ``loop=True``
    plays a wrapped clip cycle after cycle (the root advancing each cycle) and a
    non-looping clip from the start again.
    """

    def __init__(self, reference: ReferenceMotion, time_scale: float = 1.0, loop: bool = True,
                 start_time: float = 0.0, future_offsets: tuple[float, ...] = ()):
        if not np.isfinite(time_scale) or time_scale <= 0:
            raise ValueError(f"time_scale must be a positive number, got {time_scale}")
        if any(not np.isfinite(o) or o <= 0 for o in future_offsets):
            raise ValueError(f"future offsets must be positive seconds, got {list(future_offsets)}")
        self.reference = reference
        self.time_scale = float(time_scale)
        self.loop = loop
        self.future_offsets = tuple(float(o) for o in future_offsets)
        self._anchor_clip = self._checked(start_time)
        self._anchor_clock: float | None = None  # None: paused

    def _checked(self, clip_time: float) -> float:
        if not np.isfinite(clip_time) or clip_time < 0:
            raise ValueError(f"clip time must be a non-negative number of seconds, got {clip_time}")
        return float(clip_time)

    @property
    def playing(self) -> bool:
        return self._anchor_clock is not None

    def play(self, now: float) -> None:
        if self._anchor_clock is None:
            self._anchor_clock = now

    def pause(self, now: float) -> None:
        if self._anchor_clock is not None:
            self._anchor_clip = self._raw_time(now)
            self._anchor_clock = None

    def seek(self, clip_time: float, now: float) -> None:
        self._anchor_clip = self._checked(clip_time)
        if self._anchor_clock is not None:
            self._anchor_clock = now

    def _raw_time(self, now: float) -> float:
        if self._anchor_clock is None:
            return self._anchor_clip
        return self._anchor_clip + (now - self._anchor_clock) * self.time_scale

    def clip_time(self, now: float) -> float:
        """Time on the clip: unbounded for a looping wrapped clip, else within one play."""
        t = self._raw_time(now)
        duration = self.reference.duration
        if self.loop and not self.reference.motion.loop:
            return t % duration
        if not self.loop:
            return min(t, duration)
        return t

    def frame(self, now: float) -> StreamFrame:
        t = self.clip_time(now)
        qpos, qvel = self.reference.state(t)
        future = tuple((o, self.reference.state(self._ahead(t, o))[0]) for o in self.future_offsets)
        finished = not self.loop and t >= self.reference.duration
        if finished:  # hold the last frame
            qvel = np.zeros_like(qvel)
        return StreamFrame(t, self.reference.phase(t), qpos, qvel, future, finished)

    def _ahead(self, t: float, offset: float) -> float:
        ahead = t + offset
        if self.loop and not self.reference.motion.loop:
            return ahead % self.reference.duration
        if not self.loop:
            return min(ahead, self.reference.duration)
        return ahead
