"""Where mimic finds its configuration and keeps generated files."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import yaml


def cache_dir() -> Path:
    """Folder for generated models (``$MIMIC_CACHE_DIR``, else ``$XDG_CACHE_HOME/mimic``)."""
    explicit = os.environ.get("MIMIC_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mimic"


def robots_dir() -> Path:
    """Robot model files fetched at set-up (``python -m mimic_retarget.robot_assets``): ``<cache>/robots``."""
    return cache_dir() / "robots"


def config_dirs() -> list[Path]:
    """Folders searched for ``config/`` files, first match wins.

    ``$MIMIC_CONFIG_DIR``; the repository's ``config/`` (source checkout or editable
    install); ``share/mimic/config`` under this Python's prefix (pip install) and
    under each ``AMENT_PREFIX_PATH`` entry (colcon install).
    """
    dirs: list[Path] = []
    explicit = os.environ.get("MIMIC_CONFIG_DIR")
    if explicit:
        dirs.append(Path(explicit))
    dirs.append(Path(__file__).resolve().parents[3] / "config")
    dirs.append(Path(sys.prefix) / "share" / "mimic" / "config")
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            dirs.append(Path(prefix) / "share" / "mimic" / "config")
    return dirs


def find_config(relative: str) -> Path:
    """A file under ``config/`` by relative path, e.g. ``characters/humanoid.yaml``."""
    for d in config_dirs():
        candidate = d / relative
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(d) for d in config_dirs())
    raise FileNotFoundError(f"config file '{relative}' not found in: {searched}")


def read_yaml(path: str | Path, error: type[Exception], what: str) -> object:
    """A YAML file's content (``yaml.safe_load``); one that cannot be read or parsed raises ``error``
    with one line naming the file (and the line), and ``what`` it was read as."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise error(f"{path}{f':{mark.line + 1}' if mark else ''}: not valid YAML: {problem}") from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see either the old or the whole new content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
