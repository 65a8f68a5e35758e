#!/usr/bin/env bash
# Set up, then run mimic's main job on the embedded simulator (MuJoCo, no services):
# the shipped Unitree G1 walk played closed loop over ROS 2 (reference_player, sim_node,
# policy_node and recorder as separate processes over DDS) from the files in policies/,
# with its bag, report and video; then the walk clip, an open-loop rollout of it, and the
# walk retargeted onto Unitree H1. Everything is written to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
rm -rf out/play_g1_walk  # a bag folder is never overwritten: this job's own output is replaced
.venv/bin/mimic play g1/walk --ros --seconds 10 -o out/play_g1_walk
.venv/bin/mimic render walk -o out/walk.mp4
.venv/bin/mimic render walk --rollout -o out/walk_rollout.mp4
.venv/bin/mimic retarget walk --robot h1 -o out/walk_h1.motion.json --video out/walk_h1.mp4
