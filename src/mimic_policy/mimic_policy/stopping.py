"""Stopping a training run by signal: at the next safe point, or at once on a second signal.

A terminal's Ctrl-C sends SIGINT to every process of its foreground process group,
and a job scheduler or ``kill`` sends SIGTERM to one process or to all.  The training
process turns the first SIGINT or SIGTERM into a request (:class:`StopSignals`): the
current iteration ends, a checkpoint of that consistent state is saved, the workers
are stopped, and ``mimic train`` exits with ``128 + signal`` (130 for SIGINT, 143 for
SIGTERM, as shells report a process ended by that signal: a script chaining commands
learns that the run did not reach its total).  A second signal raises
:class:`KeyboardInterrupt` wherever the process is: nothing more is saved, and a save
in progress leaves the previous checkpoint in place (saves are atomic).

Environment worker processes ignore both signals (:func:`ignore_stop_signals`): their
parent stops them, after the safe point, so a Ctrl-C in a terminal cannot kill them in
the middle of a rollout the final checkpoint depends on.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """While entered, the first SIGINT or SIGTERM sets :attr:`signal`; a second one raises
    :class:`KeyboardInterrupt`.  Enter it in the main thread (Python runs signal handlers there)."""

    def __init__(self, what: str = "training") -> None:
        self.what = what
        self.signal: signal.Signals | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def exit_status(self) -> int:
        """0 if no signal came, else the shell's status of a process ended by it: 128 + its number."""
        return 0 if self.signal is None else 128 + int(self.signal)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum)
        # os.write, not print: the handler may run while the main thread is inside a write to
        # sys.stderr (the progress bar's), and a buffered stream refuses a reentrant call.
        os.write(2, f"\n{self.signal.name}: stopping {self.what} after this iteration and saving a checkpoint; "
                    "send it again to abort at once without saving\n".encode())

    def __enter__(self) -> StopSignals:
        for number in STOP_SIGNALS:
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """SIGINT and SIGTERM held back in this thread meanwhile (delivered on exit).

    A child process started meanwhile inherits the blocked mask, so a signal sent to the
    process group before it reaches :func:`ignore_stop_signals` waits instead of killing
    it (CPython's own resource tracker is started the same way).
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def ignore_stop_signals() -> None:
    """In a child started under :func:`stop_signals_blocked`: ignore SIGINT and SIGTERM from now on
    (any that arrived while blocked are discarded), and unblock them."""
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
