"""Policy checkpoints: a folder of safetensors weights plus a JSON description, never a pickle.

A checkpoint is a folder ``<name>/`` holding

``weights.safetensors``
    every tensor: model parameters and buffers, the optimizer state (flattened by
    :func:`flatten_state`), observation-normalizer statistics and RNG states (uint8).
``meta.json``
    everything else.  :func:`save_checkpoint` adds ``format_version``, ``created``,
    ``code_version``, ``weights_sha256`` and ``meta_sha256`` (of the rest of meta.json,
    so a hand-edited description is refused too); the trainer supplies the rest, by
    convention under these keys (:func:`character_meta` fills the first five):

    ``character``, ``joint_names``, ``observation_layout`` ([name, start, length]
    blocks), ``observation_size``, ``action_layout`` ({joint_names, lower, upper}),
    ``pd`` ({kp, kd, torque_limit, armature}), ``task`` (the whole imitation task,
    reference motion included: :meth:`mimic_sim.task.Task.to_dict`), ``train`` (the
    training settings), ``iteration``, ``samples``, for each flattened state, its
    skeleton (e.g. ``optimizer``), and for a run started from another's network
    (``mimic train --init-from``) :data:`INIT_FROM`.

Why not ``torch.save``: a ``.pt`` file is a pickle, and unpickling a file someone
sent you runs whatever code it names.  Checkpoints get shared between machines and
people, so mimic only ever reads safetensors (raw tensor bytes behind a JSON header)
and JSON, checks the weights against the SHA-256 recorded in ``meta.json``, and
compares what the caller expects (character, joint order, observation size) before
any tensor reaches a network, so a policy trained for another robot or another
joint order fails loudly instead of driving the wrong joints.

Crash safety: :func:`save_checkpoint` builds the folder under a temporary name in
the same parent, fsyncs it, then swaps it in with renames: ``<name>`` is renamed to
``.<name>.old``, the new folder is renamed to ``<name>``, and the backup is deleted.
POSIX cannot swap two directories in one step, so for an instant ``<name>`` does
not exist; :func:`load_checkpoint` then reads ``.<name>.old``.  A crash at any point
therefore leaves either the old or the new complete checkpoint readable under the
checkpoint's path.  One writer per checkpoint path (and per run folder) at a time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import glob
import hashlib
import importlib.metadata
import json
import math
import os
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from mimic_sim.paths import atomic_write_text
from mimic_sim.task import Task, content_sha256, with_defaults

FORMAT_VERSION = 2
META_HASH = "meta_sha256"
"""meta.json's field holding the SHA-256 of the rest of its content (canonical JSON)."""
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "meta.json"
CHECKPOINTS_DIR = "checkpoints"
LATEST_FILE = "latest"
INIT_FROM = "init_from"
"""meta.json's field naming the checkpoint a run's network started from (``mimic train --init-from``):
its ``path``, ``iteration``, ``samples``, ``weights_sha256`` and its own ``init_from`` if it has one,
so that the samples behind a policy add up over the runs it went through."""


def samples_spent(meta: Mapping[str, Any]) -> int:
    """The samples behind a checkpoint: its own and those of every run it was initialized from."""
    total, source = int(meta["samples"]), meta.get(INIT_FROM)
    while source:
        total, source = total + int(source.get("samples", 0)), source.get(INIT_FROM)
    return total


_ITER_RE = re.compile(r"iter_(\d+)")
_PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar")


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, tampered with, or for another character; the message names file and field."""


# ---------------------------------------------------------------------------
# Nested state (optimizer state_dict) <-> flat tensors + JSON skeleton


_TENSOR, _TUPLE, _DICT, _FLOAT = "__tensor__", "__tuple__", "__dict__", "__float__"


def flatten_state(prefix: str, state: Mapping[Any, Any]) -> tuple[dict[str, torch.Tensor], dict]:
    """Split a nested state (e.g. ``optimizer.state_dict()``) into dotted-key tensors and a JSON skeleton.

    Safetensors holds only named tensors, while an optimizer state mixes tensors
    with ints, floats, tuples, ``None`` and int-keyed dicts.  The skeleton keeps all
    of that, with each tensor replaced by a reference to its key, so that
    :func:`unflatten_state` rebuilds the identical structure (types included: tuples
    stay tuples, int keys stay ints, ``inf`` stays a float).  Store the skeleton in
    ``meta`` (e.g. ``meta["optimizer"]``) and the tensors in the weights.
    """
    tensors: dict[str, torch.Tensor] = {}

    def tensor_key(path: list[str]) -> str:
        key = ".".join([prefix, *path])
        unique, n = key, 1
        while unique in tensors:  # keys 0 and "0" both spell "0"; the skeleton keeps them apart
            unique, n = f"{key}#{n}", n + 1
        return unique

    def encode(value: Any, path: list[str], is_key: bool = False) -> Any:
        if isinstance(value, torch.Tensor):
            if is_key:
                raise TypeError(f"'{'.'.join([prefix, *path])}': a tensor cannot be a dict key")
            key = tensor_key(path)
            tensors[key] = value
            return {_TENSOR: key}
        if isinstance(value, (np.bool_, np.integer)):
            value = value.item()
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            return float(value) if math.isfinite(value) else {_FLOAT: repr(float(value))}
        if isinstance(value, tuple):
            return {_TUPLE: [encode(v, [*path, str(i)], is_key) for i, v in enumerate(value)]}
        if isinstance(value, list) and not is_key:
            return [encode(v, [*path, str(i)]) for i, v in enumerate(value)]
        if isinstance(value, Mapping) and not is_key:
            if all(isinstance(k, str) and not k.startswith("__") for k in value):
                return {k: encode(v, [*path, k]) for k, v in value.items()}
            return {_DICT: [[encode(k, [*path, str(k)], True), encode(v, [*path, str(k)])] for k, v in value.items()]}
        raise TypeError(f"'{'.'.join([prefix, *path])}': cannot store a {type(value).__name__} in a checkpoint")

    skeleton = encode(state, [])
    if not isinstance(skeleton, dict):
        raise TypeError(f"'{prefix}': state must be a mapping, got {type(state).__name__}")
    return tensors, skeleton


def unflatten_state(prefix: str, tensors: Mapping[str, torch.Tensor], skeleton: dict | None = None) -> dict:
    """Inverse of :func:`flatten_state`.

    With the ``skeleton`` it returns the exact nested structure that was flattened.
    Without one it returns ``{key without prefix: tensor}`` for every tensor under
    ``prefix.``, which is all a flat ``module.state_dict()`` needs.
    """
    dotted = prefix + "."
    if skeleton is None:
        return {k[len(dotted) :]: v for k, v in tensors.items() if k.startswith(dotted)}
    used: set[str] = set()

    def decode(node: Any) -> Any:
        if isinstance(node, list):
            return [decode(v) for v in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((tag, payload),) = node.items()
            if tag == _TENSOR:
                if not isinstance(payload, str) or not payload.startswith(dotted):
                    raise CheckpointError(f"state '{prefix}': skeleton refers to tensor {payload!r} outside '{dotted}'")
                if payload not in tensors:
                    raise CheckpointError(f"state '{prefix}': tensor '{payload}' is missing from the weights")
                used.add(payload)
                return tensors[payload]
            if tag == _TUPLE:
                return tuple(decode(v) for v in payload)
            if tag == _DICT:
                return {decode(k): decode(v) for k, v in payload}
            if tag == _FLOAT:
                return float(payload)
        return {k: decode(v) for k, v in node.items()}

    state = decode(skeleton)
    extra = sorted(k for k in tensors if k.startswith(dotted) and k not in used)
    if extra:
        raise CheckpointError(f"state '{prefix}': weights hold tensors the skeleton does not mention: {extra[:5]}")
    return state


# ---------------------------------------------------------------------------
# Random number generator states


def rng_state(generator: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
    """Every RNG a training run draws from, as uint8 tensors, so a resumed run continues the same sequence.

    Covers torch's CPU generator (and CUDA ones when present), numpy's global
    ``RandomState``, Python's ``random`` and, if given, a ``np.random.Generator``.
    Non-torch states are stored as their JSON text, which keeps Python's big ints
    exact and needs no pickle.
    """
    out = {
        "rng.torch": torch.get_rng_state().clone(),
        "rng.numpy": _json_tensor(_np_jsonable(np.random.get_state())),
        "rng.python": _json_tensor(random.getstate()),
    }
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            out[f"rng.cuda.{i}"] = state.cpu()
    if generator is not None:
        out["rng.generator"] = _json_tensor(_np_jsonable(generator.bit_generator.state))
    return out


def set_rng_state(tensors: Mapping[str, torch.Tensor], generator: np.random.Generator | None = None) -> None:
    """Restore the states saved by :func:`rng_state` (those present; ``generator`` is updated in place)."""
    try:
        if "rng.torch" in tensors:
            torch.set_rng_state(tensors["rng.torch"].to(torch.uint8).cpu())
        if "rng.numpy" in tensors:
            name, keys, pos, has_gauss, cached = _np_restore(_tensor_json(tensors["rng.numpy"]))
            np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        if "rng.python" in tensors:
            version, internal, gauss = _tensor_json(tensors["rng.python"])
            random.setstate((version, tuple(internal), gauss))
        cuda = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
        if cuda and torch.cuda.is_available():
            for key in cuda[: torch.cuda.device_count()]:
                torch.cuda.set_rng_state(tensors[key].cpu(), int(key.rsplit(".", 1)[1]))
        if generator is not None:
            if "rng.generator" not in tensors:
                raise CheckpointError("checkpoint holds no state for the numpy Generator ('rng.generator')")
            state = _np_restore(_tensor_json(tensors["rng.generator"]))
            wanted = type(generator.bit_generator).__name__
            if state.get("bit_generator") != wanted:
                raise CheckpointError(f"field 'rng.generator': expected a {wanted} state, "
                                      f"found {state.get('bit_generator')!r}")
            generator.bit_generator.state = state
    except CheckpointError:
        raise
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"invalid RNG state in checkpoint: {exc}") from exc


def _json_tensor(value: Any) -> torch.Tensor:
    return torch.frombuffer(bytearray(json.dumps(value).encode()), dtype=torch.uint8)


def _tensor_json(tensor: torch.Tensor) -> Any:
    return json.loads(tensor.to(torch.uint8).cpu().numpy().tobytes().decode())


def _np_jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__ndarray__": str(value.dtype), "data": value.tolist()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {k: _np_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_np_jsonable(v) for v in value]
    return value


def _np_restore(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(value["data"], dtype=value["__ndarray__"])
        return {k: _np_restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_np_restore(v) for v in value]
    return value


# ---------------------------------------------------------------------------
# Meta helpers


def character_meta(character: Any, body_names: list[str] | None = None, action_lower: Any = None,
                   action_upper: Any = None, target_observation: bool = False) -> dict:
    """The meta entries that tie a checkpoint to one character: name, joint order, observation and action layouts.

    ``character`` is a :class:`mimic_sim.character.Character`; ``body_names`` the
    tracked bodies the observation is built from (default: the character's);
    action bounds default to the joint limits; ``target_observation``: the observation
    ends with the reference pose (:mod:`mimic_sim.observation`).
    """
    from mimic_sim.observation import observation_layout  # imports MuJoCo; only the trainer needs it

    bodies = list(body_names if body_names is not None else character.tracked_bodies)
    layout = [[name, start, length] for name, start, length in observation_layout(bodies, target_observation)]
    joints = list(character.joint_names)
    lower = character.joint_lower if action_lower is None else action_lower
    upper = character.joint_upper if action_upper is None else action_upper
    return {
        "character": character.name,
        "joint_names": joints,
        "observation_bodies": bodies,
        "observation_layout": layout,
        "observation_size": layout[-1][1] + layout[-1][2],
        "action_layout": {"joint_names": joints, "lower": _float_list(lower), "upper": _float_list(upper)},
        "pd": {"kp": _float_list(character.kp), "kd": _float_list(character.kd),
               "torque_limit": _float_list(character.torque_limit), "armature": _float_list(character.armature)},
    }


def require_task(meta: Mapping[str, Any], source: Path | str) -> None:
    """Refuse metadata without a stored task (cheap: the task is not rebuilt)."""
    if "task" not in meta:
        raise CheckpointError(f"{source}: field 'task' is missing (written by an older mimic, before tasks were "
                              "stored whole; train it again)")


def stored_task(meta: Mapping[str, Any], source: Path | str) -> Task:
    """The imitation task a checkpoint's (or an ONNX export's) metadata carries."""
    require_task(meta, source)
    try:
        return Task.from_dict(meta["task"], f"{source}: task")
    except ValueError as exc:
        raise CheckpointError(str(exc)) from exc


def _float_list(values: Any) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=float).ravel()]


@functools.lru_cache(maxsize=1)
def code_version() -> dict:
    """mimic's package version and, from a source checkout, the git commit (None where unknown)."""
    try:
        package = importlib.metadata.version("mimic")
    except importlib.metadata.PackageNotFoundError:
        package = None
    commit, dirty = None, None
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if rev.returncode == 0:
            commit = rev.stdout.strip()
            status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                                    capture_output=True, text=True, timeout=5)
            dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"mimic": package, "git_commit": commit, "git_dirty": dirty}


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, torch.Tensor) and value.numel() <= 1024:
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"a {type(value).__name__} is not JSON; put tensors in the weights, not in meta")


def _normalize(value: Any) -> Any:
    """As ``value`` would read back from meta.json (tuples become lists, arrays lists)."""
    return json.loads(json.dumps(value, default=_json_default))


# ---------------------------------------------------------------------------
# Save


def save_checkpoint(path: Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> Path:
    """Write the checkpoint folder ``path`` atomically (see the module docstring) and return it.

    ``meta`` must be JSON-serializable (numpy arrays and paths are converted); the
    stored meta also gets ``format_version``, ``weights_sha256``, ``created``,
    ``code_version`` and ``meta_sha256`` (the hash of all the rest), replacing any
    given (a resumed run re-saving the meta it
    loaded records the code and time of this save, not the first one).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"{path}: exists and is not a checkpoint folder")
    if path.is_dir() and not {p.name for p in path.iterdir()} <= {WEIGHTS_FILE, META_FILE}:
        raise CheckpointError(f"{path}: folder holds files other than {WEIGHTS_FILE} and {META_FILE}; "
                              "refusing to replace what is not a checkpoint")
    prepared = _prepare_tensors(tensors)
    meta_out = dict(meta)
    meta_out["format_version"] = FORMAT_VERSION
    meta_out["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    meta_out["code_version"] = code_version()
    meta_out["weights_sha256"] = ""
    for key, value in meta_out.items():  # fail before writing anything, naming the field
        try:
            json.dumps(value, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"meta field '{key}' is not JSON-serializable: {exc}") from exc

    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=parent))
    try:
        weights = tmp / WEIGHTS_FILE
        safetensors.torch.save_file(prepared, str(weights), metadata={"format": "pt", "mimic_checkpoint": "1"})
        meta_out["weights_sha256"] = _sha256_fsync(weights)
        meta_out = _normalize({k: v for k, v in meta_out.items() if k != META_HASH})
        meta_out[META_HASH] = content_sha256(meta_out)
        text = json.dumps(meta_out, indent=2) + "\n"
        with open(tmp / META_FILE, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700
        _fsync_dir(tmp)
        _swap_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for stale in parent.glob(f".{glob.escape(path.name)}.tmp-*"):  # left by saves that crashed
        shutil.rmtree(stale, ignore_errors=True)
    return path


def _prepare_tensors(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous, detached tensors that share no memory (safetensors stores each one whole)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in tensors.items():
        if not isinstance(key, str) or not key or key == "__metadata__":
            raise CheckpointError(f"invalid tensor name {key!r}")
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"'{key}' is a {type(value).__name__}, not a tensor; non-tensor data belongs in meta")
        t = value.detach().cpu()
        if t.numel():
            whole = t.is_contiguous() and t.untyped_storage().nbytes() == t.numel() * t.element_size()
            if not whole or t.untyped_storage().data_ptr() in seen:  # a view, or tied weights
                t = t.clone(memory_format=torch.contiguous_format)
            seen.add(t.untyped_storage().data_ptr())
        out[key] = t
    return out


def _swap_into_place(tmp: Path, path: Path) -> None:
    backup = path.parent / f".{path.name}.old"
    if path.exists():
        if backup.exists():
            shutil.rmtree(backup)  # from an earlier crash; ``path`` is complete, so the backup is not needed
        os.replace(path, backup)
        try:
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):  # if this fails too, load_checkpoint falls back to the backup
                os.replace(backup, path)
            raise
    else:
        os.replace(tmp, path)  # a backup left by a crash stays until the new checkpoint is in place
    _fsync_dir(path.parent)
    shutil.rmtree(backup, ignore_errors=True)


def _sha256_fsync(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb+") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
        os.fsync(f.fileno())
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync directories
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------
# Load


def load_checkpoint(path: Path, expect: Mapping[str, Any] | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint folder: ``(tensors, meta)``, after checking hash, format and ``expect``.

    ``expect`` maps meta fields to the values the caller needs, e.g.
    ``{"character": "humanoid", "joint_names": [...], "observation_size": 197}``;
    any difference raises :class:`CheckpointError` naming the field, the expected
    and the found value (for lists, the first differing entry).  Only JSON and
    safetensors are parsed; nothing is ever unpickled.
    """
    folder = _resolve_folder(Path(path))
    meta_path, weights_path = folder / META_FILE, folder / WEIGHTS_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError as exc:
        raise CheckpointError(f"{meta_path}: missing; not a mimic checkpoint folder") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{meta_path}: cannot read: {exc}") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"{meta_path}: top level must be an object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise CheckpointError(f"{meta_path}: field 'format_version' is {version}, written by a newer mimic; "
                                  f"this one reads format {FORMAT_VERSION}")
        raise CheckpointError(f"{meta_path}: field 'format_version': expected {FORMAT_VERSION}, found {version!r}")
    stored_meta_hash = meta.get(META_HASH)
    if stored_meta_hash != content_sha256({k: v for k, v in meta.items() if k != META_HASH}):
        raise CheckpointError(f"{meta_path}: content does not match its hash '{META_HASH}'; the file was edited "
                              "or is corrupt (a checkpoint's description is not to be changed by hand)"
                              if stored_meta_hash else f"{meta_path}: field '{META_HASH}' is missing")
    expected_hash = meta.get("weights_sha256")
    if not isinstance(expected_hash, str):
        raise CheckpointError(f"{meta_path}: field 'weights_sha256' is missing")
    try:
        data = weights_path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{weights_path}: cannot read: {exc}") from exc
    found_hash = hashlib.sha256(data).hexdigest()
    if found_hash != expected_hash:
        raise CheckpointError(f"{weights_path}: SHA-256 hash does not match meta.json (expected {expected_hash}, "
                              f"found {found_hash}); the file is truncated, corrupt or was modified")
    try:
        tensors = safetensors.torch.load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError, plus ValueError/TypeError for odd headers
        raise CheckpointError(f"{weights_path}: not a valid safetensors file: {exc}") from exc
    for key, value in tensors.items():
        if not isinstance(value, torch.Tensor):  # cannot happen with safetensors; kept as a guard
            raise CheckpointError(f"{weights_path}: entry '{key}' is not a tensor")
    if expect:
        check_expect(meta, expect, meta_path)
    return tensors, meta


def _resolve_folder(path: Path) -> Path:
    if path.is_file():
        if path.name in (META_FILE, WEIGHTS_FILE):
            return path.parent
        if path.suffix.lower() in _PICKLE_SUFFIXES:
            raise CheckpointError(f"{path}: a {path.suffix} file is a pickle, which mimic never loads (it can run "
                                  f"arbitrary code); checkpoints are folders with {WEIGHTS_FILE} and {META_FILE}")
        raise CheckpointError(f"{path}: is a file; checkpoints are folders with {WEIGHTS_FILE} and {META_FILE}")
    if path.is_dir():
        return path
    backup = path.parent / f".{path.name}.old"
    if (backup / META_FILE).is_file():
        return backup  # a save was interrupted between its two renames; this is the previous checkpoint
    raise CheckpointError(f"{path}: no checkpoint there")


def check_expect(meta: dict, expect: Mapping[str, Any], source: Path) -> None:
    """Raise a :class:`CheckpointError` naming the first field of ``meta`` that differs from ``expect``."""
    for field, wanted in expect.items():
        expected = _normalize(wanted)
        if field not in meta:
            raise CheckpointError(f"{source}: field '{field}' is missing; expected {expected!r}")
        # a task stored before a setting was added holds it at its default
        found = with_defaults(meta[field]) if field == "task" else meta[field]
        if not _same(expected, found):
            raise CheckpointError(f"{source}: field '{field}' does not match: {_difference(expected, found)}")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if _numbers(a, b):
        return a == b
    return type(a) is type(b) and a == b


def _numbers(a: Any, b: Any) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))


def _difference(expected: Any, found: Any) -> str:
    if isinstance(expected, list) and isinstance(found, list):
        for i, (x, y) in enumerate(zip(expected, found, strict=False)):
            if not _same(x, y):
                return f"expected {x!r} at index {i}, found {y!r}"
        if len(expected) > len(found):
            return (f"expected {len(expected)} entries, found {len(found)}; "
                    f"first missing {expected[len(found)]!r} at index {len(found)}")
        return (f"expected {len(expected)} entries, found {len(found)}; "
                f"first extra {found[len(expected)]!r} at index {len(expected)}")
    if isinstance(expected, dict) and isinstance(found, dict):
        for key in expected:
            if key not in found:
                return f"expected key {key!r}, found none"
            if not _same(expected[key], found[key]):
                return f"at {key!r}: {_difference(expected[key], found[key])}"
        return f"found extra keys {sorted(set(found) - set(expected))}"
    return f"expected {expected!r}, found {found!r}"


# ---------------------------------------------------------------------------
# Runs: checkpoints/iter_000123/ folders plus a ``latest`` pointer


def iteration_path(run_dir: Path, iteration: int) -> Path:
    """``<run_dir>/checkpoints/iter_<iteration, 6+ digits>``."""
    return Path(run_dir) / CHECKPOINTS_DIR / f"iter_{int(iteration):06d}"


def save_run_checkpoint(run_dir: Path, iteration: int, tensors: Mapping[str, torch.Tensor],
                        meta: Mapping[str, Any]) -> Path:
    """Save iteration ``iteration`` of a run and point ``checkpoints/latest`` at it (both atomically).

    The pointer is written after the folder is complete, so it never names a
    checkpoint that is not there.
    """
    path = save_checkpoint(iteration_path(run_dir, iteration), tensors, meta)
    atomic_write_text(path.parent / LATEST_FILE, path.name + "\n")
    return path


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint ``checkpoints/latest`` names, else the highest-numbered one, else None.

    Whether it is intact is for :func:`load_checkpoint` to say (:func:`resume_checkpoint`
    finds the newest intact one): an unreadable checkpoint is never passed over in silence.
    """
    folder = Path(run_dir) / CHECKPOINTS_DIR
    pointer = folder / LATEST_FILE
    if pointer.is_file():
        try:
            name = pointer.read_text().strip()
        except (OSError, UnicodeDecodeError):
            name = ""
        if _ITER_RE.fullmatch(name) and ((folder / name).is_dir() or (folder / f".{name}.old").is_dir()):
            return folder / name  # if only the backup is there, load_checkpoint reads it
    found = _iteration_folders(folder)
    return found[-1][1] if found else None


def policy_checkpoint(name_or_path: str | Path) -> Path:
    """The checkpoint folder a policy argument names: a checkpoint or policy folder as it is, a run
    folder's latest checkpoint, or a shipped skill's policy folder (``humanoid/run``)."""
    from mimic_policy.skills import resolve_policy

    path = resolve_policy(name_or_path)
    if not (path / CHECKPOINTS_DIR).is_dir():
        return path
    latest = latest_checkpoint(path)
    if latest is None:
        raise FileNotFoundError(f"run folder {path} has no checkpoint")
    return latest


def newest_intact_checkpoint(run_dir: Path, exclude: Path | None = None) -> Path | None:
    """The highest-numbered checkpoint of the run (other than ``exclude``) that loads, with its
    hashes verified; None if none does."""
    folder = Path(run_dir) / CHECKPOINTS_DIR
    numbers = {number for number, _ in _iteration_folders(folder)}
    if folder.is_dir():  # a save interrupted between its renames leaves only the backup
        numbers.update(int(m.group(1)) for p in folder.glob(".iter_*.old") if (m := _ITER_RE.search(p.name)))
    for number in sorted(numbers, reverse=True):
        path = iteration_path(run_dir, number)
        if path == exclude:
            continue
        try:
            load_checkpoint(path)
        except CheckpointError:
            continue
        return path
    return None


@dataclasses.dataclass(frozen=True)
class Restored:
    """A checkpoint read and verified to continue a run from (:func:`resume_checkpoint`)."""

    path: Path
    tensors: dict[str, torch.Tensor]
    meta: dict
    corrupt: Path | None = None  # the corrupt latest checkpoint passed over (``from_intact``)


def resume_checkpoint(run_dir: Path, from_intact: bool = False) -> Restored:
    """The checkpoint to continue ``run_dir`` from, read once (its contents serve the task and the
    trainer's state).

    That is the latest (:func:`latest_checkpoint`), verified.  If it is corrupt, this
    raises a :class:`CheckpointError` saying so and naming the newest intact checkpoint,
    or, with ``from_intact``, returns that one (the iterations after it are lost).
    """
    latest = latest_checkpoint(run_dir)
    if latest is None:
        raise FileNotFoundError(f"no checkpoint in {Path(run_dir) / CHECKPOINTS_DIR} to resume from")
    try:
        return Restored(latest, *load_checkpoint(latest))
    except CheckpointError as exc:
        intact = newest_intact_checkpoint(run_dir, exclude=latest)
        if intact is None:
            raise CheckpointError(f"the latest checkpoint is corrupt and no other checkpoint of {run_dir} "
                                  f"is intact: {exc}") from exc
        if not from_intact:
            raise CheckpointError(f"the latest checkpoint is corrupt: {exc}; the newest intact one is {intact}: "
                                  "resume from it with --from-intact") from exc
        return Restored(intact, *load_checkpoint(intact), corrupt=latest)


def prune(run_dir: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest iteration checkpoints (never the one ``latest`` names); return removed.

    Also removes temporary folders left by saves that crashed, and backups whose
    checkpoint is in place.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    folder = Path(run_dir) / CHECKPOINTS_DIR
    found = _iteration_folders(folder)
    latest = latest_checkpoint(run_dir)
    removed = []
    for _, path in found[:-keep]:
        if latest is not None and path == latest:
            continue
        shutil.rmtree(path)
        removed.append(path)
    if folder.is_dir():
        for stale in folder.glob(".iter_*.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for backup in folder.glob(".iter_*.old"):
            if (folder / backup.name[1 : -len(".old")]).is_dir():
                shutil.rmtree(backup, ignore_errors=True)
    return removed


def _iteration_folders(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _ITER_RE.fullmatch(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found)
