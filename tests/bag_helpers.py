"""A bag of an episode, written as sim_node and reference_player would publish it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from mimic_sim.envs.imitation import ImitationEnv
from mimic_sim.reward import TERMS
from mimic_sim.tools.bag import BagWriter


def record_episode(path: Path, env: ImitationEnv, start_time: float, steps: int = 100,
                   act: Callable[[np.ndarray], np.ndarray] | None = None,
                   reference_every: int = 1,
                   offered_again: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray, bool]:
    """Run ``env`` from ``start_time`` for up to ``steps`` control steps (``act(obs)``, default:
    the reference action, open loop) and write each state and, every ``reference_every`` steps
    (a player skipping frames), its reference to a bag at ``path``; the states of the steps in
    ``offered_again`` are written twice, as a lockstep sim_node offers a state nobody answered again.
    The environment's rewards, reward terms, and whether the episode ended by a fall."""
    obs, _ = env.reset(options={"start_time": start_time})
    names = env.character.joint_names
    rewards, terms = [], []
    with BagWriter(path) as bag:
        T = bag.types.store.types  # noqa: N806
        ser = bag.types.store.serialize_cdr
        for topic, msgtype in (("/joint_states", "sensor_msgs/msg/JointState"),
                               ("/base_pose", "geometry_msgs/msg/PoseStamped"),
                               ("/base_twist", "geometry_msgs/msg/TwistStamped"),
                               ("/reference", "mimic_msgs/msg/ReferenceFrame")):
            bag.add_topic(topic, msgtype)

        def vec(v):
            return T["geometry_msgs/msg/Vector3"](x=float(v[0]), y=float(v[1]), z=float(v[2]))

        def pose(qpos):
            return T["geometry_msgs/msg/Pose"](
                position=T["geometry_msgs/msg/Point"](x=float(qpos[0]), y=float(qpos[1]), z=float(qpos[2])),
                orientation=T["geometry_msgs/msg/Quaternion"](w=float(qpos[3]), x=float(qpos[4]), y=float(qpos[5]),
                                                              z=float(qpos[6])))

        for step in range(steps):
            obs, reward, terminated, truncated, info = env.step(env.reference_action() if act is None else act(obs))
            rewards.append(reward)
            terms.append([info[f"reward_{k}"] for k in TERMS])
            stamp = round((env.time - start_time) * 1e9)
            header = T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](stamp // 10**9, stamp % 10**9),
                                              frame_id="world")
            qpos, qvel = env.backend.get_state()
            order = np.arange(len(names))[::-1]  # joints by name, not by position: reversed on purpose
            for _ in range(2 if step in offered_again else 1):
                bag.write("/joint_states", stamp, ser(T["sensor_msgs/msg/JointState"](
                    header=header, name=[names[i] for i in order], position=qpos[7:][order],
                    velocity=qvel[6:][order], effort=np.zeros(0)), "sensor_msgs/msg/JointState"))
                bag.write("/base_pose", stamp, ser(T["geometry_msgs/msg/PoseStamped"](header=header, pose=pose(qpos)),
                                                   "geometry_msgs/msg/PoseStamped"))
                bag.write("/base_twist", stamp, ser(T["geometry_msgs/msg/TwistStamped"](
                    header=header, twist=T["geometry_msgs/msg/Twist"](linear=vec(qvel[:3]), angular=vec(qvel[3:6]))),
                    "geometry_msgs/msg/TwistStamped"))
            ref_qpos, ref_qvel = env.reference.state(env.time)
            if step % reference_every == 0:
                bag.write("/reference", stamp, ser(T["mimic_msgs/msg/ReferenceFrame"](
                    header=header, clip=env.motion.name, phase=0.0, clip_time=env.time, root_pose=pose(ref_qpos),
                    root_twist=T["geometry_msgs/msg/Twist"](linear=vec(ref_qvel[:3]), angular=vec(ref_qvel[3:6])),
                    joint_names=names, positions=ref_qpos[7:], velocities=ref_qvel[6:], future=[]),
                    "mimic_msgs/msg/ReferenceFrame"))
            if terminated or truncated:
                break
    return np.array(rewards), np.array(terms), bool(terminated)


