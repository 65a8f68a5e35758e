"""Node graphs of mimic's scenarios, declared once in ``launch/<scenario>.yaml``.

Two launchers read the same declaration: ``mimic launch <scenario>`` here (plain
processes, :mod:`mimic_sim.tools.launcher`), and ``ros2 launch mimic <scenario>.launch.py``
on an apt-installed ROS 2 (:func:`ros2_launch_description`).

A scenario file::

    description: one line
    requires: [gazebo]            # optional: what only an apt ROS 2 has; `mimic launch` refuses it
    arguments:                    # overridable as name:=value on either launcher
      clip: {default: walk, description: clip name or motion file}
    nodes:
      - name: reference_player    # ROS node name
        package: mimic_sim        # ROS package of the executable
        executable: reference_player
        parameters: [reference_player.yaml]   # files under config/, in order
        set: {clip: $(clip)}      # single parameters; $(arg) substitutes an argument
        topics: [reference]       # topics it publishes or serves (checked by the tests)
        required: true            # stop everything when this node exits (default true)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mimic_sim.paths import config_dirs, find_config

_SUBSTITUTION = re.compile(r"\$\((\w+)\)")


class GraphError(ValueError):
    """A scenario file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Argument:
    name: str
    default: str
    description: str = ""


@dataclass(frozen=True)
class NodeSpec:
    name: str
    package: str
    executable: str
    parameter_files: tuple[Path, ...] = ()
    parameters: dict[str, object] = field(default_factory=dict)
    required: bool = True
    topics: tuple[str, ...] = ()

    def ros_arguments(self, values: dict[str, str]) -> list[str]:
        """``--ros-args`` for this node, with arguments substituted."""
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        for path in self.parameter_files:
            args += ["--params-file", str(path)]
        for key, value in self.parameters.items():
            # an empty value is a parse error for rcl's overrides: '' is YAML's empty string
            args += ["-p", f"{key}:={substitute(value, values) or repr('')}"]
        return args


@dataclass(frozen=True)
class Scenario:
    name: str
    source: Path
    description: str
    arguments: tuple[Argument, ...]
    nodes: tuple[NodeSpec, ...]
    requires: tuple[str, ...] = ()

    def argument_values(self, overrides: dict[str, str]) -> dict[str, str]:
        known = {a.name for a in self.arguments}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise GraphError(f"{self.source}: unknown argument(s) {unknown}; this scenario takes {sorted(known)}")
        return {a.name: overrides.get(a.name, a.default) for a in self.arguments}


def substitute(value: object, values: dict[str, str]) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return _SUBSTITUTION.sub(lambda m: values[m.group(1)], text)


def scenario_path(name: str) -> Path:
    """``launch/<name>.yaml`` next to ``config/`` in the checkout or an install prefix."""
    for config in config_dirs():
        candidate = config.parent / "launch" / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    available = sorted({p.stem for c in config_dirs() for p in (c.parent / "launch").glob("*.yaml")})
    raise FileNotFoundError(f"no scenario '{name}'; available: {available}")


def load_scenario(name_or_path: str | Path) -> Scenario:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = scenario_path(str(name_or_path))
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise GraphError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list) or not data["nodes"]:
        raise GraphError(f"{path}: field 'nodes' must be a non-empty list")
    arguments = []
    for arg_name, spec in (data.get("arguments") or {}).items():
        if not isinstance(spec, dict) or "default" not in spec:
            raise GraphError(f"{path}: field 'arguments.{arg_name}' needs a 'default'")
        arguments.append(Argument(arg_name, str(spec["default"]), str(spec.get("description", ""))))
    names = {a.name for a in arguments}
    nodes = []
    for i, node in enumerate(data["nodes"]):
        where = f"{path}: field 'nodes[{i}]"
        if not isinstance(node, dict):
            raise GraphError(f"{where}' must be a mapping")
        for key in ("name", "package", "executable"):
            if not isinstance(node.get(key), str):
                raise GraphError(f"{where}.{key}' must be a string")
        files = []
        for file_name in node.get("parameters") or []:
            try:
                files.append(find_config(str(file_name)))
            except FileNotFoundError as exc:
                raise GraphError(f"{where}.parameters': {exc}") from exc
        params = dict(node.get("set") or {})
        for key, value in params.items():
            for used in _SUBSTITUTION.findall(str(value)):
                if used not in names:
                    raise GraphError(f"{where}.set.{key}' uses undeclared argument '{used}'")
        topics = node.get("topics") or []
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise GraphError(f"{where}.topics' must be a list of topic names")
        nodes.append(NodeSpec(node["name"], node["package"], node["executable"], tuple(files), params,
                              bool(node.get("required", True)), tuple(topics)))
    if len({n.name for n in nodes}) != len(nodes):
        raise GraphError(f"{path}: node names must be unique")
    requires = data.get("requires") or []
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise GraphError(f"{path}: field 'requires' must be a list of names")
    return Scenario(path.stem, path, str(data.get("description", "")), tuple(arguments), tuple(nodes),
                    tuple(requires))


def ros2_launch_description(name: str):  # -> launch.LaunchDescription, on an apt ROS 2 only
    """The scenario as a ``ros2 launch`` description (used by ``launch/<name>.launch.py``)."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
    from launch.event_handlers import OnProcessExit
    from launch.events import Shutdown
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node
    from launch_ros.parameter_descriptions import ParameterValue

    scenario = load_scenario(name)
    actions: list = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
                     for a in scenario.arguments]

    def value(raw: object):
        text = str(raw).lower() if isinstance(raw, bool) else str(raw)
        match = _SUBSTITUTION.fullmatch(text)
        if not match:
            return raw
        # launch_ros reads a value as YAML: an empty default ('' = derived) must stay a string
        empty = any(a.name == match.group(1) and a.default == "" for a in scenario.arguments)
        return ParameterValue(LaunchConfiguration(match.group(1)), value_type=str) if empty \
            else LaunchConfiguration(match.group(1))

    for spec in scenario.nodes:
        params: list = [str(p) for p in spec.parameter_files]
        if spec.parameters:
            params.append({k: value(v) for k, v in spec.parameters.items()})
        node = Node(package=spec.package, executable=spec.executable, name=spec.name, parameters=params,
                    output="screen")
        actions.append(node)
        if spec.required:
            actions.append(RegisterEventHandler(OnProcessExit(target_action=node,
                                                              on_exit=[EmitEvent(event=Shutdown())])))
    return LaunchDescription(actions)
