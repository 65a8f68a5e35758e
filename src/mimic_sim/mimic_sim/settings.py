"""Settings dataclasses as JSON, command-line flags and node parameters, declared once.

A settings class is a dataclass whose fields have defaults and a docstring each (the
string literal under the field, as in CleanRL's ``Args``); a field may itself be such a
dataclass (a group).  From that one declaration:

* :func:`to_dict` / :func:`from_dict`: JSON-ready nesting, read back strictly (an unknown
  key is an error naming it and the closest valid one; a value of the wrong type names the
  field);
* :func:`add_arguments` / :func:`from_arguments`: one ``--flag`` per leaf field, its help
  the field's docstring, its default the dataclass's;
* :func:`leaves`, :func:`parameter_default`, :func:`parameter_value`: the same leaves as ROS
  parameters (declared by ``mimic_sim.nodes.parameters``; here, so that parameter files can be
  checked without ROS).

Leaves are addressed by their own name, so every leaf name must be unique in the tree
(checked).  A field's ``metadata={"aliases": (...)}`` adds other flag spellings.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import functools
import inspect
import itertools
import math
import textwrap
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class SettingsError(ValueError):
    """A settings value or key is invalid; the message names the source and the field."""


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One settable value: its name, where it sits in the tree, type, default and help."""

    name: str
    path: tuple[str, ...]
    kind: type  # bool, int, float, str or tuple
    optional: bool  # None allowed (meaning "derive it", as the help says)
    default: Any
    help: str
    aliases: tuple[str, ...] = ()
    item: type | None = None  # a tuple's element type: int, float or str


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (its source's string literals)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in itertools.pairwise(body):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _kind(annotation: Any) -> tuple[Any, type | None, bool]:
    """(the type a leaf holds, a tuple's element type, whether None is allowed) from its annotation."""
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        if len(args) != 1:
            raise TypeError(f"settings field type {annotation} is not one type or None")
        annotation = args[0]
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        if len(args) != 2 or args[1] is not Ellipsis or args[0] not in (int, float, str):
            raise TypeError(f"settings field type {annotation} is not tuple[int | float | str, ...]")
        return tuple, args[0], optional
    return annotation, None, optional


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise TypeError(f"settings field '{field.name}' has no default")


def _leaves(cls: type, path: tuple[str, ...], defaults: Any) -> list[Leaf]:
    out: list[Leaf] = []
    docs = field_docs(cls)
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        kind, item, optional = _kind(_hints(cls)[field.name])
        default = getattr(defaults, field.name) if defaults is not None else _default(field)
        if dataclasses.is_dataclass(kind):
            out += _leaves(kind, (*path, field.name), default)
            continue
        if kind not in (bool, int, float, str, tuple):
            raise TypeError(f"settings field '{field.name}' of {cls.__name__} has unsupported type {kind}")
        out.append(Leaf(field.name, (*path, field.name), kind, optional, default, docs.get(field.name, ""),
                        tuple(field.metadata.get("aliases", ())), item))
    return out


def leaves(cls: type, defaults: Any = None) -> list[Leaf]:
    """Every leaf field of settings class ``cls`` (defaults from the instance ``defaults`` if given)."""
    found = _leaves(cls, (), defaults)
    names = [leaf.name for leaf in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise TypeError(f"settings class {cls.__name__}: leaf names {duplicates} appear more than once")
    return found


# ---------------------------------------------------------------------------- JSON


def to_dict(settings: Any) -> dict:
    """A settings instance as nested JSON-ready dicts (tuples become lists)."""
    return json_ready(dataclasses.asdict(settings))


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def closest(name: str, valid: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the valid name closest to ``name``, or ``""``."""
    match = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_ACCEPTS = {
    bool: lambda v: isinstance(v, bool),
    int: _is_int,
    float: lambda v: (_is_int(v) or isinstance(v, float)) and math.isfinite(v),
    str: lambda v: isinstance(v, str),
}


def check_value(leaf: Leaf, value: Any, where: str) -> Any:
    """``value`` converted to ``leaf``'s type, or :class:`SettingsError` naming ``where``."""
    if value is None:
        if leaf.optional:
            return None
        raise SettingsError(f"{where}: must be set (a {leaf.kind.__name__})")
    if leaf.kind is tuple:
        if not (isinstance(value, (list, tuple)) and all(_ACCEPTS[leaf.item](x) for x in value)):
            raise SettingsError(f"{where}: expected a list of {leaf.item.__name__}s, got {value!r}")
        return tuple(leaf.item(x) for x in value)
    if not _ACCEPTS[leaf.kind](value):
        raise SettingsError(f"{where}: expected a {leaf.kind.__name__}, got {value!r}")
    return leaf.kind(value)


def from_dict(cls: type[T], data: Mapping[str, Any], source: str = "settings") -> T:
    """A ``cls`` instance from :func:`to_dict`'s form; missing keys take the defaults, unknown
    keys and wrong types raise :class:`SettingsError` naming ``source`` and the field."""
    return _from_dict(cls, data, source, "")


def _from_dict(cls: type, data: Any, source: str, prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise SettingsError(f"{source}: field '{prefix.rstrip('.') or '<top>'}' must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise SettingsError(f"{source}: unknown field '{prefix}{unknown[0]}'{closest(unknown[0], list(fields))}")
    values = {}
    for name, value in data.items():
        kind, item, optional = _kind(_hints(cls)[name])
        where = f"{prefix}{name}"
        if dataclasses.is_dataclass(kind):
            values[name] = _from_dict(kind, value, source, f"{where}.")
        else:
            leaf = Leaf(name, (), kind, optional, None, "", item=item)
            values[name] = check_value(leaf, value, f"{source}: field '{where}'")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{source}: {exc}") from exc


# ---------------------------------------------------------------------- arguments


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, cls: type, defaults: Any = None,
                  skip: tuple[str, ...] = ()) -> None:
    """One flag per leaf of ``cls`` (except ``skip``), in a help group per nested settings class;
    unset flags parse as None, so :func:`from_arguments` can tell a given value from a default."""
    groups: dict[tuple[str, ...], Any] = {}
    for leaf in leaves(cls, defaults):
        if leaf.name in skip:
            continue
        where = leaf.path[:-1]
        if where not in groups:
            groups[where] = parser.add_argument_group(" ".join(where) + " settings" if where else "run settings")
        names = [flag(leaf.name), *(flag(a) for a in leaf.aliases)]
        shown = "derived" if leaf.default is None else (
            ",".join(map(str, leaf.default)) if leaf.kind is tuple else leaf.default)
        text = f"{leaf.help} (default: {shown})".replace("%", "%%")
        dest = "settings." + leaf.name
        if leaf.kind is bool:
            groups[where].add_argument(*names, dest=dest, action=argparse.BooleanOptionalAction, default=None,
                                       help=text)
        elif leaf.kind is tuple:
            groups[where].add_argument(*names, dest=dest, type=_list_of(leaf.item), default=None,
                                       metavar="S,S" if leaf.item is str else "N,N", help=text)
        else:
            groups[where].add_argument(*names, dest=dest, type=_int_value if leaf.kind is int else leaf.kind,
                                       default=None,
                                       metavar=leaf.kind.__name__.upper(), help=text)


def _int_value(text: str) -> int:
    """An integer, also written as a float with no fraction (``2e6``, as sample budgets are)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'")
    return int(value)


def _list_of(item: type) -> Callable[[str], tuple]:
    """A parser of ``item`` values separated by commas (for strings: "" is the empty list)."""

    def parse(text: str) -> tuple:
        if item is str:
            return tuple(text.split(",")) if text else ()
        try:
            return tuple(item(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {item.__name__}s separated by commas, got '{text}'") from None

    return parse


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The settings flags given on the command line: leaf name -> value."""
    return {k.removeprefix("settings."): v for k, v in vars(args).items()
            if k.startswith("settings.") and v is not None}


def replace_leaves(settings: T, values: Mapping[str, Any], source: str = "settings") -> T:
    """``settings`` with the named leaves replaced (checked like :func:`from_dict`)."""
    by_name = {leaf.name: leaf for leaf in leaves(type(settings))}
    unknown = [k for k in values if k not in by_name]
    if unknown:
        raise SettingsError(f"{source}: unknown setting '{unknown[0]}'{closest(unknown[0], list(by_name))}")
    data = to_dict(settings)
    for name, value in values.items():
        leaf = by_name[name]
        node = data
        for part in leaf.path[:-1]:
            node = node[part]
        node[leaf.path[-1]] = check_value(leaf, value, f"{source}: '{name}'")
    return from_dict(type(settings), data, source)


def from_arguments(cls: type[T], args: argparse.Namespace, base: T | None = None) -> T:
    """``base`` (default: ``cls()``) with the flags given on the command line applied."""
    return replace_leaves(base if base is not None else cls(), given(args), "command line")


# ----------------------------------------------------------------- ROS parameters
# ROS parameters have no null and no empty list of a type: an optional leaf is declared with
# its type's zero meaning None, and a tuple of strings with [""] meaning empty (no topic or
# joint name is empty, so "" entries are dropped).

_UNSET = {float: 0.0, int: 0, str: ""}


def parameter_default(leaf: Leaf) -> Any:
    """The value ``leaf``'s ROS parameter is declared with."""
    if leaf.default is None:
        return _UNSET[leaf.kind]
    if leaf.kind is not tuple:
        return leaf.default
    if leaf.default:
        return list(leaf.default)
    if leaf.item is str:
        return [""]
    raise TypeError(f"settings field '{leaf.name}': an empty tuple of {leaf.item.__name__}s has no ROS parameter type")


def parameter_help(leaf: Leaf) -> str:
    """``leaf``'s help as its ROS parameter's description (saying which value stands for None)."""
    return leaf.help + (f" ({_UNSET[leaf.kind]!r}: derived)" if leaf.optional else "")


def parameter_value(leaf: Leaf, value: Any) -> Any:
    """A ROS parameter's value as ``leaf``'s (unchecked: see :func:`replace_leaves`)."""
    if leaf.optional and value == _UNSET[leaf.kind]:
        return None
    if leaf.kind is tuple:
        return [v for v in value if v != ""]
    return value
