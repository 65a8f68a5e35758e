"""mimic_sim.settings: tuple leaves of ints, floats and strings, and the leaves as ROS parameters
(no ROS needed: these are the values mimic_sim.nodes.parameters declares and reads back)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, make_dataclass

import pytest

from mimic_sim.settings import (
    SettingsError,
    add_arguments,
    from_arguments,
    from_dict,
    leaves,
    parameter_default,
    parameter_help,
    parameter_value,
    replace_leaves,
)


@dataclass(frozen=True)
class Inner:
    rate: float | None = None
    """Rate (Hz)."""


@dataclass(frozen=True)
class Example:
    names: tuple[str, ...] = ()
    """Names."""
    offsets: tuple[float, ...] = (0.5, 1.0)
    """Offsets (s)."""
    sizes: tuple[int, ...] = (64,)
    """Sizes."""
    none: tuple[int, ...] = ()
    """No sizes."""
    inner: Inner = field(default_factory=Inner)


def _leaf(name: str):
    return {leaf.name: leaf for leaf in leaves(Example)}[name]


def test_a_tuple_leaf_knows_its_element_type():
    assert [(leaf.name, leaf.kind, leaf.item) for leaf in leaves(Example)] == [
        ("names", tuple, str), ("offsets", tuple, float), ("sizes", tuple, int), ("none", tuple, int),
        ("rate", float, None)]


@pytest.mark.parametrize("annotation", [tuple[int, int], tuple[bool, ...], tuple[str]], ids=str)
def test_other_tuples_are_refused(annotation):
    bad = make_dataclass("Bad", [("x", annotation, field(default=()))])
    with pytest.raises(TypeError, match=r"is not tuple\[int \| float \| str, \.\.\.\]"):
        leaves(bad)


def test_tuple_values_are_checked_by_element_type():
    settings = from_dict(Example, {"names": ["a", "b"], "offsets": [1, 2.5], "sizes": [3]})
    assert (settings.names, settings.offsets, settings.sizes) == (("a", "b"), (1.0, 2.5), (3,))
    assert isinstance(settings.offsets[0], float)
    with pytest.raises(SettingsError, match=r"field 'names': expected a list of strs, got \['a', 1\]"):
        from_dict(Example, {"names": ["a", 1]})
    with pytest.raises(SettingsError, match=r"field 'offsets': expected a list of floats, got \[nan\]"):
        from_dict(Example, {"offsets": [float("nan")]})
    with pytest.raises(SettingsError, match=r"field 'sizes': expected a list of ints, got \[1.5\]"):
        from_dict(Example, {"sizes": [1.5]})


def test_tuple_flags_parse_by_element_type():
    parser = argparse.ArgumentParser()
    add_arguments(parser, Example, skip=("none",))
    args = parser.parse_args(["--names", "a,b", "--offsets", "0.1,2", "--sizes", "8,4"])
    assert from_arguments(Example, args) == Example(names=("a", "b"), offsets=(0.1, 2.0), sizes=(8, 4))
    assert from_arguments(Example, parser.parse_args(["--names", ""])).names == ()
    with pytest.raises(SystemExit):
        parser.parse_args(["--offsets", "0.1,x"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--sizes", "1.5"])


def test_leaves_as_ros_parameters():
    # declared defaults: ROS has no null (an optional leaf's zero stands for None) and no typed empty list
    assert parameter_default(_leaf("names")) == [""]
    assert parameter_default(_leaf("offsets")) == [0.5, 1.0]
    assert parameter_default(_leaf("rate")) == 0.0
    assert parameter_help(_leaf("rate")) == "Rate (Hz). (0.0: derived)" and parameter_help(_leaf("sizes")) == "Sizes."
    with pytest.raises(TypeError, match="'none': an empty tuple of ints has no ROS parameter type"):
        parameter_default(_leaf("none"))
    # and back: what a node declaring those defaults reads back is the dataclass's default
    for name in ("names", "offsets", "sizes", "rate"):
        leaf = _leaf(name)
        assert replace_leaves(Example(), {name: parameter_value(leaf, parameter_default(leaf))}) == Example()
    assert parameter_value(_leaf("names"), ["a", "", "b"]) == ["a", "b"]
    assert parameter_value(_leaf("rate"), 240.0) == 240.0
