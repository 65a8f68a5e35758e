"""Helpers shared by the tests that talk over DDS."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable


def spin_until(executor, condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Spin ``executor`` until ``condition()`` holds or ``timeout`` seconds pass; the final value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        executor.spin_once(timeout_sec=0.02)
    return True


_next = itertools.count()


def unique_domain_id() -> int:
    """A DDS domain no other test of this run uses, even under pytest-xdist.

    Each xdist worker (gw0, gw1, ...) draws from its own block of 40 domains and within
    it never repeats (40 DDS tests per worker at most before wrapping).
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker.removeprefix("gw")) if worker.startswith("gw") else 0
    return 1 + index * 40 + next(_next) % 40  # domains 1-160 for up to four workers (DDS allows 0-232)
