"""The imitation environment: gymnasium API, reward, initialization and termination."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from mimic_sim import rotations as rot
from mimic_sim.backends.base import BodyStates
from mimic_sim.envs.imitation import ImitationEnv
from mimic_sim.observation import build_observation, observation_layout
from mimic_sim.reward import TERMS, imitation_reward, tracking_features
from mimic_sim.task import Task, TaskError

BACKENDS = ["mujoco", "pybullet"]


@pytest.fixture(scope="module", params=BACKENDS)
def env(request):
    made = ImitationEnv(backend=request.param)
    yield made
    made.close()


def test_passes_gymnasium_check_env():
    env = ImitationEnv()
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (302,)  # DeepMimic's 197 and the reference pose (15 bodies x 7)
    assert ImitationEnv(target_observation=False).observation_space.shape == (197,)  # DeepMimic's state size
    assert env.action_space.shape == (28,)
    env.close()


def test_observation_layout_matches_the_vector(env):
    layout = observation_layout(env.character.tracked_bodies, target=True)
    name, start, length = layout[-1]
    assert start + length == env.observation_space.shape[0] and name == "target_body_quat"
    # The target blocks at t hold the reference pose of t + 1/30 s: the body blocks of the
    # reference state at that time, up to the root's motion over the step.
    def blocks(time: float) -> dict[str, np.ndarray]:
        obs, _ = env.reset(options={"start_time": time})
        return {n: obs[s : s + k].reshape(-1, 4 if n.endswith("quat") else 3) for n, s, k in layout[2:]}

    now, later = blocks(0.5), blocks(0.5 + 1 / 30)
    assert np.abs(now["target_body_quat"] - later["body_quat"]).max() < 0.02  # heading turns a little
    shift = now["target_body_pos"] - later["body_pos"]  # the root's displacement, the same for every body
    assert 0.01 < np.linalg.norm(shift[0]) < 0.1 and np.abs(shift - shift[0]).max() < 0.01


def _features(env: ImitationEnv, states: BodyStates):
    character = env.character
    return tracking_features(states, character.tracked_parents, character.body_index(character.end_effectors))


def _reward(env: ImitationEnv, states: BodyStates, ref) -> tuple[float, dict[str, float]]:
    return imitation_reward(_features(env, states), ref, env.character.pose_weights, 0)


def test_reference_pose_scores_one_and_a_perturbed_pose_less(env):
    env.reset(options={"start_time": 0.4})
    qpos, qvel = env.reference.state(0.4)
    ref = _features(env, env.backend.kinematics(qpos, qvel))
    total, terms = _reward(env, env.backend.body_states(), ref)
    assert set(terms) == set(TERMS)
    for name, value in terms.items():
        assert value == pytest.approx(1.0, abs=1e-6), name
    assert total == pytest.approx(1.0, abs=1e-6)

    bent = qpos.copy()
    bent[7 + env.character.joint_names.index("right_knee")] -= 0.5
    total_bent, bent_terms = _reward(env, env.backend.kinematics(bent, qvel), ref)
    assert bent_terms["pose"] < 0.99 and bent_terms["end_effector"] < 0.99 and total_bent < total
    assert bent_terms["root"] == pytest.approx(1.0) and bent_terms["velocity"] == pytest.approx(1.0)
    fast = qvel.copy()
    fast[6:] += 3.0
    assert _reward(env, env.backend.kinematics(qpos, fast), ref)[1]["velocity"] < 0.5
    moved = qpos.copy()
    moved[:2] += 0.3
    _, moved_terms = _reward(env, env.backend.kinematics(moved, qvel), ref)
    assert moved_terms["root"] < 0.7 and moved_terms["pose"] == pytest.approx(1.0)
    pushed = qvel.copy()
    pushed[:2] += 1.5
    assert _reward(env, env.backend.kinematics(qpos, pushed), ref)[1]["com"] < 0.2


def test_pose_error_is_weighted_per_body(env):
    """The same 0.5 rad error costs more at a heavily weighted body (hip) than at a light one (ankle)."""
    qpos, qvel = env.reference.state(0.4)
    ref = _features(env, env.backend.kinematics(qpos, qvel))
    weights = dict(zip(env.character.tracked_bodies, env.character.pose_weights, strict=True))
    assert sum(weights.values()) == pytest.approx(1.0) and weights["right_wrist"] == 0.0
    assert weights["root"] == pytest.approx(1.0 / 4.8) and weights["right_hip"] == pytest.approx(0.5 / 4.8)
    scores = {}
    for joint in ("right_hip_y", "right_ankle_y"):
        turned = qpos.copy()
        turned[7 + env.character.joint_names.index(joint)] += 0.5
        scores[joint] = _reward(env, env.backend.kinematics(turned, qvel), ref)[1]["pose"]
    assert scores["right_hip_y"] == pytest.approx(np.exp(-2 * weights["right_hip"] * 0.25), abs=1e-6)
    assert scores["right_ankle_y"] == pytest.approx(np.exp(-2 * weights["right_ankle"] * 0.25), abs=1e-6)


def test_step_reports_every_reward_term(env):
    env.reset(seed=1)
    _, reward, _, _, info = env.step(env.reference_action())
    terms = {k.removeprefix("reward_"): v for k, v in info.items() if k.startswith("reward_")}
    assert set(terms) == set(TERMS)
    # DeepMimic's weights, written out: the step's reward is this sum of the terms it reports
    assert reward == pytest.approx(0.5 * terms["pose"] + 0.05 * terms["velocity"] + 0.15 * terms["end_effector"]
                                   + 0.2 * terms["root"] + 0.1 * terms["com"])
    # one step from a reference start under the reference's targets: close to the reference, not on it
    assert all(0.5 < value < 1.0 for value in terms.values()), terms


def test_reference_state_initialization_is_uniform_and_seeded(env):
    starts = []
    for seed in range(40):
        env.reset(seed=seed)
        starts.append(env.time)
    starts = np.array(starts)
    assert starts.min() >= 0.0 and starts.max() < env.motion.duration
    assert len(np.unique(starts)) > 30
    # both halves of the clip are visited
    assert (starts < env.motion.duration / 2).sum() > 8 and (starts > env.motion.duration / 2).sum() > 8
    env.reset(seed=7)
    first = env.time
    env.reset(seed=7)
    assert env.time == first


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_episode_starts_lifted_clear_of_the_floor_where_the_clip_is_below_it(backend):
    """The run's mocap has its stance foot ~5 cm into the floor at 0.378 s: the episode starts with the
    root raised by that depth and nothing else changed; where the clip is clear, exactly its state."""
    env = ImitationEnv(clip="run", backend=backend)
    for start, below in ((0.378, True), (0.68, False)):
        qpos, qvel = env.reference.state(start)
        env.backend.reset(qpos, qvel)
        depth = env.backend.floor_penetration()
        assert (depth > 0.03) if below else (depth == 0.0), (start, depth)
        env.reset(options={"start_time": start})
        started, started_vel = env.backend.get_state()
        assert env.backend.floor_penetration() < 1e-9
        lifted = qpos.copy()
        lifted[2] += depth
        np.testing.assert_allclose(started, lifted, atol=1e-9)
        np.testing.assert_allclose(started_vel, qvel, atol=1e-9)
    env.close()


def test_both_engines_measure_the_same_depth_below_the_floor():
    """A pose pushed into the floor by known amounts: MuJoCo's and PyBullet's collision detection
    (the same capsules, boxes and spheres) give the same depth, and it grows with the push."""
    engines = [ImitationEnv(clip="cartwheel", backend=b) for b in BACKENDS]
    for t in (0.3, 1.2):
        qpos, qvel = engines[0].reference.state(t)
        by_sink = []
        for sink in (0.02, 0.05):
            sunk = qpos.copy()
            sunk[2] -= sink
            depths = []
            for env in engines:
                env.backend.reset(sunk, qvel)
                depths.append(env.backend.floor_penetration())
            assert depths[0] == pytest.approx(depths[1], abs=1e-6) and depths[0] > 0.0, (t, sink, depths)
            by_sink.append(depths[0])
        assert by_sink[1] - by_sink[0] == pytest.approx(0.03, abs=1e-9)  # the same lowest point, 3 cm deeper
    for env in engines:
        env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_seeded_runs_are_reproducible(backend):
    def rollout() -> np.ndarray:
        env = ImitationEnv(backend=backend)
        obs, _ = env.reset(seed=11)
        rng = np.random.default_rng(5)
        trace = [obs]
        for _ in range(40):
            action = env.reference_action() + rng.normal(0, 0.1, env.action_space.shape).astype(np.float32)
            obs, reward, terminated, truncated, _ = env.step(action)
            trace.append(np.append(obs, reward))
            if terminated or truncated:
                obs, _ = env.reset()
        env.close()
        return np.concatenate(trace)

    assert np.array_equal(rollout(), rollout())


def test_head_driven_into_the_ground_terminates(env):
    env.reset(options={"start_time": 0.0})
    qpos, qvel = env.reference.state(0.0)
    # upside down, head (a 10 cm sphere centred 17.5 cm past the neck joint) ~20 cm above the floor,
    # falling at 2 m/s
    flip = rot.axis_angle_quat(np.array([1.0, 0.0, 0.0]), np.pi)
    qpos = qpos.copy()
    qpos[3:7] = rot.quat_mul(flip, qpos[3:7])
    env.backend.reset(qpos, np.zeros_like(qvel))
    head = env.character.tracked_bodies.index("neck")
    qpos[2] += 0.5 - env.backend.body_states().pos[head, 2]
    qvel = np.zeros_like(qvel)
    qvel[2] = -2.0
    env.backend.reset(qpos, qvel)
    for _ in range(30):
        _, reward, terminated, truncated, info = env.step(env.reference_action())
        if terminated:
            break
    assert terminated and info["fell"] and not truncated and reward == 0.0
    assert env.backend.ground_contacts()[head]


@pytest.mark.parametrize("clip", ["walk"])
def test_kinematic_playback_never_triggers_early_termination(clip):
    # (run is not here: its mocap dips the left shank capsule 1-2 mm into the floor at toe-off)
    env = ImitationEnv(clip=clip)  # MuJoCo: reset runs collision detection at the set pose
    forbidden = np.array([b not in env.character.ground_contact_allowed for b in env.character.tracked_bodies])
    for t in np.arange(0.0, 2 * env.motion.duration, 1 / 120):
        env.backend.reset(*env.reference.state(t))
        touching = env.backend.ground_contacts()
        assert not (touching & forbidden).any(), (clip, t, np.array(env.character.tracked_bodies)[touching])
    env.close()


def test_a_task_may_let_more_bodies_touch_the_ground_than_its_character():
    """The cartwheel's hands touch the ground: a fall for the humanoid's defaults (its feet only),
    not for a task that also allows the wrists (DeepMimic's cartwheel arguments do the same)."""
    strict = ImitationEnv(clip="cartwheel")
    cartwheel = ImitationEnv(task=strict.task.replace(ground_contact_allowed=("right_wrist", "left_wrist")))
    wrists = strict.character.body_index(["right_wrist", "left_wrist"])
    hands_down = 0
    for t in np.arange(0.0, strict.motion.duration, 1 / 60):
        qpos, qvel = strict.reference.state(t)
        qpos[2] -= 0.02  # the mocap's hands pass ~1 cm above the floor; under load they press on it
        strict.backend.reset(qpos, qvel)
        touching = strict.backend.ground_contacts()
        hands_down += bool(touching[wrists].any())
        assert (touching & strict.task.fall_mask).any() == bool(touching[wrists].any()), t  # only the hands
        assert not (touching & cartwheel.task.fall_mask).any(), t
    assert hands_down >= 10  # frames at 60 Hz with a hand on the ground
    with pytest.raises(ValueError, match="ground_contact_allowed: character 'humanoid' has no tracked body 'paw'"):
        strict.task.replace(ground_contact_allowed=("paw",))
    stored = cartwheel.task.to_dict()
    stored["config"]["ground_contact_allowed"] = ["right_wrist", "tail"]
    with pytest.raises(TaskError, match=r"meta\.json: config\.ground_contact_allowed: .* no tracked body 'tail'"):
        Task.from_dict(stored, "meta.json")
    strict.close()
    cartwheel.close()


def test_time_limit_is_truncation_and_falls_are_termination():
    env = ImitationEnv(episode_seconds=1.0, early_termination=False)
    env.reset(seed=0)
    for step in range(1, 31):
        _, _, terminated, truncated, _ = env.step(env.reference_action())
        assert not terminated
        assert truncated == (step == 30)
    env.close()
    env = ImitationEnv(clip="kick", random_start=False)
    env.reset()
    steps = 0
    while True:
        _, _, terminated, truncated, _ = env.step(env.reference_action())
        steps += 1
        if terminated or truncated:
            break
    # a non-looping clip ends the episode at its end at the latest
    assert steps <= round(env.motion.duration * 30) + 1
    env.close()


def test_observation_is_invariant_to_heading_and_position(env):
    env.reset(seed=3)
    sim = env.backend.body_states()
    base = build_observation(sim, 0, 0.25)
    for yaw in (0.7, -2.5, 3.1):
        q = rot.heading_quat(yaw)
        m = rot.quat_to_mat(q)
        turned = BodyStates(sim.pos @ m.T + np.array([3.0, -1.0, 0.0]), rot.quat_mul(q, sim.quat), m @ sim.rotmat,
                            sim.lin_vel @ m.T, sim.ang_vel @ m.T, sim.com @ m.T, sim.com_vel @ m.T)
        assert np.abs(build_observation(turned, 0, 0.25) - base).max() < 1e-9


def test_vector_env_equals_the_environments_stepped_one_by_one():
    """ImitationVectorEnv (reward and observation over arrays) = SyncVectorEnv of ImitationEnv."""
    import gymnasium as gym

    from mimic_sim.envs.imitation_vector import ImitationVectorEnv

    n = 3
    batched = ImitationVectorEnv(n)
    single = gym.vector.SyncVectorEnv([ImitationEnv] * n, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    obs_b, _ = batched.reset(seed=5)
    obs_s, _ = single.reset(seed=5)
    assert np.abs(obs_b - obs_s).max() < 1e-6
    rng = np.random.default_rng(1)
    ended = 0
    for _ in range(90):  # open loop with noise: episodes fall and restart within this
        action = rng.normal(0.0, 0.15, (n, 28)).astype(np.float32)
        obs_b, reward_b, term_b, trunc_b, info_b = batched.step(action)
        obs_s, reward_s, term_s, trunc_s, info_s = single.step(action)
        assert np.array_equal(term_b, term_s) and np.array_equal(trunc_b, trunc_s)
        assert np.abs(obs_b - obs_s).max() < 1e-5 and np.abs(reward_b - reward_s).max() < 1e-9
        assert np.abs(info_b["reward_pose"][~term_b] - info_s["reward_pose"][~term_b]).max(initial=0) < 1e-9
        if term_b.any():
            ended += int(term_b.sum())
            rows = np.flatnonzero(term_b)
            assert np.abs(info_b["final_obs"][rows] - np.stack(info_s["final_obs"][rows])).max() < 1e-5
    assert ended > 0
    batched.close()
    single.close()


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_reference_computed_in_batches_equals_one_state_at_a_time(backend):
    """The environment computes the reference ahead in batches (states, kinematics, features); each
    entry equals the same reference state computed alone."""
    env = ImitationEnv(clip="run", backend=backend, random_start=False)
    env.reset(seed=0)
    dt = env.sim_config.control_dt
    for k in (0, 1, 7, 23, 40):  # inside the first batch, past it (a second one), across the loop
        t = k * dt
        qpos, qvel, features, states, _ = env._reference_at(t)
        alone_qpos, alone_qvel = env.reference.state(t)
        alone = env.backend.kinematics(alone_qpos, alone_qvel)
        assert np.allclose(qpos, alone_qpos, rtol=0, atol=1e-12) and np.allclose(qvel, alone_qvel, rtol=0, atol=1e-12)
        for name in ("pos", "rotmat", "lin_vel", "ang_vel", "com", "com_vel"):
            assert np.allclose(getattr(states, name), getattr(alone, name), rtol=0, atol=1e-9), name
        again = tracking_features(alone, env._parents, env._effectors)
        assert np.allclose(features.end_effectors, again.end_effectors, rtol=0, atol=1e-9)
        assert np.allclose(features.local_rot, again.local_rot, rtol=0, atol=1e-9)
    env.close()
