"""Settings dataclasses as ROS 2 parameters: one parameter per leaf (:mod:`mimic_sim.settings`).

The dataclass is the one place of each default and help text; a node declares its
leaves with :func:`declare_settings` and ``config/*.yaml`` files set only what a
scenario changes.  ROS parameters have no null: an optional leaf (None = derive it,
e.g. the physics rate from the character) is declared with 0 or "" meaning None.
"""

from __future__ import annotations

from typing import Any, TypeVar

from rclpy.node import Node

from mimic_sim.nodes.common import declare
from mimic_sim.settings import Leaf, leaves, replace_leaves

T = TypeVar("T")

_UNSET = {float: 0.0, int: 0, str: ""}


def _declared_default(leaf: Leaf) -> Any:
    if leaf.default is None:
        return _UNSET[leaf.kind]
    return list(leaf.default) if leaf.kind is tuple else leaf.default


def declare_settings(node: Node, settings: T) -> T:
    """Declare every leaf of ``settings`` (its values as defaults) on ``node``; the settings the
    parameters then hold (checked: a bad value raises ``ValueError`` naming the parameter)."""
    values = {}
    for leaf in leaves(type(settings), settings):
        text = leaf.help + (f" ({_UNSET[leaf.kind]!r}: derived)" if leaf.optional else "")
        value = declare(node, leaf.name, _declared_default(leaf), text)
        values[leaf.name] = None if leaf.optional and value == _UNSET[leaf.kind] else value
    return replace_leaves(settings, values, f"node '{node.get_name()}' parameter")
