"""Retargeting: whole-body IK, mapping files, the retargeting pipeline and robot clip files."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from mimic_retarget.human import keypoints_from_clip
from mimic_retarget.ik import LinkTarget, WholeBodyIK
from mimic_retarget.keypoints import KeypointMotion
from mimic_retarget.mapping import MappingError, load_mapping
from mimic_retarget.retarget import RetargetConfig, Retargeter, RetargetError
from mimic_sim.character import load_character
from mimic_sim.envs.imitation import ImitationEnv
from mimic_sim.kinematics import PinocchioModel
from mimic_sim.motion_file import load_clip, save_motion
from mimic_sim.reference import ReferenceMotion

# Scaling, contact holding and ground clearance off, and a weak pull toward the extrapolation (the default's
# smooths a fast frame by up to 6.5 mm): what is left is the IK itself.
EXACT = RetargetConfig(align_ankle_height=False, hold_contacts=False, ground_clearance=False, smoothness=1e-5)


@pytest.fixture(scope="module")
def humanoid():
    return load_character("humanoid")


@pytest.fixture(scope="module")
def walk():
    return keypoints_from_clip("walk", rate=30.0)


@pytest.mark.parametrize("clip", ["walk", "run", "crawl"])
def test_humanoid_onto_itself_reproduces_the_clip(humanoid, clip):
    human = keypoints_from_clip(clip, rate=30.0)
    result = Retargeter(humanoid, EXACT).retarget(human, clip)
    assert result.scale == pytest.approx(1.0, abs=1e-9)
    assert result.report["keypoint_error_max_mm"] < 1.0, result.report
    # the joint angles are the clip's, not just the keypoints (no other branch of the same positions)
    reference = ReferenceMotion(load_clip(clip), humanoid)
    truth = np.array([reference.state(float(t))[0][7:] for t in human.times])
    knees = [humanoid.joint_names.index(n) for n in ("left_knee", "right_knee")]
    assert np.abs(result.qpos[:, 7:][:, knees] - truth[:, knees]).max() < 1e-3


def test_default_retargeting_keeps_limits_ground_and_planted_feet(humanoid, walk):
    result = Retargeter(humanoid).retarget(walk, "walk")
    report = result.report
    assert report["joint_limit_violations"] == 0
    assert report["ground_penetration_max_mm"] <= 5.0
    assert report["contact_frames"] > 0.5 * 2 * report["frames"] * 0.4  # a walk is planted most of the time
    assert report["foot_skating_mm_per_contact_frame"] < 2.0
    # the same clip without holding contacts skates more: the check above has teeth
    loose = Retargeter(humanoid, RetargetConfig(hold_contacts=False)).retarget(walk, "walk").report
    assert loose["foot_skating_mm_per_contact_frame"] > report["foot_skating_mm_per_contact_frame"]


def test_ik_never_leaves_the_joint_limits(humanoid):
    ik = WholeBodyIK(humanoid, [LinkTarget("right_wrist"), LinkTarget("left_ankle")])
    qpos = np.zeros(7 + humanoid.num_joints)
    qpos[2], qpos[3] = 1.0, 1.0
    far = np.array([[3.0, -2.0, 1.0], [0.0, 0.0, -2.0]])  # out of reach
    solved = ik.solve(qpos, far, iterations=30)
    assert np.all(solved[7:] >= humanoid.joint_lower) and np.all(solved[7:] <= humanoid.joint_upper)
    assert np.isfinite(solved).all()


def _config_with(humanoid, tmp_path, **retarget):
    cfg = yaml.safe_load(humanoid.config_path.read_text())
    cfg["retarget"] = {**cfg["retarget"], **retarget}
    path = tmp_path / "mapped.yaml"  # the humanoid's model is built, so the config can live anywhere
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_a_mapping_naming_a_missing_link_is_refused(humanoid, tmp_path):
    cfg = yaml.safe_load(humanoid.config_path.read_text())
    keypoints = dict(cfg["retarget"]["keypoints"], left_wrist={"link": "left_hand_link"})
    character = load_character(_config_with(humanoid, tmp_path, keypoints=keypoints))
    with pytest.raises(MappingError, match=r"mapped.yaml.*keypoints.left_wrist.link.*no link 'left_hand_link'"):
        load_mapping(character, {f.name for f in PinocchioModel(character).model.frames})
    with pytest.raises(MappingError, match="left_hand_link"):
        Retargeter(character)


def test_a_mapping_naming_an_unknown_keypoint_is_refused(humanoid, tmp_path):
    cfg = yaml.safe_load(humanoid.config_path.read_text())
    path = _config_with(humanoid, tmp_path, keypoints=dict(cfg["retarget"]["keypoints"], tail={"link": "root"}))
    with pytest.raises(MappingError, match=r"retarget.keypoints.tail.*not a human keypoint"):
        Retargeter(load_character(path))


def test_a_source_without_mapped_keypoints_is_refused(humanoid, walk):
    legs = walk.subset([n for n in walk.names if n not in ("left_elbow", "right_wrist")])
    with pytest.raises(RetargetError, match=r"lacks keypoints \['left_elbow', 'right_wrist'\]"):
        Retargeter(humanoid).retarget(legs)


def test_robot_clip_file_round_trip_and_playback(humanoid, walk, tmp_path):
    result = Retargeter(humanoid).retarget(walk, "walk", report=False)
    path = save_motion(result.motion, tmp_path / "walk.motion.json", character="humanoid")
    loaded = load_clip(path)
    assert loaded.joints.keys() == result.motion.joints.keys()
    for name, values in result.motion.joints.items():
        assert np.array_equal(loaded.joints[name], values)
    assert np.array_equal(loaded.root_pos, result.motion.root_pos)
    reference = ReferenceMotion(loaded, humanoid)
    qpos, _ = reference.state(0.0)
    assert np.allclose(qpos, result.qpos[0], atol=1e-9)
    env = ImitationEnv(clip=str(path), random_start=False)
    obs, _ = env.reset(seed=0)
    obs, reward, *_ = env.step(np.zeros(env.action_space.shape))
    assert np.isfinite(obs).all() and 0.0 < reward <= 1.0


def test_keypoints_of_another_size_are_scaled_by_leg_length(humanoid, walk):
    small = KeypointMotion(names=walk.names, times=walk.times, positions=walk.positions * 0.8, source="small walk")
    result = Retargeter(humanoid).retarget(small, "small", report=False)
    assert result.scale == pytest.approx(1.25, rel=1e-6)


def test_mimic_retarget_writes_clip_report_and_side_by_side_video(tmp_path, capsys):
    import json

    import imageio.v3 as iio

    from mimic_sim.tools.cli import main

    out = tmp_path / "walk_h.motion.json"
    video = tmp_path / "walk_h.gif"
    assert main(["retarget", "walk", "--robot", "humanoid", "-o", str(out), "--video", str(video)]) == 0
    report = json.loads((tmp_path / "walk_h.report.json").read_text())
    assert report["robot"] == "humanoid" and report["joint_limit_violations"] == 0
    assert report["frames"] == load_clip("walk").num_frames
    clip = load_clip(out)
    assert clip.loop and set(clip.joints) == set(load_character("humanoid").joint_names)
    frames = iio.imread(video, index=None)
    assert len(frames) == int(clip.duration * 30 + 1e-9) + 1 and frames.shape[2] > frames.shape[1]  # wide
    # the stick figure is drawn: the human's orange is in the picture
    orange = (frames[..., 0] > 200) & (frames[..., 1] > 100) & (frames[..., 1] < 170) & (frames[..., 2] < 90)
    assert orange.sum(axis=(1, 2)).min() > 50
    assert str(out) in capsys.readouterr().out


@pytest.fixture(scope="module", params=["atlas", "h1", "g1"])
def robot_retargeter(request):
    from mimic_sim.paths import robots_dir

    models = {"atlas": "atlas/atlas.urdf", "h1": "h1/h1.urdf", "g1": "g1/g1_29dof.urdf"}
    if not (robots_dir() / models[request.param]).is_file():
        pytest.skip(f"robot files of '{request.param}' not fetched: run `python -m mimic_retarget.robot_assets`")
    return Retargeter(load_character(request.param))


def test_every_shipped_clip_on_every_robot_keeps_limits_and_ground(robot_retargeter):
    from mimic_sim.deepmimic_format import shipped_clips

    retargeter = robot_retargeter
    lower, upper = retargeter.character.joint_lower, retargeter.character.joint_upper
    for clip in shipped_clips():
        result = retargeter.retarget(keypoints_from_clip(clip), clip, report=False)
        joints = result.qpos[:, 7:]
        assert np.all(joints >= lower) and np.all(joints <= upper), clip
        deepest = max(retargeter.penetration(q) for q in result.qpos)
        assert deepest <= 0.005, f"{clip}: {deepest * 1e3:.1f} mm below the floor"
        assert np.isfinite(result.qpos).all()


def test_a_looping_clip_continues_across_its_wrap_on_every_robot(robot_retargeter):
    # Atlas's walk, solved once from the zero pose, wrapped with r_arm_ely jumping 3.14 rad (an elbow's
    # twist the targets leave free while the arm is straight); the source walk itself wraps within 0.16 rad
    from dataclasses import replace

    retargeter = Retargeter(robot_retargeter.character, replace(robot_retargeter.config, loop=True))
    joints = retargeter.retarget(keypoints_from_clip("walk"), "walk", report=False).qpos[:, 7:]
    wrap = np.abs(joints[0] - joints[-1])
    worst = int(wrap.argmax())
    assert wrap[worst] < 0.3, (retargeter.character.joint_names[worst], wrap[worst])


def test_mimic_train_on_a_robot_retargets_the_clip_and_trains(tmp_path, monkeypatch):
    import json

    from mimic_sim.paths import robots_dir
    from mimic_sim.tools.cli import main

    if not (robots_dir() / "g1/g1_29dof.urdf").is_file():
        pytest.skip("robot files of 'g1' not fetched: run `python -m mimic_retarget.robot_assets`")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "robots").symlink_to(robots_dir())  # the fetched robots, an empty clip store
    monkeypatch.setenv("MIMIC_CACHE_DIR", str(cache))
    run = tmp_path / "run"
    assert main(["train", "--robot", "g1", "--clip", "walk", "--samples", "256", "--envs", "2", "--workers", "1",
                 "--steps-per-env", "64", "--hidden", "32,32", "--checkpoint-every", "1", "--run-dir", str(run)]) == 0
    clip = cache / "clips" / "g1" / "walk.motion.json"
    assert set(load_clip(clip).joints) == set(load_character("g1").joint_names)
    rows = (run / "progress.csv").read_text().splitlines()
    assert len(rows) >= 3 and (run / "learning_curve.png").is_file()  # header + the two iterations
    meta = json.loads(next((run / "checkpoints").glob("iter_*/meta.json")).read_text())
    assert meta["character"] == "g1" and meta["task"]["reference"]["clip"] == "walk"
    assert meta["joint_names"][0] in load_character("g1").joint_names
