"""Policy checkpoints: exact round trips, tamper and crash safety, character checks, and never a pickle."""

from __future__ import annotations

import json
import os
import pickle
import random
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import safetensors.torch
import torch

from mimic_policy import checkpoint as ckpt
from mimic_policy.checkpoint import (
    CheckpointError,
    character_meta,
    flatten_state,
    latest_checkpoint,
    load_checkpoint,
    prune,
    rng_state,
    save_checkpoint,
    save_run_checkpoint,
    set_rng_state,
    unflatten_state,
)

JOINTS = ["hip_x", "hip_y", "hip_z", "knee", "ankle"]


def _meta(**overrides: object) -> dict:
    meta = {
        "character": "humanoid",
        "joint_names": JOINTS,
        "observation_size": 197,
        "clip": 0.2,
        "control_hz": 30,
        "physics_hz": 1200,
        "config": {"lr": 3e-4, "hidden": [256, 256], "note": None},
        "counters": {"iteration": 3, "samples": 4096},
    }
    meta.update(overrides)
    return meta


def _tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    big = torch.randn(4, 6, generator=g)
    return {
        "model.net.0.weight": torch.randn(8, 5, generator=g),
        "model.net.0.bias": torch.zeros(8, dtype=torch.float64),
        "normalizer.count": torch.tensor(12345, dtype=torch.int64),
        "normalizer.mean": torch.randn(197, generator=g),
        "half": torch.randn(3, generator=g).to(torch.bfloat16),
        "empty": torch.zeros(0, 3),
        "view": big[1:3],  # a slice of a larger storage
        "transposed": big.t(),  # not contiguous
    }


def _leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


# ---------------------------------------------------------------------------
# Round trips


def test_tensors_and_meta_round_trip(tmp_path: Path) -> None:
    tensors = _tensors()
    path = save_checkpoint(tmp_path / "ck", tensors, _meta(bounds=np.array([-np.inf, 1.5])))
    assert path == tmp_path / "ck"
    assert sorted(p.name for p in path.iterdir()) == ["meta.json", "weights.safetensors"]
    loaded, meta = load_checkpoint(path)
    assert loaded.keys() == tensors.keys()
    for key, value in tensors.items():
        assert loaded[key].dtype == value.dtype and torch.equal(loaded[key], value), key
    for key, value in _meta().items():
        assert meta[key] == value, key
    assert meta["bounds"] == [-np.inf, 1.5]
    assert meta["format_version"] == ckpt.FORMAT_VERSION
    assert len(meta["weights_sha256"]) == 64
    assert meta["code_version"]["mimic"]  # the package version; the git commit where there is a checkout
    assert meta["created"].endswith("+00:00")
    assert json.loads((path / "meta.json").read_text()) == meta
    assert load_checkpoint(path / "meta.json")[1] == meta  # the files also name their folder
    assert _leftovers(tmp_path, "ck") == []


def test_save_replaces_older_checkpoint(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "ck", _tensors(0), _meta())
    save_checkpoint(tmp_path / "ck", _tensors(1), _meta(counters={"iteration": 4, "samples": 8192}))
    loaded, meta = load_checkpoint(tmp_path / "ck")
    assert torch.equal(loaded["normalizer.mean"], _tensors(1)["normalizer.mean"])
    assert meta["counters"]["iteration"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


def test_flatten_state_keeps_types_exactly() -> None:
    t = torch.arange(3.0)
    state = {
        "state": {0: {"step": torch.tensor(2.0), "buf": t}, "0": {"x": t * 2}},
        "groups": [{"betas": (0.9, 0.999), "eps": 1e-8, "decay": 0, "flag": False, "fused": None,
                    "lr": torch.tensor(0.5), "big": 2**80, "inf": float("inf"), "nan": float("nan")}],
        "__dunder": {(1, "a"): "tuple key"},
    }
    tensors, skeleton = flatten_state("opt", state)
    assert all(k.startswith("opt.") for k in tensors)
    assert all(isinstance(v, torch.Tensor) for v in tensors.values())
    skeleton = json.loads(json.dumps(skeleton, allow_nan=False))  # strict JSON, as it travels in meta.json
    back = unflatten_state("opt", tensors, skeleton)
    assert back.keys() == state.keys()
    assert set(back["state"]) == {0, "0"}
    assert torch.equal(back["state"][0]["buf"], t) and torch.equal(back["state"]["0"]["x"], t * 2)
    group = back["groups"][0]
    assert group["betas"] == (0.9, 0.999) and isinstance(group["betas"], tuple)
    assert type(group["decay"]) is int and group["flag"] is False and group["fused"] is None
    assert group["big"] == 2**80 and group["inf"] == float("inf") and np.isnan(group["nan"])
    assert torch.equal(group["lr"], torch.tensor(0.5))
    assert back["__dunder"] == {(1, "a"): "tuple key"}
    # without a skeleton: a flat module state dict
    assert unflatten_state("m", {"m.a.weight": t, "other": t}) == {"a.weight": t}
    with pytest.raises(CheckpointError, match="missing"):
        unflatten_state("opt", {}, skeleton)
    with pytest.raises(TypeError, match=r"opt\.bad"):
        flatten_state("opt", {"bad": object()})


def _train(model: torch.nn.Module, opt: torch.optim.Optimizer, steps: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, y = torch.randn(16, 5, generator=g), torch.randn(16, 2, generator=g)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def _assert_identical(a: object, b: object) -> None:
    assert type(a) is type(b), (a, b)
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_identical(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_identical(x, y)
    else:
        assert a == b


def test_adam_state_round_trip_gives_identical_next_step(tmp_path: Path) -> None:
    model = _net(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.8, 0.95), weight_decay=1e-4, amsgrad=True)
    _train(model, opt, steps=3, seed=1)
    tensors, skeleton = flatten_state("optimizer", opt.state_dict())
    tensors.update(flatten_state("model", model.state_dict())[0])
    save_checkpoint(tmp_path / "ck", tensors, _meta(optimizer=skeleton))

    loaded, meta = load_checkpoint(tmp_path / "ck")
    restored_state = unflatten_state("optimizer", loaded, meta["optimizer"])
    _assert_identical(restored_state, opt.state_dict())
    model2 = _net(99)  # different initial weights, different optimizer settings: all must come from the checkpoint
    opt2 = torch.optim.Adam(model2.parameters(), lr=1.0)
    model2.load_state_dict(unflatten_state("model", loaded))
    opt2.load_state_dict(restored_state)

    _train(model, opt, steps=1, seed=2)
    _train(model2, opt2, steps=1, seed=2)
    for (name, p1), p2 in zip(model.named_parameters(), model2.parameters(), strict=True):
        assert torch.equal(p1, p2), name
    _assert_identical(opt2.state_dict(), opt.state_dict())


def _draws(gen: np.random.Generator) -> list:
    return [torch.rand(3).tolist(), torch.randint(0, 10**6, (2,)).tolist(), np.random.rand(3).tolist(),
            float(np.random.randn()), random.random(), random.gauss(0.0, 1.0), gen.random(3).tolist(),
            gen.integers(0, 2**62, 2).tolist()]


@pytest.mark.parametrize("bit_generator", [np.random.PCG64, np.random.MT19937, np.random.Philox])
def test_rng_round_trip(tmp_path: Path, bit_generator: type) -> None:
    gen = np.random.Generator(bit_generator(7))
    _draws(gen)
    np.random.randn()  # leaves a cached Gaussian in numpy's global state
    random.gauss(0.0, 1.0)  # and in Python's
    save_checkpoint(tmp_path / "ck", rng_state(gen), {})
    expected = _draws(gen)
    _draws(gen)

    tensors, _ = load_checkpoint(tmp_path / "ck")
    assert all(v.dtype == torch.uint8 for k, v in tensors.items() if k.startswith("rng."))
    set_rng_state(tensors, gen)
    assert _draws(gen) == expected
    fresh = np.random.Generator(bit_generator())
    set_rng_state(tensors, fresh)
    assert fresh.random(3).tolist() == expected[6]
    with pytest.raises(CheckpointError, match="expected a SFC64 state"):
        set_rng_state(tensors, np.random.Generator(np.random.SFC64()))


# ---------------------------------------------------------------------------
# Corrupt and tampered files


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "ck", _tensors(), _meta())
    weights = path / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"weights\.safetensors: SHA-256 hash does not match") as exc:
        load_checkpoint(path)
    assert str(weights) in str(exc.value)


def test_truncated_weights_are_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "ck", _tensors(), _meta())
    weights, meta_file = path / "weights.safetensors", path / "meta.json"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="hash does not match") as exc:
        load_checkpoint(path)
    assert str(weights) in str(exc.value)
    # even with a hash that matches the truncated file, the parser refuses it
    _rehash(path)
    with pytest.raises(CheckpointError, match="not a valid safetensors file") as exc:
        load_checkpoint(path)
    assert str(weights) in str(exc.value)
    meta_file.write_text("{not json")
    with pytest.raises(CheckpointError, match=r"meta\.json: cannot read"):
        load_checkpoint(path)


def _rehash(path: Path) -> None:
    """Make meta.json's hashes match the files again (what a deliberate forger would do)."""
    import hashlib

    from mimic_sim.task import content_sha256

    meta = json.loads((path / "meta.json").read_text())
    meta["weights_sha256"] = hashlib.sha256((path / "weights.safetensors").read_bytes()).hexdigest()
    meta[ckpt.META_HASH] = content_sha256({k: v for k, v in meta.items() if k != ckpt.META_HASH})
    (path / "meta.json").write_text(json.dumps(meta))


def test_newer_format_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "ck", _tensors(), _meta())
    meta = json.loads((path / "meta.json").read_text())
    meta["format_version"] = ckpt.FORMAT_VERSION + 1
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"format_version.*newer mimic"):
        load_checkpoint(path)


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nothing")


# ---------------------------------------------------------------------------
# Expectations: character, joint order, observation size


@pytest.mark.parametrize(("expect", "words"), [
    ({"character": "walker"}, ["'character'", "'walker'", "'humanoid'"]),
    ({"joint_names": ["hip_x", "hip_z", "hip_y", "knee", "ankle"]}, ["'joint_names'", "index 1", "'hip_z'", "'hip_y'"]),
    ({"joint_names": [*JOINTS, "toe"]}, ["'joint_names'", "expected 6 entries, found 5", "'toe'"]),
    ({"observation_size": 196}, ["'observation_size'", "expected 196", "found 197"]),
    ({"action_layout": {"lower": [-1.0]}}, ["'action_layout' is missing"]),
])
def test_mismatch_names_field_expected_and_found(tmp_path: Path, expect: dict, words: list[str]) -> None:
    path = save_checkpoint(tmp_path / "ck", _tensors(), _meta())
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path, expect=expect)
    for word in words:
        assert word in str(exc.value)


def test_matching_expectations_pass(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "ck", _tensors(), _meta())
    _, meta = load_checkpoint(path, expect={"character": "humanoid", "joint_names": tuple(JOINTS),
                                            "observation_size": np.int64(197), "clip": 0.2})
    assert meta["character"] == "humanoid"


def test_character_meta(tmp_path: Path) -> None:
    character = SimpleNamespace(name="biped", joint_names=["a", "b"], tracked_bodies=["pelvis", "foot"],
                                joint_lower=np.array([-1.0, -np.inf]), joint_upper=np.array([1.0, np.inf]),
                                kp=np.array([100.0, 50.0]), kd=np.array([10.0, 5.0]),
                                torque_limit=np.array([200.0, 100.0]), armature=np.array([0.05, 0.0]))
    meta = character_meta(character)
    assert meta["observation_size"] == 2 + 13 * 2
    assert meta["observation_layout"][0] == ["phase", 0, 1]
    assert meta["action_layout"] == {"joint_names": ["a", "b"], "lower": [-1.0, -np.inf], "upper": [1.0, np.inf]}
    path = save_checkpoint(tmp_path / "ck", _tensors(), meta)
    load_checkpoint(path, expect=character_meta(character))
    with pytest.raises(CheckpointError, match=r"'pd'.*'kp'"):
        load_checkpoint(path, expect={"pd": {**meta["pd"], "kp": [100.0, 51.0]}})
    with pytest.raises(CheckpointError, match=r"'pd'.*'armature'"):  # trained with other rotor inertia
        load_checkpoint(path, expect={"pd": {**meta["pd"], "armature": [0.0, 0.0]}})


# ---------------------------------------------------------------------------
# Crash safety


def _failing_replace(monkeypatch: pytest.MonkeyPatch, from_call: int, until_call: int | None = None) -> None:
    """os.replace fails on calls from_call..until_call (1-based; None: every later one)."""
    real, calls = os.replace, [0]

    def replace(src: object, dst: object) -> None:
        calls[0] += 1
        if calls[0] >= from_call and (until_call is None or calls[0] <= until_call):
            raise OSError(f"simulated crash at rename {calls[0]}")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)


def test_failure_before_swap_keeps_old_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_checkpoint(tmp_path / "ck", _tensors(0), _meta())
    _failing_replace(monkeypatch, from_call=2, until_call=2)  # new folder is written; moving it into place fails
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(tmp_path / "ck", _tensors(1), _meta(clip=0.1))
    loaded, meta = load_checkpoint(tmp_path / "ck")
    assert meta["clip"] == 0.2 and torch.equal(loaded["normalizer.mean"], _tensors(0)["normalizer.mean"])
    assert _leftovers(tmp_path, "ck") == []


@pytest.mark.parametrize("crash_at", [1, 2])
def test_crash_at_any_rename_leaves_a_complete_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          crash_at: int) -> None:
    """From the crash on nothing is renamed (not even the rollback), as if the process had died there."""
    save_checkpoint(tmp_path / "ck", _tensors(0), _meta())
    with monkeypatch.context() as m:
        _failing_replace(m, from_call=crash_at)
        m.setattr(ckpt.shutil, "rmtree", lambda *a, **k: None)  # a dead process cleans nothing up either
        with pytest.raises(OSError, match="simulated crash"):
            save_checkpoint(tmp_path / "ck", _tensors(1), _meta(clip=0.1))
    assert (tmp_path / "ck").is_dir() == (crash_at == 1)
    loaded, meta = load_checkpoint(tmp_path / "ck")  # the old one, from the backup after crash 2
    assert meta["clip"] == 0.2 and torch.equal(loaded["normalizer.mean"], _tensors(0)["normalizer.mean"])
    # the next save completes and clears what the crash left
    save_checkpoint(tmp_path / "ck", _tensors(2), _meta(clip=0.3))
    assert load_checkpoint(tmp_path / "ck")[1]["clip"] == 0.3
    assert _leftovers(tmp_path, "ck") == []


def test_failure_while_writing_weights_keeps_old(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_checkpoint(tmp_path / "ck", _tensors(0), _meta())

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "ck", _tensors(1), _meta(clip=0.1))
    assert load_checkpoint(tmp_path / "ck")[1]["clip"] == 0.2
    assert _leftovers(tmp_path, "ck") == []


def test_bad_inputs_write_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="'config'"):
        save_checkpoint(tmp_path / "ck", _tensors(), _meta(config={"fn": print}))
    with pytest.raises(TypeError, match="not a tensor"):
        save_checkpoint(tmp_path / "ck", {"x": [1.0, 2.0]}, {})  # type: ignore[dict-item]
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="refusing to replace"):
        save_checkpoint(tmp_path / "run", _tensors(), {})
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"


# ---------------------------------------------------------------------------
# Never a pickle


class _Payload:
    """Unpickling this creates a folder: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.mkdir, (str(self.marker),))


def test_pt_file_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    pt = tmp_path / "policy.pt"
    pt.write_bytes(pickle.dumps({"model": _Payload(marker)}))
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(pt)
    assert not marker.exists()


def test_pickle_disguised_as_safetensors_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = save_checkpoint(tmp_path / "ck", _tensors(), _meta())
    (path / "weights.safetensors").write_bytes(pickle.dumps({"w": _Payload(marker)}))
    _rehash(path)  # the attacker also fixes up the hash
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_checkpoint(path)
    assert not marker.exists()


def test_safetensors_header_with_non_tensor_entry_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "ck", _tensors(), _meta())
    header = json.dumps({"w": {"dtype": "object", "shape": [1], "data_offsets": [0, 8]},
                         "__metadata__": {"format": "pickle"}}).encode()
    (path / "weights.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\x80\x04N." + b"\0" * 4)
    _rehash(path)
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_checkpoint(path)


def test_loading_never_touches_pickle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_checkpoint(tmp_path / "ck", {**_tensors(), **rng_state(np.random.default_rng(0))}, _meta())

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle used")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    tensors, _ = load_checkpoint(path)
    set_rng_state(tensors, np.random.default_rng(1))


# ---------------------------------------------------------------------------
# Runs: latest pointer and pruning


def test_latest_checkpoint_and_prune(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert latest_checkpoint(run) is None
    for iteration in (1, 2, 3, 10):
        save_run_checkpoint(run, iteration, _tensors(iteration), _meta(counters={"iteration": iteration}))
    folder = run / "checkpoints"
    assert (folder / "latest").read_text().strip() == "iter_000010"
    assert latest_checkpoint(run) == folder / "iter_000010"
    assert load_checkpoint(latest_checkpoint(run))[1]["counters"]["iteration"] == 10

    (folder / "latest").write_text("iter_000002\n")  # the pointer wins over the highest number
    assert latest_checkpoint(run) == folder / "iter_000002"
    (folder / "latest").write_text("../../elsewhere\n")  # not a checkpoint name: fall back to the highest
    assert latest_checkpoint(run) == folder / "iter_000010"
    (folder / "latest").unlink()
    assert latest_checkpoint(run) == folder / "iter_000010"

    (folder / "latest").write_text("iter_000001\n")
    (folder / ".iter_000004.tmp-dead").mkdir()  # left by a save that crashed
    removed = prune(run, keep=2)
    assert removed == [folder / "iter_000002"]  # iter_000001 is what latest names
    assert sorted(p.name for p in folder.iterdir()) == ["iter_000001", "iter_000003", "iter_000010", "latest"]
    (folder / "latest").write_text("iter_000010\n")
    assert prune(run, keep=1) == [folder / "iter_000001", folder / "iter_000003"]
    assert latest_checkpoint(run) == folder / "iter_000010"
    with pytest.raises(ValueError, match="keep"):
        prune(run, keep=0)


def _corrupt(path: Path) -> None:
    weights = path / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))


def test_resume_checkpoint_refuses_a_corrupt_latest_and_names_the_newest_intact(tmp_path: Path) -> None:
    from mimic_policy.checkpoint import newest_intact_checkpoint, resume_checkpoint

    run = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        resume_checkpoint(run)
    for iteration in (1, 2, 3, 4):
        save_run_checkpoint(run, iteration, _tensors(iteration), _meta())
    folder = run / "checkpoints"
    restored = resume_checkpoint(run)
    assert (restored.path, restored.corrupt) == (folder / "iter_000004", None)
    assert torch.equal(restored.tensors["model.net.0.weight"], _tensors(4)["model.net.0.weight"])  # its contents

    _corrupt(folder / "iter_000004")
    (folder / "iter_000003" / "meta.json").unlink()  # not even a checkpoint any more: never passed over silently
    assert newest_intact_checkpoint(run) == folder / "iter_000002"
    with pytest.raises(CheckpointError) as exc:
        resume_checkpoint(run)
    message = str(exc.value)
    assert message.startswith(f"the latest checkpoint is corrupt: {folder / 'iter_000004' / 'weights.safetensors'}")
    assert message.endswith(f"the newest intact one is {folder / 'iter_000002'}: resume from it with --from-intact")
    restored = resume_checkpoint(run, from_intact=True)
    assert (restored.path, restored.corrupt) == (folder / "iter_000002", folder / "iter_000004")

    (folder / "latest").unlink()  # without the pointer, the highest number is the latest: the same answers
    restored = resume_checkpoint(run, from_intact=True)
    assert (restored.path, restored.corrupt) == (folder / "iter_000002", folder / "iter_000004")
    for iteration in (1, 2):
        _corrupt(folder / f"iter_{iteration:06d}")
    with pytest.raises(CheckpointError, match=r"no other checkpoint of .* is intact"):
        resume_checkpoint(run, from_intact=True)


@pytest.mark.parametrize("target", ["save_file", "replace", "pointer"])
def test_an_interrupt_in_a_run_checkpoint_save_keeps_the_latest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                target: str) -> None:
    """A second Ctrl-C raises KeyboardInterrupt wherever the save is (writing, moving the folder in
    place, pointing ``latest`` at it): the latest checkpoint is still the old one, whole."""
    run = tmp_path / "run"
    save_run_checkpoint(run, 1, _tensors(1), _meta(clip=0.1))

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    where = {"save_file": (safetensors.torch, "save_file"), "replace": (os, "replace"),
             "pointer": (ckpt, "atomic_write_text")}[target]
    with monkeypatch.context() as m:
        m.setattr(*where, interrupted)
        with pytest.raises(KeyboardInterrupt):
            save_run_checkpoint(run, 2, _tensors(2), _meta(clip=0.2))
    tensors, meta = load_checkpoint(latest_checkpoint(run))
    assert meta["clip"] == 0.1 and torch.equal(tensors["normalizer.mean"], _tensors(1)["normalizer.mean"])
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")) == []


def test_a_task_stored_before_a_setting_existed_matches_it_at_its_default(tmp_path: Path) -> None:
    """A run trained before ``init`` was added resumes (the checkpoint's task lacks it); a task that
    differs in it does not."""
    from mimic_sim.task import Task

    task = Task.resolve().to_dict()
    old = json.loads(json.dumps(task))
    del old["config"]["init"]
    path = save_checkpoint(tmp_path / "ck", _tensors(), {**_meta(), "task": old})
    load_checkpoint(path, expect={"task": task})
    adaptive = Task.resolve().replace(init="adaptive").to_dict()
    assert adaptive["config"]["init"] == "adaptive"
    with pytest.raises(CheckpointError, match="field 'task' does not match"):
        load_checkpoint(path, expect={"task": adaptive})
