"""The ``mimic`` command.

Verbs are plugins: each is an entry point in the ``mimic.commands`` group naming a
function ``register(subparsers)`` that adds its subparser and sets ``func`` (called
with the parsed arguments; it returns an exit status or None for success).  Another
package adds a verb by declaring such an entry point, with no change here.

Bad input (an unreadable clip, an unknown character, a missing file, a bad value)
prints one line to stderr and exits with status 2; ``--traceback`` shows the full
Python traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, entry_points, version

ENTRY_POINT_GROUP = "mimic.commands"
USAGE_ERROR = 2


def _version() -> str:
    try:
        return version("mimic")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mimic",
        description="Robot skill transfer: imitate reference motion (mocap, BVH, video) with simulated characters.",
        epilog="Run 'mimic COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"mimic {_version()}")
    parser.add_argument("--traceback", action="store_true", help="show the full Python traceback on errors")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            register = ep.load()
            register(subparsers)
        except Exception as exc:  # one broken plugin must not take the whole command down
            print(f"mimic: warning: command '{ep.name}' ({ep.value}) is unavailable: {exc}", file=sys.stderr)
    return parser


# Exceptions that mean bad input rather than a bug in mimic: mimic_sim.motion.MotionError and
# mimic_sim.character.CharacterError are ValueErrors (not imported here: 'mimic --help' must not
# need MuJoCo); FileNotFoundError and PermissionError are OSErrors.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mimic`` with ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse already reported
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else USAGE_ERROR)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return USAGE_ERROR
    # mimic's single-machine default: ROS 2 discovery stays on this host unless the user says otherwise.
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    try:
        status = func(args)
    except KeyboardInterrupt:
        print(f"mimic {args.command}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if args.traceback:
            raise
        message = str(exc) or type(exc).__name__
        if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in message:
            message = f"{message}: {exc.filename}"
        print(f"mimic {args.command}: error: {message}", file=sys.stderr)
        return USAGE_ERROR
    return 0 if status is None else int(status)


if __name__ == "__main__":
    sys.exit(main())
