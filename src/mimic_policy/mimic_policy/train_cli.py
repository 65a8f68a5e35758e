"""``mimic train``: PPO on the imitation environment, with progress, logs and checkpoints.

A run folder holds ``progress.csv``, ``tensorboard/``, ``learning_curve.png``,
``config.json`` and ``checkpoints/iter_NNNNNN/`` (see :mod:`mimic_policy.checkpoint`).
Checkpoints are taken between iterations (:mod:`mimic_policy.session`): a run resumed
from one (``--resume RUN``) continues exactly as the uninterrupted run would have, a
run stopped with Ctrl-C or SIGTERM saves one first (:mod:`mimic_policy.stopping`), and
a killed run loses at most ``--checkpoint-every`` iterations.  A new run can start from another
run's network (``--init-from``) with settings of its own, e.g. a lower learning rate to fine-tune.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from mimic_policy.ppo import PPOConfig
from mimic_sim.paths import atomic_write_text
from mimic_sim.settings import add_arguments, flag, from_arguments, from_dict, given, leaves, to_dict
from mimic_sim.task import ImitationConfig, Task

if TYPE_CHECKING:
    import numpy as np
    import torch

    from mimic_policy.session import TrainingSession


@dataclasses.dataclass
class TrainConfig:
    """A training run: the task, PPO's settings and the run's own (every field a flag of
    ``mimic train`` and a parameter of the trainer node, :mod:`mimic_sim.settings`)."""

    task: ImitationConfig = dataclasses.field(default_factory=ImitationConfig)
    ppo: PPOConfig = dataclasses.field(default_factory=PPOConfig)
    num_envs: int = dataclasses.field(default=32, metadata={"aliases": ("envs",)})
    """Environments stepped in parallel."""
    num_workers: int = dataclasses.field(default=2, metadata={"aliases": ("workers",)})
    """Worker processes the environments are spread over (one per core)."""
    ray: str = ""
    """Environment workers as Ray actors spread over a Ray cluster's nodes: 'local' (the flag alone)
    starts a Ray instance here, 'auto' joins the cluster running on this machine, HOST:PORT the one
    whose head that is; empty: local worker processes. Same results either way (docs/scaling.md)."""
    total_samples: int = dataclasses.field(default=10_000_000, metadata={"aliases": ("samples",)})
    """Environment steps to train for (with --resume: the total to extend the run to)."""
    seed: int = 0
    """Seed of the environments, the network's initialization and the action noise."""
    checkpoint_every: int = 10
    """Iterations between checkpoints (a killed run loses at most this many)."""
    keep_checkpoints: int = 3
    """Newest checkpoints kept in the run folder."""
    push_velocity: float = 0.0
    """Train with pushes: the largest whole-body velocity change (m/s) of random horizontal pushes on the
    root body while the environments run, each held as long as ``mimic eval --push`` holds one (0.1 s);
    0: none. Training only: the task, and so evaluation, stay unpushed."""
    push_every: float = 2.0
    """With --push-velocity: mean seconds between an environment's pushes."""
    init_from: str = ""
    """Start the network from another run's: a checkpoint, a run folder (its latest checkpoint), a policy
    folder or a shipped skill (humanoid/run). Actor, action noise, observation normalizer and critic (fresh
    from a policy folder, which has none) are loaded; optimizer, counters and environments start fresh.
    The task and --hidden must be the source's; with no task setting given, the task is the source's own
    (its stored reference: no clip file needed). Empty: a fresh network."""

    def __post_init__(self) -> None:
        if not (self.push_velocity >= 0 and self.push_every > 0):  # also refuses NaN
            raise ValueError(f"--push-velocity must be >= 0 and --push-every > 0, got {self.push_velocity} and "
                             f"{self.push_every}")


EXPECTED = ("task", "character", "joint_names", "observation_size")
"""Meta fields a checkpoint must match to be trained on (resumed, or a new run's --init-from): the task
whole, reference included, not only the same joints."""


@dataclasses.dataclass(frozen=True)
class Init:
    """The network a new run starts from (``--init-from``): model state entries, and the record of their
    source its checkpoints keep (:data:`mimic_policy.checkpoint.INIT_FROM`)."""

    weights: dict[str, torch.Tensor]
    source: dict


def make_envs(config: TrainConfig, task: Task):
    """The training environments of ``task`` over worker processes, or Ray actors with ``config.ray``."""
    import functools

    from mimic_sim.envs.imitation_vector import ImitationVectorEnv, TrainingPushes

    pushes = None
    if config.push_velocity:
        from mimic_policy.push import PushConfig

        pushes = TrainingPushes(config.push_velocity, config.push_every,
                                PushConfig().steps(task.config.sim.control_hz))
    make_block = functools.partial(ImitationVectorEnv, task=task, pushes=pushes)
    if config.ray:
        from mimic_policy.ray_workers import RayVectorEnv

        return RayVectorEnv(make_block, config.num_envs, config.num_workers, address=config.ray)
    from mimic_policy.vec_env import WorkerVectorEnv

    return WorkerVectorEnv(make_block, config.num_envs, config.num_workers)


def describe(config: TrainConfig, task: Task, envs) -> tuple[dict, dict]:
    """Checkpoint metadata of a run (the task whole, the training settings, and the deployment facts
    derived from them), and the fields a checkpoint must match to be resumed (:data:`EXPECTED`)."""
    space = envs.single_action_space
    meta = {"train": to_dict(config), **task_meta(task, space.low, space.high)}
    return meta, {k: meta[k] for k in EXPECTED}


def task_meta(task: Task, action_lower: np.ndarray | None = None, action_upper: np.ndarray | None = None) -> dict:
    """The task whole and the deployment facts derived from it (action bounds: by default the joint
    limits), as checkpoint metadata (:func:`mimic_policy.checkpoint.character_meta`)."""
    from mimic_policy.checkpoint import character_meta

    return {"task": task.to_dict(), **character_meta(task.character, action_lower=action_lower,
                                                     action_upper=action_upper,
                                                     target_observation=task.config.target_observation)}


InitSource = tuple[Path, "dict[str, torch.Tensor]", dict]
"""A checkpoint ``--init-from`` names: its folder, tensors and metadata (:func:`read_init_source`)."""


def read_init_source(init_from: str) -> InitSource:
    """The checkpoint ``--init-from`` names: its folder, tensors and metadata."""
    from mimic_policy.checkpoint import load_checkpoint, policy_checkpoint

    path = policy_checkpoint(init_from)
    return (path, *load_checkpoint(path))


def load_init(config: TrainConfig, task: Task,
              source: InitSource | None = None) -> Init | None:
    """The network ``config.init_from`` names (``source``: it, read already by :func:`read_init_source`),
    checked against this run's task and network sizes (before any environment starts or anything is
    written); None without one."""
    from mimic_policy.checkpoint import INIT_FROM, META_FILE, CheckpointError, check_expect

    if not config.init_from:
        return None
    path, tensors, meta = source or read_init_source(config.init_from)
    description = task_meta(task)
    expect = {k: description[k] for k in EXPECTED}
    # How episodes start (RSI or ASI) is how this run trains, not what the source learned: either fine-tunes a
    # policy trained with the other (SFV's ASI on a policy that fails at one moment of its clip).
    stored_init = meta.get("task", {}).get("config", {}).get("init") if isinstance(meta.get("task"), dict) else None
    if stored_init is not None:
        expect["task"] = copy.deepcopy(expect["task"])
        expect["task"]["config"]["init"] = stored_init
    check_expect(meta, expect, path / META_FILE)
    weights = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    mismatch = network_mismatch(weights, network_shapes(config, description["observation_size"],
                                                        len(description["joint_names"])))
    if mismatch:
        raise CheckpointError(f"{path}: {mismatch} (--hidden must be the source's)")
    source = {"path": str(path), **{k: meta[k] for k in ("iteration", "samples", "weights_sha256", INIT_FROM)
                                   if k in meta}}
    return Init(weights, source)


def network_shapes(config: TrainConfig, obs_size: int, action_size: int) -> dict[str, tuple[int, ...]]:
    """The shape of every model state entry of a run with ``config``."""
    import torch

    from mimic_policy.networks import ActorCritic

    with torch.device("meta"):  # shapes only: no memory, no draw from the random stream
        model = ActorCritic(obs_size, action_size, config.ppo.hidden, config.ppo.init_log_std)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def network_mismatch(weights: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]]) -> str:
    """The first model state entry ``weights`` cannot fill, in words; empty if they fit. Only the value
    network may be missing (a policy folder keeps none: the run's fresh one stays)."""
    for key, shape in shapes.items():
        if key not in weights:
            if not key.startswith("critic."):
                return f"tensor 'model.{key}' is missing; this run's network needs one of shape {list(shape)}"
        elif tuple(weights[key].shape) != shape:
            return f"tensor 'model.{key}' has shape {list(weights[key].shape)}, this run's network {list(shape)}"
    extra = [k for k in weights if k not in shapes]
    return f"tensor 'model.{extra[0]}' has no place in this run's network" if extra else ""


def new_session(config: TrainConfig, task: Task, envs, run_dir: Path, init: Init | None = None) -> TrainingSession:
    """A training session of ``task`` on ``envs`` into ``run_dir``, its network from ``init`` if given."""
    from mimic_policy.checkpoint import INIT_FROM
    from mimic_policy.runner import Trainer
    from mimic_policy.session import TrainingSession

    meta, expect = describe(config, task, envs)
    trainer = Trainer(envs, config.ppo, seed=config.seed)
    if init is not None:
        trainer.load_weights(init.weights)
        meta[INIT_FROM] = init.source
    return TrainingSession(trainer, config, run_dir, meta=meta, expect=expect)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a policy to imitate a clip (PPO)",
                                   description=__doc__.split("\n\n")[0])
    add_arguments(parser, TrainConfig, skip=("ray",))
    ray_leaf = next(leaf for leaf in leaves(TrainConfig) if leaf.name == "ray")
    parser.add_argument(flag("ray"), dest="settings.ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help=ray_leaf.help)  # an optional value: add_arguments' flags all take one
    parser.add_argument("--run-dir", type=Path, default=None, help="run folder (default: runs/<clip>_<UTC time>)")
    parser.add_argument("--resume", type=Path, default=None,
                        help="continue the run in this folder (its settings; only --total-samples may change)")
    parser.add_argument("--from-intact", action="store_true",
                        help="with --resume: if the latest checkpoint is corrupt, continue from the newest intact one "
                             "(the iterations after it are trained again)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.from_intact and args.resume is None:
        raise ValueError("--from-intact goes with --resume RUN")
    if args.resume is not None:
        run_dir = args.resume
        config_path = run_dir / "config.json"
        try:
            config = from_dict(TrainConfig, json.loads(config_path.read_text()), str(config_path))
        except (OSError, json.JSONDecodeError) as exc:
            raise FileNotFoundError(f"--resume {run_dir}: cannot read {config_path}: {exc}") from exc
        # where the workers run changes nothing in the results, so --ray may change too
        changed = {k: v for k, v in given(args).items() if k not in ("total_samples", "ray")}
        if changed:
            raise ValueError(f"--resume {run_dir}: settings of a run cannot change "
                             f"(given: {', '.join('--' + k.replace('_', '-') for k in changed)}; "
                             "only --total-samples and --ray may)")
        config = from_arguments(TrainConfig, args, config)
    else:
        config = from_arguments(TrainConfig, args)
        source = read_init_source(config.init_from) if config.init_from else None
        source_task = init_source_task(config, args, source)
        if source_task is not None:
            config = dataclasses.replace(config, task=source_task.config)
        run_dir = args.run_dir or default_run_dir(config)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise FileExistsError(f"run folder {run_dir} is not empty; use --resume {run_dir} to continue it")
    # a bad character, clip or setting is reported before anything is written; a robot's shipped
    # clip is retargeted onto it first if the clip store has no copy (mimic_sim.task.CLIP_PROVIDERS).
    # A resumed run's task, reference included, is its checkpoint's (train).
    task = None if args.resume else (source_task or Task.resolve(config.task))
    init = None if args.resume else load_init(config, task, source)  # resumed: the run's checkpoint holds it
    if config.ray:  # an unreachable cluster is reported before the run folder is made
        from mimic_policy.ray_workers import connect

        connect(config.ray, config.num_workers)
    if args.resume is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", json.dumps(to_dict(config), indent=2))
    return train(config, run_dir, resume=args.resume is not None, task=task, from_intact=args.from_intact,
                 init=init)


def init_source_task(config: TrainConfig, args: argparse.Namespace,
                     source: InitSource | None) -> Task | None:
    """With ``--init-from`` (``source``, :func:`read_init_source`) and no task setting on the command
    line, the source's own task (the reference it stores, so a shipped skill is fine-tuned with no clip
    file); otherwise None."""
    from mimic_policy.checkpoint import stored_task

    task_settings = {leaf.name for leaf in leaves(TrainConfig) if leaf.path[0] == "task"}
    if source is None or task_settings & set(given(args)):
        return None
    path, _, meta = source
    return stored_task(meta, path)


def default_run_dir(config: TrainConfig) -> Path:
    """``runs/[<character>_]<clip>_<UTC time>`` (no prefix for the humanoid)."""
    name = Path(config.task.character).stem
    prefix = "" if name == "humanoid" else f"{name}_"
    clip = Path(config.task.clip).name.split(".")[0]
    return Path("runs") / f"{prefix}{clip}_{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"


def train(config: TrainConfig, run_dir: Path, resume: bool = False, task: Task | None = None,
          from_intact: bool = False, init: Init | None = None) -> int:
    """Train the run in ``run_dir`` (with ``resume``, continue it from its latest checkpoint, or with
    ``from_intact`` from its newest intact one if the latest is corrupt; a new run's network from
    ``init``, :func:`load_init`); the exit status.

    SIGINT or SIGTERM, to this process or its whole process group, stops the run after the
    current iteration with a checkpoint, exit status 130 or 143; a second one aborts at once
    (:mod:`mimic_policy.stopping`).  An error saves nothing: the last checkpoint stays the latest.
    """
    from tqdm import tqdm

    from mimic_policy.checkpoint import resume_checkpoint, stored_task
    from mimic_policy.logs import TrainingLog
    from mimic_policy.stopping import StopSignals

    if resume:  # a corrupt checkpoint is refused before any worker starts
        restored = resume_checkpoint(run_dir, from_intact)
        # the reference the run trained on, not what the clip name resolves to today (a shipped clip
        # retargeted again by a newer mimic would make the run's own checkpoint refuse it)
        task = task or stored_task(restored.meta, restored.path)
    with StopSignals() as stop:
        task = task or Task.resolve(config.task)
        envs = make_envs(config, task)
        try:
            session = new_session(config, task, envs, run_dir, init)
            if resume:
                session.restore(restored)
                print(f"resuming from {restored.path}"
                      + (f" (the latest, {restored.corrupt.name}, is corrupt)" if restored.corrupt else ""))
            trainer = session.trainer
            log = TrainingLog(run_dir, iteration=trainer.iteration, samples=trainer.samples)
            bar = tqdm(total=config.total_samples, initial=trainer.samples, unit="samples", unit_scale=True,
                       dynamic_ncols=True)
            start = time.monotonic()
            try:
                while trainer.samples < config.total_samples and not stop.requested:
                    stats = session.iterate(log.log)
                    bar.update(int(stats["samples"]) - bar.n)
                    bar.set_postfix(sps=f"{stats['samples_per_second']:.0f}",
                                    ret=f"{stats.get('mean_return', 0.0):.1f}",
                                    fall=f"{stats.get('fall_rate', 0.0):.2f}")
            finally:
                bar.close()
            path = session.final_checkpoint()
            log.close()
        finally:
            envs.close()
    if stop.requested:
        print(f"stopped by {stop.signal.name} at iteration {trainer.iteration} ({trainer.samples} samples); "
              f"checkpoint {path}; continue with: mimic train --resume {run_dir}")
    else:
        print(f"trained {trainer.samples} samples in {time.monotonic() - start:.0f} s; run folder {run_dir}")
    return stop.exit_status
