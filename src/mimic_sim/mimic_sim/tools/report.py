"""``mimic report BAG``: how well a recorded character tracked its reference, from a rosbag2 bag.

Needs no ROS: the bag is read with ``rosbags`` (:mod:`mimic_sim.tools.bag`).  Each
``joint_states`` message, with the ``base_pose`` and ``base_twist`` of the same stamp,
is one state of the character (a state offered again with the same stamp, as a lockstep
sim_node does when nobody answered it, is scored once); its reference is the ``reference`` frame nearest in
time (its own root pose, twist, joint positions and velocities, so any reference
source works).  Every state is scored with the training reward (:mod:`mimic_sim.reward`)
and MPJPE (:mod:`mimic_sim.tracking`); a fall is a body other than the feet touching
the ground (the environment's early termination), and rewards after the first fall
count as zero, as in ``mimic eval``.  Writes ``report.json`` and ``tracking_error.png``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mimic_sim.backends import make_backend
from mimic_sim.character import Character, load_character
from mimic_sim.motion import Motion
from mimic_sim.paths import atomic_write_text
from mimic_sim.reference import ReferenceMotion
from mimic_sim.reward import TERMS, RewardConfig, imitation_rewards, tracking_features
from mimic_sim.tracking import plot_tracking_error, position_errors_mm

TOPICS = {"joint_states": "/joint_states", "base_pose": "/base_pose", "base_twist": "/base_twist",
          "reference": "/reference"}


def _stamp(msg) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def _vec(v) -> np.ndarray:
    return np.array([v.x, v.y, v.z], dtype=float)


def _quat_wxyz(q) -> np.ndarray:
    return np.array([q.w, q.x, q.y, q.z], dtype=float)


def _reference_state(character: Character, msg) -> tuple[np.ndarray, np.ndarray]:
    velocities = msg.velocities if len(msg.velocities) else np.zeros(len(msg.joint_names))
    return character.state_from_readings(list(msg.joint_names), msg.positions, velocities, _vec(msg.root_pose.position),
                                         _quat_wxyz(msg.root_pose.orientation), _vec(msg.root_twist.linear),
                                         _vec(msg.root_twist.angular))


def read_tracking(bag: Path) -> dict[str, list]:
    """The bag's messages on the report's topics, by role, in time order."""
    from mimic_sim.tools.bag import read_bag

    by_topic = {topic: role for role, topic in TOPICS.items()}
    out: dict[str, list] = {role: [] for role in TOPICS}
    for topic, _, msg in read_bag(bag, topics=list(by_topic)):
        out[by_topic[topic]].append(msg)
    missing = [TOPICS[role] for role, msgs in out.items() if not msgs]
    if missing:
        raise ValueError(f"{bag}: no messages on {', '.join(missing)} (record them to report on tracking)")
    return out


def report(bag: Path, character: Character, reward: RewardConfig | None = None, backend: str = "mujoco",
           motion: Motion | None = None, ground_contact_allowed: Sequence[str] = ()) -> dict:
    """Summary of a bag's tracking of ``character`` scored with ``reward`` (default: DeepMimic's);
    ``_curve`` holds (time, MPJPE world, root-relative) rows, ``_states`` each state's (qpos, reference
    qpos), to render.

    Each state is compared with the reference message nearest in time. With ``motion`` (the clip
    the policy was trained on, as ``--policy`` gives), the reference is that clip at the state's
    own clip time instead (the nearest message's ``clip_time`` moved by the difference of the
    stamps): a player whose frames are not on the states' stamps (another rate, or a frame
    skipped by a busy machine) then costs the score nothing.  ``ground_contact_allowed``: bodies
    whose ground contact is no fall besides the character's (the policy's task's)."""
    bag = Path(bag)
    messages = read_tracking(bag)
    c = character
    sim_backend = make_backend(backend, c)
    root = int(np.flatnonzero(c.tracked_parents < 0)[0])
    forbidden = c.fall_mask(ground_contact_allowed)
    effectors = c.body_index(c.end_effectors)
    poses = {_stamp(m): m.pose for m in messages["base_pose"]}
    twists = {_stamp(m): m.twist for m in messages["base_twist"]}
    references = messages["reference"]
    ref_stamps = np.array([_stamp(m) for m in references])
    exact = None if motion is None else ReferenceMotion(motion, c)
    rewards, terms, curve, fallen, states, skipped, repeated = [], [], [], [], [], 0, 0
    start = None
    scored: set[int] = set()
    for joints in messages["joint_states"]:
        stamp = _stamp(joints)
        if stamp in scored:
            repeated += 1  # a lockstep sim_node offers a state nobody answered again: one state, scored once
            continue
        if stamp not in poses or stamp not in twists:
            skipped += 1  # a state without its base state of the same stamp
            continue
        pose, twist = poses[stamp], twists[stamp]
        velocities = joints.velocity if len(joints.velocity) else np.zeros(len(joints.name))
        try:
            qpos, qvel = c.state_from_readings(list(joints.name), joints.position, velocities, _vec(pose.position),
                                               _quat_wxyz(pose.orientation), _vec(twist.linear), _vec(twist.angular))
        except ValueError as exc:
            raise ValueError(f"{bag}: joint_states at stamp {stamp} ns: {exc}") from exc
        i = int(np.clip(np.searchsorted(ref_stamps, stamp), 1, len(ref_stamps) - 1))
        i = i - 1 if abs(ref_stamps[i - 1] - stamp) <= abs(ref_stamps[i] - stamp) else i
        try:
            if exact is not None:
                ref_qpos, ref_qvel = exact.state(references[i].clip_time + (stamp - ref_stamps[i]) * 1e-9)
            else:
                ref_qpos, ref_qvel = _reference_state(c, references[i])
        except ValueError as exc:
            raise ValueError(f"{bag}: reference at stamp {ref_stamps[i]} ns: {exc}") from exc
        sim_backend.reset(qpos, qvel)
        sim = sim_backend.body_states()
        ref = sim_backend.kinematics(ref_qpos, ref_qvel)
        total, parts = imitation_rewards(tracking_features(sim, c.tracked_parents, effectors),
                                         tracking_features(ref, c.tracked_parents, effectors), c.pose_weights, root,
                                         reward or RewardConfig())
        start = stamp if start is None else start
        scored.add(stamp)
        rewards.append(float(total))
        terms.append([float(parts[k]) for k in TERMS])
        fallen.append(bool((sim_backend.ground_contacts() & forbidden).any()))
        curve.append(((stamp - start) * 1e-9, *position_errors_mm(sim, ref, root)))
        states.append((qpos, ref_qpos))
    sim_backend.close()
    if not rewards:
        raise ValueError(f"{bag}: no joint_states message has a base_pose and base_twist of the same stamp")
    fallen_arr = np.array(fallen)
    first_fall = int(np.argmax(fallen_arr)) if fallen_arr.any() else len(rewards)
    curve_arr = np.array(curve)
    duration = float(curve_arr[-1, 0])
    return {
        "bag": str(bag),
        "states": len(rewards),
        "states_without_base_state": skipped,
        "states_offered_again": repeated,
        "seconds": duration,
        "state_rate_hz": (len(rewards) - 1) / duration if duration > 0 else 0.0,
        "normalized_return": float(np.sum(rewards[:first_fall]) / len(rewards)),
        "reward_terms": dict(zip(TERMS, np.mean(terms, axis=0).tolist(), strict=True)),
        "mpjpe_mm": float(curve_arr[:, 1].mean()),
        "mpjpe_root_relative_mm": float(curve_arr[:, 2].mean()),
        "falls": int(np.count_nonzero(np.diff(fallen_arr.astype(int), prepend=0) == 1)),
        "first_fall_seconds": float(curve_arr[first_fall, 0]) if fallen_arr.any() else None,
        "_curve": curve_arr,
        "_states": states,
    }


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="tracking report of a recorded bag (no ROS needed)",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("bag", type=Path, help="rosbag2 bag folder (MCAP or sqlite3)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--policy", type=Path, default=None,
                        help="the policy that was played (checkpoint, run folder, .onnx or shipped skill such as "
                             "g1/walk): its task's character and reward, as it was trained, with no other file needed")
    source.add_argument("--character", default=None,
                        help="character config name or YAML path, scored with the default reward (default: humanoid)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <bag>_report)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.policy is not None:
        # The policy's task is read by mimic_policy, which builds on this package: imported only here.
        from mimic_policy.serving import load_policy_task

        task = load_policy_task(args.policy)
        result = report(args.bag, task.character, task.config.reward, task.config.backend, task.motion,
                        task.config.ground_contact_allowed)
    else:
        result = report(args.bag, load_character(args.character or "humanoid"))
    out = args.out or args.bag.with_name(args.bag.name + "_report")
    print(write_report(result, out))
    return 0


def write_report(result: dict, out: Path) -> str:
    """``report.json`` and ``tracking_error.png`` of a :func:`report` result into ``out``; a summary line."""
    result = dict(result)
    result.pop("_states", None)
    out.mkdir(parents=True, exist_ok=True)
    plot_tracking_error(result.pop("_curve"), out / "tracking_error.png", xlabel="time in the bag (s)")
    atomic_write_text(out / "report.json", json.dumps(result, indent=2) + "\n")
    falls = "no fall"
    if result["falls"]:
        falls = f"{result['falls']} fall(s), first at {result['first_fall_seconds']:.2f} s"
    return (f"{result['states']} states over {result['seconds']:.1f} s: normalized return "
            f"{result['normalized_return']:.3f}, MPJPE {result['mpjpe_mm']:.0f} mm (root-relative "
            f"{result['mpjpe_root_relative_mm']:.0f} mm), {falls}; written to {out}")
