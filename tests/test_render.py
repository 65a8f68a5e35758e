"""Offscreen rendering, video files and the ``mimic render`` command."""

from __future__ import annotations

import os

import imageio.v3 as iio
import numpy as np
import pytest

from mimic_sim.render import CharacterRenderer, write_video
from mimic_sim.tools.cli import main

W, H = 160, 120


@pytest.fixture(scope="module")
def walk():
    from mimic_sim.character import load_character
    from mimic_sim.deepmimic_format import load_deepmimic, resolve_clip
    from mimic_sim.reference import ReferenceMotion

    character = load_character("humanoid")
    return character, ReferenceMotion(load_deepmimic(resolve_clip("walk")), character)


@pytest.fixture(scope="module")
def renderer(walk):
    r = CharacterRenderer(walk[0], W, H)
    yield r
    r.close()


def _character_mask(img: np.ndarray) -> np.ndarray:
    """Strongly coloured pixels: the humanoid's red and blue limbs (floor and sky are near grey)."""
    img = img.astype(int)
    return (img.max(axis=2) - img.min(axis=2)) > 80


def test_frame_shows_an_upright_character(walk, renderer):
    _, ref = walk
    img = renderer.render(ref.state(0.0)[0])
    assert img.shape == (H, W, 3) and img.dtype == np.uint8
    assert img.std() > 10
    mask = _character_mask(img)
    assert mask.mean() > 0.01, "no character pixels"
    rows, cols = np.nonzero(mask)
    # The tracking camera keeps the character in the middle, standing: tall rather than flat.
    assert abs(cols.mean() - W / 2) < W / 4
    assert rows.max() - rows.min() > 0.35 * H
    assert rows.max() - rows.min() > cols.max() - cols.min()


def test_frames_change_as_the_character_moves(walk, renderer):
    _, ref = walk
    first = renderer.render(ref.state(0.0)[0]).astype(int)
    later = renderer.render(ref.state(0.6)[0]).astype(int)
    assert np.abs(first - later).mean() > 1.0
    again = renderer.render(ref.state(0.0)[0]).astype(int)
    np.testing.assert_array_equal(first, again)


def test_ghost_is_drawn_and_does_not_move_the_character(walk, renderer):
    _, ref = walk
    qpos = ref.state(0.0)[0]
    alone = renderer.render(qpos)
    ghost = qpos.copy()
    ghost[0] += 0.5  # half a metre ahead
    both = renderer.render(qpos, ghost=ghost)
    assert np.abs(both.astype(int) - alone.astype(int)).mean() > 0.5
    np.testing.assert_array_equal(renderer.render(qpos), alone)


def test_bad_pose_is_rejected(renderer):
    with pytest.raises(ValueError, match="entries"):
        renderer.render(np.zeros(5))


def test_closed_renderer_refuses_to_render_and_closes_twice(walk):
    r = CharacterRenderer(walk[0], W, H)
    first = r.render(walk[1].states(np.array([0.5]))[0][0])
    assert first.shape == (H, W, 3) and _character_mask(first).any()
    r.close()
    r.close()
    with pytest.raises(RuntimeError, match="after close"):
        r.render(walk[1].states(np.array([0.5]))[0][0])


def test_write_gif_and_mp4(walk, renderer, tmp_path):
    _, ref = walk
    fps = 10
    frames = [renderer.render(ref.state(i / fps)[0]) for i in range(fps)]  # one second
    gif = write_video(frames, tmp_path / "walk.gif", fps)
    mp4 = write_video(iter(frames), tmp_path / "walk.mp4", fps)
    read_gif = iio.imread(gif, index=None)
    assert read_gif.shape[:3] == (fps, H, W)
    read_mp4 = list(iio.imiter(mp4, plugin="FFMPEG"))
    assert len(read_mp4) == fps and read_mp4[0].shape == (H, W, 3)
    assert iio.immeta(mp4, plugin="FFMPEG")["fps"] == pytest.approx(fps)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walk.gif", "walk.mp4"]


def test_mp4_pads_odd_sizes(tmp_path):
    frames = [np.full((11, 15, 3), 40 * i, np.uint8) for i in range(3)]
    out = write_video(frames, tmp_path / "odd.mp4", 5)
    assert next(iter(iio.imiter(out, plugin="FFMPEG"))).shape == (12, 16, 3)


def test_write_video_unknown_suffix_or_failure_leaves_no_file(tmp_path):
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match=r"clip\.avi"):
        write_video([frame], tmp_path / "clip.avi", 10)

    def failing():
        yield frame
        raise RuntimeError("renderer broke")

    for name in ("clip.mp4", "clip.gif"):
        with pytest.raises(RuntimeError, match="renderer broke"):
            write_video(failing(), tmp_path / name, 10)
    with pytest.raises(ValueError, match="no frames"):
        write_video([], tmp_path / "empty.gif", 10)
    assert list(tmp_path.iterdir()) == []


def test_cli_lists_commands(capsys):
    assert main(["--help"]) == 0
    assert "render" in capsys.readouterr().out


def test_cli_render_gif(tmp_path, capsys):
    out = tmp_path / "tmp.gif"
    assert main(["render", "walk", "-o", str(out), "--seconds", "0.5", "--width", str(W), "--height", str(H)]) == 0
    assert str(out) in capsys.readouterr().out
    frames = iio.imread(out, index=None)
    assert frames.shape == (15, H, W, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp.gif"]


def test_cli_rollout(tmp_path):
    out = tmp_path / "rollout.gif"
    assert main(["render", "walk", "--rollout", "-o", str(out), "--seconds", "0.3", "--width", "64",
                 "--height", "48"]) == 0
    assert iio.imread(out, index=None).shape == (9, 48, 64, 3)


def test_cli_bad_clip_exits_2_naming_it(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ROS_AUTOMATIC_DISCOVERY_RANGE", raising=False)
    assert main(["render", "no_such_clip", "-o", str(tmp_path / "x.gif")]) == 2
    err = capsys.readouterr().err
    assert "no_such_clip" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert list(tmp_path.iterdir()) == []


def test_cli_unknown_suffix_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "walk.avi"
    assert main(["render", "walk", "-o", str(out), "--seconds", "0.1", "--width", "32", "--height", "32"]) == 2
    err = capsys.readouterr().err
    assert "walk.avi" in err and ".mp4" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_cli_backend_choices_match_backends():
    from mimic_sim.backends import BACKENDS
    from mimic_sim.tools.render_cli import BACKENDS as CLI_BACKENDS

    assert tuple(CLI_BACKENDS) == tuple(BACKENDS)
