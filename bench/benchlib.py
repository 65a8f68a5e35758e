"""What every benchmark shares: appending its results, with the command, to docs/benchmarks.md."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def record_section(name: str, command: str, lines: list[str]) -> None:
    """Append a section (heading with date and commit, the command, machine, ``lines``) to docs/benchmarks.md."""
    header = [
        f"\n## {name}: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {git_revision()}",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}.",
        "",
    ]
    with (ROOT / "docs" / "benchmarks.md").open("a") as f:
        f.write("\n".join(header + lines) + "\n")
