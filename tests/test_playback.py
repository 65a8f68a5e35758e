"""Reference streaming clock: play, pause, seek, scale, loop."""

from __future__ import annotations

import numpy as np
import pytest

from mimic_sim.character import load_character
from mimic_sim.deepmimic_format import load_deepmimic, resolve_clip
from mimic_sim.playback import ReferenceStream
from mimic_sim.reference import ReferenceMotion


@pytest.fixture(scope="module")
def humanoid():
    return load_character("humanoid")


def _stream(humanoid, clip: str, **kwargs) -> ReferenceStream:
    return ReferenceStream(ReferenceMotion(load_deepmimic(resolve_clip(clip)), humanoid), **kwargs)


def test_clock_play_pause_seek_and_scale(humanoid):
    stream = _stream(humanoid, "walk", time_scale=0.5)
    assert stream.clip_time(100.0) == 0.0 and not stream.playing
    stream.play(10.0)
    assert stream.clip_time(12.0) == pytest.approx(1.0)
    stream.pause(12.0)
    assert stream.clip_time(50.0) == pytest.approx(1.0)
    stream.play(50.0)
    stream.seek(0.25, 51.0)
    assert stream.clip_time(53.0) == pytest.approx(1.25)
    with pytest.raises(ValueError, match="clip time"):
        stream.seek(float("nan"), 53.0)
    assert stream.clip_time(53.0) == pytest.approx(1.25)


def test_wrapped_clip_loops_forward_and_once_holds_the_end(humanoid):
    looping = _stream(humanoid, "walk", loop=True)
    looping.play(0.0)
    far = looping.frame(10.0)
    assert far.clip_time == pytest.approx(10.0) and not far.finished
    assert far.qpos[0] > 8.0  # the root kept walking forward
    once = _stream(humanoid, "walk", loop=False)
    once.play(0.0)
    end = once.frame(10.0)
    assert end.finished and end.clip_time == pytest.approx(once.reference.duration)
    assert np.allclose(end.qvel, 0.0)


def test_non_looping_clip_restarts_when_looping(humanoid):
    stream = _stream(humanoid, "kick", loop=True, future_offsets=(0.1, 0.5))
    stream.play(0.0)
    duration = stream.reference.duration
    frame = stream.frame(duration + 0.2)
    assert frame.clip_time == pytest.approx(0.2)
    assert [o for o, _ in frame.future] == [0.1, 0.5]
    assert np.allclose(frame.future[0][1], stream.reference.state(0.3)[0])
    with pytest.raises(ValueError, match="time_scale"):
        _stream(humanoid, "kick", time_scale=0.0)
