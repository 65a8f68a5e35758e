"""Robot models from pinned registry packages, fetched once at set-up, never at run time.

``python -m mimic_retarget.robot_assets`` (run by ``scripts/setup.sh``) downloads each
pinned package with pip into a temporary folder, extracts only the robot's model file,
the meshes it references and the package's license texts into
``<cache>/robots/<robot>/`` (:func:`mimic_sim.paths.robots_dir`), converts MJCF-only
robots to URDF (:mod:`mimic_retarget.mjcf_urdf`) and writes ``manifest.json``
(package, version, license, archive and per-file sha256).  A robot whose manifest
matches its pin and whose files are intact is skipped; a robot is assembled in a
temporary folder and renamed into place, so readers never see half of one.
Character configs name these files as ``model: {robot_asset: <robot>/<file>}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import mujoco
from urdf_parser_py import urdf

from mimic_retarget.mjcf_urdf import mjcf_to_urdf
from mimic_sim.paths import robots_dir
from mimic_sim.urdf_io import read_urdf

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


class RobotAssetError(RuntimeError):
    """A robot's files could not be fetched or are inconsistent; the message says what to do."""


@dataclass(frozen=True)
class PackagePin:
    """A registry package files are taken from, at one version."""

    package: str
    version: str
    sdist: bool  # the files are in the source distribution (the package has no usable wheel)


@dataclass(frozen=True)
class RobotSource(PackagePin):
    folder: str  # the robot's folder inside the archive
    model: str  # the model file in that folder
    license: str
    license_files: tuple[str, ...]  # paths inside the archive
    urdf: str | None = None  # the URDF written from an MJCF-only model

    @property
    def archive_prefix(self) -> str:
        return f"{self.package}-{self.version}/" if self.sdist else ""


ROBOTS: dict[str, RobotSource] = {
    "h1": RobotSource(
        package="humex-converter-lafan", version="0.2.0", sdist=False,
        folder="humex_converter_lafan/assets", model="h1.urdf",
        license="Apache-2.0 (package); Unitree H1 description",
        license_files=("humex_converter_lafan-0.2.0.dist-info/licenses/LICENSE",
                       "humex_converter_lafan-0.2.0.dist-info/licenses/NOTICE")),
    # holosoma's G1 (45 MB wheel) over example-robot-data's (131 MB): same 29-DoF robot, all meshes present.
    "g1": RobotSource(
        package="holosoma", version="0.0.3", sdist=False,
        folder="holosoma/data/robots/g1", model="g1_29dof.urdf",
        license="Apache-2.0 (package metadata; the wheel carries no license text); Unitree G1 description",
        license_files=()),
    # loco-mujoco 0.4.1 does not install on current Python; its sdist is only unpacked.
    "atlas": RobotSource(
        package="loco-mujoco", version="0.4.1", sdist=True,
        folder="loco_mujoco/environments/data/atlas", model="atlas.xml",
        license="MIT (package); the MJCF header credits Roboti LLC (MuJoCo model) and OSRF drcsim (Atlas v5)",
        license_files=("LICENSE",), urdf="atlas.urdf"),
}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _referenced_files(model: Path) -> list[str]:
    """Mesh files a URDF or MJCF refers to, relative to its folder (read before the meshes are there)."""
    if model.suffix.lower() == ".urdf":
        robot = read_urdf(model)
        shapes = [s.geometry for link in robot.links for s in link.visuals + link.collisions]
        return sorted({g.filename for g in shapes if isinstance(g, urdf.Mesh) and g.filename})
    spec = mujoco.MjSpec.from_file(str(model))  # parsed, not compiled: the mesh files are not read
    return sorted({str(PurePosixPath(spec.meshdir) / m.file) for m in spec.meshes if m.file})


def _download(source: PackagePin, folder: Path, remedy: str = "") -> Path:
    """The pinned package's archive, downloaded with pip into ``folder``; ``remedy`` says how to
    get the files otherwise (default: the robots')."""
    kind = ["--no-binary", ":all:"] if source.sdist else ["--only-binary", ":all:"]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", *kind,
               "--dest", str(folder), f"{source.package}=={source.version}"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    archives = [p for p in folder.iterdir() if p.suffix in (".whl", ".gz")]
    if result.returncode != 0 or len(archives) != 1:
        said = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise RobotAssetError(
            f"could not download {source.package}=={source.version} with pip (exit {result.returncode}):\n{said}\n"
            + (remedy or "The robot files come from that package and are fetched at set-up only. Run "
               "`python -m mimic_retarget.robot_assets` where the package index is reachable (or point pip at a "
               "mirror or a folder holding the package: PIP_INDEX_URL / PIP_FIND_LINKS), or copy "
               f"{robots_dir()} from a machine that has the robots."))
    return archives[0]


def _extract(archive: Path, members: dict[str, Path]) -> None:
    """Write members of a wheel (zip) or an sdist (tar.gz), by path inside it, to target files."""
    with zipfile.ZipFile(archive) if archive.suffix == ".whl" else tarfile.open(archive, "r:gz") as files:
        for name, target in members.items():
            try:
                member = files.read(name) if isinstance(files, zipfile.ZipFile) else files.extractfile(name)
            except KeyError:
                raise RobotAssetError(f"{archive.name} has no file {name}") from None
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(member if isinstance(member, bytes) else member.read())


def _assemble(robot: str, source: RobotSource, archive: Path, target: Path) -> dict:
    """Extract (and convert) one robot into ``target``; its manifest."""
    prefix = source.archive_prefix
    folder = f"{prefix}{source.folder}/"
    _extract(archive, {folder + source.model: target / source.model})
    meshes = _referenced_files(target / source.model)
    outside = [name for name in meshes if name.startswith("/") or ".." in PurePosixPath(name).parts]
    if outside:
        raise RobotAssetError(f"{source.model} in {archive.name} refers to files outside its folder: {outside}")
    _extract(archive, {folder + name: target / name for name in meshes})
    licenses = [Path("licenses") / PurePosixPath(name).name for name in source.license_files]
    _extract(archive, {prefix + name: target / out for name, out in zip(source.license_files, licenses, strict=True)})
    converted = {}
    if source.urdf:
        (target / source.urdf).write_text(mjcf_to_urdf(target / source.model))
        converted[source.urdf] = f"{source.model} converted to URDF by mimic_retarget.mjcf_urdf"
    every = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    return {
        "format": MANIFEST_FORMAT,
        "robot": robot,
        "package": source.package,
        "version": source.version,
        "archive": archive.name,
        "archive_sha256": _sha256(archive),
        "archive_bytes": archive.stat().st_size,
        "source_folder": source.folder,
        "model": source.urdf or source.model,
        "license": source.license,
        "license_files": [str(p) for p in licenses],
        "converted": converted,
        "files": {name: _sha256(target / name) for name in every},
    }


def installed(robot: str, root: Path | None = None) -> bool:
    """Whether ``robot``'s files are in place: a manifest of its pinned package and every file intact."""
    folder = (root or robots_dir()) / robot
    source = ROBOTS[robot]
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if (manifest.get("format"), manifest.get("package"), manifest.get("version")) != \
            (MANIFEST_FORMAT, source.package, source.version):
        return False
    return intact(folder, manifest)


def intact(folder: Path, manifest: dict) -> bool:
    """Whether every file a manifest lists is in ``folder`` with its hash."""
    return all((folder / name).is_file() and _sha256(folder / name) == digest
               for name, digest in manifest.get("files", {}).items())


def install(root: Path, name: str, pin: PackagePin, assemble: Callable[[Path, Path], dict],
            remedy: str = "") -> dict:
    """Download ``pin``, let ``assemble(archive, folder)`` put the files in a temporary folder and
    return their manifest, write it there, and rename the folder to ``root/name`` in one step:
    readers see the old copy or the whole new one, never half of one. The manifest."""
    root.mkdir(parents=True, exist_ok=True)
    # same filesystem as the destination, so the final rename is atomic
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=root) as tmp:
        work = Path(tmp)
        (work / "download").mkdir()
        archive = _download(pin, work / "download", remedy)
        built = work / name
        manifest = assemble(archive, built)
        (built / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        final = root / name
        if final.exists():  # an older or damaged copy: move it aside (atomically), removed with the temp folder
            final.rename(work / "old")
        built.rename(final)
    return manifest


def fetch(robot: str, root: Path | None = None, force: bool = False) -> dict | None:
    """Put ``robot``'s files under ``<root>/<robot>`` (default :func:`robots_dir`); its manifest, or
    None when they were already there."""
    if robot not in ROBOTS:
        raise RobotAssetError(f"unknown robot '{robot}', expected one of {sorted(ROBOTS)}")
    root = Path(root or robots_dir())
    if not force and installed(robot, root):
        return None
    source = ROBOTS[robot]
    return install(root, robot, source, lambda archive, folder: _assemble(robot, source, archive, folder))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mimic_retarget.robot_assets", description=__doc__.split("\n")[0])
    parser.add_argument("robots", nargs="*", help=f"robots to fetch, of {sorted(ROBOTS)} (default: all)")
    parser.add_argument("--root", type=Path, default=None, help=f"destination (default: {robots_dir()})")
    parser.add_argument("--force", action="store_true", help="fetch again even when present")
    args = parser.parse_args(argv)
    for robot in args.robots or sorted(ROBOTS):
        start = time.monotonic()
        try:
            manifest = fetch(robot, args.root, args.force)
        except RobotAssetError as exc:
            print(f"robot_assets: {robot}: {exc}", file=sys.stderr)
            return 1
        where = (args.root or robots_dir()) / robot
        if manifest is None:
            print(f"robot_assets: {robot}: present in {where}")
        else:
            print(f"robot_assets: {robot}: {manifest['package']} {manifest['version']} "
                  f"({manifest['archive_bytes'] / 1e6:.1f} MB) -> {where} in {time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
