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

# ROS 2 runtime (rclpy, Fast DDS, message packages) from PyPI wheels, and mimic's own
# interfaces (src/mimic_msgs) built against them: no sourcing needed afterwards.
# Skipped where an apt ROS 2 is sourced (build with colcon there, see README) or with
# MIMIC_NO_ROS=1.
if [ -n "${MIMIC_NO_ROS:-}" ]; then
  echo "setup: MIMIC_NO_ROS set, ROS 2 wheels not installed"
elif [ -n "${ROS_DISTRO:-}" ] && [[ "${AMENT_PREFIX_PATH:-}" == *"/opt/ros/"* ]]; then
  echo "setup: ROS 2 $ROS_DISTRO from /opt/ros is sourced; not installing the PyPI ROS wheels (use colcon)"
else
  bash scripts/install_ros.sh .venv
fi

# Robot models (Atlas, Unitree H1 and G1) from pinned registry packages into mimic's cache
# (~/.cache/mimic/robots): fetched here, at set-up, never at run time (docs/robots.md).
# Skipped with MIMIC_NO_ROBOTS=1; the robot tests then skip.
if [ -n "${MIMIC_NO_ROBOTS:-}" ]; then
  echo "setup: MIMIC_NO_ROBOTS set, robot models not fetched"
else
  .venv/bin/python -m mimic_retarget.robot_assets
fi

# Videos of real people (sports2d's demo, BSD-3) from a pinned registry package into the
# cache (~/.cache/mimic/videos), for `mimic video` and its tests on real footage. Skipped
# with MIMIC_NO_VIDEOS=1; the real-footage tests then skip.
if [ -n "${MIMIC_NO_VIDEOS:-}" ]; then
  echo "setup: MIMIC_NO_VIDEOS set, sample videos not fetched"
else
  .venv/bin/python -m mimic_retarget.sample_videos
fi

# Headless rendering (MUJOCO_GL=egl) needs libEGL with a Mesa driver; no GPU or display.
if ! ldconfig -p 2>/dev/null | grep -q 'libEGL_mesa.so'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq libegl1 libegl-mesa0 libgl1-mesa-dri >/dev/null
  else
    echo "warning: libEGL (Mesa) not found; 'mimic render' needs it (Debian/Ubuntu: libegl1 libegl-mesa0 libgl1-mesa-dri)" >&2
  fi
fi
echo "mimic is set up in $(pwd)/.venv"
