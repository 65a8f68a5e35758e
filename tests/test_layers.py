"""The dependency direction of the packages (docs/architecture.md): checked on the imports
each module's source names, so a new import across a layer fails here."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
CORE = SRC / "mimic_sim" / "mimic_sim"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _core_modules() -> list[Path]:
    return [p for p in CORE.rglob("*.py") if not {"tools", "nodes"} & set(p.relative_to(CORE).parts)]


def test_the_simulation_core_imports_no_tool_node_ros_or_higher_package():
    modules = _core_modules()
    assert CORE / "task.py" in modules and CORE / "envs" / "imitation.py" in modules
    assert not any("tools" in p.parts for p in modules)
    forbidden = ("mimic_sim.tools", "mimic_sim.nodes", "rclpy", "mimic_policy", "mimic_retarget", "mimic_msgs")
    offenders = {str(p.relative_to(SRC)): sorted(n for n in _imports(p) if n.startswith(forbidden))
                 for p in modules}
    assert not {k: v for k, v in offenders.items() if v}


def test_only_node_modules_import_rclpy():
    offenders = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                 if "nodes" not in p.parts and any(n == "rclpy" or n.startswith("rclpy.") for n in _imports(p))]
    assert offenders == []
