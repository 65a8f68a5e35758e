"""Malformed input from the command line and from files: one line naming what is wrong, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import unique_domain_id

from mimic_sim.envs.imitation import ImitationEnv
from mimic_sim.envs.imitation_vector import ImitationVectorEnv

BIN = Path(sys.executable).parent


def run(args: list[str], timeout: float = 120.0) -> tuple[int, list[str]]:
    """Exit status and the non-empty lines of stdout and stderr together."""
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=str(unique_domain_id()))
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    return done.returncode, [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]


# ------------------------------------------------------------------ node parameters
@pytest.mark.parametrize(("executable", "parameter", "expected"), [
    ("reference_player", "clip:=wlak", ["parameter 'clip' ('wlak')", "no motion file 'wlak'", "closest: walk"]),
    ("reference_player", "character:=humanoyd", ["parameter 'character' ('humanoyd')", "closest: humanoid"]),
    ("sim_node", "initial_pose:=wlak", ["parameter 'initial_pose' ('wlak')", "closest: walk"]),
    ("sim_node", "backend:=mujco", ["parameter 'backend' ('mujco')", "closest: mujoco"]),
    ("sim_node", "max_gain_factor:=-1.0", ["max_gain_factor must be a non-negative number, got -1.0"]),
    ("retarget_node", "robot:=h2", ["parameter 'robot' ('h2')", "characters/h2.yaml", "closest: h1"]),
    ("human_player", "source:=wlak", ["parameter 'source' ('wlak')", "closest: walk"]),
    ("human_player", "loop:=maybe", ["parameter 'loop'", "'maybe'", "BOOL"]),
    ("video_player", "video:=sports2d_dmeo", ["parameter 'video' ('sports2d_dmeo')", "closest: sports2d_demo"]),
    ("pose_node", "min_cutoff:=0.0", ["min_cutoff (0.0)", "must be positive"]),
    ("reference_player", "rate:=fast", ["parameter 'rate' must be a number, got 'fast'"]),
])
def test_a_bad_node_parameter_is_one_error_line_and_exit_status_2(executable, parameter, expected):
    code, lines = run([str(BIN / executable), "--ros-args", "-p", parameter])
    assert code == 2, lines
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert "[FATAL]" in lines[0] and f"[{executable}]" in lines[0], lines
    for text in expected:
        assert text in lines[0], lines


# ------------------------------------------------------------------ bag reindex
def _garbage_mcap(folder: Path) -> Path:
    folder.mkdir()
    (folder / "bag_0.mcap").write_bytes(b"\x00garbage" * 10)
    return folder / "bag_0.mcap"


def _garbage_metadata(folder: Path) -> Path:
    folder.mkdir()
    (folder / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: 9}\n")
    return folder / "metadata.yaml"


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p, "no such bag folder"),
    (lambda p: (p.write_text("x"), p)[1], "not a folder"),
    (lambda p: (p.mkdir(), p)[1], "expected one .mcap file to reindex, found 0"),
    (_garbage_mcap, "is not an MCAP file"),
    (_garbage_metadata, "not a readable rosbag2 bag"),
])
def test_reindexing_what_is_not_a_bag_is_one_error_line_naming_it(tmp_path, make, message):
    named = make(tmp_path / "bag")
    code, lines = run([sys.executable, "-m", "mimic_sim.tools.bag", "reindex", str(tmp_path / "bag")])
    assert code == 1
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert lines[0].startswith("python -m mimic_sim.tools.bag reindex: error: ") and str(named) in lines[0], lines
    assert message in lines[0], lines


def test_reindex_goes_on_to_the_next_bag_after_a_bad_one(tmp_path):
    from mimic_sim.tools.bag import BagWriter

    good = tmp_path / "good"
    with BagWriter(good) as bag:
        bag.add_topic("/chatter", "std_msgs/msg/String")
        text = bag.types.store.types["std_msgs/msg/String"](data="hello")
        bag.write("/chatter", 1, bag.types.store.serialize_cdr(text, "std_msgs/msg/String"))
    code, lines = run([sys.executable, "-m", "mimic_sim.tools.bag", "reindex", str(tmp_path / "missing"), str(good)])
    assert code == 1
    assert sorted(lines) == sorted([f"python -m mimic_sim.tools.bag reindex: error: {tmp_path / 'missing'}: "
                                    "no such bag folder", f"{good}: 1 messages"])


# ------------------------------------------------------------------ keypoint files
@pytest.fixture(scope="module")
def keypoint_file(tmp_path_factory) -> Path:
    from mimic_retarget.human import keypoints_from_clip

    path = tmp_path_factory.mktemp("keypoints") / "walk.npz"
    keypoints_from_clip("walk").save(path)
    return path


def test_mimic_retarget_on_a_truncated_keypoint_file_is_one_error_line(keypoint_file, tmp_path):
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(keypoint_file.read_bytes()[:-100])
    code, lines = run([str(BIN / "mimic"), "retarget", str(truncated), "--robot", "humanoid", "--no-video",
                       "-o", str(tmp_path / "out.motion.json")])
    assert code == 2 and len(lines) == 1 and "Traceback" not in lines[0], lines
    assert lines[0].startswith("mimic retarget: error: ") and f"{truncated}: not a keypoint file" in lines[0]


def test_mimic_retarget_on_unknown_keypoint_names_names_the_closest_one(keypoint_file, tmp_path):
    with np.load(keypoint_file) as data:
        arrays = dict(data)
    arrays["names"] = np.array(["pelvsi" if n == "pelvis" else str(n) for n in arrays["names"]])
    misspelt = tmp_path / "misspelt.npz"
    np.savez(misspelt, **arrays)
    code, lines = run([str(BIN / "mimic"), "retarget", str(misspelt), "--robot", "humanoid", "--no-video",
                       "-o", str(tmp_path / "out.motion.json")])
    assert code == 2 and len(lines) == 1 and "Traceback" not in lines[0], lines
    assert f"{misspelt}: field 'names': unknown keypoint 'pelvsi' (did you mean 'pelvis'?)" in lines[0]


def test_human_player_on_a_truncated_keypoint_file_is_one_error_line(keypoint_file, tmp_path):
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(keypoint_file.read_bytes()[: keypoint_file.stat().st_size // 2])
    code, lines = run([str(BIN / "human_player"), "--ros-args", "-p", f"source:={truncated}"])
    assert code == 2 and len(lines) == 1 and "Traceback" not in lines[0], lines
    assert "parameter 'source'" in lines[0] and f"{truncated}: not a keypoint file" in lines[0]


# ------------------------------------------------------------------ environment actions
@pytest.fixture(scope="module")
def env():
    env = ImitationEnv()
    env.reset(seed=0)
    yield env
    env.close()


@pytest.mark.parametrize("shape", [(1,), (27,), (29,), (1, 28), ()])
def test_an_action_of_the_wrong_shape_is_refused_not_broadcast(env, shape):
    before = env.backend.get_state()[0].copy()
    with pytest.raises(ValueError, match=rf"action has shape {re_shape(shape)}, expected \(28,\): one value per "
                                         r"joint of character 'humanoid'"):
        env.step(np.zeros(shape))
    np.testing.assert_array_equal(env.backend.get_state()[0], before)  # nothing simulated
    assert np.isfinite(env.step(np.zeros(28))[1])


def test_a_vector_environments_actions_of_the_wrong_shape_are_refused():
    envs = ImitationVectorEnv(2)
    envs.reset(seed=0)
    for shape in ((28,), (2, 1), (3, 28), (1, 28)):
        with pytest.raises(ValueError, match=rf"actions have shape {re_shape(shape)}, expected \(2, 28\)"):
            envs.step(np.zeros(shape))
    assert envs.step(np.zeros((2, 28)))[1].shape == (2,)
    envs.close()


def re_shape(shape: tuple[int, ...]) -> str:
    return str(shape).replace("(", r"\(").replace(")", r"\)")
