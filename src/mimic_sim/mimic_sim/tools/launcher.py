"""``mimic launch``: run a scenario's node graph as separate processes.

Each node runs in its own process group with its output prefixed by its name.
SIGINT or SIGTERM to the launcher, or the exit of a required node, stops the graph:
every node gets SIGINT (ROS nodes shut down cleanly on it), then SIGTERM after a
grace period, then SIGKILL, so that nothing is left running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from mimic_sim.tools.graph import GraphError, NodeSpec, Scenario


def resolve_executable(spec: NodeSpec) -> str:
    """The node's executable: a console script of this Python environment, else from PATH."""
    beside_python = Path(sys.executable).parent / spec.executable
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    found = shutil.which(spec.executable)
    if found:
        return found
    raise GraphError(f"node '{spec.name}': executable '{spec.executable}' (package {spec.package}) is not "
                     f"installed in {Path(sys.executable).parent} or on PATH")


@dataclass
class RunningNode:
    spec: NodeSpec
    process: subprocess.Popen
    reader: threading.Thread = field(init=False)


class Launcher:
    """Start, watch and stop the nodes of a scenario."""

    def __init__(self, scenario: Scenario, arguments: dict[str, str] | None = None, out: TextIO = sys.stdout,
                 grace_seconds: float = 5.0):
        self.scenario = scenario
        self.values = scenario.argument_values(arguments or {})
        self.out = out
        self.grace_seconds = grace_seconds
        self.nodes: list[RunningNode] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.exit_reason = ""

    # ------------------------------------------------------------ output
    def _print(self, name: str, line: str) -> None:
        with self._lock:
            self.out.write(f"[{name}] {line}" if line.endswith("\n") else f"[{name}] {line}\n")
            self.out.flush()

    def _pump(self, node: RunningNode) -> None:
        assert node.process.stdout is not None
        for line in node.process.stdout:
            self._print(node.spec.name, line)

    # ------------------------------------------------------------ running
    def start(self) -> None:
        commands = [(spec, [resolve_executable(spec), *spec.ros_arguments(self.values)])
                    for spec in self.scenario.nodes]  # resolve all before starting any
        env = dict(os.environ)
        env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        env["PYTHONUNBUFFERED"] = "1"
        for spec, command in commands:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                       bufsize=1, env=env, start_new_session=True)
            node = RunningNode(spec, process)
            node.reader = threading.Thread(target=self._pump, args=(node,), daemon=True)
            node.reader.start()
            self.nodes.append(node)
            self._print("launch", f"started {spec.name} (pid {process.pid}): {' '.join(command)}")

    def request_stop(self, reason: str) -> None:
        if not self._stop.is_set():
            self.exit_reason = reason
            self._stop.set()

    def wait(self, timeout: float | None = None) -> None:
        """Until a stop is requested, a required node exits, or ``timeout`` passes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stop.is_set():
            for node in self.nodes:
                code = node.process.poll()
                if code is not None and node.spec.required:
                    self.request_stop(f"{node.spec.name} exited with status {code}")
            if deadline is not None and time.monotonic() >= deadline:
                self.request_stop("timeout")
            self._stop.wait(0.05)

    def shutdown(self) -> int:
        """Stop every node (SIGINT, then SIGTERM, then SIGKILL); the first failing node's status."""
        for sig, wait in ((signal.SIGINT, self.grace_seconds), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            alive = [n for n in self.nodes if n.process.poll() is None]
            if not alive:
                break
            for node in alive:
                if sig != signal.SIGINT:
                    self._print("launch", f"{node.spec.name} still running: sending {sig.name}")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.process.pid, sig)
            deadline = time.monotonic() + wait
            for node in alive:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        for node in self.nodes:
            node.reader.join(timeout=2.0)
            self._print("launch", f"{node.spec.name} exited with status {node.process.returncode}")
        failed = [n.process.returncode for n in self.nodes
                  if n.process.returncode not in (0, -signal.SIGINT, -signal.SIGTERM)]
        return failed[0] if failed else 0

    def run(self, timeout: float | None = None) -> int:
        """Start, wait, stop; SIGINT/SIGTERM to this process stop the graph cleanly."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def on_signal(signum: int, frame: object) -> None:
            self.request_stop(f"received {signal.Signals(signum).name}")

        if threading.current_thread() is threading.main_thread():
            for sig in previous:
                signal.signal(sig, on_signal)
        try:
            self.start()
            self.wait(timeout)
        finally:
            self._print("launch", f"stopping: {self.exit_reason or 'error'}")
            status = self.shutdown()
            if threading.current_thread() is threading.main_thread():
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
        return status
