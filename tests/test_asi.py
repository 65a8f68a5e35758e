"""Adaptive state initialization (SFV's ASI): starts drawn where the policy does worst."""

from __future__ import annotations

import numpy as np
import pytest

from mimic_sim.envs.imitation import AdaptiveStarts, ImitationEnv
from mimic_sim.tools.cli import main


def test_starts_concentrate_in_the_bins_where_episodes_score_worst():
    starts = AdaptiveStarts(bins=20, horizon=5)
    rng = np.random.default_rng(0)
    ticks = 1000
    hard = []
    for _ in range(3000):
        tick = starts.draw(rng, ticks, lambda t: 600)
        is_hard = tick < ticks // 4  # a policy that fails from the first quarter of the clip
        hard.append(is_hard)
        for _ in range(5):
            starts.record(0.0 if is_hard else 1.0, done=False)
    late = np.mean(hard[-1000:])
    assert late > 0.7, late  # uniform starts would give 0.25
    assert starts.scores[:5].max() < 0.05 and starts.scores[5:].min() > 0.9
    assert (starts.probabilities() > 0).all()  # every phase keeps being visited


def test_an_episode_that_ends_early_scores_only_the_steps_it_could_have_had():
    starts = AdaptiveStarts(bins=4, horizon=30, rate=1.0)
    tick = starts.draw(np.random.default_rng(1), 400, lambda t: 10)  # a clip that ends 10 steps on
    for _ in range(10):
        starts.record(1.0, done=False)
    assert starts.scores[tick * 4 // 400] == pytest.approx(1.0)  # 10 of 10 possible steps, not 10 of 30
    starts.draw(np.random.default_rng(2), 400, lambda t: 600)
    starts.record(1.0, done=True)  # a fall on the first step: the rest of the horizon counts as zero
    assert starts.episodes.sum() == 2 and sorted(starts.scores)[-1] == pytest.approx(1.0)
    assert min(s for s, n in zip(starts.scores, starts.episodes, strict=True) if n) == pytest.approx(1 / 30)


def test_the_environment_starts_more_often_where_its_policy_falls():
    """A policy that plays the reference open loop from starts in the second half of the clip
    and throws the joints to one side from starts in the first half: the character falls from
    early starts, and adaptive starts move there."""
    env = ImitationEnv(init="adaptive", episode_seconds=2.0)
    env.reset(seed=0)
    early = []
    for _ in range(200):
        _, info = env.reset()
        bad = info["phase"] < 0.5
        early.append(bad)
        for _ in range(30):
            action = env.action_space.high * 0.8 if bad else env.reference_action()
            _, _, terminated, truncated, _ = env.step(np.asarray(action, dtype=np.float32))
            if terminated or truncated:
                break
    env.close()
    starts = env.adaptive_starts
    assert starts.probabilities()[:10].sum() > 0.7  # the first half of the clip: bins 0-9 of 20
    assert np.mean(early[-100:]) > 0.6, np.mean(early[-100:])  # uniform starts: 0.5
    rsi = ImitationEnv()
    assert rsi.adaptive_starts is None
    rsi.close()


@pytest.mark.parametrize("flags, message", [
    (["--init", "adaptve"], "init must be one of random, adaptive"),
    (["--init", "adaptive", "--no-random-start"], "init 'adaptive' draws random starts: it needs random_start"),
])
def test_train_refuses_a_bad_init_in_one_line(flags, message, tmp_path, capsys):
    assert main(["train", *flags, "--total-samples", "64", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "run").exists()
