"""``mimic train --ray``: rollout workers as Ray actors on a real two-node Ray cluster on this machine.

The cluster is two ``ray start`` processes (a head and a second node, one CPU each, on the
loopback addresses 127.0.0.2 and 127.0.0.3: Ray replaces 127.0.0.1 by the machine's network
address), with usage statistics and the dashboard off; each is killed with its process group
at the end, and the test checks that none of their processes is left.  Every wait is bounded.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_stopping import BIN, TIMING, Process, _assert_same_checkpoint, _rows

HEAD, SECOND = "127.0.0.2", "127.0.0.3"
ITERATIONS, STEPS = 10, 256
SETTINGS = ["--envs", "2", "--workers", "2", "--steps-per-env", str(STEPS), "--hidden", "16",
            "--checkpoint-every", "2", "--keep-checkpoints", "20", "--samples", str(ITERATIONS * 2 * STEPS)]
WAIT = 120.0  # s: bound of every wait (a node's start, a run on 2 busy cores)
PLACED = re.compile(r"ray: environment worker (\d) \(environments [\d-]+\) on node (\w+) at ([\d.]+), pid (\d+)")


def _group_pids(groups: list[int]) -> list[int]:
    """Processes (not zombies) whose process group is one of ``groups``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) in groups and fields[0] not in "ZX":
                pids.append(int(entry.name))
    return pids


def _loopback(hex_address: str) -> bool:
    """Whether a /proc/net/tcp{,6} address (little-endian hex words) is loopback or the wildcard."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    if len(words) == 16 and words[:12] == b"\0" * 10 + b"\xff\xff":  # IPv4-mapped IPv6
        words = words[12:]
    return words == bytes(len(words)) or (words[0] == 127 if len(words) == 4 else words == bytes(15) + b"\1")


def _non_loopback_sockets(pids: list[int]) -> list[str]:
    """TCP sockets of ``pids`` with an address that is neither loopback nor (listening) the wildcard."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    bad = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1].split(":")[0], fields[2].split(":")[0], fields[9]
            if inode in inodes and not (_loopback(local) and _loopback(remote)):
                bad.append(line)
    return bad


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, dict[str, str]]]:
    """A head and a second node as separate ``ray start`` processes; the head's address and the
    environment to join it in."""
    from mimic_policy.ray_workers import LocalCluster

    temp = tempfile.mkdtemp(prefix="mray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    nodes = LocalCluster(temp, nodes=2, cpus=1, timeout=WAIT)
    try:
        yield nodes.address, nodes.env
        assert all(node.poll() is None for node in nodes.nodes), "a Ray node ended during the tests"
        assert not _non_loopback_sockets(_group_pids(nodes.groups)), "Ray used a non-loopback address"
    finally:
        nodes.close()
        deadline = time.monotonic() + WAIT
        while _group_pids(nodes.groups):  # Ray's processes (workers included) go with their group
            assert time.monotonic() < deadline, f"Ray processes left: {_group_pids(nodes.groups)}"
            time.sleep(0.1)
        shutil.rmtree(temp)


def test_the_ray_flag_alone_starts_ray_here_and_a_value_names_the_cluster():
    from mimic_policy.train_cli import TrainConfig, register
    from mimic_sim.settings import from_arguments

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    assert from_arguments(TrainConfig, parser.parse_args(["train", "--ray"])).ray == "local"
    assert from_arguments(TrainConfig, parser.parse_args(["train", "--ray", "auto"])).ray == "auto"
    assert from_arguments(TrainConfig, parser.parse_args(["train"])).ray == ""


def test_an_unreachable_cluster_is_one_line_naming_it_and_no_run_folder(tmp_path: Path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind((HEAD, 0))
        address = f"{HEAD}:{probe.getsockname()[1]}"
    result = subprocess.run([str(BIN / "mimic"), "train", "--ray", address, "--run-dir", str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"mimic train: error: --ray {address}: cannot reach the Ray cluster's head at {address}: Connection refused"]
    assert not (tmp_path / "run").exists()


def test_workers_spread_over_two_nodes_train_as_local_workers_even_when_one_is_lost(
        cluster: tuple[str, dict[str, str]], tmp_path: Path):
    """Same seed, same split of environments: the same statistics and weights as local worker
    processes, at a checkpoint before a worker is killed and at the end, after its environments
    were restarted on a fresh actor."""
    local = Process([str(BIN / "mimic"), "train", *SETTINGS, "--run-dir", str(tmp_path / "local")])
    assert local.wait() == 0, local.output()

    address, env = cluster
    run = Process([str(BIN / "mimic"), "train", *SETTINGS, "--ray", address, "--run-dir", str(tmp_path / "ray")],
                  env=env)
    run.wait_for(lambda: len(PLACED.findall(run.output())) == 2, "two workers placed")
    placed = PLACED.findall(run.output())
    assert {address for _, _, address, _ in placed} == {HEAD, SECOND}, run.output()  # one on each node
    assert len({node for _, node, _, _ in placed}) == 2
    run.wait_for(lambda: len(_rows(tmp_path / "ray")) >= 3, "three iterations")
    assert not _non_loopback_sockets([run.proc.pid]), "the trainer used a non-loopback address"
    os.kill(int(placed[1][3]), signal.SIGKILL)  # worker 1's actor process, on the second node
    assert run.wait() == 0, run.output()
    lost = [line for line in run.output().splitlines() if "environment worker 1 lost" in line]
    assert len(lost) == 1, run.output()
    assert f"node {placed[1][1]}" in lost[0] and "ActorDiedError" in lost[0]
    replaced = PLACED.findall(run.output())[2:]
    assert [worker for worker, *_ in replaced] == ["1"] and replaced[0][3] != placed[1][3]

    ray_rows, local_rows = _rows(tmp_path / "ray"), _rows(tmp_path / "local")
    assert len(ray_rows) == len(local_rows) == ITERATIONS
    for row_ray, row_local in zip(ray_rows, local_rows, strict=True):
        assert {k: v for k, v in row_ray.items() if k not in TIMING} == {
            k: v for k, v in row_local.items() if k not in TIMING}
    for iteration in (2, ITERATIONS):
        name = f"checkpoints/iter_{iteration:06d}"
        _assert_same_checkpoint(tmp_path / "ray" / name, tmp_path / "local" / name)
