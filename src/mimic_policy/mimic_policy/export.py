"""``mimic export CHECKPOINT``: the deterministic policy as an ONNX file for deployment.

The graph takes ``observation`` (batch x observation size, float32, the layout of
:mod:`mimic_sim.observation`) and returns ``action`` (batch x joints): the
normalizer, the policy network and the action offset, i.e. the Gaussian's mean, as
``mimic eval`` and the policy node run it.  With ``residual_actions`` the action is
an offset from the reference pose (PD target = reference + action, target velocity =
reference velocity).  Everything a runtime needs to use it correctly is in the ONNX
file's metadata (``mimic.*`` properties, JSON values): joint order, PD gains and
torque limits, control rate, observation and action layouts, clip, character, the
checkpoint's weights hash and the action convention, and the whole task (reference
motion included), so mimic serves an export with no other file.  ``mimic.sha256``
covers the graph and every other ``mimic.*`` entry: a flipped byte or an edited entry
is refused on load.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from mimic_policy.checkpoint import INIT_FROM, samples_spent
from mimic_policy.networks import ActorCritic
from mimic_sim.paths import atomic_write_bytes

METADATA_KEYS = ("character", "joint_names", "observation_layout", "observation_size", "action_layout", "pd",
                 "task", "weights_sha256", "samples")
"""Checkpoint metadata an export carries (``mimic.<key>``, JSON values)."""
INTEGRITY_KEY = "mimic.sha256"
"""The SHA-256 of the graph's bytes and of every other ``mimic.*`` entry (:func:`integrity_hash`)."""


def deployment_facts(meta: dict) -> dict:
    """What a runtime needs of a policy besides the graph: the checkpoint's deployment entries and,
    derived from its task for runtimes that do not read tasks, clip name, rates and action convention."""
    from mimic_policy.checkpoint import stored_task

    task = stored_task(meta, "checkpoint")
    derived = {"clip": task.clip_name, "control_hz": task.config.sim.control_hz,
               "physics_hz": task.config.sim.physics_hz, "residual_actions": task.config.residual_actions,
               "target_observation": task.config.target_observation}
    return {**{k: meta[k] for k in METADATA_KEYS if k in meta}, **derived}


def integrity_hash(graph: bytes, metadata: dict[str, str]) -> str:
    """SHA-256 over the serialized graph and the ``mimic.*`` metadata (canonical JSON of the raw strings)."""
    digest = hashlib.sha256(graph)
    digest.update(json.dumps(metadata, sort_keys=True).encode())
    return digest.hexdigest()


class DeterministicPolicy(nn.Module):
    """Observation -> :meth:`ActorCritic.mean` (the exported graph keeps only what that uses:
    no value network)."""

    def __init__(self, model: ActorCritic):
        super().__init__()
        self.model = model

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        return self.model.mean(observation)


def export_onnx(model: ActorCritic, meta: dict, path: Path) -> Path:
    """Write the policy of ``model`` with ``meta``'s deployment facts to ``path`` (atomically)."""
    import onnx

    policy = DeterministicPolicy(model).eval()
    example = torch.zeros(2, model.spec["obs_size"])
    program = torch.onnx.export(policy, (example,), dynamo=True, input_names=["observation"],
                                output_names=["action"], dynamic_shapes={"observation": {0: torch.export.Dim("batch")}})
    proto = program.model_proto
    entries = {f"mimic.{key}": json.dumps(value) for key, value in deployment_facts(meta).items()}
    entries[INTEGRITY_KEY] = integrity_hash(proto.graph.SerializeToString(), entries)
    for key, value in entries.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    path = Path(path)
    atomic_write_bytes(path, proto.SerializeToString())
    return path


def read_metadata(path: Path) -> dict:
    """The ``mimic.*`` metadata of an exported policy, decoded, after checking the file is whole
    and unmodified (:func:`integrity_hash`); a bad file raises ``ValueError`` naming it."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and onnx's own errors for a truncated or garbage file
        raise ValueError(f"{path}: not a readable ONNX file ({type(exc).__name__}: {exc})") from exc
    entries = {p.key: p.value for p in proto.metadata_props if p.key.startswith("mimic.")}
    stored = entries.pop(INTEGRITY_KEY, None)
    if stored is None:
        raise ValueError(f"{path}: no '{INTEGRITY_KEY}' metadata; not a mimic policy export")
    if stored != integrity_hash(proto.graph.SerializeToString(), entries):
        raise ValueError(f"{path}: the graph or its mimic metadata does not match '{INTEGRITY_KEY}'; the file is "
                         "corrupt or was modified")
    return {key.removeprefix("mimic."): json.loads(value) for key, value in entries.items()}


POLICY_META_KEYS = ("character", "joint_names", "observation_bodies", "observation_layout", "observation_size",
                    "action_layout", "pd", "task", "train", "iteration", "samples", INIT_FROM)
"""What a policy folder keeps of a checkpoint's meta: the task, the deployment facts and where training started
(``mimic train --init-from``: the samples spent before), no resume state."""


PRECISIONS = {"float16": torch.float16, "float32": torch.float32}
"""How a policy folder may store the network layers."""


def save_policy_folder(model: ActorCritic, meta: dict, out: Path, precision: str = "float16") -> Path:
    """The policy alone as a checkpoint folder (``mimic eval``, ``mimic export`` and ``policy_node``
    read it as any checkpoint): the policy network, its action noise and the observation normalizer,
    the task with its reference motion, the deployment facts; no value network, optimizer,
    random-generator or replay state (only training uses them), so it cannot be resumed.

    The network layers are stored in ``precision``: float16 by default, half the size (the
    library must stay within the 50 MB a repository can carry); float32 where the rounding
    changes a dynamic skill's trajectories enough to cost return. Loading casts them to float32.
    The observation normalizer keeps float64: feature variances below fp16's range would be lost."""
    from mimic_policy.checkpoint import save_checkpoint

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    dtype = PRECISIONS[precision]
    tensors = {f"model.{k}": v.to(dtype) if k.startswith("actor.") else v
               for k, v in model.state_dict().items() if not k.startswith("critic.")}
    return save_checkpoint(Path(out), tensors, {k: meta[k] for k in POLICY_META_KEYS if k in meta})


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="export a trained policy to ONNX or as a policy folder",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a checkpoint folder, a run folder (its latest checkpoint), "
                        "or a shipped skill (g1/walk)")
    parser.add_argument("-o", "--out", type=Path, default=None,
                        help="ONNX file (default: <checkpoint>/policy.onnx; for a skill, out/<character>_<skill>.onnx)")
    parser.add_argument("--policy-folder", type=Path, default=None,
                        help="instead of ONNX, write the policy alone (weights, task, deployment facts) as a small "
                             "checkpoint folder here, for sharing: no optimizer or resume state")
    parser.add_argument("--precision", choices=tuple(PRECISIONS), default="float16",
                        help="with --policy-folder: how the network layers are stored (default float16, half the "
                             "size; float32 keeps a dynamic skill's return exactly)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mimic_policy.evaluate import load_policy
    from mimic_policy.skills import skill_folder

    model, meta = load_policy(args.checkpoint)
    if args.policy_folder is not None:
        folder = save_policy_folder(model, meta, args.policy_folder, args.precision)
        size = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        total = samples_spent(meta)
        before = f" ({meta['samples']} here, {total - meta['samples']} before it)" if total != meta["samples"] else ""
        print(f"wrote {folder} ({size:.1f} MB): the policy of {total} samples{before} with its task")
        return 0
    skill = None if Path(args.checkpoint).exists() else skill_folder(str(args.checkpoint))
    out = args.out or (Path("out") / f"{skill.parent.name}_{skill.name}.onnx" if skill
                       else Path(args.checkpoint) / "policy.onnx")
    export_onnx(model, meta, out)
    kind = "offsets from the reference" if meta["task"]["config"]["residual_actions"] else "PD targets"
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): observation {meta['observation_size']} -> "
          f"action {len(meta['joint_names'])} ({kind})")
    return 0
