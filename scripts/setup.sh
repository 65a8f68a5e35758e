#!/usr/bin/env bash
# Set up mimic in ./.venv: Python packages (all from PyPI) and, where missing, the
# Mesa EGL libraries used for headless rendering.  Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"

# Headless rendering (MUJOCO_GL=egl) needs libEGL with a Mesa driver; no GPU or display.
if ! ldconfig -p 2>/dev/null | grep -q 'libEGL_mesa.so'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq libegl1 libegl-mesa0 libgl1-mesa-dri >/dev/null
  else
    echo "warning: libEGL (Mesa) not found; 'mimic render' needs it (Debian/Ubuntu: libegl1 libegl-mesa0 libgl1-mesa-dri)" >&2
  fi
fi
echo "mimic is set up in $(pwd)/.venv"
