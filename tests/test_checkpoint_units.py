"""The checkpoint module's parts, each against what it must produce: state flattening, RNG states,
metadata helpers, tensor preparation, the expect check's messages, the run folder's pointer and pruning."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

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

# ----------------------------------------------------------------------------- nested state


def test_tensor_keys_follow_the_path_through_dicts_lists_tuples_and_int_keys():
    a, b, c, d = (torch.full((2,), float(i)) for i in range(4))
    tensors, skeleton = flatten_state("opt", {"state": {0: {"exp_avg": a}}, "l": [b], "t": (c, d)})
    assert set(tensors) == {"opt.state.0.exp_avg", "opt.l.0", "opt.t.0", "opt.t.1"}
    assert tensors["opt.t.1"] is d and tensors["opt.l.0"] is b
    assert skeleton["t"] == {"__tuple__": [{"__tensor__": "opt.t.0"}, {"__tensor__": "opt.t.1"}]}
    assert skeleton["state"] == {"__dict__": [[0, {"exp_avg": {"__tensor__": "opt.state.0.exp_avg"}}]]}


def test_paths_that_spell_the_same_key_get_numbered():
    t = [torch.tensor([float(i)]) for i in range(3)]
    state = {"a.b.c": t[0], "a.b": {"c": t[1]}, "a": {"b.c": t[2]}}
    tensors, skeleton = flatten_state("p", state)
    assert list(tensors) == ["p.a.b.c", "p.a.b.c#1", "p.a.b.c#2"]
    assert [tensors[k].item() for k in tensors] == [0.0, 1.0, 2.0]
    again = unflatten_state("p", tensors, skeleton)
    assert again["a.b"]["c"] is t[1] and again["a"]["b.c"] is t[2]


def test_plain_values_are_kept_and_numpy_scalars_become_python_ones():
    tensors, skeleton = flatten_state("p", {"n": np.int64(3), "b": np.bool_(True), "x": 1.5, "s": "adam", "z": None,
                                            "inf": math.inf, "nan": math.nan, "d": {"__hidden": 1}})
    assert tensors == {}
    assert skeleton["n"] == 3 and type(skeleton["n"]) is int and skeleton["b"] is True
    assert skeleton["x"] == 1.5 and skeleton["s"] == "adam" and skeleton["z"] is None
    assert skeleton["inf"] == {"__float__": "inf"} and skeleton["nan"] == {"__float__": "nan"}
    assert skeleton["d"] == {"__dict__": [["__hidden", 1]]}  # a key that could pass for a tag is stored apart
    state = unflatten_state("p", tensors, skeleton)
    assert state["inf"] == math.inf and math.isnan(state["nan"]) and state["d"] == {"__hidden": 1}


def test_a_round_trip_keeps_types():
    t = torch.ones(3)
    state = {"param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "params": [0, 1]}], "state": {1: {"step": t}},
             "keys": {(1, "a"): "tuple key"}}
    tensors, skeleton = flatten_state("opt", state)
    again = unflatten_state("opt", tensors, json.loads(json.dumps(skeleton)))
    assert again == state
    assert type(again["param_groups"][0]["betas"]) is tuple and list(again["state"]) == [1]
    assert list(again["keys"]) == [(1, "a")]


def test_what_cannot_be_stored_is_refused_with_its_path():
    with pytest.raises(TypeError, match=r"^'p\.s': cannot store a set in a checkpoint$"):
        flatten_state("p", {"s": {1}})
    with pytest.raises(TypeError, match=r"^'p': state must be a mapping, got list$"):
        flatten_state("p", [1])
    with pytest.raises(TypeError, match=r"^'p\.tensor\(\[1\.\]\)': a tensor cannot be a dict key$"):
        flatten_state("p", {torch.ones(1): 1})
    with pytest.raises(TypeError, match=r"^'p\.\(1, tensor\(\[1\.\]\)\)\.1': a tensor cannot be a dict key$"):
        flatten_state("p", {(1, torch.ones(1)): 1})  # inside a tuple key too


def test_a_skeleton_is_checked_against_the_tensors():
    tensors, skeleton = flatten_state("p", {"a": torch.ones(1)})
    with pytest.raises(CheckpointError, match=r"skeleton refers to tensor 'q\.a' outside 'p\.'"):
        unflatten_state("p", {"q.a": torch.ones(1)}, {"a": {"__tensor__": "q.a"}})
    with pytest.raises(CheckpointError, match=r"skeleton refers to tensor 5 outside 'p\.'"):
        unflatten_state("p", tensors, {"a": {"__tensor__": 5}})
    with pytest.raises(CheckpointError, match=r"^state 'p': tensor 'p\.a' is missing from the weights$"):
        unflatten_state("p", {}, skeleton)
    extra = {f"p.x{i}": torch.ones(1) for i in range(7)}
    with pytest.raises(CheckpointError, match=r"^state 'p': weights hold tensors the skeleton does not mention: "
                                              r"\['p\.x0', 'p\.x1', 'p\.x2', 'p\.x3', 'p\.x4'\]$"):
        unflatten_state("p", {**tensors, **extra}, skeleton)
    assert unflatten_state("p", {"p.w": tensors["p.a"], "q.w": torch.zeros(1)}) == {"w": tensors["p.a"]}


# ----------------------------------------------------------------------------- random number generators


def test_every_generator_continues_where_it_was_saved():
    generator = np.random.default_rng(3)
    saved = rng_state(generator)
    assert set(saved) == {"rng.torch", "rng.numpy", "rng.python", "rng.generator"}

    def draws() -> list[float]:
        return [torch.rand(1).item(), float(np.random.rand()), random.random(), float(generator.random())]

    first = draws()
    set_rng_state(saved, generator)
    assert draws() == first
    # the torch state read back with another dtype (as a reader may widen it) still restores
    set_rng_state({**saved, "rng.torch": saved["rng.torch"].to(torch.int64)}, generator)
    assert draws() == first


def test_generator_states_are_checked():
    saved = rng_state(np.random.default_rng(0))
    with pytest.raises(CheckpointError,
                       match=r"^checkpoint holds no state for the numpy Generator \('rng\.generator'\)$"):
        set_rng_state({k: v for k, v in saved.items() if k != "rng.generator"}, np.random.default_rng(0))
    with pytest.raises(CheckpointError, match=r"^field 'rng\.generator': expected a Philox state, found 'PCG64'$"):
        set_rng_state(saved, np.random.Generator(np.random.Philox(0)))
    garbage = torch.frombuffer(bytearray(b'["MT19937"]'), dtype=torch.uint8)
    with pytest.raises(CheckpointError, match=r"^invalid RNG state in checkpoint: "):
        set_rng_state({"rng.numpy": garbage})


def test_cuda_states_go_to_their_devices(monkeypatch):
    """Without a GPU here, torch.cuda is replaced by a recorder: states are saved per device and
    restored in device order, to as many devices as there are."""
    restored: list[tuple[int, int]] = []
    states = [torch.full((4,), i, dtype=torch.uint8) for i in range(3)]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append((int(state[0]), device)))
    saved = rng_state()
    assert [saved[f"rng.cuda.{i}"][0].item() for i in range(3)] == [0, 1, 2]
    tensors = {"rng.cuda.10": torch.full((4,), 10, dtype=torch.uint8),
               "rng.cuda.2": torch.full((4,), 2, dtype=torch.uint8), "rng.cuda.0": states[0]}
    set_rng_state(tensors)
    assert restored == [(0, 0), (2, 2)]  # devices 0, 2, 10 in order; two devices here


def test_cuda_states_are_skipped_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda *args: pytest.fail("no CUDA to restore"))
    set_rng_state({"rng.cuda.0": torch.zeros(4, dtype=torch.uint8)})


# ----------------------------------------------------------------------------- metadata


def test_character_meta_with_its_defaults_and_with_everything_given():
    from mimic_sim.character import load_character

    humanoid = load_character("humanoid")
    meta = character_meta(humanoid)
    assert meta["character"] == "humanoid" and meta["joint_names"] == humanoid.joint_names
    assert meta["observation_bodies"] == humanoid.tracked_bodies and meta["observation_size"] == 197
    assert meta["observation_layout"][-1] == ["body_ang_vel", 152, 45]
    assert meta["action_layout"] == {"joint_names": humanoid.joint_names, "lower": list(humanoid.joint_lower),
                                     "upper": list(humanoid.joint_upper)}
    assert meta["pd"] == {"kp": list(humanoid.kp), "kd": list(humanoid.kd),
                          "torque_limit": list(humanoid.torque_limit), "armature": list(humanoid.armature)}
    bodies = humanoid.tracked_bodies[:3]
    lower, upper = -np.ones(28), np.full(28, 2.0)
    given = character_meta(humanoid, bodies, lower, upper, target_observation=True)
    assert given["observation_bodies"] == bodies and given["observation_size"] == 2 + 20 * 3
    assert given["observation_layout"][-1] == ["target_body_quat", 50, 12]
    assert given["action_layout"]["lower"] == [-1.0] * 28 and given["action_layout"]["upper"] == [2.0] * 28
    assert all(type(v) is float for v in given["action_layout"]["lower"])


def test_meta_values_are_converted_to_json_or_refused(tmp_path):
    meta = {"small": torch.zeros(1024), "array": np.arange(3), "path": Path("runs/walk")}
    _, loaded = load_checkpoint(save_checkpoint(tmp_path / "c", {"w": torch.ones(1)}, meta))
    assert loaded["small"] == [0.0] * 1024 and loaded["array"] == [0, 1, 2] and loaded["path"] == "runs/walk"
    with pytest.raises(TypeError, match=r"^meta field 'big' is not JSON-serializable: a Tensor is not JSON; put "
                                        r"tensors in the weights, not in meta$"):
        save_checkpoint(tmp_path / "d", {"w": torch.ones(1)}, {"big": torch.zeros(1025)})
    assert not (tmp_path / "d").exists()


# ----------------------------------------------------------------------------- tensors


def test_views_and_shared_tensors_are_stored_whole(tmp_path):
    base = torch.arange(10.0)
    tied = torch.ones(3)
    tensors = {"strided": base[::2], "slice": base[2:5], "tied_a": tied, "tied_b": tied, "empty": torch.zeros(0),
               "base": base}
    loaded, _ = load_checkpoint(save_checkpoint(tmp_path / "c", tensors, {}))
    for key, value in tensors.items():
        assert torch.equal(loaded[key], value), key


@pytest.mark.parametrize(("name", "value", "error", "message"), [
    ("", torch.ones(1), CheckpointError, r"^invalid tensor name ''$"),
    ("__metadata__", torch.ones(1), CheckpointError, r"^invalid tensor name '__metadata__'$"),
    (3, torch.ones(1), CheckpointError, r"^invalid tensor name 3$"),
    ("w", [1.0], TypeError, r"^'w' is a list, not a tensor; non-tensor data belongs in meta$"),
])
def test_bad_tensor_entries_are_refused(tmp_path, name, value, error, message):
    with pytest.raises(error, match=message):
        save_checkpoint(tmp_path / "c", {name: value}, {})


# ----------------------------------------------------------------------------- loading


def _saved(tmp_path: Path, meta: dict) -> Path:
    return save_checkpoint(tmp_path / "c", {"w": torch.ones(1)}, meta)


def test_format_versions_are_told_apart(tmp_path):
    path = _saved(tmp_path, {})
    meta = json.loads((path / "meta.json").read_text())
    for version, message in ((3, r"field 'format_version' is 3, written by a newer mimic; this one reads format 2$"),
                             ("3", r"field 'format_version': expected 2, found '3'$"),
                             (1, r"field 'format_version': expected 2, found 1$")):
        (path / "meta.json").write_text(json.dumps({**meta, "format_version": version}))
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(path)


def test_an_edited_or_unhashed_meta_is_refused(tmp_path):
    path = _saved(tmp_path, {"control_hz": 30})
    meta = json.loads((path / "meta.json").read_text())
    (path / "meta.json").write_text(json.dumps({**meta, "control_hz": 1000}))
    with pytest.raises(CheckpointError, match=r"content does not match its hash 'meta_sha256'; the file was edited "
                                              r"or is corrupt \(a checkpoint's description is not to be changed by "
                                              r"hand\)$"):
        load_checkpoint(path)
    (path / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "meta_sha256"}))
    with pytest.raises(CheckpointError, match=r"meta\.json: field 'meta_sha256' is missing$"):
        load_checkpoint(path)


@pytest.mark.parametrize(("stored", "wanted", "message"), [
    (["a", "b"], ["a", "x"], r"expected 'x' at index 1, found 'b'"),
    (["a", "b"], ["a", "b", "c"], r"expected 3 entries, found 2; first missing 'c' at index 2"),
    (["a", "b", "c"], ["a", "b"], r"expected 2 entries, found 3; first extra 'c' at index 2"),
    ({"k": 1}, {"k": 1, "m": 2}, r"expected key 'm', found none"),
    ({"k": {"n": 1}}, {"k": {"n": 2}}, r"at 'k': at 'n': expected 2, found 1"),
    ({"k": 1, "z": 2, "y": 3}, {"k": 1}, r"found extra keys \['y', 'z'\]"),
    (1, True, r"expected True, found 1"),
    ([1], {"0": 1}, r"expected \{'0': 1\}, found \[1\]"),
    ({"0": 1}, [1], r"expected \[1\], found \{'0': 1\}"),
    ("1", 1, r"expected 1, found '1'"),
])
def test_expect_names_the_first_difference(tmp_path, stored, wanted, message):
    path = _saved(tmp_path, {"field": stored})
    with pytest.raises(CheckpointError, match=r"meta\.json: field 'field' does not match: " + message + "$"):
        load_checkpoint(path, expect={"field": wanted})


@pytest.mark.parametrize(("stored", "wanted"), [
    (1, 1.0), (2.5, 2.5), (math.nan, math.nan), ([1, [2.0, {"a": math.nan}]], (1.0, [2, {"a": math.nan}])),
    (True, True),
])
def test_expect_accepts_equal_values(tmp_path, stored, wanted):
    path = _saved(tmp_path, {"field": stored})
    load_checkpoint(path, expect={"field": wanted})


def test_a_missing_expected_field_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"field 'character' is missing; expected 'humanoid'$"):
        load_checkpoint(_saved(tmp_path, {}), expect={"character": "humanoid"})


# ----------------------------------------------------------------------------- run folders


def _run(tmp_path: Path, iterations: list[int]) -> Path:
    run = tmp_path / "run"
    for i in iterations:
        save_run_checkpoint(run, i, {"w": torch.full((1,), float(i))}, {})
    return run


def test_latest_follows_the_pointer_and_falls_back_to_the_highest(tmp_path):
    run = _run(tmp_path, [1, 2, 3])
    folder = run / "checkpoints"
    (folder / "latest").write_text("iter_000002\n")
    assert latest_checkpoint(run) == folder / "iter_000002"
    for pointer in (b"garbage", b"iter_000009", b"\xff\xfe"):  # no such name, no such folder, not text
        (folder / "latest").write_bytes(pointer)
        assert latest_checkpoint(run) == folder / "iter_000003", pointer
    (folder / "iter_000002").rename(folder / ".iter_000002.old")  # a save between its renames
    (folder / "latest").write_text("iter_000002\n")
    assert latest_checkpoint(run) == folder / "iter_000002"
    assert torch.equal(load_checkpoint(latest_checkpoint(run))[0]["w"], torch.full((1,), 2.0))
    assert latest_checkpoint(tmp_path / "empty") is None


def test_prune_keeps_the_newest_and_the_latest_and_clears_leftovers(tmp_path):
    run = _run(tmp_path, [1, 2, 3, 4, 5])
    folder = run / "checkpoints"
    (folder / "latest").write_text("iter_000001\n")
    (folder / ".iter_000006.tmp-abc").mkdir()  # a save that crashed
    (folder / ".iter_000005.old").mkdir()  # a backup whose checkpoint is in place
    (folder / ".iter_000007.old").mkdir()  # a backup that is the only copy
    removed = prune(run, keep=2)
    assert removed == [folder / "iter_000002", folder / "iter_000003"]
    assert sorted(p.name for p in folder.iterdir()) == [".iter_000007.old", "iter_000001", "iter_000004",
                                                        "iter_000005", "latest"]
    with pytest.raises(ValueError, match=r"^keep must be at least 1, got 0$"):
        prune(run, keep=0)
