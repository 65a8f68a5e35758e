"""mimic report: a bag's tracking summary equals what the environment measured while recording it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mimic_sim.bag import BagWriter, find_interface_file
from mimic_sim.character import load_character
from mimic_sim.cli import main
from mimic_sim.envs.imitation import ImitationEnv
from mimic_sim.reward import TERMS

pytestmark = pytest.mark.skipif(find_interface_file("mimic_msgs/msg/ReferenceFrame") is None,
                                reason="mimic_msgs is not installed")


def _record_open_loop_episode(path, start_time: float = 0.2):
    """Play the walk open loop until the character falls; write what sim_node and
    reference_player would publish at each control step.  The environment's rewards and
    the index of the falling step are returned."""
    env = ImitationEnv()
    env.reset(options={"start_time": start_time})
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

        for _ in range(100):
            _, reward, terminated, truncated, info = env.step(env.reference_action())
            rewards.append(reward)
            terms.append([info[f"reward_{k}"] for k in TERMS])
            stamp = round((env.time - start_time) * 1e9)
            header = T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](stamp // 10**9, stamp % 10**9),
                                              frame_id="world")
            qpos, qvel = env.backend.get_state()
            order = np.arange(len(names))[::-1]  # joints by name, not by position: reversed on purpose
            bag.write("/joint_states", stamp, ser(T["sensor_msgs/msg/JointState"](
                header=header, name=[names[i] for i in order], position=qpos[7:][order], velocity=qvel[6:][order],
                effort=np.zeros(0)), "sensor_msgs/msg/JointState"))
            bag.write("/base_pose", stamp, ser(T["geometry_msgs/msg/PoseStamped"](header=header, pose=pose(qpos)),
                                               "geometry_msgs/msg/PoseStamped"))
            bag.write("/base_twist", stamp, ser(T["geometry_msgs/msg/TwistStamped"](
                header=header, twist=T["geometry_msgs/msg/Twist"](linear=vec(qvel[:3]), angular=vec(qvel[3:6]))),
                "geometry_msgs/msg/TwistStamped"))
            ref_qpos, ref_qvel = env.reference.state(env.time)
            bag.write("/reference", stamp, ser(T["mimic_msgs/msg/ReferenceFrame"](
                header=header, clip="walk", phase=0.0, clip_time=env.time, root_pose=pose(ref_qpos),
                root_twist=T["geometry_msgs/msg/Twist"](linear=vec(ref_qvel[:3]), angular=vec(ref_qvel[3:6])),
                joint_names=names, positions=ref_qpos[7:], velocities=ref_qvel[6:], future=[]),
                "mimic_msgs/msg/ReferenceFrame"))
            if terminated or truncated:
                break
    env.close()
    assert terminated, "the open-loop walk was expected to fall"
    return np.array(rewards), np.array(terms)


def test_report_of_a_recorded_episode_matches_the_environment(tmp_path):
    from mimic_sim.report import report

    rewards, terms = _record_open_loop_episode(tmp_path / "bag")
    result = report(tmp_path / "bag", load_character("humanoid"))
    steps = len(rewards)
    assert result["states"] == steps and result["states_without_base_state"] == 0
    assert result["falls"] == 1
    assert result["first_fall_seconds"] == pytest.approx((steps - 1) / 30, abs=1e-6)
    # the environment zeroes the falling step's reward; the report counts nothing from the fall on
    assert result["normalized_return"] == pytest.approx(rewards.sum() / steps, abs=1e-6)
    for k, name in enumerate(TERMS):
        assert result["reward_terms"][name] == pytest.approx(terms[:, k].mean(), abs=1e-6)
    assert 0 < result["mpjpe_root_relative_mm"] < result["mpjpe_mm"]


def test_report_command_writes_json_and_plot_and_names_missing_topics(tmp_path, capsys):
    _record_open_loop_episode(tmp_path / "bag", start_time=0.5)
    assert main(["report", str(tmp_path / "bag"), "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "report.json").read_text())
    assert summary["falls"] == 1 and summary["states"] > 5
    assert (tmp_path / "out" / "tracking_error.png").stat().st_size > 10_000
    assert "normalized return" in capsys.readouterr().out

    with BagWriter(tmp_path / "empty") as bag:
        bag.add_topic("/joint_states", "sensor_msgs/msg/JointState")
    assert main(["report", str(tmp_path / "empty")]) != 0
    assert "/joint_states" in capsys.readouterr().err
