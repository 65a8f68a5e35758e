"""Node parameters declared once, in settings dataclasses, without ROS: every key a parameter file
(config/*.yaml, config/gazebo/*.yaml) or a scenario (launch/*.yaml ``set:``) gives is a parameter
of its node, with a value of the parameter's type, and a parameter file repeats no default.

A typo in a parameter file (``rate_hz`` for reference_player's ``rate``) is silently ignored by
ROS, which only applies overrides of declared parameters; a repeated default is a second place
of it, which goes stale when the dataclass's default changes.  Test_nodes checks that each
running node declares exactly these parameters, with the dataclass's help and defaults.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from node_settings import NODES, declared

from mimic_sim.settings import SettingsError, check_value, closest, leaves, parameter_value
from mimic_sim.tools.graph import load_scenario, substitute

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config"
PARAMETER_FILES = sorted(p.relative_to(CONFIG).as_posix() for p in [*CONFIG.glob("*.yaml"),
                                                                     *CONFIG.glob("gazebo/*.yaml")])
SCENARIOS = sorted(ROOT.glob("launch/*.yaml"))

NOT_PARAMETER_FILES = {"gazebo/bridge.yaml"}
"""YAML files there that are not ROS parameter files (ros_gz_bridge's list of bridged topics)."""

FOREIGN = {"gazebo/controllers.yaml": {"controller_manager", "joint_position_controller"}}
"""Sections of nodes that are not mimic's (ros2_control's, read by gz_ros2_control)."""

PINNED = {("train_walk.yaml", "trainer", "clip"), ("train_walk.yaml", "trainer", "character")}
"""Defaults a parameter file repeats on purpose: train_walk.yaml trains the humanoid's walk whatever
the defaults become.  Anything else equal to its default is an error: the dataclass is its one place."""


def _sections(config: Path, name: str) -> dict[str, dict]:
    """A parameter file's mimic nodes: node -> parameters."""
    data = yaml.safe_load((config / name).read_text())
    assert isinstance(data, dict), f"{name} is not a mapping of node sections"
    out = {}
    for node, section in data.items():
        if node in FOREIGN.get(name, ()):
            continue
        assert node in NODES, f"{name}: '{node}' is no mimic node{closest(node, list(NODES))}"
        assert isinstance(section, dict) and set(section) == {"ros__parameters"}, \
            f"{name}: section '{node}' must hold ros__parameters only"
        out[node] = section["ros__parameters"] or {}
    return out


def _checked(node: str, name: str, value: object, where: str) -> object:
    """The value as the node takes it; an assertion names ``where`` and the key if it is not a parameter
    of the node or not of its type."""
    parameters = declared(node)
    assert name in parameters, f"{where}: '{name}' is not a parameter of {node}{closest(name, list(parameters))}"
    leaf = parameters[name]
    try:
        return check_value(leaf, parameter_value(leaf, value), f"{where}: '{name}'")
    except SettingsError as exc:
        raise AssertionError(str(exc)) from exc


def check_parameter_file(config: Path, name: str) -> None:
    for node, parameters in _sections(config, name).items():
        for key, value in parameters.items():
            taken = _checked(node, key, value, name)
            if (name, node, key) not in PINNED:
                owner = NODES[node].__name__ if key in {leaf.name for leaf in leaves(NODES[node])} else node
                assert taken != declared(node)[key].default, \
                    f"{name}: {node}'s '{key}: {value!r}' is its default (declared in {owner})"


def check_scenario(path: Path) -> None:
    scenario = load_scenario(path)
    values = scenario.argument_values({})
    for spec in scenario.nodes:
        for key, value in spec.parameters.items():
            text = substitute(value, values)
            # as ROS reads `-p key:=text`: YAML, where an empty text is the empty string
            _checked(spec.executable, key, yaml.safe_load(text) if text else "", f"{path.name}: {spec.name}")


@pytest.mark.parametrize("name", [n for n in PARAMETER_FILES if n not in NOT_PARAMETER_FILES])
def test_a_parameter_file_sets_only_parameters_of_its_nodes_and_repeats_no_default(name):
    check_parameter_file(CONFIG, name)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_a_scenario_sets_only_parameters_of_its_nodes(path):
    check_scenario(path)


def test_the_exceptions_are_still_what_they_say():
    # a file listed as no parameter file is none, and each pinned default is there, equal to the default
    for name in NOT_PARAMETER_FILES:
        assert name in PARAMETER_FILES and not isinstance(yaml.safe_load((CONFIG / name).read_text()), dict)
    for name, node, key in PINNED:
        assert _sections(CONFIG, name)[node][key] == declared(node)[key].default, (name, node, key)


def test_every_node_has_a_parameter_file_section():
    # each mimic node is in a scenario, which gives it a parameter file: an example of its own
    nodes = {node for name in PARAMETER_FILES if name not in NOT_PARAMETER_FILES for node in _sections(CONFIG, name)}
    assert nodes == set(NODES)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("reference_player.yaml", "reference_player:\n  ros__parameters:\n    rate_hz: 60.0\n",
     r"'rate_hz' is not a parameter of reference_player \(did you mean 'rate'\?\)"),
    ("sim_node.yaml", "sim_node:\n  ros__parameters:\n    realtime: 'no'\n",
     r"sim_node.yaml: 'realtime': expected a bool, got 'no'"),
    ("sim_node.yaml", "sim_node:\n  ros__parameters:\n    physics_hz: 0\n",
     r"sim_node's 'physics_hz: 0' is its default \(declared in SimNodeParams\)"),
    ("policy_node.yaml", "policy_node:\n  ros__parameters:\n    forward_joint_names: ['']\n",
     r"'forward_joint_names: \[''\]' is its default"),
    ("sim_nod.yaml", "sim_nod:\n  ros__parameters:\n    backend: pybullet\n",
     r"'sim_nod' is no mimic node \(did you mean 'sim_node'\?\)"),
    # ros2_control's own sections pass, mimic's next to them are checked
    ("gazebo/controllers.yaml", "controller_manager:\n  ros__parameters:\n    update_rate: 500\n"
                                "policy_node:\n  ros__parameters:\n    rate: 30\n",
     r"'rate' is not a parameter of policy_node \(did you mean 'rate_hz'\?\)"),
])
def test_a_typo_or_a_repeated_default_in_a_parameter_file_fails(tmp_path, name, text, message):
    (tmp_path / name).parent.mkdir(exist_ok=True)
    (tmp_path / name).write_text(text)
    with pytest.raises(AssertionError, match=message):
        check_parameter_file(tmp_path, name)


def test_a_typo_in_a_scenario_fails(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump({"description": "a typo", "arguments": {"rate": {"default": "30.0"}}, "nodes": [
        {"name": "player", "package": "mimic_sim", "executable": "reference_player", "set": {"rate": "$(rate)"}},
        {"name": "sim", "package": "mimic_sim", "executable": "sim_node", "set": {"control_rate": 60.0}}]}))
    with pytest.raises(AssertionError, match=r"typo.yaml: sim: 'control_rate' is not a parameter of sim_node "
                                             r"\(did you mean 'control_hz'\?\)"):
        check_scenario(path)
