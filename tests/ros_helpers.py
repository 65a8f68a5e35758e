"""Helpers shared by the tests that talk over DDS."""

from __future__ import annotations

import fcntl
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path


def spin_until(executor, condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Spin ``executor`` until ``condition()`` holds or ``timeout`` seconds pass; the final value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        executor.spin_once(timeout_sec=0.02)
    return True


# Domains 60-99 are for manual runs and 100-199 for benchmarks and CI's shell; 200 is conftest's
# default. The rest of DDS's 0-232 is for tests.
TEST_DOMAINS = [*range(1, 60), *range(201, 233)]
_LOCK_DIR = Path(tempfile.gettempdir()) / "mimic-dds-domains"
_held: list[int] = []  # lock file descriptors, open (and so locked) until this process ends


def unique_domain_id() -> int:
    """A DDS domain no other test process on this machine uses while this process lives.

    Test runs of several developers (and pytest-xdist workers) share the machine's loopback: two
    tests in one domain see each other's nodes and topics.  Each domain is claimed with an
    exclusive lock on a file, which the OS releases when the claiming process ends (killed
    included); a process never gets the same domain twice.
    """
    _LOCK_DIR.mkdir(exist_ok=True)
    candidates = list(TEST_DOMAINS)
    random.Random(os.getpid()).shuffle(candidates)  # concurrent runs start at different domains
    for domain in candidates:
        fd = os.open(_LOCK_DIR / f"{domain}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _held.append(fd)
        return domain
    raise RuntimeError(f"every test DDS domain ({len(TEST_DOMAINS)}) is taken by test processes on this machine; "
                       f"locks in {_LOCK_DIR}")


BIN = Path(sys.executable).parent
WAIT = 30.0  # s, bound of every wait on the graph or on data (a node starting on 2 loaded cores took over 10)


class Process:
    """A command in a subprocess, its output collected."""

    def __init__(self, args: list[str], cwd: Path | None = None):
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self._reader.start()

    def output(self) -> str:
        return "".join(self.lines)

    def stop(self, timeout: float = 3 * WAIT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(2.0)
        return code


class NodeProcess(Process):
    """A node executable in a subprocess, its output collected."""

    def __init__(self, executable: str, *params: str):
        args = [str(BIN / executable), "--ros-args"]
        for p in params:
            args += ["-p", p]
        super().__init__(args)
