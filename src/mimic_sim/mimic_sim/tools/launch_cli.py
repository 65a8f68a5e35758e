"""``mimic launch SCENARIO [name:=value ...]``: run a scenario's nodes as processes here."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "launch", help="run a scenario's node graph (launch/<scenario>.yaml) as separate processes",
        description="Start every node of a scenario, prefix each line of their output with the node's name, and "
                    "stop them all cleanly on Ctrl-C, SIGTERM, or when a required node exits. The same graph "
                    "runs with 'ros2 launch mimic <scenario>.launch.py' on an apt-installed ROS 2.")
    parser.add_argument("scenario", help="scenario name (launch/<name>.yaml) or a scenario file")
    parser.add_argument("arguments", nargs="*", metavar="name:=value", help="scenario arguments")
    parser.add_argument("--timeout", type=float, default=None, help="stop the graph after this many seconds")
    parser.add_argument("--show", action="store_true", help="print the nodes and their command lines, start nothing")
    parser.set_defaults(func=run)


def _parse_arguments(items: list[str]) -> dict[str, str]:
    values = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise ValueError(f"scenario argument '{item}' must look like name:=value")
        values[name] = value
    return values


def run(args: argparse.Namespace) -> int:
    from mimic_sim.tools.graph import load_scenario
    from mimic_sim.tools.launcher import Launcher, resolve_executable

    scenario = load_scenario(args.scenario)
    if scenario.requires and not args.show:
        raise ValueError(f"scenario '{scenario.name}' needs {', '.join(scenario.requires)}, which only an apt ROS 2 "
                         f"has: run 'ros2 launch mimic {scenario.name}.launch.py' there")
    launcher = Launcher(scenario, _parse_arguments(args.arguments))
    if args.show:
        print(f"{scenario.name}: {scenario.description} ({scenario.source})")
        for spec in scenario.nodes:
            print(f"  {spec.name}: {resolve_executable(spec)} {' '.join(spec.ros_arguments(launcher.values))}")
        return 0
    return launcher.run(timeout=args.timeout)
