"""Training stopped any way: signals to the process or its group, a second Ctrl-C, a dead parent,
a failing worker, a corrupt checkpoint; and the run resumed exactly.

Runs are real ``mimic train`` processes signalled with ``os.kill``; every wait polls a file,
an output line or an exit status up to a deadline.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from mimic_policy.checkpoint import load_checkpoint

BIN = Path(sys.executable).parent
ENVS, STEPS, ITERATIONS = 2, 128, 9
BATCH = ENVS * STEPS
SETTINGS = ["--envs", str(ENVS), "--workers", "1", "--steps-per-env", str(STEPS), "--hidden", "16",
            "--checkpoint-every", "3", "--keep-checkpoints", "20"]
TOTAL = ["--samples", str(ITERATIONS * BATCH)]
WAIT = 180.0  # s: bound of every wait (start-up and a few iterations on 2 busy cores)
TIMING = ("samples_per_second", "collect_seconds", "update_seconds")


class Process:
    """A command in a subprocess (in a process group of its own with ``group``), its output collected."""

    def __init__(self, command: list[str], group: bool = False, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=group, env=dict(env or os.environ, PYTHONUNBUFFERED="1"))
        self.group = group
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self._reader.start()

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT
        while not condition():
            assert self.proc.poll() is None, f"ended ({self.proc.returncode}) before {what}:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {what} within {WAIT} s:\n{self.output()}"
            time.sleep(0.01)

    def wait(self) -> int:
        try:
            code = self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL) if self.group else self.proc.kill()
            raise
        self._reader.join(WAIT)
        return code

    def workers(self) -> list[int]:
        """Process ids of the environment workers (its spawned children)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [int(pid) for pid in children if b"spawn_main" in _cmdline(int(pid))]


def _train(*args: str, group: bool = False) -> Process:
    return Process([str(BIN / "mimic"), "train", *args], group)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _ended(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except OSError:
        return True


def _wait_until_ended(pids: list[int]) -> None:
    deadline = time.monotonic() + WAIT
    while not all(_ended(pid) for pid in pids):
        assert time.monotonic() < deadline, f"workers {[p for p in pids if not _ended(p)]} still running"
        time.sleep(0.01)


def _rows(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "progress.csv"
    if not path.is_file():
        return []
    text = path.read_text()
    return list(csv.DictReader(text.splitlines()[: text.count("\n")]))  # complete lines only


def _latest_iteration(run_dir: Path) -> int:
    name = (run_dir / "checkpoints" / "latest").read_text().strip()
    return int(name.removeprefix("iter_"))


def _assert_same_checkpoint(a: Path, b: Path) -> None:
    tensors_a, meta_a = load_checkpoint(a)
    tensors_b, meta_b = load_checkpoint(b)
    for key in ("iteration", "samples", "env_seed", "episode_stats_terms"):
        assert meta_a[key] == meta_b[key], key
    assert tensors_a.keys() == tensors_b.keys()
    for key, value in tensors_a.items():
        assert torch.equal(value, tensors_b[key]), key


def _assert_same_log(a: Path, b: Path) -> None:
    """The same rows, each iteration once, equal but for timings (losses and episode statistics included)."""
    rows_a, rows_b = _rows(a), _rows(b)
    assert [r["iteration"] for r in rows_b] == [f"{i}.0" for i in range(1, ITERATIONS + 1)]
    assert len(rows_a) == len(rows_b)
    for row_a, row_b in zip(rows_a, rows_b, strict=True):
        for key in row_a.keys() - set(TIMING):
            assert row_a[key] == row_b[key], (row_a["iteration"], key)


def _signal_during_an_iteration(run: Process, run_dir: Path, rows: int, rng: random.Random,
                                send: Callable[[], None]) -> None:
    """Send a signal once ``rows`` iterations are logged, at a random moment of the next iteration: the
    delay, a random share of the last iteration's duration, picks the moment, it synchronizes nothing."""
    run.wait_for(lambda: len(_rows(run_dir)) >= rows, f"{rows} logged iterations")
    last = _rows(run_dir)[-1]
    time.sleep(rng.uniform(0.0, float(last["collect_seconds"]) + float(last["update_seconds"])))
    send()


def _stopped_at(run: Process, run_dir: Path, signal_name: str, status: int) -> int:
    assert run.wait() == status, run.output()
    output = run.output()
    assert f"{signal_name}: stopping training after this iteration" in output
    assert f"stopped by {signal_name} at iteration" in output and "Traceback" not in output
    iteration = _latest_iteration(run_dir)
    assert [r["iteration"] for r in _rows(run_dir)][-1] == f"{iteration}.0"  # nothing lost, nothing logged after
    meta = load_checkpoint(run_dir / "checkpoints" / f"iter_{iteration:06d}")[1]
    assert (meta["iteration"], meta["samples"]) == (iteration, iteration * BATCH)
    return iteration


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    run = _train(*SETTINGS, *TOTAL, "--run-dir", str(run_dir))
    assert run.wait() == 0, run.output()
    return run_dir


def test_stopped_by_sigint_to_its_group_and_sigterm_to_it_the_run_resumes_exactly(reference: Path,
                                                                                  tmp_path: Path) -> None:
    """Ctrl-C in a terminal (SIGINT to the whole process group, workers included), then SIGTERM to
    the trainer alone: each time the run stops after the iteration under way with a checkpoint
    (status 130, 143), its workers stopped; resumed twice, it ends exactly as the uninterrupted run."""
    rng = random.Random(13)
    run_dir = tmp_path / "run"
    run = _train(*SETTINGS, *TOTAL, "--run-dir", str(run_dir), group=True)
    run.wait_for(lambda: len(run.workers()) == 1, "the worker")
    workers = run.workers()
    _signal_during_an_iteration(run, run_dir, 2, rng, lambda: os.killpg(run.proc.pid, signal.SIGINT))
    first = _stopped_at(run, run_dir, "SIGINT", 130)
    _wait_until_ended(workers)

    run = _train("--resume", str(run_dir))
    run.wait_for(lambda: len(run.workers()) == 1, "the worker")
    workers = run.workers()
    _signal_during_an_iteration(run, run_dir, first + 2, rng, lambda: os.kill(run.proc.pid, signal.SIGTERM))
    second = _stopped_at(run, run_dir, "SIGTERM", 143)
    assert first < second < ITERATIONS
    _wait_until_ended(workers)

    run = _train("--resume", str(run_dir))
    assert run.wait() == 0, run.output()
    assert f"resuming from {run_dir / 'checkpoints' / f'iter_{second:06d}'}" in run.output()
    _assert_same_checkpoint(reference / "checkpoints" / f"iter_{ITERATIONS:06d}",
                            run_dir / "checkpoints" / f"iter_{ITERATIONS:06d}")
    _assert_same_log(reference, run_dir)


def test_a_second_sigint_aborts_at_once_and_keeps_the_checkpoints(reference: Path, tmp_path: Path) -> None:
    """Ctrl-C twice: the run ends at once (status 130), no save under way is left half done, the
    checkpoints saved before are untouched, and the run resumed from the latest ends exactly as the
    uninterrupted run."""
    run_dir = tmp_path / "run"
    run = _train(*SETTINGS, *TOTAL, "--run-dir", str(run_dir), group=True)
    run.wait_for(lambda: (run_dir / "checkpoints" / "latest").is_file() and len(run.workers()) == 1,
                 "a checkpoint")
    workers = run.workers()
    before = {p.name: (p / "weights.safetensors").read_bytes()
              for p in (run_dir / "checkpoints").glob("iter_*")}
    os.killpg(run.proc.pid, signal.SIGINT)
    run.wait_for(lambda: "SIGINT: stopping training" in run.output(), "the stop notice")
    os.killpg(run.proc.pid, signal.SIGINT)
    assert run.wait() == 130, run.output()
    assert "mimic train: interrupted" in run.output() and "stopped by" not in run.output()
    _wait_until_ended(workers)

    folder = run_dir / "checkpoints"
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []  # no half-written save
    for name, weights in before.items():
        assert (folder / name / "weights.safetensors").read_bytes() == weights, name
    load_checkpoint(folder / f"iter_{_latest_iteration(run_dir):06d}")  # the latest is intact, and consistent:

    run = _train("--resume", str(run_dir))
    assert run.wait() == 0, run.output()
    _assert_same_checkpoint(reference / "checkpoints" / f"iter_{ITERATIONS:06d}", folder / f"iter_{ITERATIONS:06d}")
    _assert_same_log(reference, run_dir)


def test_workers_ignore_stop_signals_and_end_with_their_parent(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run = _train(*SETTINGS, *TOTAL, "--run-dir", str(run_dir), group=True)
    run.wait_for(lambda: len(_rows(run_dir)) >= 1 and len(run.workers()) == 1, "an iteration")
    workers = run.workers()
    for pid in workers:  # only their parent stops them
        os.kill(pid, signal.SIGINT)
        os.kill(pid, signal.SIGTERM)
    logged = len(_rows(run_dir))
    run.wait_for(lambda: len(_rows(run_dir)) >= logged + 2, "two more iterations")
    assert not any(_ended(pid) for pid in workers)
    os.kill(run.proc.pid, signal.SIGKILL)  # the trainer dies, in the middle of whatever it does
    run.wait()
    _wait_until_ended(workers)


def test_stop_signals_request_a_stop_then_abort_and_are_restored_after() -> None:
    from mimic_policy.stopping import StopSignals

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with StopSignals() as stop:
        assert not stop.requested and stop.exit_status == 0
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + WAIT
        while not stop.requested:  # Python runs the handler at its next check, in this thread
            assert time.monotonic() < deadline
            time.sleep(0.001)
        assert stop.signal == signal.SIGTERM and stop.exit_status == 143
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(WAIT)  # ended by the handler's KeyboardInterrupt, at once
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


class _FailingBlock:
    """A worker's environments whose step raises after ``after`` steps, as a simulation gone NaN might."""

    def __init__(self, count: int, task: object, after: int):
        from mimic_sim.envs.imitation_vector import ImitationVectorEnv

        self.envs = ImitationVectorEnv(count, task=task)
        self.after = after

    def __getattr__(self, name: str) -> object:
        return getattr(self.envs, name)

    def step(self, actions: object) -> tuple:
        self.after -= 1
        if self.after < 0:
            raise FloatingPointError("root position is NaN after the physics step")
        return self.envs.step(actions)


def test_a_worker_error_reaches_the_user_as_the_workers_own_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture) -> None:
    import functools

    from mimic_policy import train_cli
    from mimic_policy.vec_env import WorkerVectorEnv
    from mimic_sim.tools.cli import main

    made: list[WorkerVectorEnv] = []

    def make_envs(config: train_cli.TrainConfig, task: object) -> WorkerVectorEnv:
        # fails in the first iteration, after the warm-up rollout
        made.append(WorkerVectorEnv(functools.partial(_FailingBlock, task=task, after=STEPS + 5), config.num_envs,
                                    config.num_workers))
        return made[-1]

    monkeypatch.setattr(train_cli, "make_envs", make_envs)
    assert main(["train", *SETTINGS, "--run-dir", str(tmp_path / "a")]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == ("mimic train: error: environment worker 0 failed: FloatingPointError: root position is NaN "
                     "after the physics step")
    assert not any(p.is_alive() for p in made[-1].processes)
    assert not (tmp_path / "a" / "checkpoints").exists()  # no iteration completed: nothing to save


def _copy_run(reference: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    return run_dir


def test_resume_from_a_corrupt_checkpoint_names_the_newest_intact_one_and_takes_it_when_asked(
        reference: Path, tmp_path: Path) -> None:
    from mimic_policy.checkpoint import CheckpointError
    from mimic_policy.train_cli import TrainConfig, train
    from mimic_sim.settings import from_dict

    run_dir = _copy_run(reference, tmp_path)
    config = from_dict(TrainConfig, json.loads((run_dir / "config.json").read_text()))
    weights = run_dir / "checkpoints" / f"iter_{ITERATIONS:06d}" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    intact = run_dir / "checkpoints" / f"iter_{ITERATIONS - 3:06d}"
    with pytest.raises(CheckpointError) as exc:
        train(config, run_dir, resume=True)
    message = str(exc.value)
    assert message.startswith("the latest checkpoint is corrupt: ") and str(weights) in message
    assert message.endswith(f"the newest intact one is {intact}: resume from it with --from-intact")
    assert len(_rows(run_dir)) == ITERATIONS  # refused before anything was touched

    assert train(config, run_dir, resume=True, from_intact=True) == 0
    # iterations after the intact checkpoint trained again, logged once, and as the first time
    _assert_same_checkpoint(reference / "checkpoints" / f"iter_{ITERATIONS:06d}",
                            run_dir / "checkpoints" / f"iter_{ITERATIONS:06d}")
    _assert_same_log(reference, run_dir)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    logged = [(e.step, e.value) for e in events.Scalars("iteration")]
    assert logged == [(i * BATCH, float(i)) for i in range(1, ITERATIONS + 1)]  # the first run's last 3 purged


def test_trainer_node_stops_between_iterations_on_sigint_to_its_group(tmp_path: Path) -> None:
    from ros_helpers import unique_domain_id

    run_dir = tmp_path / "run"
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_DOMAIN_ID=str(unique_domain_id()))
    params = [f"num_envs:={ENVS}", "num_workers:=2", f"num_steps:={STEPS}", "hidden:=[16]", "checkpoint_every:=3",
              "total_samples:=100000000", f"run_dir:={run_dir}"]
    run = Process([str(BIN / "trainer"), "--ros-args", *(a for p in params for a in ("-p", p))], True, env)
    try:
        run.wait_for(lambda: len(run.workers()) == 2, "the two workers")
        workers = run.workers()
        _signal_during_an_iteration(run, run_dir, 2, random.Random(7), lambda: os.killpg(run.proc.pid, signal.SIGINT))
        assert run.wait() == 0, run.output()
    finally:
        if run.proc.poll() is None:  # a failed wait: leave nothing running
            os.killpg(run.proc.pid, signal.SIGKILL)
    iteration = _latest_iteration(run_dir)
    assert f"final checkpoint {run_dir / 'checkpoints' / f'iter_{iteration:06d}'}" in run.output()
    assert [r["iteration"] for r in _rows(run_dir)][-1] == f"{iteration}.0"
    meta = load_checkpoint(run_dir / "checkpoints" / f"iter_{iteration:06d}")[1]
    assert (meta["iteration"], meta["samples"]) == (iteration, iteration * BATCH)
    _wait_until_ended(workers)
