"""Evaluation of a trained policy: ``mimic eval CHECKPOINT``.

The deterministic policy (the Gaussian's mean) runs N episodes of the imitation
environment.  Reported:

* normalized return: the sum of per-step rewards over the episode divided by the
  number of steps of a full episode (20 s at 30 Hz = 600; for a clip that does not
  loop, the steps from the episode's start to the clip's end where that comes first),
  so a fall counts as zero for the rest of the episode; 1.0 is perfect tracking for
  the whole time;
* the mean of each reward term over the steps taken;
* MPJPE, the mean per-joint (tracked body) position error in mm against the
  reference, in the world and relative to the root;
* the fall rate (episodes ended by early termination).

Writes ``eval.json``, ``tracking_error.png`` (error over time, first episode) and,
unless ``--no-video``, ``eval.mp4`` of the first episode with the reference as ghost.
With ``--push``, eval.json also holds ``push``: the largest horizontal push on the root
body the policy survives (:mod:`mimic_policy.push`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from mimic_policy.checkpoint import load_checkpoint, policy_checkpoint, require_task, stored_task
from mimic_policy.networks import ActorCritic
from mimic_policy.push import add_push_arguments, push_config_from, push_robustness
from mimic_sim.backends import BACKENDS
from mimic_sim.paths import atomic_write_text
from mimic_sim.reward import TERMS
from mimic_sim.tracking import plot_tracking_error, position_errors_mm

if TYPE_CHECKING:
    from mimic_sim.envs.imitation import ImitationEnv


def load_policy(path: Path) -> tuple[ActorCritic, dict]:
    """The policy stored in a checkpoint (a run folder's latest checkpoint, a policy folder, or a
    shipped skill's: ``g1/walk``) and its metadata."""
    path = policy_checkpoint(path)
    tensors, meta = load_checkpoint(path)
    require_task(meta, path)  # refused here, naming the file; users rebuild the task once, when they need it
    ppo = meta["train"]["ppo"]
    model = ActorCritic(int(meta["observation_size"]), len(meta["joint_names"]), tuple(ppo["hidden"]),
                        ppo["init_log_std"])
    model.load_stored({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
    model.eval()
    return model, meta


def evaluation_env(meta: dict, seconds: float, backend: str | None = None, physics_hz: float | None = None,
                   render_mode: str | None = None) -> ImitationEnv:
    """The checkpoint's imitation environment with episodes of ``seconds``, in another simulator
    or at another physics rate where ``backend``/``physics_hz`` say so (sim2sim)."""
    from dataclasses import replace

    from mimic_sim.envs.imitation import ImitationEnv

    task = stored_task(meta, "checkpoint")
    # starts uniform over the clip, as the protocol says, whether the run trained with RSI or ASI (adaptive
    # draws would differ per seed and drift toward the worst phases from one episode to the next)
    changes: dict = {"episode_seconds": seconds, "init": "random"}
    if backend is not None:
        changes["backend"] = backend
    if physics_hz is not None:
        changes["sim"] = replace(task.config.sim, physics_hz=physics_hz)
    env = ImitationEnv(task=task.replace(**changes), render_mode=render_mode)
    if env.character.joint_names != meta["joint_names"]:
        env.close()
        raise ValueError(f"checkpoint joints {meta['joint_names']} do not match its task's character "
                         f"'{env.character.name}' ({env.character.joint_names})")
    return env


START_BINS = 4
"""Equal parts of the clip that ``mimic eval`` reports the episodes started in (:func:`by_start_time`)."""


def by_start_time(per_episode: list[dict], duration: float, bins: int = START_BINS) -> list[dict]:
    """The episodes grouped by the part of the clip they started in (``bins`` equal parts of its
    ``duration``): each part's span, episode count, mean normalized return (None without episodes)
    and falls.  Where a policy loses a clip shows here: a flip's landing, a cycle's push-off."""
    parts = []
    for k in range(bins):
        lo, hi = k * duration / bins, (k + 1) * duration / bins
        mine = [e for e in per_episode
                if lo <= e["start_time"] < hi or (k == bins - 1 and e["start_time"] >= hi)]
        parts.append({"from_s": lo, "to_s": hi, "episodes": len(mine),
                      "normalized_return": float(np.mean([e["normalized_return"] for e in mine])) if mine else None,
                      "falls": sum(e["fell"] for e in mine)})
    return parts


def evaluate(model: ActorCritic, meta: dict, episodes: int = 5, seconds: float = 20.0, seed: int = 0,
             video: Path | Sequence[Path] | None = None, start_time: float | None = None,
             backend: str | None = None, physics_hz: float | None = None) -> dict:
    """The deterministic policy for ``episodes`` of ``seconds`` of its task (or to the end of a clip
    that does not loop), each from a random clip time (seeded) or from ``start_time``;
    ``backend``/``physics_hz`` change the simulator (sim2sim). ``video``: the first episode, with
    the reference as a ghost, to each path (a ``.gif`` at half the rate and size, for pages)."""
    videos = [] if video is None else [Path(video)] if isinstance(video, str | Path) else [Path(v) for v in video]
    env = evaluation_env(meta, seconds, backend, physics_hz, render_mode="rgb_array" if videos else None)
    results, curves, frames = [], [], []
    root = int(np.flatnonzero(env.character.tracked_parents < 0)[0])
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode, options=None if start_time is None else {"start_time": start_time})
        start = env.time
        steps = env.steps_possible(start)
        total, terms, errors, fell = 0.0, [], [], False
        for _ in range(steps):
            with torch.no_grad():
                action = model.act_deterministic(torch.as_tensor(obs[None], dtype=torch.float32))[0].numpy()
            obs, reward, terminated, truncated, info = env.step(action)
            total += reward
            terms.append([info[f"reward_{k}"] for k in TERMS])
            ref = env.backend.kinematics(*env.reference.state(env.time))
            errors.append((env.time, *position_errors_mm(env.backend.body_states(), ref, root)))
            if videos and episode == 0:
                frames.append(env.render())
            if terminated or truncated:
                fell = bool(terminated)
                break
        errors_arr = np.array(errors)
        results.append({"start_time": start, "normalized_return": total / steps, "steps": len(errors),
                        "full_steps": steps, "fell": fell,
                        "terms": np.mean(terms, axis=0).tolist(), "mpjpe_mm": float(errors_arr[:, 1].mean()),
                        "mpjpe_root_relative_mm": float(errors_arr[:, 2].mean())})
        curves.append(errors_arr)
    duration = env.motion.duration
    env.close()
    summary = {
        "episodes": episodes,
        "episode_seconds": seconds,
        "normalized_return": float(np.mean([r["normalized_return"] for r in results])),
        "reward_terms": dict(zip(TERMS,
                                 np.mean([r["terms"] for r in results], axis=0).tolist(), strict=True)),
        "mpjpe_mm": float(np.mean([r["mpjpe_mm"] for r in results])),
        "mpjpe_root_relative_mm": float(np.mean([r["mpjpe_root_relative_mm"] for r in results])),
        "fall_rate": float(np.mean([r["fell"] for r in results])),
        "by_start_time": by_start_time(results, duration),
        "per_episode": results,
    }
    if frames:
        from mimic_sim.render import write_video

        for path in videos:
            if path.suffix == ".gif":
                write_video((f[::2, ::2] for f in frames[::2]), path, fps=env.sim_config.control_hz / 2)
            else:
                write_video(frames, path, fps=env.sim_config.control_hz)
    return {**summary, "_curve": curves[0]}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a trained policy (normalized return, MPJPE, falls)",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a checkpoint folder, a run folder (its latest checkpoint), "
                        "or a shipped skill (g1/walk)")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0, help="episode length")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <checkpoint>/eval)")
    parser.add_argument("--no-video", action="store_true")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="physics engine to evaluate in (default: the one it was trained in)")
    parser.add_argument("--physics-hz", type=float, default=None,
                        help="physics rate to evaluate at (default: the training's)")
    parser.add_argument("--push", action="store_true", help="also search the largest horizontal push on the "
                        "pelvis survived in most trials (mimic_policy.push; clips that loop), into eval.json")
    add_push_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mimic_policy.skills import skill_folder

    push_config = push_config_from(args) if args.push else None  # bad push options fail before any work
    model, meta = load_policy(args.checkpoint)
    # a shipped skill's folder is not written into: its results go to out/<character>_<skill>/eval
    skill = None if Path(args.checkpoint).exists() else skill_folder(str(args.checkpoint))
    out = args.out or (Path("out") / f"{skill.parent.name}_{skill.name}" / "eval" if skill
                       else Path(args.checkpoint) / "eval")
    # the push search first: its errors (a clip that does not loop, a duration off the control grid) come at once
    push = None if push_config is None else push_robustness(model, meta, push_config, args.seed, args.backend,
                                                            args.physics_hz, progress=print)
    out.mkdir(parents=True, exist_ok=True)
    result = evaluate(model, meta, args.episodes, args.seconds, args.seed, None if args.no_video else out / "eval.mp4",
                      backend=args.backend, physics_hz=args.physics_hz)
    plot_tracking_error(result.pop("_curve"), out / "tracking_error.png")
    if push is not None:
        result["push"] = push
    atomic_write_text(out / "eval.json", json.dumps(result, indent=2))
    print(f"normalized return {result['normalized_return']:.3f}, MPJPE {result['mpjpe_mm']:.0f} mm "
          f"(root-relative {result['mpjpe_root_relative_mm']:.0f} mm), fall rate {result['fall_rate']:.2f}; "
          f"written to {out}")
    print("by start time: " + " | ".join(
        f"{part['from_s']:.2f}-{part['to_s']:.2f} s "
        + (f"{part['normalized_return']:.3f} ({part['episodes']}, {part['falls']} fell)" if part["episodes"] else "-")
        for part in result["by_start_time"]))
    if push is not None:
        print(f"largest push survived in {push_config.survival:.0%} of {push_config.trials} trials: "
              f"{'at least ' if push['at_least'] else ''}{push['impulse_ns']:.1f} N s "
              f"({push['velocity_change_m_s']:.2f} m/s over {push['total_mass_kg']:.1f} kg)"
              + ("; it falls without a push" if push["falls_unpushed"] else ""))
    return 0
