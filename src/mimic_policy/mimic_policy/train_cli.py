"""``mimic train``: PPO on the imitation environment, with progress, logs and checkpoints.

A run folder holds ``progress.csv``, ``tensorboard/``, ``learning_curve.png``,
``config.json`` and ``checkpoints/iter_NNNNNN/`` (see :mod:`mimic_policy.checkpoint`).
Checkpoints are taken between iterations, where every environment restarts from a
seed derived from the iteration: a run resumed from a checkpoint (``--resume RUN``)
continues exactly as the uninterrupted run would have, and a killed run loses at most
``--checkpoint-every`` iterations.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from datetime import datetime, timezone
from pathlib import Path

from mimic_policy.ppo import PPOConfig


@dataclasses.dataclass
class TrainConfig:
    clip: str = "walk"
    character: str = "humanoid"
    backend: str = "mujoco"
    physics_hz: float | None = None
    """Physics rate; None: the character's, else the backend's default (``docs/simulation.md``)."""
    num_envs: int = 32
    num_workers: int = 2
    total_samples: int = 10_000_000
    seed: int = 0
    checkpoint_every: int = 10
    keep_checkpoints: int = 3
    residual_actions: bool = True
    """Actions are offsets from the reference pose (see ``ImitationConfig.residual_actions``)."""
    target_observation: bool = True
    """The observation includes the reference pose (see ``ImitationConfig.target_observation``)."""
    ppo: PPOConfig = dataclasses.field(default_factory=PPOConfig)


def make_envs(config: TrainConfig):
    """The training environments over worker processes; a robot's shipped clip is retargeted onto it
    first if the clip store has no copy (``mimic retarget``)."""
    import functools

    from mimic_policy.vec_env import WorkerVectorEnv
    from mimic_retarget.cli import ensure_robot_clip
    from mimic_sim.backends import SimConfig
    from mimic_sim.character import load_character
    from mimic_sim.envs.imitation_vector import ImitationVectorEnv

    ensure_robot_clip(config.clip, load_character(config.character))

    make = functools.partial(ImitationVectorEnv, clip=config.clip, character=config.character,
                             backend=config.backend, sim=SimConfig(physics_hz=config.physics_hz),
                             residual_actions=config.residual_actions,
                             target_observation=config.target_observation)
    return WorkerVectorEnv(make, config.num_envs, config.num_workers)


def describe(config: TrainConfig, envs) -> tuple[dict, dict]:
    """Checkpoint metadata of a run, and the fields a checkpoint must match to be resumed."""
    from mimic_policy.checkpoint import character_meta
    from mimic_sim.backends import default_physics_hz
    from mimic_sim.character import load_character
    from mimic_sim.deepmimic_format import resolve_clip

    space = envs.single_action_space
    character = load_character(config.character)
    description = character_meta(character, action_lower=space.low, action_upper=space.high,
                                 target_observation=config.target_observation)
    meta = {"clip": config.clip, "clip_file": str(resolve_clip(config.clip)), "backend": config.backend,
            "control_hz": 30.0, "physics_hz": float(config.physics_hz or default_physics_hz(config.backend, character)),
            "residual_actions": config.residual_actions,
            "target_observation": config.target_observation, **description}
    return meta, {k: description[k] for k in ("character", "joint_names", "observation_size")}


def _config_from_json(data: dict) -> TrainConfig:
    ppo = PPOConfig(**{**data["ppo"], "hidden": tuple(data["ppo"]["hidden"])})
    return TrainConfig(**{**data, "ppo": ppo})


def register(subparsers: argparse._SubParsersAction) -> None:
    defaults, ppo = TrainConfig(), PPOConfig()
    parser = subparsers.add_parser("train", help="train a policy to imitate a clip (PPO)",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", default=defaults.clip)
    parser.add_argument("--character", "--robot", default=defaults.character,
                        help="character or robot config name or YAML path (humanoid, atlas, h1, g1); a robot's "
                             "shipped clip is retargeted onto it first if 'mimic retarget' has not stored it yet")
    parser.add_argument("--backend", default=defaults.backend, choices=("mujoco", "pybullet"))
    parser.add_argument("--physics-hz", type=float, default=None,
                        help="physics rate, a multiple of 30 (default: the character's, else the backend's)")
    parser.add_argument("--envs", type=int, default=defaults.num_envs, help="environments stepped in parallel")
    parser.add_argument("--workers", type=int, default=defaults.num_workers,
                        help="worker processes the environments are spread over (one per core)")
    parser.add_argument("--samples", type=float, default=None,
                        help=f"total environment steps (default {defaults.total_samples:.0e}; --resume: extend to)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--steps-per-env", type=int, default=ppo.num_steps)
    parser.add_argument("--learning-rate", type=float, default=ppo.learning_rate)
    parser.add_argument("--epochs", type=int, default=ppo.epochs)
    parser.add_argument("--gamma", type=float, default=ppo.gamma, help="discount")
    parser.add_argument("--minibatches", type=int, default=ppo.minibatches)
    parser.add_argument("--init-log-std", type=float, default=ppo.init_log_std,
                        help="initial log std of the policy's PD-target noise, in radians")
    parser.add_argument("--absolute-actions", action="store_true",
                        help="actions are the PD targets themselves, not offsets from the reference pose")
    parser.add_argument("--phase-only-observation", action="store_true",
                        help="DeepMimic's observation: no reference pose in it")
    parser.add_argument("--hidden", default=",".join(map(str, ppo.hidden)), help="hidden layer sizes, e.g. 1024,512")
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every, help="iterations")
    parser.add_argument("--run-dir", type=Path, default=None, help="default: runs/<clip>_<UTC time>")
    parser.add_argument("--resume", type=Path, default=None, help="continue the run in this folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.resume is not None:
        run_dir = args.resume
        config = _config_from_json(json.loads((run_dir / "config.json").read_text()))
        if args.samples is not None:
            config.total_samples = int(args.samples)
    else:
        ppo = PPOConfig(num_steps=args.steps_per_env, learning_rate=args.learning_rate, epochs=args.epochs,
                        minibatches=args.minibatches, init_log_std=args.init_log_std, gamma=args.gamma,
                        hidden=tuple(int(h) for h in args.hidden.split(",")))
        config = TrainConfig(clip=args.clip, character=args.character, backend=args.backend,
                             physics_hz=args.physics_hz, num_envs=args.envs,
                             num_workers=args.workers,
                             total_samples=int(args.samples or TrainConfig.total_samples), seed=args.seed,
                             checkpoint_every=args.checkpoint_every, residual_actions=not args.absolute_actions,
                             target_observation=not args.phase_only_observation,
                             ppo=ppo)
        from mimic_sim.character import load_character

        character = load_character(args.character)
        prefix = "" if character.name == "humanoid" else f"{character.name}_"
        run_dir = args.run_dir or Path("runs") / f"{prefix}{args.clip}_{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
        if run_dir.exists() and any(run_dir.iterdir()):
            raise FileExistsError(f"run folder {run_dir} is not empty; use --resume {run_dir} to continue it")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))
    return train(config, run_dir, resume=args.resume is not None)


def train(config: TrainConfig, run_dir: Path, resume: bool = False) -> int:
    from tqdm import tqdm

    from mimic_policy.logs import TrainingLog
    from mimic_policy.runner import Trainer
    from mimic_policy.session import TrainingSession

    envs = make_envs(config)
    meta, expect = describe(config, envs)
    session = TrainingSession(Trainer(envs, config.ppo, seed=config.seed), config, run_dir, meta=meta, expect=expect)
    if resume:
        session.restore_latest()
    log = TrainingLog(run_dir)
    bar = tqdm(total=config.total_samples, initial=session.trainer.samples, unit="samples", unit_scale=True,
               dynamic_ncols=True)
    start = time.monotonic()
    try:
        while session.trainer.samples < config.total_samples:
            stats = session.iterate()
            log.log(stats)
            bar.update(int(stats["samples"]) - bar.n)
            bar.set_postfix(sps=f"{stats['samples_per_second']:.0f}", ret=f"{stats.get('mean_return', 0.0):.1f}",
                            fall=f"{stats.get('fall_rate', 0.0):.2f}")
    finally:
        bar.close()
        log.close()
        session.checkpoint()
        envs.close()
    print(f"trained {session.trainer.samples} samples in {time.monotonic() - start:.0f} s; run folder {run_dir}")
    return 0
