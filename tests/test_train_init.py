"""``mimic train --init-from``: a new run whose network starts from another run's checkpoint, a policy
folder or a shipped skill, with settings of its own; refused for another task or network, and never
applied again when the run is resumed."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import pytest
import torch

from mimic_policy.checkpoint import INIT_FROM, latest_checkpoint, load_checkpoint, samples_spent
from mimic_policy.evaluate import load_policy
from mimic_policy.export import save_policy_folder
from mimic_policy.ppo import PPOConfig
from mimic_policy.skills import skill_folder
from mimic_policy.train_cli import TrainConfig, load_init, new_session
from mimic_sim.envs.imitation import ImitationEnv
from mimic_sim.settings import from_dict
from mimic_sim.task import ImitationConfig, Task
from mimic_sim.tools.cli import main

SMALL = ["--clip", "walk", "--workers", "1", "--steps-per-env", "16", "--checkpoint-every", "1"]
SOURCE = [*SMALL, "--envs", "1", "--hidden", "16", "--samples", "32"]  # two iterations
FINE_TUNE = [*SMALL, "--envs", "2", "--hidden", "16", "--learning-rate", "1e-5"]  # other settings, same task
BATCH = 2 * 16  # samples of a fine-tune iteration


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder after two iterations of a 16-unit network on the walk."""
    run = tmp_path_factory.mktemp("source") / "run"
    assert main(["train", *SOURCE, "--run-dir", str(run)]) == 0
    return run


def _config(init_from: str) -> TrainConfig:
    """In-process settings of the source's task and network (one environment, as the source had)."""
    config = TrainConfig(num_envs=1, checkpoint_every=1, init_from=init_from,
                         ppo=PPOConfig(num_steps=16, hidden=(16,), epochs=1))
    return replace(config, task=replace(config.task, clip="walk"))


def _session(config: TrainConfig, run_dir: Path):
    """A session of ``config`` on in-process environments, its network from ``config.init_from``."""
    task = Task.resolve(config.task)
    envs = gym.vector.SyncVectorEnv([lambda: ImitationEnv(task=task)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    return new_session(config, task, envs, run_dir, load_init(config, task))


def _model_tensors(path: Path) -> dict[str, torch.Tensor]:
    tensors, _ = load_checkpoint(path)
    return {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}


def test_a_run_initialized_from_a_checkpoint_starts_with_its_network_and_trains(source: Path, tmp_path: Path) -> None:
    session = _session(_config(str(source)), tmp_path / "run")
    model = session.trainer.model.state_dict()
    expected = _model_tensors(latest_checkpoint(source))
    assert model.keys() == expected.keys()
    for key, value in expected.items():  # actor, critic, normalizer, action log-std
        assert torch.equal(model[key], value), key
    assert (session.trainer.iteration, session.trainer.samples, session.trainer.optimizer.state) == (0, 0, {})

    session.iterate()
    assert not torch.equal(session.trainer.model.state_dict()["actor.0.weight"], expected["actor.0.weight"])
    meta = load_checkpoint(latest_checkpoint(tmp_path / "run"))[1]
    source_meta = load_checkpoint(latest_checkpoint(source))[1]
    assert meta["iteration"] == 1 and meta[INIT_FROM] == {
        "path": str(latest_checkpoint(source)), "iteration": 2, "samples": 32,
        "weights_sha256": source_meta["weights_sha256"]}
    # and its policy folder keeps the record: a shipped skill's samples count those spent before
    save_policy_folder(*load_policy(tmp_path / "run"), tmp_path / "policy")
    assert json.loads((tmp_path / "policy" / "meta.json").read_text())[INIT_FROM] == meta[INIT_FROM]
    assert samples_spent(meta) == meta["samples"] + 32 and samples_spent(source_meta) == 32


def test_a_policy_folder_gives_the_policy_and_the_critic_starts_fresh(source: Path, tmp_path: Path) -> None:
    save_policy_folder(*load_policy(source), tmp_path / "policy")  # float16 actor, no critic
    session = _session(_config(str(tmp_path / "policy")), tmp_path / "run")
    model = session.trainer.model.state_dict()
    policy = _model_tensors(tmp_path / "policy")
    assert not any(k.startswith("critic.") for k in policy)
    for key, value in policy.items():
        assert torch.equal(model[key], value.to(model[key].dtype)), key
    fresh = _session(_config(""), tmp_path / "fresh").trainer.model.state_dict()  # same seed, no init
    for key in (k for k in model if k.startswith("critic.")):
        assert torch.equal(model[key], fresh[key]), key
    assert not torch.equal(model["actor.0.weight"], fresh["actor.0.weight"])


def test_a_shipped_skill_is_taken_by_name() -> None:
    meta = json.loads((skill_folder("humanoid/run") / "policy" / "meta.json").read_text())
    task = from_dict(ImitationConfig, meta["train"]["task"])
    config = TrainConfig(task=task, init_from="humanoid/run",
                         ppo=PPOConfig(hidden=tuple(meta["train"]["ppo"]["hidden"])))
    init = load_init(config, Task.resolve(task))
    assert init.source["path"].endswith("humanoid/run/policy") and init.source["samples"] == meta["samples"]
    assert init.source["weights_sha256"] == meta["weights_sha256"]


@pytest.mark.parametrize(("change", "words"), [
    (["--clip", "run", "--hidden", "16"], ["field 'task' does not match", "'clip': expected 'run', found 'walk'"]),
    (["--no-target-observation", "--hidden", "16"], ["field 'task' does not match", "'target_observation'"]),
    (["--hidden", "8"], ["tensor 'model.actor.0.weight' has shape [16, ", "this run's network [8, "]),
    (["--hidden", "16,16"], ["tensor 'model.actor.2.weight' has shape [", "--hidden must be the source's"]),
])
def test_another_task_or_network_is_refused_and_nothing_is_written(
        source: Path, tmp_path: Path, capsys: pytest.CaptureFixture, change: list[str], words: list[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", *SMALL, "--envs", "1", *change, "--init-from", str(source), "--run-dir", str(run)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"error: {latest_checkpoint(source)}" in error, error
    for word in words:
        assert word in error, error
    assert not run.exists()


def test_adaptive_starts_may_fine_tune_a_policy_trained_with_uniform_ones(source: Path, tmp_path: Path) -> None:
    """How episodes start is the run's own: ``--init adaptive`` (ASI) fine-tunes the source trained with
    uniform starts (RSI) on the same task, and the new run's checkpoints say adaptive."""
    run = tmp_path / "run"
    assert main(["train", *FINE_TUNE, "--samples", str(BATCH), "--init", "adaptive", "--init-from", str(source),
                 "--run-dir", str(run)]) == 0
    meta = load_checkpoint(latest_checkpoint(run))[1]
    source_meta = load_checkpoint(latest_checkpoint(source))[1]
    assert meta["task"]["config"]["init"] == "adaptive" and source_meta["task"]["config"]["init"] == "random"
    assert meta[INIT_FROM]["weights_sha256"] == source_meta["weights_sha256"]


def test_init_from_with_resume_is_refused(source: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", *SOURCE, "--run-dir", str(tmp_path / "run")]) == 0
    before = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert main(["train", "--resume", str(tmp_path / "run"), "--init-from", str(source)]) == 2
    assert "settings of a run cannot change (given: --init-from;" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == before


def test_with_no_task_setting_a_run_initialized_from_a_source_trains_on_its_stored_reference(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`--init-from` alone: the task is the source's own, its reference read from the checkpoint, so the
    clip file it was trained on is not needed (a shipped skill fine-tuned anywhere)."""
    from mimic_sim.motion_file import load_clip, save_motion

    clip = save_motion(load_clip("walk"), tmp_path / "my_walk.motion.json", character="humanoid")
    source = tmp_path / "source"
    assert main(["train", *SOURCE, "--clip", str(clip), "--run-dir", str(source)]) == 0
    clip.unlink()
    settings = ["--workers", "1", "--steps-per-env", "16", "--checkpoint-every", "1", "--envs", "2", "--hidden", "16"]
    assert main(["train", *settings, "--samples", str(BATCH), "--init-from", str(source),
                 "--run-dir", str(tmp_path / "tuned")]) == 0
    meta = load_checkpoint(latest_checkpoint(tmp_path / "tuned"))[1]
    assert meta["task"] == load_checkpoint(latest_checkpoint(source))[1]["task"]
    assert json.loads((tmp_path / "tuned" / "config.json").read_text())["task"]["clip"] == str(clip)
    capsys.readouterr()
    # a task setting given: the task is resolved as given (here a clip file no longer there)
    assert main(["train", *settings, "--clip", str(clip), "--init-from", str(source),
                 "--run-dir", str(tmp_path / "x")]) != 0
    assert "my_walk.motion.json" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_a_resumed_run_continues_from_its_own_checkpoint(source: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Resumed after two iterations, with its source gone, the run ends where the same run trained in
    one go does: its own network was restored (its checkpoint read once), the source's was not needed."""
    import safetensors.torch

    reads = []
    load = safetensors.torch.load
    monkeypatch.setattr(safetensors.torch, "load", lambda data: reads.append(len(data)) or load(data))
    copy, resumed, whole = tmp_path / "source", tmp_path / "resumed", tmp_path / "whole"
    shutil.copytree(source, copy)
    assert main(["train", *FINE_TUNE, "--samples", str(4 * BATCH), "--init-from", str(copy),
                 "--run-dir", str(whole)]) == 0
    assert main(["train", *FINE_TUNE, "--samples", str(2 * BATCH), "--init-from", str(copy),
                 "--run-dir", str(resumed)]) == 0
    shutil.rmtree(copy)
    reads.clear()
    assert main(["train", "--resume", str(resumed), "--samples", str(4 * BATCH)]) == 0
    assert len(reads) == 1, reads  # verified, the task taken from it and restored from one read
    assert json.loads((resumed / "config.json").read_text())["init_from"] == str(copy)
    (tensors_a, meta_a), (tensors_b, meta_b) = (load_checkpoint(latest_checkpoint(r)) for r in (resumed, whole))
    assert meta_a["iteration"] == meta_b["iteration"] == 4
    assert meta_a[INIT_FROM] == meta_b[INIT_FROM] and meta_a[INIT_FROM]["samples"] == 32
    assert tensors_a.keys() == tensors_b.keys()
    for key, value in tensors_a.items():
        assert torch.equal(value, tensors_b[key]), key


def test_a_run_resumes_on_its_own_reference_after_the_clip_file_changes(tmp_path: Path) -> None:
    """The reference a run trained on is its checkpoint's: a clip file (or a robot's clip in the clip store,
    retargeted again by a newer mimic) changed since does not stop it, nor change what it imitates."""
    from mimic_sim.motion_file import load_clip, save_motion

    clip, run = tmp_path / "clip.motion.json", tmp_path / "run"
    save_motion(load_clip("walk"), clip)
    args = ["--clip", str(clip), "--workers", "1", "--steps-per-env", "16", "--envs", "1", "--hidden", "16"]
    assert main(["train", *args, "--samples", "16", "--run-dir", str(run)]) == 0
    before = load_checkpoint(latest_checkpoint(run))[1]["task"]
    save_motion(load_clip("run"), clip)
    assert main(["train", "--resume", str(run), "--samples", "32"]) == 0
    meta = load_checkpoint(latest_checkpoint(run))[1]
    assert meta["samples"] == 32 and meta["task"] == before
