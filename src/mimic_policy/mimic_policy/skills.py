"""The shipped skill library: trained policies under ``policies/<character>/<skill>/``.

A skill is named ``<character>/<skill>`` (``g1/walk``, ``humanoid/backflip``); its policy
folder is ``policies/<character>/<skill>/policy`` (``mimic export --policy-folder``), which
holds the weights and the whole task. Everything that takes a policy (``mimic eval``,
``mimic export``, ``mimic play``, ``mimic report --policy``, ``policy_node -p policy:=``)
takes a skill name as well, through :func:`resolve_policy`.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

from mimic_sim.paths import config_dirs

_SKILL_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


def policy_dirs() -> list[Path]:
    """Folders searched for skills, first match wins: ``$MIMIC_POLICIES_DIR``, then ``policies/``
    beside each folder ``config/`` is found in (the repository, ``share/mimic`` of an install)."""
    dirs = [Path(p) for p in [os.environ.get("MIMIC_POLICIES_DIR")] if p]
    return dirs + [c.parent / "policies" for c in config_dirs()]


def skill_folder(name: str) -> Path | None:
    """``policies/<character>/<skill>`` of a shipped skill, or None."""
    if not _SKILL_NAME.fullmatch(name):
        return None
    for base in policy_dirs():
        if (base / name / "policy" / "meta.json").is_file():
            return base / name
    return None


def shipped_skills() -> list[str]:
    """Names (``character/skill``) of the skills found, sorted."""
    found = {f"{p.parent.parent.name}/{p.parent.name}" for base in policy_dirs() if base.is_dir()
             for p in base.glob("*/*/policy") if (p / "meta.json").is_file()}
    return sorted(found)


def resolve_policy(name_or_path: str | Path) -> Path:
    """A path that exists as given, else a shipped skill's policy folder; else FileNotFoundError
    (for a name like ``g1/wlak``, naming the closest skills)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    if not _SKILL_NAME.fullmatch(str(name_or_path)):  # a path, not a name like g1/walk
        raise FileNotFoundError(f"policy {path} does not exist")
    folder = skill_folder(str(name_or_path))
    if folder is not None:
        return folder / "policy"
    skills = shipped_skills()
    close = difflib.get_close_matches(str(name_or_path), skills, n=3, cutoff=0.5)
    hint = f"closest skills: {', '.join(close)}" if close else f"shipped skills: {', '.join(skills) or 'none'}"
    raise FileNotFoundError(f"policy '{name_or_path}' is neither a file or folder nor a shipped skill ({hint})")
