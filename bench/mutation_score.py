"""Mutation score of the core modules: the share of mutmut's mutants that their unit tests kill.

For each module, mutmut (the ``dev`` extra pins it) mutates a copy of the sources in a scratch
folder and runs only that module's fast unit tests against each mutant.  The working tree is
never touched, so it can run while others test.  Prints a table and, last, one JSON line.

    nice -n 19 .venv/bin/python bench/mutation_score.py [--module reward ...] [--record]

``--record`` appends the table to docs/benchmarks.md.  A mutant counts as killed when a test
fails (or the tests time out) with it; "no tests" are mutants in code no selected test runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import ROOT, record_section

SOURCES = {"mimic_sim": ROOT / "src/mimic_sim/mimic_sim", "mimic_policy": ROOT / "src/mimic_policy/mimic_policy"}

MODULES: dict[str, tuple[str, list[str]]] = {
    # name: (source file, the unit tests run against its mutants)
    "reward": ("mimic_sim/reward.py", ["tests/test_reward.py"]),
    "pd": ("mimic_sim/pd.py", ["tests/test_pd.py"]),
    "observation": ("mimic_sim/observation.py", ["tests/test_observation.py"]),
    "storage": ("mimic_policy/storage.py", ["tests/test_storage.py"]),
    "ppo": ("mimic_policy/ppo.py", ["tests/test_ppo_update.py"]),
    "checkpoint": ("mimic_policy/checkpoint.py", ["tests/test_checkpoint.py", "tests/test_checkpoint_units.py"]),
    "commands": ("mimic_sim/commands.py", ["tests/test_commands.py", "tests/test_command_checks.py"]),
}

KILLED = ("killed", "timeout")
TARGET = 0.8


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def measure(name: str, scratch: Path) -> dict[str, int]:
    """mutmut's counts for one module, run in ``scratch`` (made afresh)."""
    source, tests = MODULES[name]
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    for package, path in SOURCES.items():
        shutil.copytree(path, scratch / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tests", scratch / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    (scratch / "pyproject.toml").write_text(
        "[tool.mutmut]\n"
        f"source_paths = {_toml_list(list(SOURCES))}\n"
        f"only_mutate = {_toml_list([source])}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(tests)}\n"
        'pytest_add_cli_args = ["-p", "no:xdist", "-p", "no:cacheprovider"]\n'
        "\n[tool.pytest.ini_options]\n"
        'testpaths = ["tests"]\n'
    )
    # The copies import each other (mutmut puts its mutants/ first on sys.path); config files and
    # generated models come from the checkout; one thread each, the cores being shared.
    env = dict(os.environ, MIMIC_CONFIG_DIR=str(ROOT / "config"), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    mutmut = [sys.executable, "-m", "mutmut"]
    run = subprocess.run([*mutmut, "run", "--max-children", "1"], cwd=scratch, env=env, capture_output=True,
                         text=True)
    if run.returncode != 0:
        raise RuntimeError(f"mutmut run for {name} failed ({run.returncode}):\n{run.stdout[-3000:]}\n"
                           f"{run.stderr[-3000:]}")
    subprocess.run([*mutmut, "export-cicd-stats"], cwd=scratch, env=env, check=True, capture_output=True)
    stats = json.loads((scratch / "mutants" / "mutmut-cicd-stats.json").read_text())
    survivors = subprocess.run([*mutmut, "results"], cwd=scratch, env=env, capture_output=True, text=True).stdout
    (scratch / "survivors.txt").write_text(survivors)
    return {k: int(v) for k, v in stats.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", choices=sorted(MODULES),
                        help="measure only these (repeatable; default: all)")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / f"mimic-mutation-{os.getpid()}",
                        help="folder for the mutated copies (kept: survivors.txt lists each module's survivors)")
    parser.add_argument("--record", action="store_true", help="append the table to docs/benchmarks.md")
    args = parser.parse_args()

    rows = {}
    for name in args.module or list(MODULES):
        stats = measure(name, args.scratch / name)
        killed = sum(stats[k] for k in KILLED)
        rows[name] = {"killed": killed, "total": stats["total"], "survived": stats["survived"],
                      "no_tests": stats["no_tests"], "timeout": stats["timeout"],
                      "score": round(killed / stats["total"], 3) if stats["total"] else None}
        print(f"{name}: {killed}/{stats['total']} killed", file=sys.stderr, flush=True)
    killed = sum(r["killed"] for r in rows.values())
    total = sum(r["total"] for r in rows.values())
    lines = ["| module | tests | mutants | killed | survived | no tests | of which timeouts | score |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        tests = ", ".join(Path(t).name for t in MODULES[name][1])
        lines.append(f"| {MODULES[name][0]} | {tests} | {r['total']} | {r['killed']} | {r['survived']} | "
                     f"{r['no_tests']} | {r['timeout']} | {r['score']:.1%} |")
    lines.append(f"| all | | {total} | {killed} | | | | {killed / total:.1%} |")
    short = [name for name, r in rows.items() if r["score"] is None or r["score"] < TARGET]
    verdict = (f"Target: at least {TARGET:.0%} of each module's mutants killed: "
               + ("met by every module." if not short else f"not met by {', '.join(short)}."))
    print("\n".join([*lines, verdict]))
    if args.record:
        command = " ".join(["nice -n 19 .venv/bin/python bench/mutation_score.py", *sys.argv[1:]])
        record_section("mutation_score (mutmut 3.8.1)", command, [
            "Each module's mutants run against that module's unit tests only (the tests column); killed: a "
            "test failed or timed out. The surviving mutants are listed in `<scratch>/<module>/survivors.txt` "
            "(`mutmut show NAME` in that folder shows one).", "", *lines, "", verdict])
    print(json.dumps({"modules": rows, "killed": killed, "total": total,
                      "score": round(killed / total, 3) if total else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
