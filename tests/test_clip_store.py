"""The clip store: shipped clips retargeted onto robots, made again when what made them changed."""

from __future__ import annotations

import json

import numpy as np

from mimic_retarget.cli import RETARGET_REVISION, ensure_robot_clip
from mimic_sim.character import load_character
from mimic_sim.motion_file import load_motion, stored_made_by


def test_a_stored_clip_is_used_while_current_and_made_again_once_stale(monkeypatch, tmp_path, capsys):
    g1 = load_character("g1")  # its model from the robot files fetched at set-up, in the real cache
    monkeypatch.setenv("MIMIC_CACHE_DIR", str(tmp_path))
    path = ensure_robot_clip("walk", g1)
    assert path == tmp_path / "clips" / "g1" / "walk.motion.json"
    made = stored_made_by(path)
    assert made["clip"] == "walk" and made["character"] == "g1" and made["revision"] == RETARGET_REVISION
    assert made["retarget"]["loop"] is True
    first = load_motion(path)
    stamp = path.stat().st_mtime_ns

    assert ensure_robot_clip("walk", g1) == path and path.stat().st_mtime_ns == stamp  # current: kept
    capsys.readouterr()

    # as an older mimic left it: other keyframes, made by an earlier retargeter revision
    data = json.loads(path.read_text())
    data["made_by"]["revision"] = RETARGET_REVISION - 1
    data["root_pos"] = (np.asarray(data["root_pos"]) + 0.5).tolist()
    path.write_text(json.dumps(data))
    assert ensure_robot_clip("walk", g1) == path
    assert "made from another revision" in capsys.readouterr().err
    assert stored_made_by(path) == made
    assert np.array_equal(load_motion(path).root_pos, first.root_pos)

    # stored before clips recorded what made them
    del data["made_by"]
    path.write_text(json.dumps(data))
    ensure_robot_clip("walk", g1)
    assert stored_made_by(path) == made and np.array_equal(load_motion(path).root_pos, first.root_pos)


def test_humanoid_clips_and_files_need_no_store(monkeypatch, tmp_path):
    humanoid, g1 = load_character("humanoid"), load_character("g1")
    monkeypatch.setenv("MIMIC_CACHE_DIR", str(tmp_path))
    assert ensure_robot_clip("walk", humanoid) is None
    assert ensure_robot_clip(str(tmp_path / "mine.motion.json"), g1) is None
    assert not (tmp_path / "clips").exists()
