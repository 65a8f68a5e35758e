"""Helpers shared by the tests that talk over DDS."""

from __future__ import annotations

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
