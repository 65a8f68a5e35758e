"""Settings dataclasses as ROS 2 parameters: one parameter per leaf (:mod:`mimic_sim.settings`).

The dataclass is the one place of each default and help text; a node declares its
leaves with :func:`declare_settings` and ``config/*.yaml`` files set only what a
scenario changes from those defaults (``tests/test_node_parameters.py`` checks that each
key is a declared parameter and that no default is repeated).  ROS parameters have no
null: an optional leaf (None = derive it, e.g. the physics rate from the character) is
declared with 0 or "" meaning None, an empty tuple of strings as [""]
(:func:`mimic_sim.settings.parameter_default`).
"""

from __future__ import annotations

from typing import TypeVar

from rclpy.node import Node

from mimic_sim.nodes.common import declare
from mimic_sim.settings import leaves, parameter_default, parameter_help, parameter_value, replace_leaves

T = TypeVar("T")


def declare_settings(node: Node, settings: T, read_only: bool = False) -> T:
    """Declare every leaf of ``settings`` (its values as defaults) on ``node``; the settings the
    parameters then hold (checked: a bad value raises ``ValueError`` naming the parameter).
    ``read_only``: the parameters cannot be set once the node runs (it reads them only at start)."""
    values = {}
    for leaf in leaves(type(settings), settings):
        value = declare(node, leaf.name, parameter_default(leaf), parameter_help(leaf), read_only)
        values[leaf.name] = parameter_value(leaf, value)
    return replace_leaves(settings, values, f"node '{node.get_name()}' parameter")
