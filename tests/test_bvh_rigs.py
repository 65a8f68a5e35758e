"""BVH files from other rigs: naming conventions detected, up axis and unit inferred, YAML joint maps.

Each rig file is the walk clip written with mimic's BVH writer under another rig's joint names,
with the extra joints that rig has (clavicles, more spine joints, a root above the hips, finger
and end joints) and in other axes and units; read back, it must give the walk's keypoints.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import tomllib
import yaml
from scipy.spatial.transform import Rotation

from mimic_retarget.bvh import CM, X_UP, Y_UP, BvhError, BvhJoint, BvhMotion, motion_from_rotations, read_bvh, write_bvh
from mimic_retarget.bvh_rig import bvh_reading, load_joint_map, map_names
from mimic_retarget.human import clip_to_bvh, keypoints_from_clip
from mimic_retarget.keypoints import HUMAN_KEYPOINTS
from mimic_sim.tools.cli import main

ROOT = Path(__file__).resolve().parents[1]
POSITIONS = ("Xposition", "Yposition", "Zposition")
INCH = 0.0254


def sided(names: dict[str, str]) -> dict[str, str]:
    """Keypoint -> joint name for both sides from the left side's names ({} in a name is the side word)."""
    out = {}
    for keypoint, name in names.items():
        if keypoint.startswith("left_"):
            out[keypoint] = name.format("Left", "L", "l")
            out["right_" + keypoint.removeprefix("left_")] = name.format("Right", "R", "r")
        else:
            out[keypoint] = name
    return out


MIXAMO = sided({"pelvis": "mixamorig:Hips", "chest": "mixamorig:Spine", "neck": "mixamorig:Neck",
                "head": "mixamorig:Head", "left_hip": "mixamorig:{0}UpLeg", "left_knee": "mixamorig:{0}Leg",
                "left_ankle": "mixamorig:{0}Foot", "left_toe": "mixamorig:{0}ToeBase",
                "left_shoulder": "mixamorig:{0}Arm", "left_elbow": "mixamorig:{0}ForeArm",
                "left_wrist": "mixamorig:{0}Hand"})
BANDAI = sided({"pelvis": "Hips", "chest": "Spine", "neck": "Neck", "head": "Head", "left_hip": "UpperLeg_{1}",
                "left_knee": "LowerLeg_{1}", "left_ankle": "Foot_{1}", "left_toe": "Toes_{1}",
                "left_shoulder": "UpperArm_{1}", "left_elbow": "LowerArm_{1}", "left_wrist": "Hand_{1}"})
ANATOMICAL = sided({"pelvis": "Hips", "chest": "Chest", "neck": "Neck", "head": "Head", "left_hip": "{0}Hip",
                    "left_knee": "{0}Knee", "left_ankle": "{0}Ankle", "left_toe": "{0}Toe",
                    "left_shoulder": "{0}Shoulder", "left_elbow": "{0}Elbow", "left_wrist": "{0}Wrist"})
# CMU's names respelled: a prefix on every joint, snake case, the side as a suffix
CMU_RESPELLED = sided({"pelvis": "Character1_hips", "chest": "Character1_spine", "neck": "Character1_neck",
                       "head": "Character1_head", "left_hip": "Character1_up_leg_{2}",
                       "left_knee": "Character1_leg_{2}", "left_ankle": "Character1_foot_{2}",
                       "left_toe": "Character1_toe_base_{2}",
                       "left_shoulder": "Character1_arm_{2}", "left_elbow": "Character1_fore_arm_{2}",
                       "left_wrist": "Character1_hand_{2}"})


def both(rows):
    """Rows naming a left joint ({0}/{1}/{2} as in :func:`sided`) for both sides."""
    out = []
    for name, where, value in rows:
        out.append((name.format("Left", "L", "l"), where, value))
        if where.startswith("left_"):
            out.append((name.format("Right", "R", "r"), "right_" + where.removeprefix("left_"), value))
    return out


RIGS = {
    # name: (keypoint -> joint, joints inserted before a keypoint's joint (name, keypoint, share of its offset),
    #        leaf joints (name, keypoint of the parent, offset in cm), joint above the hips, axes, metres per unit,
    #        rotation order, the map detection should find, up axis)
    "mixamo_cm_y_up": (MIXAMO, both([("mixamorig:Spine1", "neck", 0.4), ("mixamorig:Spine2", "neck", 0.5),
                                     ("mixamorig:{0}Shoulder", "left_shoulder", 0.3)]),
                       both([("mixamorig:HeadTop_End", "head", (0.0, 18.0, 2.0)),
                             ("mixamorig:{0}Toe_End", "left_toe", (0.0, 0.0, 6.0)),
                             ("mixamorig:{0}HandIndex1", "left_wrist", (0.0, -8.0, 1.0))]),
                       None, np.eye(3), CM, ("Zrotation", "Xrotation", "Yrotation"), "mixamo", "y"),
    "bandai_namco_in_y_up": (BANDAI, both([("Chest", "neck", 0.5), ("Shoulder_{1}", "left_shoulder", 0.3)]),
                             both([("Toes_End_{1}", "left_toe", (0.0, 0.0, 5.0))]), "joint_Root", np.eye(3), INCH,
                             ("Yrotation", "Xrotation", "Zrotation"), "bandai_namco", "y"),
    "anatomical_m_z_up": (ANATOMICAL, both([("Chest2", "neck", 0.5), ("{0}Collar", "left_shoulder", 0.3)]), [],
                          None, Y_UP, 1.0, ("Xrotation", "Yrotation", "Zrotation"), "anatomical", "z"),
    "cmu_respelled_mm_x_up": (CMU_RESPELLED, both([("Character1_hip_joint_{2}", "left_hip", 0.6)]), [], None,
                              X_UP.T @ Y_UP, 0.001, ("Zrotation", "Yrotation", "Xrotation"), "cmu", "x"),
}


@pytest.fixture(scope="module")
def walk() -> BvhMotion:
    return clip_to_bvh("walk")


@pytest.fixture(scope="module")
def expected():
    """The walk's keypoints from the clip itself (Pinocchio), not through any BVH file."""
    return keypoints_from_clip("walk")


def build_rig(walk: BvhMotion, names, inserted, leaves, root, axes, metres_per_unit, order) -> BvhMotion:
    """The walk (mimic's cm, Y-up file) as another rig: renamed, extra joints with zero rotation (which move
    nothing), file axes ``axes @ walk's``, lengths in ``metres_per_unit``."""
    translation, local = walk.local_transforms()
    frames = walk.num_frames
    units = CM / metres_per_unit  # file units per walk file unit
    joints: list[BvhJoint] = []
    rotations: list[np.ndarray] = []
    identity = np.broadcast_to(np.eye(3), (frames, 3, 3))

    def add(name: str, parent: int, offset, rotation: np.ndarray, root_joint: bool = False) -> int:
        channels = (POSITIONS if root_joint else ()) + order
        joints.append(BvhJoint(name, parent, units * axes @ np.asarray(offset, dtype=float), channels))
        rotations.append(axes @ rotation @ axes.T)
        return len(joints) - 1

    new_index = {-1: add(root, -1, np.zeros(3), identity, root_joint=True) if root else -1}
    for j, joint in enumerate(walk.joints):
        parent, offset = new_index[joint.parent], joint.offset
        for name, before, share in inserted:
            if before == joint.name:
                parent = add(name, parent, share * offset, identity)
                offset = (1.0 - share) * offset
        new_index[j] = add(names[joint.name], parent, offset, local[:, j], root_joint=parent < 0)
        for name, above, leaf_offset in leaves:
            if above == joint.name:
                add(name, new_index[j], leaf_offset, identity)
    root_translation = units * translation[:, 0] @ axes.T
    return motion_from_rotations(joints, walk.frame_time, root_translation, np.stack(rotations, axis=1))


@pytest.mark.parametrize("rig", RIGS)
def test_rig_files_read_back_as_the_walk(tmp_path, walk, expected, rig):
    names, inserted, leaves, root, axes, metres_per_unit, order, detected, up = RIGS[rig]
    path = tmp_path / f"{rig}.bvh"
    write_bvh(path, build_rig(walk, names, inserted, leaves, root, axes, metres_per_unit, order))
    motion = read_bvh(path)
    assert len(motion.joints) > len(walk.joints)
    reading = bvh_reading(motion)
    assert reading.detected and reading.joint_map.name == detected
    assert reading.joints == {names[k]: k for k in HUMAN_KEYPOINTS}
    assert (reading.up, reading.scale) == (up, metres_per_unit)
    keypoints = reading.keypoints()
    assert keypoints.names == list(HUMAN_KEYPOINTS)
    assert np.abs(keypoints.times - expected.times).max() < 1e-9
    assert np.abs(keypoints.positions - expected.positions).max() < 1e-6
    assert np.abs(keypoints.rotations - expected.rotations).max() < 1e-6
    summary = reading.summary().splitlines()
    assert len(summary) == 2 and f"joint map '{detected}' (detected" in summary[0]
    assert f"{names['left_toe']} -> left_toe" in summary[0]
    assert f"up +{up} (inferred" in summary[1] and "(inferred: 1.47 m from ankle to head)" in summary[1]


def test_given_up_and_unit_override_the_inferred(tmp_path, walk, expected):
    names, inserted, leaves, root, axes, _, order, _, _ = RIGS["anatomical_m_z_up"]
    motion = build_rig(walk, names, inserted, leaves, root, axes, 1.0, order)
    reading = bvh_reading(motion, "anatomical", up="y", unit="cm")
    assert (reading.up, reading.scale, reading.detected) == ("y", CM, False)
    assert "up +y (given), unit cm (given)" in reading.summary()
    # Read as Y up in cm, the Z-up metre file's pelvis height (its z, 0.85 m) is 0.85 cm sideways (mimic's x).
    pelvis = HUMAN_KEYPOINTS.index("pelvis")
    np.testing.assert_allclose(reading.keypoints().positions[:, pelvis, 0], expected.positions[:, pelvis, 2] / 100,
                               atol=1e-9)
    assert bvh_reading(motion, unit=0.5).scale == 0.5
    for kwargs, message in [({"up": "w"}, "up axis 'w' is not one of x, y, z"),
                            ({"unit": "ft"}, "length unit 'ft' is not one of m, cm, mm, in"),
                            ({"unit": -1.0}, "scale must be a positive number")]:
        with pytest.raises(BvhError, match=message):
            bvh_reading(motion, **kwargs)


def test_a_tilted_or_giant_skeleton_is_refused_without_up_or_unit(walk):
    names, inserted, leaves, root, _, _, order, _, _ = RIGS["anatomical_m_z_up"]
    # up (y) turned to (1, 1, 1): 55 degrees from every axis
    diagonal = np.ones(3) / np.sqrt(3.0)
    turn = np.cross([0.0, 1.0, 0.0], diagonal)
    tilt = Rotation.from_rotvec(turn / np.linalg.norm(turn) * np.arccos(diagonal[1])).as_matrix()
    tilted = build_rig(walk, names, inserted, leaves, root, tilt, CM, order)
    with pytest.raises(BvhError, match=r"cannot tell the up axis: on average the head is \[ *[789]\d\.\d +[789]\d\.\d "
                                       r"+[789]\d\.\d\] file units from the ankles, not above them along x, y or z; "
                                       r"give the up axis"):
        bvh_reading(tilted)
    assert bvh_reading(tilted, up="y").scale == CM  # the unit does not need the up axis
    giant = build_rig(walk, names, inserted, leaves, root, np.eye(3), 1e-5, order)  # 147 km from ankle to head
    with pytest.raises(BvhError, match=r"cannot tell the length unit: the skeleton is 1\.466e\+05 file units from "
                                       r"ankle to head, not 0\.5-2\.5 m in any of m, cm, mm, in; give the unit"):
        bvh_reading(giant)
    assert bvh_reading(giant, unit=1e-5).up == "y"


NO_TOES = {**BANDAI, "left_toe": "ToeTip_L", "right_toe": "ToeTip_R"}
"""Bandai-Namco names, but the toes named as no built-in map names them."""


def rig_without_toes(tmp_path: Path, walk: BvhMotion) -> Path:
    _, inserted, leaves, root, axes, metres_per_unit, order, _, _ = RIGS["bandai_namco_in_y_up"]
    path = tmp_path / "no_toes.bvh"
    write_bvh(path, build_rig(walk, NO_TOES, inserted, leaves, root, axes, metres_per_unit, order))
    return path


def test_incomplete_rig_error_is_a_map_to_complete_which_then_works_through_the_cli(tmp_path, capsys, walk):
    path = rig_without_toes(tmp_path, walk)
    out = tmp_path / "out"
    args = ["retarget", str(path), "--robot", "humanoid", "--no-video", "-o", str(out / "walk.motion.json")]
    assert main(args) != 0
    first, rest = capsys.readouterr().err.split("\n", 1)
    assert first == (f"mimic retarget: error: {path}: no built-in joint map fits; the closest, 'bandai_namco', "
                     "finds 16 of 18 keypoints and lacks left_toe, right_toe: save the map below as a .yaml file, "
                     "name the file's joint for each missing keypoint and pass it as the joint map "
                     "(mimic retarget --bvh-map FILE)")
    template = yaml.safe_load(rest)
    assert template["joints"] == {BANDAI[k]: k for k in HUMAN_KEYPOINTS if not k.endswith("toe")}
    assert "  # ?: left_toe\n  # ?: right_toe\n" in rest
    assert rest.rstrip().endswith("# the file's joints no keypoint uses: joint_Root, Chest, Shoulder_R, Shoulder_L, "
                                  "ToeTip_R, Toes_End_R, ToeTip_L, Toes_End_L")
    assert not out.exists()

    completed = rest.replace("# ?: left_toe", "ToeTip_L: left_toe").replace("# ?: right_toe", "ToeTip_R: right_toe")
    joint_map = tmp_path / "my_rig.yaml"
    joint_map.write_text(completed)
    assert main([*args, "--bvh-map", str(joint_map)]) == 0
    err = capsys.readouterr().err
    assert f"{path}: joint map '{joint_map}' (given, {joint_map}): Hips -> pelvis, " in err
    assert "ToeTip_L -> left_toe" in err
    assert f"{path}: up +y (inferred: the head is above the feet along it), unit in (inferred: 1.47 m" in err
    report = json.loads((out / "walk.report.json").read_text())
    assert report["frames"] == walk.num_frames and report["keypoint_error_mean_mm"] < 100


FULL_MAP = "joints:\n" + "".join(f"  {NO_TOES[k]}: {k}\n" for k in HUMAN_KEYPOINTS)  # rig_without_toes' map


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (FULL_MAP.replace("Hips: pelvis", "Hips: pelvs"),
         r"bad\.yaml: field 'joints\.Hips': 'pelvs' is not a mimic keypoint \(did you mean 'pelvis'\? known: pelvis, "),
        (FULL_MAP.replace("ToeTip_L:", "Toes_L:"),
         r"bad\.yaml: field 'joints\.Toes_L': \S+no_toes\.bvh has no joint 'Toes_L' \(nor one named like it\) "
         r"for keypoint 'left_toe'; its joints: joint_Root, Hips, "),
        ("- Hips\n- Spine\n", r"bad\.yaml: a joint map is a mapping with the field 'joints' \(BVH joint name: mimic "
                              r"keypoint\), got list"),
        ("joints: [Hips, Spine]\n", r"bad\.yaml: field 'joints' must map BVH joint names to mimic keypoints"),
        (FULL_MAP + "  Chest: chest\n", r"bad\.yaml: field 'joints\.Chest': keypoint 'chest' is already joint "
                                        r"'Spine''s"),
        (FULL_MAP.replace("  ToeTip_L: left_toe\n", ""), r"bad\.yaml: field 'joints' lacks keypoints left_toe "),
        (FULL_MAP.replace("ToeTip_L: left_toe", "foot_l: left_toe"),
         r"bad\.yaml: field 'joints\.foot_l': names joint 'Foot_L' of \S+no_toes\.bvh, which already gives keypoint "
         r"'left_ankle'"),
        (FULL_MAP + "up: y\n", r"bad\.yaml: unknown field 'up' \(a joint map has only 'joints'\)"),
        ("joints:\n  yes: pelvis\n", r"bad\.yaml: field 'joints\.True': joint name True is not text \(quote it\)"),
        ("joints: {Hips: pelvis\n", r"bad\.yaml:\d: not valid YAML: "),
    ],
    ids=["unknown keypoint", "joint the file lacks", "not a mapping", "joints not a mapping", "duplicate target",
         "missing keypoints", "one joint twice", "unknown field", "name not text", "not YAML"],
)
def test_bad_map_files_are_refused_naming_file_and_field_and_write_nothing(tmp_path, capsys, walk, text, message):
    path = rig_without_toes(tmp_path, walk)
    joint_map = tmp_path / "bad.yaml"
    joint_map.write_text(text)
    out = tmp_path / "out"
    assert main(["retarget", str(path), "--robot", "humanoid", "--no-video", "-o", str(out / "x.motion.json"),
                 "--bvh-map", str(joint_map)]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("mimic retarget: error: ")
    assert re.search(message, err), err
    assert not out.exists()


def test_unknown_map_name_and_missing_map_file(tmp_path):
    with pytest.raises(BvhError, match=r"unknown joint map 'maya' \(built-in: anatomical, bandai_namco, cmu, "
                                       r"lafan1, mimic, mixamo; or a \.yaml file\)"):
        load_joint_map("maya")
    with pytest.raises(BvhError, match=r"nothere\.yaml: cannot read the joint map: No such file"):
        load_joint_map(tmp_path / "nothere.yaml")


def test_built_in_maps_are_complete_and_installed():
    assert map_names() == ["anatomical", "bandai_namco", "cmu", "lafan1", "mimic", "mixamo"]
    for name in map_names():
        assert sorted(load_joint_map(name).joints.values()) == sorted(HUMAN_KEYPOINTS), name
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    assert data_files["share/mimic/config/bvh_maps"] == ["config/bvh_maps/*.yaml"]
