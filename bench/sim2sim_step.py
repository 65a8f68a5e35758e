"""Where MuJoCo and PyBullet part: one control step from the same state, in the air and on the ground.

A shipped policy walks in MuJoCo (its deterministic actions, ``--steps`` control steps from
seed 0's clip time); before each step its exact state is loaded into a second environment
of the same task in another engine or at another physics rate, which takes the same action
(the same PD targets: both environments are at the same clip time). Reported per contender:
the mean and largest difference of the joint velocities after the step (rad/s), per joint
for the largest. The same comparison with the character lifted 0.5 m into the air (no
contact) separates the engines' articulated dynamics and PD law from their contacts.
MuJoCo against itself at other physics rates is the yardstick: how much the step's result
moves when only the integration changes.

Usage:  python bench/sim2sim_step.py [--skill h1/walk] [--steps 90] [--note TEXT] [--no-record]
Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from benchlib import record_section

LIFT = 0.5  # m: the air comparison's height above the state's own


def contenders(physics_hz: float) -> list[tuple[str, str, float]]:
    """(label, backend, physics rate) of each environment compared with MuJoCo at the policy's rate."""
    return [("pybullet", "pybullet", physics_hz), ("pybullet_4x_rate", "pybullet", 4 * physics_hz),
            ("mujoco_2x_rate", "mujoco", 2 * physics_hz), ("mujoco_4x_rate", "mujoco", 4 * physics_hz)]


def compare(skill: str, steps: int) -> dict:
    from mimic_policy.evaluate import evaluation_env, load_policy

    model, meta = load_policy(skill)
    physics_hz = float(meta["task"]["config"]["sim"]["physics_hz"])
    lead = evaluation_env(meta, 20.0)
    names = lead.character.joint_names
    results: dict = {"skill": skill, "physics_hz": physics_hz}
    for label, backend, hz in contenders(physics_hz):
        other = evaluation_env(meta, 20.0, backend=backend, physics_hz=hz)
        obs, _ = lead.reset(seed=0)
        other.reset(seed=0)
        ground, air = [], []
        for _ in range(steps):
            with torch.no_grad():
                action = model.mean(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
            qpos, qvel = (x.copy() for x in lead.backend.get_state())
            targets = qpos[7:] + 0.1  # the air check: any targets, the same in both
            lifted = qpos.copy()
            lifted[2] += LIFT
            after = []
            for env in (lead, other):
                env.backend.reset(lifted, qvel)
                env.backend.step(targets)
                after.append(env.backend.get_state()[1][6:].copy())
            air.append(np.abs(after[0] - after[1]))
            lead.backend.reset(qpos, qvel)
            other.backend.reset(qpos, qvel)
            obs, _, terminated, truncated, _ = lead.step(action)
            other.step(action)
            ground.append(np.abs(lead.backend.get_state()[1][6:] - other.backend.get_state()[1][6:]))
            if terminated or truncated:
                break
        other.close()
        ground_mean, air_mean = np.mean(ground, axis=0), np.mean(air, axis=0)
        worst = [names[i] for i in np.argsort(ground_mean)[::-1][:3]]
        results[label] = {"backend": backend, "physics_hz": hz, "steps": len(ground),
                          "ground_mean": float(ground_mean.mean()), "ground_max": float(np.max(ground)),
                          "air_mean": float(air_mean.mean()), "air_max": float(np.max(air)),
                          "worst_joints": {n: float(ground_mean[names.index(n)]) for n in worst}}
        r = results[label]
        print(f"{label}: on the ground mean {r['ground_mean']:.3f} max {r['ground_max']:.2f} rad/s "
              f"({', '.join(f'{n} {v:.2f}' for n, v in r['worst_joints'].items())}); in the air mean "
              f"{r['air_mean']:.4f} max {r['air_max']:.4f} rad/s", flush=True)
    lead.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skill", default="h1/walk", help="shipped skill or policy folder")
    parser.add_argument("--steps", type=int, default=90, help="control steps of the MuJoCo rollout")
    parser.add_argument("--note", default="", help="a line on the run's conditions, recorded with it")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    results = compare(args.skill, args.steps)
    base = results["pybullet"]
    summary = {"benchmark": "sim2sim_step", "skill": args.skill,
               **{f"{label}_{k}": results[label][k] for label, _, _ in contenders(results["physics_hz"])
                  for k in ("ground_mean", "ground_max", "air_mean", "air_max")},
               "pybullet_over_mujoco_4x_rate": base["ground_mean"] / results["mujoco_4x_rate"]["ground_mean"]}
    if not args.no_record:
        rows = [f"| {label} | {r['backend']} | {r['physics_hz']:.0f} Hz | {r['ground_mean']:.3f} | "
                f"{r['ground_max']:.2f} | {', '.join(f'{n} {v:.2f}' for n, v in r['worst_joints'].items())} | "
                f"{r['air_mean']:.4f} | {r['air_max']:.4f} |"
                for label, r in results.items() if isinstance(r, dict)]
        record_section("sim2sim_step", f"python bench/sim2sim_step.py --skill {args.skill} --steps {args.steps}", [
            f"{args.skill} walked by its policy in MuJoCo at {results['physics_hz']:.0f} Hz; each control step also "
            "taken from the same state by each contender with the same action. Joint-velocity differences after "
            "the step (rad/s), on the ground and with the character lifted 0.5 m (no contact).", "",
            "| contender | engine | physics | ground: mean | ground: max | ground: worst joints (mean) | "
            "air: mean | air: max |", "|---|---|---|---|---|---|---|---|", *rows, "",
            *([args.note] if args.note else [])])
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
