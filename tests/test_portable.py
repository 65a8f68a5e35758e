"""A trained task is a portable artefact.

A run folder moved elsewhere, with the clip store emptied and another working
directory, evaluates, exports, serves over DDS and scores a bag exactly as it did where
it was trained; a hand-edited meta.json or ONNX file is refused; the task's settings
are declared once (flags, node parameters, JSON all from the dataclasses).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from bag_helpers import record_episode
from ros_helpers import WAIT, NodeProcess, spin_until

from mimic_policy.checkpoint import CheckpointError, latest_checkpoint
from mimic_policy.evaluate import evaluate, load_policy
from mimic_policy.export import read_metadata
from mimic_policy.serving import PolicyController, RobotState, load_policy_model, load_policy_task
from mimic_policy.train_cli import TrainConfig
from mimic_sim.character import CharacterError, load_character
from mimic_sim.envs.imitation import ImitationEnv
from mimic_sim.paths import find_config, robots_dir
from mimic_sim.settings import SettingsError, from_dict, leaves
from mimic_sim.tools.cli import main

CHARACTERS = ("humanoid", "g1")


@pytest.fixture(scope="module", params=CHARACTERS)
def trained(request, tmp_path_factory):
    """(moved run folder, the in-process evaluation of its policy before the move, the clip store,
    another working directory): a run of a few thousand samples trained with ``mimic train`` from
    an empty clip store, then moved to another folder and the clip store emptied again."""
    character = request.param
    root = tmp_path_factory.mktemp(f"portable_{character}")
    cache = root / "cache"
    cache.mkdir()
    (cache / "robots").symlink_to(robots_dir())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MIMIC_CACHE_DIR", str(cache))
        run = root / "trained" / "run"
        assert main(["train", "--character", character, "--clip", "walk", "--total-samples", "2048",
                     "--num-envs", "2", "--num-workers", "1", "--num-steps", "64", "--hidden", "32,32",
                     "--checkpoint-every", "8", "--run-dir", str(run)]) == 0
        model, meta = load_policy(run)
        before = evaluate(model, meta, episodes=1, seconds=1.0, start_time=0.1)
    target = root / "elsewhere" / "policy"
    target.parent.mkdir()
    shutil.move(run, target)
    shutil.rmtree(cache / "clips", ignore_errors=True)  # where the robot's retargeted walk was stored
    return target, before, cache, target.parent


@pytest.fixture()
def moved(trained, monkeypatch):
    """The moved run and its evaluation before the move, with the emptied clip store as mimic's cache
    and another working directory, for this test only (other tests of the worker keep theirs)."""
    target, before, cache, elsewhere = trained
    monkeypatch.setenv("MIMIC_CACHE_DIR", str(cache))
    monkeypatch.chdir(elsewhere)
    return target, before


def test_moved_run_evaluates_as_before_with_no_clip_store(moved, tmp_path):
    run, before = moved
    assert main(["eval", str(run), "--episodes", "1", "--seconds", "1", "--no-video", "--out", str(tmp_path)]) == 0
    model, meta = load_policy(run)
    after = evaluate(model, meta, episodes=1, seconds=1.0, start_time=0.1)
    # the layers are stored in float16: the same trajectory to within their rounding
    assert after["normalized_return"] == pytest.approx(before["normalized_return"], abs=1e-3)
    assert after["per_episode"][0]["steps"] == before["per_episode"][0]["steps"] > 0
    assert after["mpjpe_mm"] == before["mpjpe_mm"]
    assert json.loads((tmp_path / "eval.json").read_text())["episodes"] == 1


def test_moved_run_exports_and_the_export_commands_as_the_checkpoint(moved, tmp_path):
    run, _ = moved
    onnx = tmp_path / "policy.onnx"
    assert main(["export", str(run), "-o", str(onnx)]) == 0
    torch_side = PolicyController(load_policy_model(run))
    onnx_side = PolicyController(load_policy_model(onnx))
    assert onnx_side.task.motion.name == "walk" and onnx_side.character.joint_names == torch_side.character.joint_names
    state = RobotState(*torch_side.reference.state(0.3))
    a, b = torch_side.command(state, 0.3), onnx_side.command(state, 0.3)
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-4)
    np.testing.assert_array_equal(a.kp, b.kp)


def test_moved_run_scores_a_bag_with_its_own_task(moved, tmp_path):
    run, _ = moved
    import torch

    model, _ = load_policy(run)
    env = ImitationEnv(task=load_policy_task(run))

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.act_deterministic(torch.as_tensor(obs[None], dtype=torch.float32))[0].numpy()

    rewards, _, fell = record_episode(tmp_path / "bag", env, start_time=0.2, steps=20, act=act)
    env.close()
    assert main(["report", str(tmp_path / "bag"), "--policy", str(run), "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "report.json").read_text())
    assert result["states"] == len(rewards)
    if not fell:  # the report scores the same states with the same reward as the environment did
        assert result["normalized_return"] == pytest.approx(rewards.mean(), abs=1e-6)


def test_policy_node_serves_the_moved_run_over_dds(moved, domain):
    from geometry_msgs.msg import PoseStamped, TwistStamped
    from sensor_msgs.msg import JointState

    from mimic_msgs.msg import JointPDCommand
    from mimic_sim.nodes.conversions import pose_msg, twist_msg

    run, _ = moved
    node, executor = domain
    task = load_policy_task(run)
    qpos, qvel = PolicyController(load_policy_model(run)).reference.state(0.0)
    names = task.character.joint_names
    commands: list[JointPDCommand] = []
    node.create_subscription(JointPDCommand, "pd_command", commands.append, 10)
    publishers = (node.create_publisher(JointState, "joint_states", 10),
                  node.create_publisher(PoseStamped, "base_pose", 10),
                  node.create_publisher(TwistStamped, "base_twist", 10))
    policy = NodeProcess("policy_node", f"policy:={run}", "autostart:=true", "reference_source:=clip")

    def publish() -> bool:
        stamp = node.get_clock().now().to_msg()
        joints = JointState(name=names, position=qpos[7:].tolist(), velocity=qvel[6:].tolist())
        pose, twist = PoseStamped(pose=pose_msg(qpos[:3], qpos[3:7])), TwistStamped(twist=twist_msg(qvel[:3],
                                                                                                     qvel[3:6]))
        for msg in (joints, pose, twist):
            msg.header.stamp = stamp
        for publisher, msg in zip(publishers, (joints, pose, twist), strict=True):
            publisher.publish(msg)
        return bool(commands) and commands[-1].kp[0] > 0

    try:
        assert spin_until(executor, publish, timeout=6 * WAIT), policy.output()
    finally:
        policy.stop()
    command = commands[-1]
    assert list(command.joint_names) == names
    assert np.isfinite(command.positions).all() and np.allclose(command.kp, task.character.kp)


# ----------------------------------------------------------------- integrity


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_a_hand_edited_checkpoint_description_is_refused(moved, tmp_path, capsys):
    run, _ = moved
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    meta = latest_checkpoint(copy) / "meta.json"
    _edit_json(meta, lambda m: m["task"]["config"]["sim"].update(control_hz=1000.0))
    with pytest.raises(CheckpointError, match="meta_sha256"):
        load_policy(copy)
    assert main(["eval", str(copy), "--no-video"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "meta.json" in err[0] and "Traceback" not in err[0]


def test_a_modified_onnx_export_is_refused(moved, tmp_path):
    run, _ = moved
    onnx = tmp_path / "policy.onnx"
    assert main(["export", str(run), "-o", str(onnx)]) == 0
    data = bytearray(onnx.read_bytes())
    flipped = tmp_path / "flipped.onnx"
    middle = len(data) // 2  # inside the weights
    data[middle] ^= 0x01
    flipped.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"does not match 'mimic\.sha256'"):
        read_metadata(flipped)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(onnx.read_bytes()[: len(data) // 3])
    with pytest.raises(ValueError, match=r"truncated\.onnx"):
        read_metadata(truncated)

    import onnx as onnx_lib

    proto = onnx_lib.load(str(onnx))
    for entry in proto.metadata_props:
        if entry.key == "mimic.control_hz":
            entry.value = "1000.0"
    edited = tmp_path / "edited.onnx"
    onnx_lib.save(proto, str(edited))
    with pytest.raises(ValueError, match=r"does not match 'mimic\.sha256'"):
        load_policy_model(edited)


# ----------------------------------------------------------- settings, once


def test_every_training_setting_is_a_documented_flag_and_node_parameter(capsys):
    names = [leaf.name for leaf in leaves(TrainConfig)]
    assert {"lam", "clip_coef", "entropy_coef", "value_coef", "max_grad_norm", "pose_scale", "physics_hz",
            "residual_actions", "num_envs", "clip", "character"} <= set(names)
    assert all(leaf.help for leaf in leaves(TrainConfig)), [leaf.name for leaf in leaves(TrainConfig) if not leaf.help]
    assert main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    for name in names:
        assert "--" + name.replace("_", "-") in text, name


def test_training_flags_reach_the_settings(tmp_path, monkeypatch):
    import argparse

    from mimic_policy import train_cli
    from mimic_sim.settings import from_arguments

    parser = argparse.ArgumentParser()
    train_cli.register(parser.add_subparsers())
    args = parser.parse_args(["train", "--lam", "0.9", "--clip-coef", "0.1", "--no-residual-actions", "--hidden",
                              "64,32", "--samples", "2e6", "--physics-hz", "480", "--robot", "g1",
                              "--end-effector-scale", "20"])
    config = from_arguments(TrainConfig, args)
    assert (config.ppo.lam, config.ppo.clip_coef, config.ppo.hidden) == (0.9, 0.1, (64, 32))
    assert config.task.residual_actions is False and config.task.sim.physics_hz == 480.0
    assert config.total_samples == 2_000_000 and config.task.character == "g1"
    assert config.task.reward.end_effector_scale == 20.0 and config.task.reward.pose_scale == 2.0
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--samples", "2.5e0"])


def test_stored_settings_are_read_strictly():
    with pytest.raises(SettingsError, match=r"unknown field 'ppo.lamda' \(did you mean 'lam'\?\)"):
        from_dict(TrainConfig, {"ppo": {"lamda": 0.9}}, "config.json")
    with pytest.raises(SettingsError, match="field 'num_envs': expected a int, got '4'"):
        from_dict(TrainConfig, {"num_envs": "4"}, "config.json")


@pytest.mark.parametrize(("typo", "suggestion"), [("ground_contact_alowed", "ground_contact_allowed"),
                                                  ("physics_Hz", "physics_hz"),
                                                  ("tracked_bodys", "tracked_bodies")])
def test_a_character_config_with_an_unknown_key_is_refused_naming_the_closest(tmp_path, capsys, typo, suggestion):
    cfg = yaml.safe_load(find_config("characters/humanoid.yaml").read_text())
    cfg[typo] = cfg.pop(suggestion, 240)
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(CharacterError, match=rf"unknown field '{typo}' \(did you mean '{suggestion}'\?\)"):
        load_character(path)
    assert main(["train", "--character", str(path), "--total-samples", "64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and typo in err[0]


def test_a_character_config_with_a_bad_gain_entry_is_refused(tmp_path):
    cfg = yaml.safe_load(find_config("characters/humanoid.yaml").read_text())
    cfg["pd"]["*_knee"] = {"kP": 500.0, "kd": 50.0, "torque_limit": 150.0}
    path = tmp_path / "gain.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(CharacterError, match=r"unknown field 'pd.\*_knee.kP' \(did you mean 'kp'\?\)"):
        load_character(path)


def test_a_policy_folder_holds_the_policy_alone_and_evaluates_as_its_checkpoint(moved, tmp_path):
    from mimic_policy.checkpoint import load_checkpoint

    run, before = moved
    folder = tmp_path / "policy"
    assert main(["export", str(run), "--policy-folder", str(folder)]) == 0
    tensors, meta = load_checkpoint(folder)
    assert tensors and all(k.startswith("model.") for k in tensors)
    assert "optimizer" not in meta and meta["task"] == load_checkpoint(latest_checkpoint(run))[1]["task"]
    model, meta = load_policy(folder)
    after = evaluate(model, meta, episodes=1, seconds=1.0, start_time=0.1)
    # the layers are stored in float16: the same trajectory to within their rounding
    assert after["normalized_return"] == pytest.approx(before["normalized_return"], abs=1e-3)
    assert after["per_episode"][0]["steps"] == before["per_episode"][0]["steps"]
