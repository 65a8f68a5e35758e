"""BVH files from any rig: joint maps, naming-convention detection, up axis and length unit.

A joint map says which BVH joint gives each mimic keypoint (:data:`HUMAN_KEYPOINTS`).  It
is a YAML file with one field, ``joints``, mapping BVH joint names to keypoint names and
naming a joint for every keypoint::

    joints:
      Hips: pelvis
      Spine: chest
      LeftUpLeg: left_hip
      ...

The built-in maps are such files, ``config/bvh_maps/<name>.yaml`` (cmu, lafan1, mixamo,
bandai_namco, anatomical, mimic).  A map's joint names match a file's joints exactly or,
failing that, by a normalized form: the namespace (``mixamorig:``) and a prefix all of the
file's joints share dropped, case and separators ignored, and a leading or trailing side
marker (``Left``, ``L``, ``Right``, ``R``) taken as the side, so ``UpperLeg_L``,
``upperleg.l``, ``L_UpperLeg`` and ``LeftUpperLeg`` are one joint.  Without a map
(``"auto"``) every built-in map is tried and the one that finds every keypoint is used;
when none does, the error carries the closest as a YAML map to complete.

Up axis and length unit are inferred from the skeleton unless given: up is the file axis
along which the head is above the ankles (on average over the frames: some rigs, LAFAN1's,
have a rest pose lying down), the unit the one that makes the ankle-to-head length (leg
plus trunk, summed along the bones, so any pose gives it) closest to an adult's.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from mimic_retarget.bvh import CM, X_UP, Y_UP, Z_UP, BvhError, BvhMotion, read_bvh
from mimic_retarget.keypoints import HUMAN_KEYPOINTS, KeypointMotion
from mimic_sim.paths import config_dirs, find_config, read_yaml

MAPS_DIR = "bvh_maps"
"""Folder of the built-in joint maps under ``config/``."""

UNITS: dict[str, float] = {"m": 1.0, "cm": CM, "mm": 0.001, "in": 0.0254}
"""Length units of BVH files, in metres."""

UP_AXES: dict[str, np.ndarray] = {"x": X_UP, "y": Y_UP, "z": Z_UP}
"""File up axis -> rotation from file axes to mimic's (x forward, y left, z up)."""

ADULT_ANKLE_TO_HEAD = 1.5
"""Metres from ankle to head joint of an adult standing straight (about 1.45 m at 1.75 m tall):
the unit whose reading comes closest is the file's.  cm and inches, the closest pair of units,
part at 94 file units (0.94 m or 2.4 m)."""
PLAUSIBLE_ANKLE_TO_HEAD = (0.5, 2.5)
"""Metres: a reading outside this range means no unit fits (a broken or non-human skeleton)."""


@dataclass(frozen=True)
class JointMap:
    """BVH joint name -> keypoint, from a built-in map (``name``), a YAML file or a mapping."""

    name: str
    source: str
    """Where it is defined: the YAML file, or ``given joint map`` for a mapping."""
    joints: dict[str, str]


def map_names() -> list[str]:
    """Names of the built-in joint maps (``config/bvh_maps/*.yaml``)."""
    return sorted({p.stem for d in config_dirs() for p in (d / MAPS_DIR).glob("*.yaml")})


def load_joint_map(spec: str | Path) -> JointMap:
    """A built-in joint map by name, or a YAML joint map file by path (``.yaml``/``.yml``)."""
    text = str(spec)
    if isinstance(spec, Path) or text.endswith((".yaml", ".yml")):
        path, name = Path(spec), text
    elif text in map_names():
        path, name = find_config(f"{MAPS_DIR}/{text}.yaml"), text
    else:
        raise BvhError(f"unknown joint map '{text}' (built-in: {', '.join(map_names())}; or a .yaml file)")
    data = read_yaml(path, BvhError, "joint map")
    if not isinstance(data, dict) or "joints" not in data:
        raise BvhError(f"{path}: a joint map is a mapping with the field 'joints' (BVH joint name: mimic "
                       f"keypoint), got {type(data).__name__}")
    extra = [str(key) for key in data if key != "joints"]
    if extra:
        raise BvhError(f"{path}: unknown field '{extra[0]}' (a joint map has only 'joints')")
    return JointMap(name, str(path), check_joints(data["joints"], str(path)))


def check_joints(joints: object, source: str) -> dict[str, str]:
    """``joints`` (BVH joint name -> keypoint) checked: text names, known and distinct keypoints, all of them."""
    if not isinstance(joints, Mapping) or not joints:
        raise BvhError(f"{source}: field 'joints' must map BVH joint names to mimic keypoints, got {joints!r}")
    joint_of: dict[str, str] = {}
    for joint, keypoint in joints.items():
        field = f"joints.{joint}"
        if not isinstance(joint, str):
            # YAML reads unquoted yes/no/on/off and numbers as such: the name needs quotes there.
            raise BvhError(f"{source}: field '{field}': joint name {joint!r} is not text (quote it)")
        if not isinstance(keypoint, str) or keypoint not in HUMAN_KEYPOINTS:
            close = difflib.get_close_matches(str(keypoint), HUMAN_KEYPOINTS, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise BvhError(f"{source}: field '{field}': {keypoint!r} is not a mimic keypoint ({hint}known: "
                           f"{', '.join(HUMAN_KEYPOINTS)})")
        if keypoint in joint_of:
            raise BvhError(f"{source}: field '{field}': keypoint '{keypoint}' is already joint "
                           f"'{joint_of[keypoint]}''s (each keypoint comes from one joint)")
        joint_of[keypoint] = joint
    missing = [k for k in HUMAN_KEYPOINTS if k not in joint_of]
    if missing:
        raise BvhError(f"{source}: field 'joints' lacks keypoints {', '.join(missing)} (a joint map names a joint "
                       "for every keypoint)")
    return dict(joints)


# -------------------------------------------------------------------- names
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")  # LHipJoint -> L Hip Joint, UpperLeg_L -> Upper Leg L
_SIDES = {"left": "left", "l": "left", "right": "right", "r": "right"}


def _words(name: str) -> list[str]:
    """Lower-case words of a joint name, without its namespace (``mixamorig:``, Maya's ``a|b``)."""
    return [w.lower() for w in _WORD.findall(re.split(r"[:|]", name)[-1])]


def _key(words: Sequence[str]) -> tuple[str, str]:
    """(side, rest): a side marker first or last is the side, the other words joined are the rest."""
    words = list(words)
    for end in (0, -1):
        if len(words) > 1 and words[end] in _SIDES:
            return _SIDES[words.pop(end)], "".join(words)
    return "", "".join(words)


def _file_keys(names: Sequence[str]) -> list[tuple[str, str]]:
    """Each joint's key, after dropping the leading words all of them share (``Character1_``, ``Model_``)."""
    words = [_words(name) for name in names]
    shared = 0
    while all(len(w) > shared + 1 and w[shared] == words[0][shared] for w in words):
        shared += 1
    return [_key(w[shared:]) for w in words]


def _match(joint_map: JointMap, names: Sequence[str]) -> dict[str, str | None]:
    """Each of the map's joints -> the file's joint it names (the same name, else the only joint with the
    same key), or None."""
    by_key: dict[tuple[str, str], list[str]] = {}
    for name, key in zip(names, _file_keys(names), strict=True):
        by_key.setdefault(key, []).append(name)
    found: dict[str, str | None] = {}
    for joint in joint_map.joints:
        candidates = [joint] if joint in names else by_key.get(_key(_words(joint)), [])
        found[joint] = candidates[0] if len(candidates) == 1 else None
    return found


def _fit(joint_map: JointMap, motion: BvhMotion) -> dict[str, str]:
    """The map in the file's joint names (file joint -> keypoint), or an error naming the joint the file lacks."""
    fitted: dict[str, str] = {}
    for joint, name in _match(joint_map, motion.names).items():
        keypoint = joint_map.joints[joint]
        if name is None:
            raise BvhError(f"{joint_map.source}: field 'joints.{joint}': {motion.source} has no joint '{joint}' "
                           f"(nor one named like it) for keypoint '{keypoint}'; its joints: {', '.join(motion.names)}")
        if name in fitted:
            raise BvhError(f"{joint_map.source}: field 'joints.{joint}': names joint '{name}' of {motion.source}, "
                           f"which already gives keypoint '{fitted[name]}'")
        fitted[name] = keypoint
    return fitted


def detect_joint_map(motion: BvhMotion) -> tuple[JointMap, dict[str, str]]:
    """The built-in map that finds every keypoint in ``motion`` (most exact names on a tie) and the file
    joint -> keypoint it gives; else an error whose first line says what is missing and whose next lines
    are the closest map as YAML, to complete and pass as a joint map file."""
    best: tuple[tuple[int, int], JointMap, dict[str, str | None]] | None = None
    for name in map_names():
        joint_map = load_joint_map(name)
        found = _match(joint_map, motion.names)
        score = (sum(n is not None for n in found.values()), sum(j == n for j, n in found.items()))
        if best is None or score > best[0]:
            best = (score, joint_map, found)
    if best is None:
        raise BvhError(f"no built-in joint maps (config/{MAPS_DIR}/*.yaml) in: "
                       f"{', '.join(str(d) for d in config_dirs())}")
    _, joint_map, found = best
    if all(name is not None for name in found.values()):
        return joint_map, _fit(joint_map, motion)
    raise BvhError(_map_to_complete(motion, joint_map, found))


def _map_to_complete(motion: BvhMotion, joint_map: JointMap, found: dict[str, str | None]) -> str:
    keypoint_joint = {joint_map.joints[j]: n for j, n in found.items()}
    missing = [k for k in HUMAN_KEYPOINTS if keypoint_joint[k] is None]
    used = set(keypoint_joint.values())
    unused = [n for n in motion.names if n not in used]
    lines = [f"{motion.source}: no built-in joint map fits; the closest, '{joint_map.name}', finds "
             f"{len(HUMAN_KEYPOINTS) - len(missing)} of {len(HUMAN_KEYPOINTS)} keypoints and lacks "
             f"{', '.join(missing)}: save the map below as a .yaml file, name the file's joint for each missing "
             "keypoint and pass it as the joint map (mimic retarget --bvh-map FILE)",
             f"# joint map for {Path(motion.source).name} (docs/retargeting.md): BVH joint name: mimic keypoint",
             "joints:"]
    lines += [f"  {_yaml_entry(keypoint_joint[k], k)}" for k in HUMAN_KEYPOINTS if keypoint_joint[k] is not None]
    lines.append("  # missing: put one of the joints listed below in place of '?' and remove the '# '")
    lines += [f"  # ?: {k}" for k in missing]
    lines.append(f"# the file's joints no keypoint uses: {', '.join(unused)}")
    return "\n".join(lines)


def _yaml_entry(joint: str | None, keypoint: str) -> str:
    # safe_dump quotes the names YAML would read as something else (yes, 1.5, names with ': ').
    return yaml.safe_dump({joint: keypoint}, default_flow_style=False, width=1 << 16).strip()


# -------------------------------------------------------------------- axes and unit
def _ancestors(motion: BvhMotion, joint: int) -> list[int]:
    chain = [joint]
    while motion.joints[chain[-1]].parent >= 0:
        chain.append(motion.joints[chain[-1]].parent)
    return chain


def _bone_length(motion: BvhMotion, a: str, b: str) -> float:
    """Length of the bones between joints ``a`` and ``b`` (offsets summed along the tree): the same in any pose."""
    up_a, up_b = _ancestors(motion, motion.index(a)), _ancestors(motion, motion.index(b))
    common = next(j for j in up_a if j in up_b)
    path = up_a[:up_a.index(common)] + up_b[:up_b.index(common)]
    return float(sum(np.linalg.norm(motion.joints[j].offset) for j in path))


def infer_up(motion: BvhMotion, joint_of: Mapping[str, str]) -> str:
    """The file axis (x, y or z) along which the head is above the ankles, on average over the frames;
    ``joint_of`` is keypoint -> file joint."""
    positions, _ = motion.forward_kinematics()
    head = positions[:, motion.index(joint_of["head"])]
    ankles = (positions[:, motion.index(joint_of["left_ankle"])] + positions[:, motion.index(joint_of["right_ankle"])])
    rise = (head - ankles / 2).mean(axis=0)
    axis = int(np.argmax(np.abs(rise)))
    # Within 45 degrees of an axis and pointing up it: anything else is a figure lying down or upside down
    # (then the frames do not tell which way is up).
    if not rise[axis] > math.sqrt(0.5) * np.linalg.norm(rise):
        raise BvhError(f"{motion.source}: cannot tell the up axis: on average the head is "
                       f"{np.array2string(rise, precision=1)} file units from the ankles, not above them along "
                       "x, y or z; give the up axis")
    return "xyz"[axis]


def infer_unit(motion: BvhMotion, joint_of: Mapping[str, str]) -> tuple[str, float]:
    """(unit name, ankle-to-head length in file units): the unit of :data:`UNITS` that makes the legs plus
    the trunk closest to an adult's ankle to head; ``joint_of`` is keypoint -> file joint."""
    legs = [_bone_length(motion, joint_of[f"{side}_hip"], joint_of[f"{side}_ankle"]) for side in ("left", "right")]
    length = sum(legs) / 2 + _bone_length(motion, joint_of["pelvis"], joint_of["head"])
    if length > 0.0:
        unit = min(UNITS, key=lambda u: abs(math.log(length * UNITS[u] / ADULT_ANKLE_TO_HEAD)))
        low, high = PLAUSIBLE_ANKLE_TO_HEAD
        if low <= length * UNITS[unit] <= high:
            return unit, length
    raise BvhError(f"{motion.source}: cannot tell the length unit: the skeleton is {length:.4g} file units from "
                   f"ankle to head, not {PLAUSIBLE_ANKLE_TO_HEAD[0]}-{PLAUSIBLE_ANKLE_TO_HEAD[1]} m in any of "
                   f"{', '.join(UNITS)}; give the unit")


# -------------------------------------------------------------------- reading
@dataclass(frozen=True)
class BvhReading:
    """How a BVH motion's joints become keypoints: which joint gives each keypoint, the up axis, the unit."""

    motion: BvhMotion
    joint_map: JointMap
    joints: dict[str, str]
    """The file's joint -> keypoint."""
    detected: bool
    up: str
    scale: float
    """Metres per file unit."""
    up_note: str
    unit_note: str

    def keypoints(self) -> KeypointMotion:
        """Keypoints (in :data:`HUMAN_KEYPOINTS` order) in metres and mimic's axes; keypoint rotations are
        the joint frames turned into mimic's axes (``axes @ R @ axes.T``), the identity at the rest pose."""
        motion = self.motion
        joint_of = {k: j for j, k in self.joints.items()}
        columns = [motion.index(joint_of[k]) for k in HUMAN_KEYPOINTS]
        axes = UP_AXES[self.up]
        positions, rotations = motion.forward_kinematics()
        positions = self.scale * positions[:, columns] @ axes.T
        rotations = axes @ rotations[:, columns] @ axes.T
        times = np.arange(motion.num_frames) * motion.frame_time
        return KeypointMotion(list(HUMAN_KEYPOINTS), times, positions, rotations, motion.source)

    def summary(self) -> str:
        """Two lines: the joint map (which, where from, the file's joint for each keypoint); up axis and unit."""
        source = self.motion.source
        how = "detected" if self.detected else "given"
        unit = next((name for name, value in UNITS.items() if value == self.scale), f"{self.scale:g} m")
        pairs = ", ".join(f"{joint} -> {keypoint}" for joint, keypoint in self.joints.items())
        return (f"{source}: joint map '{self.joint_map.name}' ({how}, {self.joint_map.source}): {pairs}\n"
                f"{source}: up +{self.up} ({self.up_note}), unit {unit} ({self.unit_note})")


def bvh_reading(motion: BvhMotion, joint_map: str | Path | Mapping[str, str] = "auto", up: str | None = None,
                unit: str | float | None = None) -> BvhReading:
    """How to read ``motion``: ``joint_map`` is ``"auto"`` (detect the naming convention), a built-in map's
    name, a YAML map file or a mapping (BVH joint -> keypoint); ``up`` the file's up axis (x, y, z) and
    ``unit`` its length unit (a name in :data:`UNITS` or metres per file unit), inferred when None."""
    detected = isinstance(joint_map, str) and joint_map == "auto"
    if detected:
        chosen, joints = detect_joint_map(motion)
    else:
        if isinstance(joint_map, Mapping):
            chosen = JointMap("given", "given joint map", check_joints(joint_map, "given joint map"))
        else:
            chosen = load_joint_map(joint_map)
        joints = _fit(chosen, motion)
    joint_of = {k: j for j, k in joints.items()}
    if up is None:
        up, up_note = infer_up(motion, joint_of), "inferred: the head is above the feet along it"
    elif up in UP_AXES:
        up_note = "given"
    else:
        raise BvhError(f"up axis '{up}' is not one of {', '.join(UP_AXES)}")
    if unit is None:
        name, length = infer_unit(motion, joint_of)
        scale, unit_note = UNITS[name], f"inferred: {length * UNITS[name]:.2f} m from ankle to head"
    elif isinstance(unit, str):
        if unit not in UNITS:
            raise BvhError(f"length unit '{unit}' is not one of {', '.join(UNITS)}")
        scale, unit_note = UNITS[unit], "given"
    elif math.isfinite(unit) and unit > 0.0:
        scale, unit_note = float(unit), "given"
    else:
        raise BvhError(f"scale must be a positive number of metres per file unit, got {unit}")
    return BvhReading(motion, chosen, joints, detected, up, scale, up_note, unit_note)


def bvh_to_keypoints(motion: BvhMotion, joint_map: str | Path | Mapping[str, str] = "auto", up: str | None = None,
                     unit: str | float | None = None) -> KeypointMotion:
    """Keypoints of a BVH motion read as :func:`bvh_reading` says."""
    return bvh_reading(motion, joint_map, up, unit).keypoints()


def keypoints_from_bvh(path: str | Path, joint_map: str | Path | Mapping[str, str] = "auto", up: str | None = None,
                       unit: str | float | None = None) -> KeypointMotion:
    """:func:`read_bvh` then :func:`bvh_to_keypoints`."""
    return bvh_to_keypoints(read_bvh(path), joint_map, up, unit)
