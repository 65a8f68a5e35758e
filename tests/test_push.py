"""Pushes: the backends' root force, the push search of ``mimic eval --push``, and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from policy_helpers import tiny_checkpoint

from mimic_policy.evaluate import load_policy
from mimic_policy.push import PushConfig, push_robustness
from mimic_sim.backends import BACKENDS, SimConfig, make_backend
from mimic_sim.character import load_character
from mimic_sim.tools.cli import main


@pytest.mark.parametrize("backend", BACKENDS)
def test_root_force_gives_impulse_over_total_mass_and_reset_clears_it(backend):
    character = load_character("humanoid")
    sim = make_backend(backend, character, SimConfig(gravity=0.0))
    # floating without gravity, held in its pose: only the push changes the whole body's momentum
    qpos = np.zeros(7 + character.num_joints)
    qpos[2], qpos[3] = 3.0, 1.0
    rest = np.zeros(6 + character.num_joints)
    sim.reset(qpos, rest)
    force = np.array([150.0, -90.0, 0.0])
    sim.set_root_force(force)
    for _ in range(3):  # 0.1 s
        sim.step(qpos[7:])
    sim.set_root_force(np.zeros(3))
    for _ in range(3):  # no force: the velocity stays
        sim.step(qpos[7:])
    expected = force * 0.1 / character.total_mass
    np.testing.assert_allclose(sim.body_states().com_vel, expected, atol=2e-3 * np.linalg.norm(expected))

    sim.set_root_force(force)
    sim.reset(qpos, rest)  # a reset ends the push
    sim.step(qpos[7:])
    assert np.linalg.norm(sim.body_states().com_vel) < 1e-3
    sim.close()


def test_root_force_rejects_bad_values():
    sim = make_backend("mujoco", load_character("humanoid"))
    with pytest.raises(ValueError, match="three components"):
        sim.set_root_force(np.zeros(2))
    with pytest.raises(ValueError, match="not finite"):
        sim.set_root_force(np.array([0.0, np.nan, 0.0]))


def test_shipped_walk_falls_to_a_huge_push_and_not_unpushed():
    model, meta = load_policy("humanoid/walk")
    config = PushConfig(trials=3, window=1.0, first_velocity=6.0, max_velocity=6.0, resolution=10.0)
    result = push_robustness(model, meta, config, seed=3)
    unpushed, huge = result["levels"]
    assert unpushed["velocity_change_m_s"] == 0.0 and unpushed["survived"] == 3
    # 6 m/s (270 N s on 45 kg): the first trial falls and, with no failure allowed of 3, ends the search
    assert huge["velocity_change_m_s"] == 6.0 and huge["survived"] == 0 and huge["trials_run"] == 1
    assert result["velocity_change_m_s"] == 0.0 and not result["at_least"] and not result["falls_unpushed"]


def test_eval_push_writes_the_figure(tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", "humanoid/walk", "--episodes", "1", "--seconds", "1", "--no-video", "--out", str(out),
                 "--push", "--push-trials", "2", "--push-window", "0.5", "--push-first-velocity", "0.3",
                 "--push-max-velocity", "0.3", "--push-latest", "0.5"]) == 0
    push = json.loads((out / "eval.json").read_text())["push"]
    mass = load_character("humanoid").total_mass
    assert push["velocity_change_m_s"] in (0.0, 0.3) and push["total_mass_kg"] == pytest.approx(mass)
    assert push["impulse_ns"] == pytest.approx(push["velocity_change_m_s"] * mass)
    assert [level["velocity_change_m_s"] for level in push["levels"]] == [0.0, 0.3]
    assert push["config"]["trials"] == 2 and push["backend"] == "mujoco"
    printed = capsys.readouterr().out
    assert f"{push['impulse_ns']:.1f} N s" in printed and "survived 2 of 2" in printed


@pytest.mark.parametrize(("arguments", "message"), [
    (["--push-trials", "0"], "push trials (--push-trials) must be at least 1, got 0"),
    (["--push-survival", "1.5"], "push survival (--push-survival) must be in (0, 1], got 1.5"),
    (["--push-earliest", "2", "--push-latest", "1"], "push earliest (--push-earliest) must be between 0 and"),
    (["--push-duration", "0.05"], "push duration (--push-duration) 0.05 s is not a whole number of control periods"),
])
def test_bad_push_options_are_one_line_errors(tmp_path, capsys, arguments, message):
    out = tmp_path / "eval"
    assert main(["eval", "humanoid/walk", "--push", "--no-video", "--out", str(out), *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith("mimic eval: error: ") and message in error and error.count("\n") == 1
    assert not out.exists()  # refused before any evaluation


def test_push_refuses_a_clip_that_does_not_loop(tmp_path, capsys):
    run = tiny_checkpoint(tmp_path, clip="kick")
    assert main(["eval", str(run), "--push", "--no-video", "--out", str(tmp_path / "eval")]) == 2
    assert "--push needs a looping clip: clip 'kick' does not loop" in capsys.readouterr().err


@pytest.mark.parametrize(("arguments", "message"), [
    (["--push-velocity", "-1"], "--push-velocity must be >= 0 and --push-every > 0, got -1.0 and 2.0"),
    (["--push-velocity", "1", "--push-every", "0"],
     "--push-velocity must be >= 0 and --push-every > 0, got 1.0 and 0.0"),
    (["--push-velocity", "nan"], "'push_velocity': expected a float, got nan"),
])
def test_bad_training_push_options_are_one_line_errors_and_write_nothing(tmp_path, capsys, arguments, message):
    run = tmp_path / "run"
    assert main(["train", "--total-samples", "64", "--run-dir", str(run), *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith("mimic train: error: ") and message in error
    assert error.count("\n") == 1 and not run.exists()
