#!/usr/bin/env bash
# Set up, then run mimic's main job on the embedded simulator (MuJoCo, no services):
# play the walk clip, roll the imitation environment out, retarget the walk onto
# Unitree H1 (clip, quality report, side-by-side video), write everything to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
.venv/bin/mimic render walk -o out/walk.mp4
.venv/bin/mimic render walk --rollout -o out/walk_rollout.mp4
.venv/bin/mimic retarget walk --robot h1 -o out/walk_h1.motion.json --video out/walk_h1.mp4
