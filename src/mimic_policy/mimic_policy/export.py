"""``mimic export CHECKPOINT``: the deterministic policy as an ONNX file for deployment.

The graph takes ``observation`` (batch x observation size, float32, the layout of
:mod:`mimic_sim.observation`) and returns ``action`` (batch x joints): the
normalizer, the policy network and the action offset, i.e. the Gaussian's mean, as
``mimic eval`` and the policy node run it.  With ``residual_actions`` the action is
an offset from the reference pose (PD target = reference + action, target velocity =
reference velocity).  Everything a runtime needs to use it correctly is in the ONNX
file's metadata (``mimic.*`` properties, JSON values): joint order, PD gains and
torque limits, control rate, observation and action layouts, clip, character, the
checkpoint's weights hash and the action convention.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

from mimic_policy.networks import ActorCritic
from mimic_sim.paths import atomic_write_bytes

METADATA_KEYS = ("character", "clip", "joint_names", "observation_layout", "observation_size", "action_layout", "pd",
                 "control_hz", "residual_actions", "target_observation", "weights_sha256", "samples")


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
    for key in METADATA_KEYS:
        if key in meta:
            entry = proto.metadata_props.add()
            entry.key, entry.value = f"mimic.{key}", json.dumps(meta[key])
    onnx.checker.check_model(proto)
    path = Path(path)
    atomic_write_bytes(path, proto.SerializeToString())
    return path


def read_metadata(path: Path) -> dict:
    """The ``mimic.*`` metadata of an exported policy, decoded."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key.removeprefix("mimic."): json.loads(p.value) for p in proto.metadata_props
            if p.key.startswith("mimic.")}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="export a trained policy to ONNX",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a checkpoint folder or a run folder (its latest checkpoint)")
    parser.add_argument("-o", "--out", type=Path, default=None, help="ONNX file (default: <checkpoint>/policy.onnx)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mimic_policy.evaluate import load_policy

    model, meta = load_policy(args.checkpoint)
    out = args.out or Path(args.checkpoint) / "policy.onnx"
    export_onnx(model, meta, out)
    kind = "offsets from the reference" if meta.get("residual_actions") else "PD targets"
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): observation {meta['observation_size']} -> "
          f"action {len(meta['joint_names'])} ({kind})")
    return 0
