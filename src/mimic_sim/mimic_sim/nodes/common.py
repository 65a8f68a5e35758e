"""What every mimic node shares: DDS defaults, parameter declaration, clean shutdown.

Bad input at start-up (a parameter of the wrong type, a clip or character that does not
exist, an unreadable file) ends a node with one error line naming the parameter, and
exit status 2, not a traceback: :func:`declare` and :func:`parameter` name the parameter,
:func:`run_node` logs the error and exits.
"""

from __future__ import annotations

import difflib
import faulthandler
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

# Single-machine default unless the user chose otherwise (see README: reaching a robot).
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from mimic_sim.paths import config_dirs

SHUTDOWN_REPORT_SECONDS = 3.0
"""A node whose shutdown takes longer prints its threads' stacks (the launcher's grace is 5 s)."""
BAD_INPUT = 2
"""Exit status of a node that could not start from its parameters (as ``mimic``'s for bad input)."""


def declare(node: Node, name: str, default: object, description: str, read_only: bool = False) -> object:
    """Declare a parameter with a description and return its value.

    A float parameter also takes an integer (``duration:=3``, as a launch argument is
    easily written), converted; anything else not a number is an error naming it.
    """
    numeric = isinstance(default, float)
    descriptor = ParameterDescriptor(description=description, read_only=read_only, dynamic_typing=numeric)
    try:
        node.declare_parameter(name, default, descriptor)
    except ParameterException as exc:  # e.g. a string given for a boolean: rclpy's message names the parameter
        raise ValueError(str(exc)) from exc
    value = node.get_parameter(name).value
    if numeric:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"parameter '{name}' must be a number, got {value!r}")
        return float(value)
    return value


@contextmanager
def parameter(name: str, value: object, choices: Callable[[], Iterable[str]] | None = None) -> Iterator[None]:
    """Bad input met while using parameter ``name``'s ``value`` (a ValueError, as mimic's file and
    config errors are, or an OSError such as a missing file) re-raised as a ValueError naming the
    parameter and, with ``choices`` (the valid values), the closest of them (all of them where none
    is close)."""
    try:
        yield
    except (ValueError, OSError) as exc:
        hint = ""
        if choices is not None:
            valid = list(choices())
            close = difflib.get_close_matches(str(value), valid, n=3, cutoff=0.5)
            hint = f" (closest: {', '.join(close)})" if close else f" (valid: {', '.join(valid)})"
        raise ValueError(f"parameter '{name}' ({value!r}): {exc}{hint}") from exc


class SubscriberWait:
    """The ``wait_for_subscribers`` parameter of a node that must not publish its first message before
    the nodes downstream listen (a recorder, an estimator): each 'topic=count' entry, the topic as
    the node names it (relative, remapped like its own publishers)."""

    def __init__(self, node: Node, entries: Sequence[str]) -> None:
        self.node = node
        self.counts: list[tuple[str, int]] = []
        for text in entries:
            topic, _, count = text.partition("=")
            if not topic or not count.isdigit():
                raise ValueError(f"parameter wait_for_subscribers: '{text}' is not 'topic=count'")
            self.counts.append((node.resolve_topic_name(topic), int(count)))

    def ready(self) -> bool:
        """Each topic has the subscribers it waits for (true at once without entries)."""
        return all(self.node.count_subscribers(topic) >= count for topic, count in self.counts)


def character_names() -> list[str]:
    """Names of the characters configured under ``config/characters/`` (choices for a parameter)."""
    return sorted({p.stem for d in config_dirs() for p in (d / "characters").glob("*.yaml")})


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def run_node(make: Callable[[], Node], args: Sequence[str] | None = None) -> int:
    """Init rclpy, spin the node until SIGINT/SIGTERM, shut down cleanly; the exit status.

    A node with a ``work()`` method (a long computation, like training) gets it called
    between callbacks; the node stops when ``work()`` returns True, or when the node sets its
    ``finished`` attribute (a simulation that reached its duration).  Bad input while the
    node is made (a ValueError or OSError, see :func:`parameter`) is logged as one line and
    gives exit status :data:`BAD_INPUT`.
    """
    rclpy.init(args=args, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = None
    executor = None
    stop = {"requested": False}

    def on_signal(signum: int, frame: object) -> None:
        if stop["requested"]:  # a second signal aborts whatever runs, a long work() included
            raise KeyboardInterrupt
        stop["requested"] = True
        faulthandler.dump_traceback_later(SHUTDOWN_REPORT_SECONDS)  # re-armed for the shutdown below

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        try:
            node = make()
        except (ValueError, OSError) as exc:
            rclpy.logging.get_logger(Path(sys.argv[0]).name).fatal(_one_line(str(exc) or type(exc).__name__))
            return BAD_INPUT
        work = getattr(node, "work", None)
        # One executor holding the node for the whole run: rclpy.spin_once(node) adds the node to the
        # global executor and removes it again on every call.
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while rclpy.ok() and not stop["requested"] and not getattr(node, "finished", False):
            executor.spin_once(timeout_sec=0.0 if work is not None else 0.1)
            if work is not None and work():
                break
        return 0
    except KeyboardInterrupt:  # the second signal
        return 130
    finally:
        # A shutdown that hangs (in C: a library's threads, DDS) would end in the launcher's
        # SIGKILL with no word of where: print every thread's stack if it takes this long.
        faulthandler.dump_traceback_later(SHUTDOWN_REPORT_SECONDS)
        if executor is not None:
            executor.shutdown()
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
        faulthandler.cancel_dump_traceback_later()
