"""Rollout workers as Ray actors spread over a Ray cluster's nodes (``mimic train --ray``).

Each actor holds a :class:`~mimic_policy.vec_env.BlockWorker`, the very object a local
worker process holds, and is sent the same commands by the same
:class:`~mimic_policy.vec_env.BlockVectorEnv`: with the same seed and the same split of
environments, training with Ray gives the same statistics and weights as with local
worker processes.  The learner stays in the process that runs the command.

Placement: the actors are scheduled with Ray's ``SPREAD`` strategy, one CPU each (a
worker keeps its core busy for the whole rollout, as a local worker process does), and
each worker's node is reported when it starts.

A lost worker (its process or its node died: ``RayActorError``) is reported in one line
and replaced by a fresh actor on the nodes that remain; the replacement reserves no
CPU, so it shares a core rather than waits for a free one.  It is reset from its
block's last seed and stepped through the actions taken since (kept here; a
:class:`~mimic_policy.session.TrainingSession` restarts the environments every
``checkpoint_every`` iterations, so at most that many iterations of actions, as a
checkpoint holds), which brings its environments back to the state the lost ones had,
as a resumed run does; then the command the lost worker did not answer is sent again.
The run goes on exactly as it would have.  A worker that does not answer within
:data:`REPLY_TIMEOUT`, or a replacement that cannot start, stops the run with a
:class:`~mimic_policy.vec_env.WorkerError` (the last checkpoint stays the latest).

Network: a Ray instance started here (``--ray local``) advertises :data:`LOOPBACK`, and
a driver joining a cluster through a loopback address is pinned to it, so nothing
leaves the machine; usage statistics are off and no dashboard starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import traceback
from collections.abc import Callable

import numpy as np
import ray

from mimic_policy.vec_env import BlockVectorEnv, BlockWorker, MakeBlock, WorkerError, WorkerFailure, check_reply

LOOPBACK = "127.0.0.2"
"""The address a Ray instance started here advertises.  A loopback address, so its traffic
stays on this machine; not 127.0.0.1, which Ray 2.60 replaces by the machine's network
address (``ray._private.services.resolve_ip_for_localhost``)."""

CONNECT_TIMEOUT = 5.0
"""Seconds to reach a cluster's head before reporting it unreachable (``ray.init`` itself
retries for minutes)."""

START_TIMEOUT = 120.0
"""Seconds for a worker to be placed and build its environments (imports on a busy node)."""

REPLY_TIMEOUT = 600.0
"""Longest wait for one reply: a rollout at the defaults takes about a second, and Ray
reports a lost node's actors within about 30 s; this bounds a hung one."""


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or socket.inet_aton(host)[0] == 127
    except OSError:
        return False


def _head(address: str) -> tuple[str, int]:
    """``HOST:PORT`` of the head ``address`` names (``auto``: the cluster started on this
    machine, or ``RAY_ADDRESS``); ConnectionError if there is none."""
    if address == "auto":
        # Ray's own lookup (RAY_ADDRESS, then this machine's latest cluster); Ray is pinned exactly
        from ray._private.services import canonicalize_bootstrap_address

        found = canonicalize_bootstrap_address("auto")
        if found is None:
            raise ConnectionError("--ray auto: no Ray cluster is running on this machine "
                                  "(start one with `ray start --head`, or set RAY_ADDRESS)")
        address = found
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--ray {address}: expected 'local', 'auto' or the head's HOST:PORT")
    return host, int(port)


def connect(address: str, num_workers: int) -> None:
    """Connect this process to Ray unless it is: ``local`` starts a one-node instance here (CPUs
    for ``num_workers`` at least), ``auto`` or ``HOST:PORT`` join a running cluster.  A head that
    cannot be reached raises ConnectionError naming the address.  The SIGTERM handler in place
    stays (``ray.init`` replaces it)."""
    if ray.is_initialized():
        return
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # a Ray instance started here reports nothing
    options: dict = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
    if address == "local":
        options.update(num_cpus=max(os.cpu_count() or 1, num_workers), _node_ip_address=LOOPBACK)
    else:
        host, port = _head(address)
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
        except OSError as exc:
            raise ConnectionError(f"--ray {address}: cannot reach the Ray cluster's head at {host}:{port}: "
                                  f"{exc.strerror or exc}") from None
        options["address"] = f"{host}:{port}"
        if _loopback(host):  # the nodes here advertise that address: so must this driver
            options["_node_ip_address"] = host
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if in_main else None
    try:
        ray.init(**options)
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConnectionError(f"--ray {address}: {message}") from exc
    finally:
        if previous is not None:  # None: a handler not installed from Python (rclpy's), left to ray.init
            signal.signal(signal.SIGTERM, previous)


@ray.remote(max_restarts=0)
class RayBlockWorker:
    """A :class:`~mimic_policy.vec_env.BlockWorker` in a Ray actor; an environment's exception is
    returned as a :class:`~mimic_policy.vec_env.WorkerFailure`, as a local worker sends it."""

    def __init__(self, make_block: MakeBlock, count: int, first: int):
        self.args = (make_block, count, first)
        self.worker: BlockWorker | None = None

    def start(self) -> tuple[str, str, int] | WorkerFailure:
        """Build the environments; where they run: node id, node address, process id."""
        try:
            self.worker = BlockWorker(*self.args)
        except Exception as exc:
            return WorkerFailure(exc, traceback.format_exc())
        return ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address(), os.getpid()

    def handle(self, command: str, payload: object) -> object:
        try:
            return self.worker.handle(command, payload)
        except Exception as exc:
            return WorkerFailure(exc, traceback.format_exc())


class RayVectorEnv(BlockVectorEnv):
    """``num_envs`` environments in ``num_workers`` Ray actors over the cluster ``address`` names
    (see :func:`connect`), the same blocks as :class:`~mimic_policy.vec_env.WorkerVectorEnv`'s;
    ``report`` gets one line per worker placed, lost or replaced."""

    def __init__(self, make_block: MakeBlock, num_envs: int, num_workers: int = 2, address: str = "local",
                 report: Callable[[str], None] = print):
        super().__init__(make_block, num_envs, num_workers)
        connect(address, len(self.blocks))
        self.make_block = make_block
        self.report = report
        self.places: list[str] = []
        """Where each worker runs: ``node <id> at <address>, pid <pid>``."""
        self.history: list[tuple[int | None, list[np.ndarray]] | None] = [None] * len(self.blocks)
        """Per worker: the seed of its block's last reset and the actions stepped since."""
        self.actors = []
        try:
            self.actors += [self._actor(index, num_cpus=1) for index in range(len(self.blocks))]
            for index, actor in enumerate(self.actors):
                self._started(index, actor)
        except BaseException:
            self.close()
            raise

    def _actor(self, index: int, num_cpus: float):
        return RayBlockWorker.options(num_cpus=num_cpus, scheduling_strategy="SPREAD").remote(
            self.make_block, self.counts[index], int(self.blocks[index][0]))

    def _started(self, index: int, actor) -> None:
        """Wait for ``actor`` (worker ``index``) to build its environments; report where it runs."""
        try:
            node, address, pid = check_reply(index, ray.get(actor.start.remote(), timeout=START_TIMEOUT))
        except ray.exceptions.GetTimeoutError:
            raise WorkerError(f"environment worker {index}: no node of the Ray cluster started it within "
                              f"{START_TIMEOUT:.0f} s (each worker needs a free CPU)") from None
        except ray.exceptions.RayActorError as exc:
            raise WorkerError(f"environment worker {index} died while starting: {_summary(exc)}") from exc
        block = self.blocks[index]
        place = f"node {node} at {address}, pid {pid}"
        if index < len(self.places):
            self.places[index] = place
        else:
            self.places.append(place)
        self.report(f"ray: environment worker {index} (environments {block[0]}-{block[-1]}) on {place}")

    def _get(self, index: int, ref: ray.ObjectRef) -> object:
        try:
            return ray.get(ref, timeout=REPLY_TIMEOUT)
        except ray.exceptions.GetTimeoutError:
            raise WorkerError(f"environment worker {index} ({self.places[index]}) did not answer within "
                              f"{REPLY_TIMEOUT:.0f} s") from None

    def _exchange(self, messages: list[tuple[str, object]]) -> list:
        # A payload every worker gets (the rollout command with the policy's weights) goes into the
        # object store once: each node then fetches it once for all of its workers, not once per worker.
        payloads = [payload for _, payload in messages]
        shared = {id(p): ray.put(p) for p in payloads if p is not None and sum(q is p for q in payloads) > 1}
        refs = [actor.handle.remote(command, shared.get(id(payload), payload))
                for actor, (command, payload) in zip(self.actors, messages, strict=True)]
        replies = []
        for index, (ref, message) in enumerate(zip(refs, messages, strict=True)):
            try:
                reply = self._get(index, ref)
            except ray.exceptions.RayActorError as exc:
                reply = self._replace(index, exc, message)
            replies.append(check_reply(index, reply))
            self._record(index, message, reply)
        return replies

    def _record(self, index: int, message: tuple[str, object], reply: object) -> None:
        """Keep what brings worker ``index``'s environments back to their state (see module doc)."""
        command, payload = message
        if command == "reset":
            self.history[index] = (payload, [])
        elif self.history[index] is not None:
            steps = self.history[index][1]
            if command == "step":
                steps.append(np.asarray(payload)[None])
            elif command == "replay":
                steps.append(np.asarray(payload))
            elif command == "rollout":
                steps.append(reply.actions)

    def _replace(self, index: int, exc: ray.exceptions.RayActorError, message: tuple[str, object]) -> object:
        """A fresh actor for lost worker ``index``, its environments brought back; its reply to ``message``."""
        self.report(f"ray: environment worker {index} lost ({self.places[index]}): {_summary(exc)}; "
                    "restarting its environments on the remaining nodes")
        ray.kill(self.actors[index])  # if it was only unreachable, it must not come back
        self.actors[index] = self._actor(index, num_cpus=0)
        self._started(index, self.actors[index])
        actor = self.actors[index]
        try:
            if self.history[index] is not None:
                seed, steps = self.history[index]
                check_reply(index, self._get(index, actor.handle.remote("reset", seed)))
                for actions in steps:
                    check_reply(index, self._get(index, actor.handle.remote("replay", actions)))
            return self._get(index, actor.handle.remote(*message))
        except ray.exceptions.RayActorError as again:
            raise WorkerError(f"environment worker {index} lost again while restarting: {_summary(again)}") from again

    def close(self) -> None:
        """Stop the actors and disconnect from Ray (a Ray instance started here ends)."""
        for actor in self.actors:
            ray.kill(actor)
        ray.shutdown()


def _summary(exc: BaseException) -> str:
    """An exception's type and the first line of its message (Ray's run to many lines)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalCluster:
    """A Ray cluster of ``nodes`` nodes on this machine, each a separate ``ray start`` process
    advertising its own loopback address (127.0.0.2, 127.0.0.3, ...) and ``cpus`` CPUs: what
    the tests and the benchmark run the cluster path on.  Usage statistics and the dashboard
    are off; token authentication is on, with a token of this cluster's in :attr:`env`, the
    environment to join it in (``mimic train --ray`` :attr:`address`).  :meth:`close` kills
    every node's process group (Ray's processes, the workers included)."""

    def __init__(self, temp_dir: str, nodes: int = 2, cpus: int = 1, timeout: float = START_TIMEOUT):
        import secrets
        import subprocess
        import sys
        import time
        from pathlib import Path

        temp = Path(temp_dir)  # short: Ray's socket paths under it must fit in 107 bytes
        port = _free_port()
        self.address = f"{LOOPBACK}:{port}"
        # Ray reads the token when it is imported: a process that joins this cluster and has imported
        # Ray already must have set RAY_AUTH_TOKEN before (then taken here) and RAY_AUTH_MODE=token
        self.env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token",
                        RAY_AUTH_TOKEN=os.environ.get("RAY_AUTH_TOKEN") or secrets.token_hex(32))
        self.nodes: list[subprocess.Popen] = []
        ray_command = str(Path(sys.executable).parent / "ray")
        try:
            for index in range(nodes):
                ip = f"127.0.0.{2 + index}"
                options = (["--head", f"--port={port}", f"--ray-client-server-port={_free_port()}",
                            "--include-dashboard=false"] if index == 0 else [f"--address={self.address}"])
                log = (temp / f"node{index}.log").open("w")
                self.nodes.append(subprocess.Popen(
                    [ray_command, "start", "--block", f"--node-ip-address={ip}", f"--num-cpus={cpus}",
                     "--disable-usage-stats", f"--temp-dir={temp / f'node{index}'}", *options],
                    stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True))
                deadline = time.monotonic() + timeout
                while index == 0:  # the other nodes join through the head's GCS
                    if self.nodes[0].poll() is not None:
                        raise ConnectionError(f"the Ray head did not start: see {temp / 'node0.log'}")
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"no Ray head at {self.address} within {timeout:.0f} s")
                    with socket.socket() as probe:
                        if probe.connect_ex((LOOPBACK, port)) == 0:
                            break
                    time.sleep(0.1)
        except BaseException:
            self.close()
            raise

    @property
    def groups(self) -> list[int]:
        """The nodes' process groups."""
        return [node.pid for node in self.nodes]

    def close(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)
        for node in self.nodes:
            node.wait()

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
