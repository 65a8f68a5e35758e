"""Stand-ins for ROS 2's launch packages (not installable here) that record what a launch file builds."""

from __future__ import annotations

import sys
import types


def stub_launch_packages(monkeypatch) -> list[tuple[str, dict]]:
    """Install the stand-ins; the returned list fills with (action kind, its arguments) as they are built.
    ``LaunchConfiguration(name).perform(context)`` reads ``context[name]``."""
    built: list[tuple[str, dict]] = []

    def record(kind):
        def make(*args, **kwargs):
            built.append((kind, {"args": args, **kwargs}))
            return (kind, args, kwargs)
        return make

    modules = {
        "launch": {"LaunchDescription": lambda actions: ("LaunchDescription", actions)},
        "launch.actions": {n: record(n) for n in ("DeclareLaunchArgument", "EmitEvent", "RegisterEventHandler",
                                                   "IncludeLaunchDescription", "OpaqueFunction")},
        "launch.event_handlers": {"OnProcessExit": record("OnProcessExit")},
        "launch.events": {"Shutdown": record("Shutdown")},
        "launch.launch_description_sources": {"PythonLaunchDescriptionSource": lambda path: path},
        "launch.substitutions": {"LaunchConfiguration": lambda name: types.SimpleNamespace(
            perform=lambda context: context[name])},
        "launch_ros": {},
        "launch_ros.actions": {"Node": record("Node")},
        "launch_ros.parameter_descriptions": {"ParameterValue": lambda value, value_type=None: types.SimpleNamespace(
            value=value, value_type=value_type)},
        "ament_index_python": {},
        "ament_index_python.packages": {"get_package_share_directory": lambda package: f"/opt/ros/share/{package}"},
    }
    for name, attrs in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, module)
    return built
