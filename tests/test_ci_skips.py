"""Under CI=true a skipped test fails (tests/conftest.py); on a developer's machine it stays skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SKIPPING = '''
import pytest

missing = pytest.mark.skipif(True, reason="robot files not fetched")


def test_runs():
    pass


@missing
def test_marked():
    pass


def test_skips_itself():
    pytest.skip("no ROS here")


@pytest.mark.xfail(reason="known bug", strict=True)
def test_known_bug():
    assert False
'''


def _run(folder: Path, ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS")}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-rA",
                           str(folder)], cwd=folder, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(SKIPPING)
    (tmp_path / "test_no_ros.py").write_text('import pytest\n\npytest.importorskip("no_such_ros_module")\n\n\n'
                                             'def test_talks():\n    pass\n')
    return tmp_path


def test_skips_stay_skips_without_ci(project):
    for ci in (None, "false"):
        result = _run(project, ci)
        assert result.returncode == 0, result.stdout
        assert "1 passed, 3 skipped, 1 xfailed" in result.stdout, result.stdout


def test_every_skip_fails_under_ci(project):
    result = _run(project, "true")
    assert result.returncode == 1, result.stdout
    out = result.stdout
    assert "skipped under CI=true, where every test must run: robot files not fetched" in out, out
    assert "skipped under CI=true, where every test must run: no ROS here" in out, out
    # a module skipped while collecting is an error, and the other tests run
    assert "ERROR test_no_ros.py" in out and "could not import 'no_such_ros_module'" in out, out
    assert "PASSED test_sample.py::test_runs" in out, out
    # an expected failure is not a skip
    assert "XFAIL test_sample.py::test_known_bug" in out, out
