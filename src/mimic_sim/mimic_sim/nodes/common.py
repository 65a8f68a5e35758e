"""What every mimic node shares: DDS defaults, parameter declaration, clean shutdown."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence

# Single-machine default unless the user chose otherwise (see README: reaching a robot).
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node


def declare(node: Node, name: str, default: object, description: str, read_only: bool = False) -> object:
    """Declare a parameter with a description and return its value.

    A float parameter also takes an integer (``duration:=3``, as a launch argument is
    easily written), converted; anything else not a number is an error naming it.
    """
    numeric = isinstance(default, float)
    descriptor = ParameterDescriptor(description=description, read_only=read_only, dynamic_typing=numeric)
    node.declare_parameter(name, default, descriptor)
    value = node.get_parameter(name).value
    if numeric:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"parameter '{name}' must be a number, got {value!r}")
        return float(value)
    return value


def run_node(make: Callable[[], Node], args: Sequence[str] | None = None) -> int:
    """Init rclpy, spin the node until SIGINT/SIGTERM, shut down cleanly; the exit status.

    A node with a ``work()`` method (a long computation, like training) gets it called
    between callbacks; the node stops when ``work()`` returns True.
    """
    rclpy.init(args=args, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = None
    stop = {"requested": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["requested"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        node = make()
        work = getattr(node, "work", None)
        while rclpy.ok() and not stop["requested"]:
            rclpy.spin_once(node, timeout_sec=0.0 if work is not None else 0.1)
            if work is not None and work():
                break
        return 0
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
