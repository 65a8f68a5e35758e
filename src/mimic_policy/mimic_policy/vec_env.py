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
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection

import gymnasium as gym
import numpy as np

from mimic_policy.networks import ActorCritic
from mimic_policy.rollout import Rollout

MakeBlock = Callable[[int], gym.vector.VectorEnv]
"""Builds a vector environment of a given number of environments (same-step autoreset)."""


class _WorkerError:
    """What a worker sends instead of a reply when an environment raised."""

    def __init__(self, traceback_text: str):
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


def _worker(connection: Connection, make_block: MakeBlock, count: int, first: int) -> None:
    import torch

    from mimic_policy.rollout import collect_rollout, policy_copy

    torch.set_num_threads(1)
    envs = make_block(count)
    obs, model = None, None
    try:
        while True:
            command, payload = connection.recv()
            if command == "reset":
                obs = envs.reset(seed=payload)[0]
                connection.send(obs)
            elif command == "step":
                obs, rewards, terminated, truncated, infos = envs.step(payload)
                connection.send((obs, rewards, terminated, truncated, _array_infos(infos, count)))
            elif command == "rollout":
                spec, state, steps, seed = payload
                model = policy_copy(spec, state, model)
                rollout = collect_rollout(envs, obs, model, steps, torch.Generator().manual_seed(seed + first))
                obs = rollout.last_obs
                connection.send(rollout)
            elif command == "close":
                break
    except Exception:  # report, do not hang the trainer
        connection.send(_WorkerError(traceback.format_exc()))
    finally:
        envs.close()
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


class WorkerVectorEnv:
    """``num_envs`` environments in ``num_workers`` processes, each building its block with ``make_block``."""

    def __init__(self, make_block: MakeBlock, num_envs: int, num_workers: int = 2):
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
        context = mp.get_context("spawn")
        self.connections: list[Connection] = []
        self.processes = []
        for count, block in zip(self.counts, self.blocks, strict=True):
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child, make_block, count, int(block[0])), daemon=True)
            process.start()
            child.close()
            self.connections.append(parent)
            self.processes.append(process)

    def _receive(self, connection: Connection):
        reply = connection.recv()
        if isinstance(reply, _WorkerError):
            raise RuntimeError(f"environment worker failed:\n{reply.traceback}")
        return reply

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict]:
        for connection, block in zip(self.connections, self.blocks, strict=True):
            connection.send(("reset", None if seed is None else seed + int(block[0])))
        return np.concatenate([self._receive(c) for c in self.connections]), {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        actions = np.asarray(actions)
        for connection, block in zip(self.connections, self.blocks, strict=True):
            connection.send(("step", actions[block]))
        replies = [self._receive(c) for c in self.connections]
        obs, rewards, terminated, truncated = (np.concatenate([r[k] for r in replies]) for k in range(4))
        infos = _concatenate([r[4] for r in replies], self.counts)
        return obs, rewards.astype(np.float64), terminated, truncated, infos

    def rollout(self, model: ActorCritic, steps: int, seed: int) -> Rollout:
        """Every worker acts ``steps`` times in its block with a copy of ``model``'s policy
        (environment ``i`` continuing its episode; worker noise streams seeded ``seed`` plus
        the index of its first environment)."""
        state = model.policy_state()
        for connection in self.connections:
            connection.send(("rollout", (model.spec, state, steps, seed)))
        return Rollout.concatenate([self._receive(c) for c in self.connections])

    def close(self) -> None:
        for connection in self.connections:
            with contextlib.suppress(BrokenPipeError, OSError):
                connection.send(("close", None))
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
