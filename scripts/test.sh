#!/usr/bin/env bash
# Set up, then run the test suite and the linter.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
.venv/bin/ruff check src tests bench launch
.venv/bin/python -m pytest -n 2 "$@"
