"""Environments stepped as one batch give what each gives stepped alone, bit for bit but for
the reward's last bits.

``ImitationEnv.step_batch`` and ``reset_batch`` compute the physics controls, body states,
ground contacts, rewards and observations of several characters as arrays; these tests drive
a batch and the same environments one by one through falls, resets and the time limit and
require identical numbers, and check each step against the single-character definitions
(``body_states``, ``tracking_features``, ``build_observation``).
"""

from __future__ import annotations

import numpy as np
import pytest

from mimic_sim.backends.mujoco_backend import MujocoBackend
from mimic_sim.envs.imitation import ImitationEnv
from mimic_sim.envs.imitation_vector import ImitationVectorEnv
from mimic_sim.observation import build_observation
from mimic_sim.reward import imitation_reward, tracking_features

N = 5
STEPS = 240

CASES = {
    "training defaults": {},
    "DeepMimic's formulation": {"target_observation": False, "residual_actions": False},
    "a clip that ends, adaptive starts, a time limit": {"clip": "kick", "init": "adaptive",
                                                        "episode_seconds": 1.0},
}


def _actions(env: ImitationEnv, rng: np.random.Generator) -> np.ndarray:
    """Noisy actions that make characters fall within a few seconds."""
    if env.config.residual_actions:
        return rng.normal(0.0, 0.15, (N, *env.action_space.shape))
    return rng.uniform(env.action_space.low, env.action_space.high, (N, *env.action_space.shape))


def _regained(env: ImitationEnv) -> None:
    """Gains of one character changed (its PD law with them, the others' with theirs)."""
    c = env.character
    env.backend.set_gains(0.8 * c.kp, 1.3 * c.kd)


@pytest.mark.parametrize("overrides", CASES.values(), ids=CASES.keys())
def test_a_batch_equals_its_environments_stepped_alone(overrides):
    batched = ImitationVectorEnv(N, **overrides)
    alone = [ImitationEnv(task=batched.envs[0].task) for _ in range(N)]
    _regained(batched.envs[2])
    _regained(alone[2])
    obs_b, _ = batched.reset(seed=11)
    obs_s = np.stack([env.reset(seed=11 + i)[0] for i, env in enumerate(alone)])
    assert np.array_equal(obs_b, obs_s)
    rng = np.random.default_rng(3)
    ended = truncated_seen = 0
    for _ in range(STEPS):
        actions = _actions(alone[0], rng)
        obs_b, reward_b, term_b, trunc_b, info_b = batched.step(actions)
        for i, env in enumerate(alone):
            obs, reward, term, trunc, info = env.step(actions[i])
            assert (term_b[i], trunc_b[i]) == (term, trunc)
            # the reward's weighted sums over bodies go through BLAS, whose rounding depends on
            # the row's place in the batch: equal to the last bits or so
            assert abs(reward_b[i] - reward) <= 1e-12
            for key, value in info.items():
                if key.startswith("reward_"):
                    assert abs(info_b[key][i] - value) <= 1e-12, key
                else:
                    assert info_b[key][i] == value, key
            if term or trunc:
                assert np.array_equal(info_b["final_obs"][i], obs)
                obs = env.reset()[0]
            assert np.array_equal(obs_b[i], obs)
        ended += int((term_b | trunc_b).sum())
        truncated_seen += int(trunc_b.sum())
    assert ended >= 2 * N  # falls and restarts throughout
    if "episode_seconds" in overrides:
        assert truncated_seen > 0
    batched.close()
    for env in alone:
        env.close()


def test_a_batch_step_follows_the_single_character_definitions():
    """Reward and observation of each environment that goes on, recomputed from its own backend
    with the one-character functions, and the fall flag from its ground contacts."""
    batched = ImitationVectorEnv(N)
    batched.reset(seed=4)
    first = batched.envs[0]
    rng = np.random.default_rng(5)
    for _ in range(120):
        obs, rewards, terminated, truncated, info = batched.step(_actions(first, rng))
        for i, env in enumerate(batched.envs):
            if terminated[i] or truncated[i]:
                continue
            sim = env.backend.body_states()
            reference = env._reference_at(env.time)[2]
            expected, _ = imitation_reward(tracking_features(sim, env._parents, env._effectors), reference,
                                           env.character.pose_weights, env._root, env.config.reward)
            assert abs(rewards[i] - expected) <= 1e-12
            target = env._reference_at(env.time + env._dt)[3]
            assert np.array_equal(obs[i], build_observation(sim, env._root, info["phase"][i], target)
                                  .astype(np.float32))
            assert info["phase"][i] == env.reference.phase(env.time)
            assert not info["fell"][i]
        fallen = info["fell"] & terminated
        for i in np.flatnonzero(fallen):  # reset already: the fall is in the final observation's row
            assert info["_final_obs"][i]
    batched.close()


def test_ground_contacts_of_several_characters_are_each_ones_own():
    """One character lying on the ground, one in the air, one standing: the batch's rows are the
    contacts each reports alone."""
    env = ImitationEnv(random_start=False)
    character, sim = env.character, env.sim_config
    backends = [MujocoBackend(character, sim) for _ in range(3)]
    qpos, qvel = env.reference.state(0.0)
    lying = qpos.copy()
    lying[2] = 0.12
    lying[3:7] = [np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0]  # a quarter turn about x: on its side
    airborne = qpos.copy()
    airborne[2] += 1.0
    for backend, state in zip(backends, (lying, airborne, qpos), strict=True):
        backend.reset(state, qvel)
    batch = MujocoBackend.ground_contacts_of(backends)
    alone = np.stack([backend.ground_contacts() for backend in backends])
    assert np.array_equal(batch, alone)
    assert batch[0].sum() >= 3 and not batch[1].any() and batch[2].any()
    assert not MujocoBackend.ground_contacts_of(backends[1:2]).any()
    env.close()


def test_a_rollout_of_a_batch_records_every_reward_term_of_every_step():
    import torch

    from mimic_policy.networks import ActorCritic
    from mimic_policy.rollout import collect_rollout
    from mimic_sim.reward import RewardConfig

    envs = ImitationVectorEnv(3)
    obs = envs.reset(seed=0)[0]
    model = ActorCritic(obs.shape[1], envs.single_action_space.shape[0], hidden=(16,))
    rollout = collect_rollout(envs, obs, model, 40, torch.Generator().manual_seed(0))
    total = sum(weight * rollout.terms[name] for name, weight in RewardConfig().weights.items())
    assert not np.isnan(total).any()
    assert np.allclose(np.where(rollout.terminated, 0.0, total), rollout.rewards, rtol=0, atol=1e-6)
    envs.close()


def test_training_pushes_shove_the_root_for_their_steps_and_split_like_the_environments():
    """A push moves the whole body by about its velocity change and ends after its steps; draws come
    from each environment's own generator, so a block of two equals two blocks of one."""
    from mimic_sim.envs.imitation_vector import TrainingPushes

    pushes = TrainingPushes(velocity=1.5, every=1e-9, steps=3)  # a push starts at once, and again after
    pushed = ImitationVectorEnv(2, clip="walk", pushes=pushes)
    calm = ImitationVectorEnv(2, clip="walk")
    pushed.reset(seed=5)
    calm.reset(seed=5)
    actions = np.zeros((2, pushed.single_action_space.shape[0]))
    root = [env.backend._root_id for env in pushed.envs]
    pushed.step(actions)
    assert all(np.linalg.norm(env.backend.data.xfrc_applied[r, :2]) > 0 and env.backend.data.xfrc_applied[r, 2] == 0
               for env, r in zip(pushed.envs, root, strict=True))
    for _ in range(2):
        pushed.step(actions)
        calm.step(actions)
    calm.step(actions)
    change = [np.linalg.norm(p.backend.body_states().com_vel[:2] - c.backend.body_states().com_vel[:2])
              for p, c in zip(pushed.envs, calm.envs, strict=True)]
    assert all(0.05 < dv < 1.5 + 0.3 for dv in change)  # up to the largest size, the floor's friction aside
    pushed.step(actions)  # the fourth step ends the push
    assert all(not env.backend.data.xfrc_applied[r].any() for env, r in zip(pushed.envs, root, strict=True))

    whole = ImitationVectorEnv(2, clip="walk", pushes=TrainingPushes(velocity=1.5, every=0.2, steps=3))
    single = [ImitationVectorEnv(1, clip="walk", pushes=TrainingPushes(velocity=1.5, every=0.2, steps=3))
              for _ in range(2)]
    obs = [whole.reset(seed=11)[0]] + [block.reset(seed=11 + i)[0] for i, block in enumerate(single)]
    rng = np.random.default_rng(0)
    for _ in range(30):
        action = rng.normal(scale=0.1, size=(2, whole.single_action_space.shape[0]))
        obs = [whole.step(action)[0], single[0].step(action[:1])[0], single[1].step(action[1:])[0]]
        assert np.array_equal(obs[0], np.concatenate(obs[1:]))
    for env in (pushed, calm, whole, *single):
        env.close()


def test_training_pushes_refuse_sizes_that_are_not_positive():
    from mimic_sim.envs.imitation_vector import TrainingPushes

    for bad in ({"velocity": -1.0, "every": 2.0, "steps": 3}, {"velocity": 1.0, "every": 0.0, "steps": 3},
                {"velocity": 1.0, "every": 2.0, "steps": 0}):
        with pytest.raises(ValueError, match="training pushes"):
            TrainingPushes(**bad)
