"""The skill library: skills by name, the shipped policies, and ``mimic play``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest
import tomllib
from policy_helpers import tiny_checkpoint
from ros_helpers import unique_domain_id

from mimic_policy.evaluate import evaluate, load_policy
from mimic_policy.export import save_policy_folder
from mimic_policy.skills import resolve_policy, shipped_skills

ROOT = Path(__file__).resolve().parents[1]


def mimic(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mimic_sim.tools.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})


def frames(video: Path) -> int:
    return sum(1 for _ in iio.imiter(video))


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """A skill library of one tiny humanoid policy, ``humanoid/tiny``, as ``mimic export --policy-folder`` writes."""
    root = tmp_path_factory.mktemp("library")
    model, meta = load_policy(tiny_checkpoint(root / "train"))
    save_policy_folder(model, meta, root / "lib" / "humanoid" / "tiny" / "policy")
    return root / "lib"


def test_skills_are_found_by_name_and_a_wrong_name_suggests_the_closest(library, tmp_path, monkeypatch):
    monkeypatch.setenv("MIMIC_POLICIES_DIR", str(library))
    assert resolve_policy("humanoid/tiny") == library / "humanoid" / "tiny" / "policy"
    assert {"humanoid/tiny", "humanoid/walk"} <= set(shipped_skills())  # the repository's library too
    assert resolve_policy(tmp_path) == tmp_path  # an existing path is taken as it is
    result = mimic("eval", "humanoid/tiyn", cwd=tmp_path)
    assert result.returncode == 2 and "closest skills: humanoid/tiny" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_eval_and_export_of_a_skill_write_under_out_not_into_the_library(library, tmp_path):
    env = {"MIMIC_POLICIES_DIR": str(library)}
    before = sorted(p.name for p in (library / "humanoid" / "tiny").rglob("*"))
    result = mimic("eval", "humanoid/tiny", "--episodes", "1", "--seconds", "1", "--no-video", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "out" / "humanoid_tiny" / "eval" / "eval.json").read_text())["episodes"] == 1
    result = mimic("export", "humanoid/tiny", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "humanoid_tiny.onnx").stat().st_size > 0
    assert sorted(p.name for p in (library / "humanoid" / "tiny").rglob("*")) == before


def test_a_clip_that_does_not_loop_is_evaluated_to_its_end(tmp_path):
    from mimic_sim.motion_file import load_clip

    model, meta = load_policy(tiny_checkpoint(tmp_path, clip="kick"))  # kick: 1.53 s, played once
    meta_duration = load_clip("kick").duration
    result = evaluate(model, meta, episodes=3, seconds=20.0)
    for episode in result["per_episode"]:
        assert abs(episode["full_steps"] - (meta_duration - episode["start_time"]) * 30) <= 1
        assert episode["full_steps"] < 600 and episode["steps"] <= episode["full_steps"]
        assert 0.0 <= episode["normalized_return"] <= 1.0


def test_eval_groups_the_episodes_by_the_part_of_the_clip_they_started_in():
    """Episodes fall in the part of the clip holding their start (the last part keeps a start at
    the clip's end); a part with none has no return."""
    from mimic_policy.evaluate import by_start_time

    episodes = [{"start_time": t, "normalized_return": r, "fell": f}
                for t, r, f in ((0.1, 0.9, False), (0.2, 0.7, False), (1.1, 0.2, True), (2.0, 0.5, False))]
    parts = by_start_time(episodes, 2.0, bins=4)
    assert [(p["from_s"], p["to_s"]) for p in parts] == [(0.0, 0.5), (0.5, 1.0), (1.0, 1.5), (1.5, 2.0)]
    assert [p["episodes"] for p in parts] == [2, 0, 1, 1] and [p["falls"] for p in parts] == [0, 0, 1, 0]
    assert parts[0]["normalized_return"] == pytest.approx(0.8) and parts[1]["normalized_return"] is None
    assert parts[2]["normalized_return"] == pytest.approx(0.2) and parts[3]["normalized_return"] == pytest.approx(0.5)


def test_every_shipped_skill_loads_and_has_its_results_and_install_entry():
    skills = sorted(f"{p.parent.parent.name}/{p.parent.name}" for p in (ROOT / "policies").glob("*/*/policy"))
    assert "humanoid/walk" in skills
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    table = (ROOT / "policies" / "README.md").read_text()
    size = sum(p.stat().st_size for p in (ROOT / "policies").rglob("*") if p.is_file())
    assert size <= 50e6
    for skill in skills:
        character, name = skill.split("/")
        _, meta = load_policy(ROOT / "policies" / skill / "policy")
        assert meta["task"]["character"]["name"] == character
        results = json.loads((ROOT / "policies" / skill / "eval.json").read_text())
        assert frames(ROOT / "policies" / skill / "play.gif") > 10  # the README's picture of it
        assert 0.0 < results["normalized_return"] <= 1.0
        for readme in (table, (ROOT / "README.md").read_text()):  # each table shows the stored figure
            assert f"| {character} | {name} | **{results['normalized_return']:.3f}**" in readme or \
                f"| {character} | {name} | {results['normalized_return']:.3f} (" in readme, skill
        assert data_files.get(f"share/mimic/policies/{skill}/policy") == [f"policies/{skill}/policy/*"], skill


def test_mimic_play_renders_the_shipped_walk_and_scores_it(tmp_path):
    result = mimic("play", "humanoid/walk", "--seconds", "2", "-o", str(tmp_path / "play"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    played = json.loads((tmp_path / "play" / "play.json").read_text())
    assert played["per_episode"][0]["steps"] == 60 and not played["per_episode"][0]["fell"]
    assert played["normalized_return"] > 0.95
    assert frames(tmp_path / "play" / "play.mp4") == 60
    assert frames(tmp_path / "play" / "play.gif") == 30  # half the rate


def test_mimic_play_ros_records_reports_and_renders_what_the_policy_does_in_process(tmp_path):
    env = {"ROS_DOMAIN_ID": str(unique_domain_id()), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    result = mimic("play", "humanoid/walk", "--ros", "--seconds", "2", "-o", str(tmp_path / "ros"), cwd=tmp_path,
                   env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "ros" / "report" / "report.json").read_text())
    assert report["states"] == 61 and report["falls"] == 0  # the initial state and 60 steps
    assert frames(tmp_path / "ros" / "play.mp4") == 61
    here = mimic("play", "humanoid/walk", "--seconds", "2", "--no-gif", "-o", str(tmp_path / "here"), cwd=tmp_path)
    assert here.returncode == 0, here.stderr
    in_process = json.loads((tmp_path / "here" / "play.json").read_text())["normalized_return"]
    # the bag also scores the initial state (the reference pose itself: reward 1)
    assert report["normalized_return"] * 61 - 1.0 == pytest.approx(in_process * 60, abs=0.03 * 60), result.stdout


def test_a_policy_folder_stores_the_layers_in_half_precision_and_acts_as_its_checkpoint(library, tmp_path):
    import torch
    from safetensors.torch import load_file

    folder = library / "humanoid" / "tiny" / "policy"
    dtypes = {k: v.dtype for k, v in load_file(folder / "weights.safetensors").items()}
    assert dtypes["model.actor.0.weight"] == torch.float16 and dtypes["model.normalizer.var"] == torch.float64
    assert not any(k.startswith("model.critic.") for k in dtypes)  # the value network stays with training
    original, _ = load_policy(library.parent / "train" / "run")
    shipped, meta = load_policy(folder)
    obs = torch.randn(64, int(meta["observation_size"]))
    with torch.no_grad():
        a, b = original.act_deterministic(obs), shipped.act_deterministic(obs)
    assert torch.allclose(a, b, atol=2e-2), (a - b).abs().max()
    exact = save_policy_folder(original, meta, tmp_path / "fp32", precision="float32")
    assert load_file(exact / "weights.safetensors")["model.actor.0.weight"].dtype == torch.float32
    with torch.no_grad():
        assert torch.equal(load_policy(exact)[0].act_deterministic(obs), a)
    with pytest.raises(ValueError, match="precision must be one of float16, float32, got 'int8'"):
        save_policy_folder(original, meta, tmp_path / "int8", precision="int8")
    assert not (tmp_path / "int8").exists()


def test_mimic_launch_play_with_its_defaults_plays_the_shipped_walk(tmp_path):
    """Every argument at its documented default but the duration: the shipped humanoid walk,
    recorded to bags/ under the working directory; the launch ends by itself."""
    from mimic_sim.character import load_character
    from mimic_sim.motion_file import load_clip
    from mimic_sim.tools.report import report

    env = {"ROS_DOMAIN_ID": str(unique_domain_id()), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    result = mimic("launch", "play", "duration:=2", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    bags = list((tmp_path / "bags").glob("mimic_*"))
    assert len(bags) == 1 and (bags[0] / "metadata.yaml").is_file()
    # scored against the clip at each state's own clip time, as `mimic report --policy` does: the
    # policy's tracking, not how promptly the reference player's messages came on a busy machine
    result = report(bags[0], load_character("humanoid"), motion=load_clip("walk"))
    assert result["states"] == 61 and result["falls"] == 0 and result["normalized_return"] > 0.95
