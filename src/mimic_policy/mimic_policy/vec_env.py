"""Environments in worker processes, several per process.

gymnasium's ``AsyncVectorEnv`` runs one environment per process: with 16 environments
on 2 cores, a vector step costs 16 pipe round trips and as many context switches,
which measured ~10 ms of overhead against ~2.6 ms of simulation.  Here each worker
process steps a block of environments in a loop and answers with one message, so a
vector step costs one round trip per worker.  Semantics follow gymnasium's vector API
with same-step autoreset: an environment that ends is reset in the same step, its
last observation in ``infos["final_obs"]``.  Environment ``i`` is seeded ``seed + i``,
whatever the number of workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection

import gymnasium as gym
import numpy as np


class _WorkerError:
    """What a worker sends instead of a reply when an environment raised."""

    def __init__(self, traceback_text: str):
        self.traceback = traceback_text


def _worker(connection: Connection, make_env: Callable[[], gym.Env], count: int) -> None:
    import torch

    torch.set_num_threads(1)
    envs = [make_env() for _ in range(count)]
    try:
        while True:
            command, payload = connection.recv()
            if command == "reset":
                results = [env.reset(seed=None if payload is None else payload + i) for i, env in enumerate(envs)]
                connection.send((np.stack([r[0] for r in results]), [r[1] for r in results]))
            elif command == "step":
                out = []
                for env, action in zip(envs, payload, strict=True):
                    obs, reward, terminated, truncated, info = env.step(action)
                    final_obs = None
                    if terminated or truncated:
                        final_obs = obs
                        obs, _ = env.reset()
                    out.append((obs, reward, terminated, truncated, info, final_obs))
                connection.send(out)
            elif command == "close":
                break
    except Exception:  # report, do not hang the trainer
        connection.send(_WorkerError(traceback.format_exc()))
    finally:
        for env in envs:
            env.close()
        connection.close()


class WorkerVectorEnv:
    """``num_envs`` environments from ``make_env`` spread over ``num_workers`` processes."""

    def __init__(self, make_env: Callable[[], gym.Env], num_envs: int, num_workers: int = 2):
        if num_envs < 1 or num_workers < 1:
            raise ValueError(f"need at least one environment and one worker, got {num_envs} and {num_workers}")
        num_workers = min(num_workers, num_envs)
        self.num_envs = num_envs
        probe = make_env()
        self.single_observation_space = probe.observation_space
        self.single_action_space = probe.action_space
        probe.close()
        self.blocks = np.array_split(np.arange(num_envs), num_workers)
        context = mp.get_context("spawn")
        self.connections: list[Connection] = []
        self.processes = []
        for block in self.blocks:
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child, make_env, len(block)), daemon=True)
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
        obs = np.concatenate([self._receive(c)[0] for c in self.connections])
        return obs, {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        actions = np.asarray(actions)
        for connection, block in zip(self.connections, self.blocks, strict=True):
            connection.send(("step", actions[block]))
        results = [r for c in self.connections for r in self._receive(c)]
        obs = np.stack([r[0] for r in results])
        rewards = np.array([r[1] for r in results], dtype=np.float64)
        terminated = np.array([r[2] for r in results], dtype=bool)
        truncated = np.array([r[3] for r in results], dtype=bool)
        infos: dict = {}
        keys = {k for r in results for k, v in r[4].items() if np.isscalar(v)}
        for key in keys:
            infos[key] = np.array([r[4].get(key, np.nan) for r in results])
        if (terminated | truncated).any():
            infos["final_obs"] = np.array([r[5] for r in results], dtype=object)
        return obs, rewards, terminated, truncated, infos

    def close(self) -> None:
        for connection in self.connections:
            with contextlib.suppress(BrokenPipeError, OSError):
                connection.send(("close", None))
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
