"""The policy node's core (mimic_policy.serving): the environment's observation, checked commands."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from policy_helpers import tiny_checkpoint

from mimic_policy.evaluate import load_policy
from mimic_policy.serving import (
    OnnxPolicyModel,
    PolicyController,
    RobotState,
    TorchPolicyModel,
    UnsafeActionError,
    load_policy_model,
)
from mimic_sim.envs.imitation import ImitationEnv


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    tiny_checkpoint(root)
    return root


def _state_of(env: ImitationEnv) -> RobotState:
    return RobotState(*env.backend.get_state())


def test_controller_builds_the_environments_observation_and_command(run_dir):
    controller = PolicyController(TorchPolicyModel(run_dir / "run"))
    env = ImitationEnv()
    model, _ = load_policy(run_dir / "run")
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        clip_time = env.time
        for _ in range(5):  # a few steps in, so velocities and contacts are the simulation's own
            action = model.act_deterministic(torch.as_tensor(obs)[None])[0].numpy()
            ours = controller.observation(_state_of(env), clip_time)
            assert np.abs(ours - obs).max() < 2e-3  # Pinocchio's kinematics vs MuJoCo's
            command = controller.command(_state_of(env), clip_time)
            ref_qpos, ref_qvel = env.reference.state(clip_time + env.sim_config.control_dt)
            expected = np.clip(ref_qpos[7:] + action, env.character.joint_lower, env.character.joint_upper)
            assert np.abs(command.positions - expected).max() < 2e-3
            assert np.allclose(command.velocities, ref_qvel[6:]) and np.allclose(command.kp, env.character.kp)
            obs, _, terminated, truncated, _ = env.step(action)
            clip_time = env.time
            if terminated or truncated:
                break
    env.close()


def test_onnx_and_torch_controllers_agree(run_dir):
    torch_controller = PolicyController(load_policy_model(run_dir / "run"))
    onnx_controller = PolicyController(load_policy_model(run_dir / "policy.onnx"))
    assert isinstance(onnx_controller.model, OnnxPolicyModel)
    env = ImitationEnv()
    for seed in range(4):
        env.reset(seed=seed)
        a = torch_controller.command(_state_of(env), env.time)
        b = onnx_controller.command(_state_of(env), env.time)
        assert np.abs(a.positions - b.positions).max() < 1e-5
    env.close()


def test_joints_are_matched_by_name_and_bad_state_is_named(run_dir):
    controller = PolicyController(TorchPolicyModel(run_dir / "run"))
    character = controller.character
    env = ImitationEnv()
    env.reset(seed=2)
    qpos, qvel = env.backend.get_state()
    names = character.joint_names
    order = np.random.default_rng(0).permutation(len(names))
    shuffled = RobotState.from_joints(character, [names[i] for i in order] + ["gripper"],
                                      np.append(qpos[7:][order], 0.3), np.append(qvel[6:][order], 0.0),
                                      qpos[:3], qpos[3:7], qvel[:3], qvel[3:6])
    assert np.array_equal(shuffled.qpos, qpos) and np.array_equal(shuffled.qvel, qvel)
    with pytest.raises(ValueError, match="left_knee"):
        keep = [i for i, n in enumerate(names) if n != "left_knee"]
        RobotState.from_joints(character, [names[i] for i in keep], qpos[7:][keep], qvel[6:][keep],
                               qpos[:3], qpos[3:7], qvel[:3], qvel[3:6])
    bad = qvel[6:].copy()
    bad[names.index("right_elbow")] = np.nan
    with pytest.raises(ValueError, match="right_elbow"):
        RobotState.from_joints(character, names, qpos[7:], bad, qpos[:3], qpos[3:7], qvel[:3], qvel[3:6])
    env.close()


class _Constant(TorchPolicyModel):
    """The checkpoint's metadata with a fixed action (a poisoned or a wild model)."""

    def __init__(self, path, value: float):
        super().__init__(path)
        self.value = value

    def act(self, observation: np.ndarray) -> np.ndarray:
        return np.full((len(observation), len(self.meta["joint_names"])), self.value)


def test_unsafe_outputs_never_become_commands(run_dir):
    env = ImitationEnv()
    env.reset(seed=0)
    state = _state_of(env)
    poisoned = PolicyController(_Constant(run_dir / "run", np.nan))
    with pytest.raises(UnsafeActionError, match="not finite"):
        poisoned.command(state, env.time)
    wild = PolicyController(_Constant(run_dir / "run", 50.0)).command(state, env.time)
    character = poisoned.character
    assert np.all(wild.positions <= character.joint_upper) and np.all(wild.positions >= character.joint_lower)
    assert np.any(wild.positions == character.joint_upper)
    damping = poisoned.damping(state)
    assert np.all(damping.kp == 0) and np.all(damping.kd > 0) and np.all(damping.velocities == 0)
    assert np.all(np.isfinite(damping.positions))
    env.close()


def test_a_policy_for_another_character_is_refused(run_dir, tmp_path):
    import yaml

    from mimic_sim.character import load_character
    from mimic_sim.paths import find_config

    cfg = yaml.safe_load(find_config("characters/humanoid.yaml").read_text())
    other = tmp_path / "robot.yaml"
    other.write_text(yaml.safe_dump({**cfg, "name": "robot"}))
    with pytest.raises(ValueError, match="character 'humanoid', not 'robot'"):
        PolicyController(TorchPolicyModel(run_dir / "run"), load_character(other))
