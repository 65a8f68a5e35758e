"""mimic report: a bag's tracking summary equals what the environment measured while recording it."""

from __future__ import annotations

import json

import pytest
from bag_helpers import record_episode

from mimic_sim.character import load_character
from mimic_sim.envs.imitation import ImitationEnv
from mimic_sim.reward import TERMS
from mimic_sim.tools.bag import BagWriter, find_interface_file
from mimic_sim.tools.cli import main

pytestmark = pytest.mark.skipif(find_interface_file("mimic_msgs/msg/ReferenceFrame") is None,
                                reason="mimic_msgs is not installed")


def _record_open_loop_episode(path, start_time: float = 0.2):
    """Play the walk open loop until the character falls, recorded to a bag; the
    environment's rewards and reward terms."""
    env = ImitationEnv()
    rewards, terms, fell = record_episode(path, env, start_time)
    env.close()
    assert fell, "the open-loop walk was expected to fall"
    return rewards, terms


def test_report_of_a_recorded_episode_matches_the_environment(tmp_path):
    from mimic_sim.tools.report import report

    rewards, terms = _record_open_loop_episode(tmp_path / "bag")
    result = report(tmp_path / "bag", load_character("humanoid"))
    steps = len(rewards)
    assert result["states"] == steps and result["states_without_base_state"] == 0
    assert result["falls"] == 1
    assert result["first_fall_seconds"] == pytest.approx((steps - 1) / 30, abs=1e-6)
    # the environment zeroes the falling step's reward; the report counts nothing from the fall on
    assert result["normalized_return"] == pytest.approx(rewards.sum() / steps, abs=1e-6)
    for k, name in enumerate(TERMS):
        assert result["reward_terms"][name] == pytest.approx(terms[:, k].mean(), abs=1e-6)
    assert 0 < result["mpjpe_root_relative_mm"] < result["mpjpe_mm"]


def test_a_state_offered_again_is_scored_once(tmp_path):
    """A lockstep sim_node publishes a state nobody answered again (same stamp): one state, not two."""
    from mimic_sim.tools.report import report

    env = ImitationEnv()
    rewards, _, _ = record_episode(tmp_path / "bag", env, 0.2, steps=20, offered_again=(0, 7))
    env.close()
    result = report(tmp_path / "bag", load_character("humanoid"))
    assert result["states"] == len(rewards) == 20 and result["states_offered_again"] == 2
    assert result["normalized_return"] == pytest.approx(rewards.sum() / len(rewards), abs=1e-6)


def test_with_the_clip_the_report_needs_no_reference_frame_per_state(tmp_path):
    """A player that published every third frame only: scored against the nearest frame the bag is
    off; scored against the clip at each state's clip time (``--policy`` gives it) it is exact."""
    from mimic_sim.tools.report import report

    env = ImitationEnv()
    rewards, _, _ = record_episode(tmp_path / "bag", env, 0.2, reference_every=3)
    env.close()
    character = load_character("humanoid")
    exact = report(tmp_path / "bag", character, motion=env.motion)
    nearest = report(tmp_path / "bag", character)
    assert exact["normalized_return"] == pytest.approx(rewards.sum() / len(rewards), abs=1e-6)
    assert abs(nearest["normalized_return"] - exact["normalized_return"]) > 0.002


def test_report_command_writes_json_and_plot_and_names_missing_topics(tmp_path, capsys):
    _record_open_loop_episode(tmp_path / "bag", start_time=0.5)
    assert main(["report", str(tmp_path / "bag"), "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "report.json").read_text())
    assert summary["falls"] == 1 and summary["states"] > 5
    assert (tmp_path / "out" / "tracking_error.png").stat().st_size > 10_000
    assert "normalized return" in capsys.readouterr().out

    with BagWriter(tmp_path / "empty") as bag:
        bag.add_topic("/joint_states", "sensor_msgs/msg/JointState")
    assert main(["report", str(tmp_path / "empty")]) != 0
    assert "/joint_states" in capsys.readouterr().err
