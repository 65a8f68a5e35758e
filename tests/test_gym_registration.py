"""The imitation environment through gymnasium's registry, as CleanRL or stable-baselines3 make it."""

from __future__ import annotations

import gymnasium
import numpy as np

from mimic_sim.envs.imitation import ImitationEnv
from mimic_sim.envs.imitation_vector import ImitationVectorEnv


def test_make_builds_the_named_task():
    env = gymnasium.make("mimic_sim.envs:mimic/Imitation-v0", clip="run", episode_seconds=2.0)
    inner = env.unwrapped
    assert isinstance(inner, ImitationEnv)
    assert (inner.motion.name, inner.character.name, inner.config.episode_seconds) == ("run", "humanoid", 2.0)
    direct = ImitationEnv(clip="run", episode_seconds=2.0)
    a, _ = env.reset(seed=3)
    b, _ = direct.reset(seed=3)
    np.testing.assert_array_equal(a, b)
    env.close()
    direct.close()


def test_make_vec_gives_the_batched_vector_env_equal_to_single_environments():
    import mimic_sim.envs  # noqa: F401  (registers the id)

    envs = gymnasium.make_vec("mimic/Imitation-v0", num_envs=2, vectorization_mode="vector_entry_point", clip="walk")
    assert isinstance(envs, ImitationVectorEnv) and envs.num_envs == 2
    obs, _ = envs.reset(seed=5)
    singles = [ImitationEnv(clip="walk") for _ in range(2)]
    expected = np.stack([env.reset(seed=5 + i)[0] for i, env in enumerate(singles)])
    np.testing.assert_array_equal(obs, expected)
    actions = np.zeros((2, *envs.single_action_space.shape), np.float32)
    obs, rewards, *_ = envs.step(actions)
    stepped = [env.step(actions[i]) for i, env in enumerate(singles)]
    np.testing.assert_allclose(rewards, [s[1] for s in stepped], atol=1e-12)
    envs.close()
    for env in singles:
        env.close()
