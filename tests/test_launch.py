"""Scenario graphs and ``mimic launch``, with stand-in node executables (no ROS needed)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import yaml

from mimic_sim.tools.graph import GraphError, load_scenario
from mimic_sim.tools.launcher import Launcher

# A stand-in node: prints its arguments, then a line a second; exits 0 on SIGINT, or
# ignores SIGINT when told to (the launcher must escalate), or fails when told to.
NODE = textwrap.dedent("""\
    #!{python}
    import signal, sys, time
    def stop(signum, frame):
        print("clean shutdown", flush=True)
        sys.exit(0)
    signal.signal(signal.SIGINT, stop)
    args = sys.argv[1:]
    print("args", " ".join(args), flush=True)
    if "stubborn:=true" in args:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if "fail:=true" in args:
        time.sleep(0.3)
        sys.exit(3)
    while True:
        print("tick", flush=True)
        time.sleep(0.2)
""")


@pytest.fixture()
def nodes_on_path(tmp_path, monkeypatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("fake_player", "fake_sim"):
        path = bin_dir / name
        path.write_text(NODE.format(python=sys.executable))
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def _scenario(tmp_path: Path, nodes: list[dict], arguments: dict | None = None) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump({"description": "test graph", "arguments": arguments or {}, "nodes": nodes}))
    return path


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie not yet reaped counts as gone
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_runs_every_node_prefixes_output_and_stops_cleanly(tmp_path, nodes_on_path):
    path = _scenario(tmp_path, [
        {"name": "player", "package": "mimic_sim", "executable": "fake_player", "set": {"clip": "$(clip)"}},
        {"name": "sim", "package": "mimic_sim", "executable": "fake_sim", "parameters": ["characters/humanoid.yaml"]},
    ], {"clip": {"default": "walk", "description": "clip"}})
    out = io.StringIO()
    launcher = Launcher(load_scenario(path), {"clip": "run"}, out=out)
    status = launcher.run(timeout=1.5)
    text = out.getvalue()
    assert status == 0
    assert "[player] args --ros-args -r __node:=player -p clip:=run" in text
    assert "--params-file" in text and "humanoid.yaml" in text
    assert "[sim] tick" in text and "[player] clean shutdown" in text and "[sim] clean shutdown" in text
    assert all(_gone(n.process.pid) for n in launcher.nodes)


def test_a_node_ignoring_sigint_is_terminated(tmp_path, nodes_on_path):
    path = _scenario(tmp_path, [
        {"name": "stubborn", "package": "mimic_sim", "executable": "fake_sim", "set": {"stubborn": True}},
    ])
    out = io.StringIO()
    launcher = Launcher(load_scenario(path), out=out, grace_seconds=0.5)
    launcher.run(timeout=0.5)
    assert "sending SIGTERM" in out.getvalue()
    assert all(_gone(n.process.pid) for n in launcher.nodes)


def test_a_required_node_failing_stops_the_graph_with_its_status(tmp_path, nodes_on_path):
    path = _scenario(tmp_path, [
        {"name": "crasher", "package": "mimic_sim", "executable": "fake_player", "set": {"fail": True}},
        {"name": "sim", "package": "mimic_sim", "executable": "fake_sim"},
    ])
    out = io.StringIO()
    launcher = Launcher(load_scenario(path), out=out)
    start = time.monotonic()
    assert launcher.run(timeout=30) == 3
    assert time.monotonic() - start < 15
    assert "crasher exited with status 3" in out.getvalue()
    assert all(_gone(n.process.pid) for n in launcher.nodes)


def test_mimic_launch_forwards_sigint_and_leaves_no_process(tmp_path, nodes_on_path):
    path = _scenario(tmp_path, [
        {"name": "player", "package": "mimic_sim", "executable": "fake_player"},
        {"name": "sim", "package": "mimic_sim", "executable": "fake_sim"},
    ])
    proc = subprocess.Popen([sys.executable, "-m", "mimic_sim.tools.cli", "launch", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    pids, ticking, both = [], set(), threading.Event()

    def read() -> list[str]:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "started" in line:
                pids.append(int(line.split("(pid ")[1].split(")")[0]))
            if line.endswith("] tick\n"):
                ticking.add(line.split("]")[0])
                if len(ticking) == 2:
                    both.set()
        return lines

    collected: list[str] = []
    reader = threading.Thread(target=lambda: collected.extend(read()))
    reader.start()
    assert both.wait(30), "nodes did not start"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0
    reader.join(5)
    assert len(pids) == 2 and all(_gone(pid) for pid in pids)
    assert any("received SIGINT" in line for line in collected)


def test_bad_scenarios_name_the_field(tmp_path, nodes_on_path):
    with pytest.raises(GraphError, match=r"nodes\[0\].executable"):
        load_scenario(_scenario(tmp_path, [{"name": "a", "package": "p"}]))
    with pytest.raises(GraphError, match="undeclared argument 'speed'"):
        load_scenario(_scenario(tmp_path, [{"name": "a", "package": "p", "executable": "x",
                                            "set": {"rate": "$(speed)"}}]))
    with pytest.raises(GraphError, match=r"no_such\.yaml"):
        load_scenario(_scenario(tmp_path, [{"name": "a", "package": "p", "executable": "x",
                                            "parameters": ["no_such.yaml"]}]))
    scenario = load_scenario(_scenario(tmp_path, [{"name": "a", "package": "p", "executable": "not_installed"}]))
    with pytest.raises(GraphError, match="not_installed"):
        Launcher(scenario).start()
    with pytest.raises(GraphError, match="unknown argument"):
        Launcher(scenario, {"clip": "walk"})


ROOT = Path(__file__).resolve().parents[1]


# gazebo.launch.py also starts Gazebo's own nodes: tests/test_gazebo.py checks it
@pytest.mark.parametrize("launch_file", sorted(p for p in (ROOT / "launch").glob("*.launch.py")
                                               if not load_scenario(p.name.removesuffix(".launch.py")).requires),
                         ids=lambda p: p.name)
def test_launch_files_name_existing_executables_parameters_and_packages(launch_file, monkeypatch):
    import runpy

    from launch_stubs import stub_launch_packages

    built = stub_launch_packages(monkeypatch)
    description = runpy.run_path(str(launch_file))["generate_launch_description"]()
    created = [kwargs for kind, kwargs in built if kind == "Node"]
    assert description[0] == "LaunchDescription" and created
    scenario = load_scenario(launch_file.name.removesuffix(".launch.py"))
    assert [n["name"] for n in created] == [s.name for s in scenario.nodes]
    for node in created:
        package_dir = ROOT / "src" / node["package"]
        assert (package_dir / "package.xml").is_file(), f"no ROS package {node['package']} under src/"
        # colcon installs the executable from the package's console scripts; pip from pyproject's
        setup_py = (package_dir / "setup.py").read_text()
        assert f'"{node["executable"]} = ' in setup_py, f"{node['executable']} not declared in {package_dir}/setup.py"
        assert (Path(sys.executable).parent / node["executable"]).is_file(), f"{node['executable']} not installed"
        for parameters in node["parameters"]:
            if isinstance(parameters, str):
                assert Path(parameters).is_file(), parameters
                assert node["name"] in yaml.safe_load(Path(parameters).read_text()), \
                    f"{parameters} has no section for node {node['name']}"


def test_an_empty_argument_default_reaches_the_node_as_an_empty_string(monkeypatch):
    """play's output:= defaults to "" (a derived bag name): `mimic launch` passes it as YAML's '' (rcl
    refuses `-p output:=`), `ros2 launch` as a string-typed value (launch_ros would read "" as null)."""
    import runpy

    from launch_stubs import stub_launch_packages

    scenario = load_scenario("play")
    recorder = next(n for n in scenario.nodes if n.name == "recorder")
    assert "output:=''" in recorder.ros_arguments(scenario.argument_values({}))
    assert "output:=bags/x" in recorder.ros_arguments(scenario.argument_values({"output": "bags/x"}))

    built = stub_launch_packages(monkeypatch)
    runpy.run_path(str(ROOT / "launch" / "play.launch.py"))["generate_launch_description"]()
    node = next(kwargs for kind, kwargs in built if kind == "Node" and kwargs["name"] == "recorder")
    output = next(p for p in node["parameters"] if isinstance(p, dict))["output"]
    assert output.value_type is str and output.value.perform({"output": ""}) == ""
