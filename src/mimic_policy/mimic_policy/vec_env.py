"""Environments in worker processes, one block of environments per process.

gymnasium's ``AsyncVectorEnv`` runs one environment per process: with 16 environments
on 2 cores, a vector step costs 16 pipe round trips and as many context switches,
which measured ~10 ms of overhead against ~2.6 ms of simulation.  Here each worker
process owns a vector environment of its block (for the imitation task an
:class:`~mimic_sim.envs.imitation_vector.ImitationVectorEnv`, which computes rewards
and observations for the whole block at once) and answers a step with one message of
arrays, so a vector step costs one round trip per worker.  Semantics follow
gymnasium's vector API with same-step autoreset: an environment that ends is reset
in the same step, its last observation in row ``i`` of ``infos["final_obs"]`` (valid
where ``infos["_final_obs"]``).  Environment ``i`` is seeded ``seed + i``, whatever
the number of workers.

Training uses :meth:`WorkerVectorEnv.rollout` instead of stepping: the policy's
weights go to every worker once per iteration and each worker acts and steps its block
for the whole rollout (:mod:`mimic_policy.rollout`), so there is no message per step
and the trainer does not sit between the cores (collection 3800 -> ~6000 samples/s
measured, docs/architecture.md).

What a worker holds and answers is :class:`BlockWorker`, and the splitting into blocks and
the commands are :class:`BlockVectorEnv`'s; :class:`WorkerVectorEnv` carries them to local
processes, :class:`~mimic_policy.ray_workers.RayVectorEnv` to Ray actors on a cluster.
"""

from __future__ import annotations

import abc
import contextlib
import multiprocessing as mp
import os
import signal
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection, wait

import gymnasium as gym
import numpy as np

from mimic_policy.networks import ActorCritic
from mimic_policy.rollout import Rollout
from mimic_policy.stopping import ignore_stop_signals, stop_signals_blocked

MakeBlock = Callable[[int], gym.vector.VectorEnv]
"""Builds a vector environment of a given number of environments (same-step autoreset)."""

_SUMMARY_CHARS = 300
"""Longest worker error message in the one-line report (a NaN tensor's repr runs to kilobytes)."""


class WorkerError(ChildProcessError):
    """An environment worker process failed or ended; the message is the worker's own error
    (type and message) and the cause the worker's traceback.

    A ChildProcessError, hence an OSError: ``mimic`` reports it as one line, the whole
    traceback with ``mimic --traceback``.
    """


class _WorkerTracebackError(Exception):
    """A worker's traceback as text, chained as the cause of the :class:`WorkerError` it raised."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n" + self.text


class WorkerFailure:
    """What a worker sends instead of a reply when an environment raised."""

    def __init__(self, exc: BaseException, traceback_text: str):
        message = " ".join(str(exc).split())
        if len(message) > _SUMMARY_CHARS:
            message = message[:_SUMMARY_CHARS] + "..."
        self.summary = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        self.traceback = traceback_text


def _array_infos(infos: dict, count: int) -> dict[str, np.ndarray]:
    """The per-environment numeric entries of a vector env's infos, as arrays of ``count`` rows."""
    out = {}
    for key, value in infos.items():
        if key.startswith("_") and key != "_final_obs":
            continue
        value = np.asarray(value)
        if value.dtype == object and key == "final_obs":  # SyncVectorEnv: None where not ended
            ended = np.array([v is not None for v in value])
            template = np.zeros_like(np.asarray(value[np.flatnonzero(ended)[0]]))
            value = np.stack([template if v is None else np.asarray(v) for v in value])
        if value.dtype != object and value.shape[:1] == (count,):
            out[key] = value
    return out


def _exit_with_parent() -> None:
    """End this worker as soon as its parent process ends, however it ended (even killed, and
    while this worker is in the middle of a rollout, when it does not read its pipe)."""
    wait([mp.parent_process().sentinel])
    os._exit(1)


class BlockWorker:
    """What one worker holds, a block of environments and a copy of the policy, and the commands
    it answers; the same in a local worker process (:func:`_worker`) and in a Ray actor
    (:mod:`mimic_policy.ray_workers`), so both give the same results by construction."""

    def __init__(self, make_block: MakeBlock, count: int, first: int):
        import torch

        torch.set_num_threads(1)
        self.count = count
        self.first = first  # index of the block's first environment: its noise stream's seed offset
        self.envs = make_block(count)
        self.obs: np.ndarray | None = None
        self.model: ActorCritic | None = None

    def handle(self, command: str, payload: object) -> object:
        """The reply to one command (``reset``, ``step``, ``replay`` or ``rollout``)."""
        import torch

        from mimic_policy.rollout import collect_rollout, policy_copy

        if command == "reset":
            self.obs = self.envs.reset(seed=payload)[0]
            return self.obs
        if command == "step":
            self.obs, rewards, terminated, truncated, infos = self.envs.step(payload)
            return self.obs, rewards, terminated, truncated, _array_infos(infos, self.count)
        if command == "replay":
            for actions in payload:
                self.obs = self.envs.step(actions)[0]
            return None
        if command == "rollout":
            spec, state, steps, seed = payload
            self.model = policy_copy(spec, state, self.model)
            generator = torch.Generator().manual_seed(seed + self.first)
            rollout = collect_rollout(self.envs, self.obs, self.model, steps, generator)
            self.obs = rollout.last_obs
            return rollout
        raise ValueError(f"unknown worker command {command!r}")

    def close(self) -> None:
        self.envs.close()


def _worker(connection: Connection, make_block: MakeBlock, count: int, first: int) -> None:
    # The parent stops this worker after its safe point (mimic_policy.stopping); SIGINT and
    # SIGTERM sent to the whole process group must not end it before.
    ignore_stop_signals()
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    worker = None
    try:
        worker = BlockWorker(make_block, count, first)
        while True:
            try:
                command, payload = connection.recv()
            except EOFError:  # the parent closed its end: nothing more to do
                break
            if command == "close":
                break
            connection.send(worker.handle(command, payload))
    except Exception as exc:  # report, do not hang the trainer
        with contextlib.suppress(OSError):  # the parent may be gone
            connection.send(WorkerFailure(exc, traceback.format_exc()))
    finally:
        if worker is not None:
            worker.close()
        connection.close()


def _concatenate(parts: list[dict[str, np.ndarray]], counts: list[int]) -> dict[str, np.ndarray]:
    """Join the workers' infos; a key some worker lacks (``final_obs`` when none of its
    environments ended) gets zero rows there."""
    out = {}
    for key in {k for part in parts for k in part}:
        like = next(part[key] for part in parts if key in part)
        out[key] = np.concatenate([part.get(key, np.zeros((n, *like.shape[1:]), like.dtype))
                                   for part, n in zip(parts, counts, strict=True)])
    return out


class BlockVectorEnv(abc.ABC):
    """``num_envs`` environments in blocks, one block per worker (:class:`BlockWorker`), each
    built with ``make_block``; environment ``i`` is seeded ``seed + i`` whatever the split.
    Subclasses carry the messages: :class:`WorkerVectorEnv` to local processes,
    :class:`~mimic_policy.ray_workers.RayVectorEnv` to Ray actors."""

    def __init__(self, make_block: MakeBlock, num_envs: int, num_workers: int):
        if num_envs < 1 or num_workers < 1:
            raise ValueError(f"need at least one environment and one worker, got {num_envs} and {num_workers}")
        num_workers = min(num_workers, num_envs)
        self.num_envs = num_envs
        probe = make_block(1)
        self.single_observation_space = probe.single_observation_space
        self.single_action_space = probe.single_action_space
        probe.close()
        self.blocks = np.array_split(np.arange(num_envs), num_workers)
        self.counts = [len(block) for block in self.blocks]

    @abc.abstractmethod
    def _exchange(self, messages: list[tuple[str, object]]) -> list:
        """Send each worker its message and return the replies, in worker order (a worker's
        failure raised as a :class:`WorkerError`, see :func:`check_reply`)."""

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict]:
        replies = self._exchange([("reset", None if seed is None else seed + int(block[0])) for block in self.blocks])
        return np.concatenate(replies), {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        actions = np.asarray(actions)
        replies = self._exchange([("step", actions[block]) for block in self.blocks])
        obs, rewards, terminated, truncated = (np.concatenate([r[k] for r in replies]) for k in range(4))
        infos = _concatenate([r[4] for r in replies], self.counts)
        return obs, rewards.astype(np.float64), terminated, truncated, infos

    def replay(self, actions: np.ndarray) -> None:
        """Step every environment through ``actions`` (steps, num_envs, ...), one message per worker."""
        self._exchange([("replay", actions[:, block]) for block in self.blocks])

    def rollout(self, model: ActorCritic, steps: int, seed: int) -> Rollout:
        """Every worker acts ``steps`` times in its block with a copy of ``model``'s policy
        (environment ``i`` continuing its episode; worker noise streams seeded ``seed`` plus
        the index of its first environment)."""
        state = model.policy_state()
        return Rollout.concatenate(self._exchange([("rollout", (model.spec, state, steps, seed))] * len(self.blocks)))

    @abc.abstractmethod
    def close(self) -> None:
        """Stop the workers."""


def check_reply(index: int, reply: object) -> object:
    """``reply``, or the :class:`WorkerError` of worker ``index`` if it is a :class:`WorkerFailure`."""
    if isinstance(reply, WorkerFailure):
        raise WorkerError(f"environment worker {index} failed: {reply.summary}") from _WorkerTracebackError(
            reply.traceback)
    return reply


class WorkerVectorEnv(BlockVectorEnv):
    """``num_envs`` environments in ``num_workers`` processes, each building its block with ``make_block``.

    A worker's exception is raised here as a :class:`WorkerError` carrying the worker's
    message, as is a worker's unexpected end.  Workers ignore SIGINT and SIGTERM (see
    :mod:`mimic_policy.stopping`): :meth:`close` stops them, and they end by themselves
    when this process ends.
    """

    def __init__(self, make_block: MakeBlock, num_envs: int, num_workers: int = 2):
        super().__init__(make_block, num_envs, num_workers)
        context = mp.get_context("spawn")
        self.connections: list[Connection] = []
        self.processes = []
        self._busy = False  # commands sent whose replies are not all read
        for count, block in zip(self.counts, self.blocks, strict=True):
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child, make_block, count, int(block[0])), daemon=True)
            with stop_signals_blocked():  # until the worker ignores them itself
                process.start()
            child.close()
            self.connections.append(parent)
            self.processes.append(process)

    def _ended(self, index: int) -> WorkerError:
        process = self.processes[index]
        process.join(timeout=1.0)  # the pipe closes just before the process ends
        code = process.exitcode
        how = ("is still running" if code is None
               else f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}")
        return WorkerError(f"environment worker {index} ended unexpectedly: it {how}")

    def _exchange(self, messages: list[tuple[str, object]]) -> list:
        self._busy = True
        for index, (connection, message) in enumerate(zip(self.connections, messages, strict=True)):
            try:
                connection.send(message)
            except OSError:
                raise self._ended(index) from None
        replies = []
        for index, connection in enumerate(self.connections):
            try:
                reply = connection.recv()
            except (EOFError, OSError):
                raise self._ended(index) from None
            replies.append(check_reply(index, reply))
        self._busy = False
        return replies

    def close(self) -> None:
        """Stop the workers: idle ones are told to close; if replies are still due (an error or an
        interrupt came in the middle of a command) they are killed instead, as the command may
        run for seconds (SIGKILL: they ignore SIGTERM)."""
        if not self._busy:
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    connection.send(("close", None))
            for process in self.processes:
                process.join(timeout=5)
        for process in self.processes:
            if process.is_alive():
                process.kill()
            process.join()
        for connection in self.connections:
            connection.close()
