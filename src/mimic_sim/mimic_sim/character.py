"""Characters: a URDF/MJCF model plus a YAML config (gains, limits, end-effectors).

Adding a robot is adding files under ``config/characters/``, not code.  The model
is read with MuJoCo's parser (URDF and MJCF alike); every list the rest of mimic
uses (joints, bodies, gains) is by name, in the order given here.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
import yaml

from mimic_sim.paths import find_config, robots_dir


class CharacterError(ValueError):
    """A character config or model is inconsistent; the message names the file and field."""


@dataclass(frozen=True)
class JointInfo:
    name: str
    kind: str  # "revolute" or "prismatic"
    axis: np.ndarray  # in the child body frame
    lower: float
    upper: float


@dataclass
class Character:
    """A simulated character: its model file, joints, bodies and control parameters.

    ``joint_names`` are the actuated one-degree-of-freedom joints in model tree
    order; ``kp``, ``kd``, ``torque_limit``, ``joint_lower`` and ``joint_upper`` are
    aligned with them.  Generalized coordinates everywhere in mimic are
    ``qpos = [root position (3), root quaternion w,x,y,z (4), joint angles]`` and
    ``qvel = [root linear velocity (3, world), root angular velocity (3, world),
    joint rates]``.
    """

    name: str
    config_path: Path
    model_path: Path
    root_body: str
    joints: list[JointInfo]
    kp: np.ndarray
    kd: np.ndarray
    torque_limit: np.ndarray
    armature: np.ndarray  # rotor inertia added to each joint's inertia, kg m^2 (0 where not configured)
    tracked_bodies: list[str]
    tracked_parents: np.ndarray  # index in tracked_bodies of each body's nearest tracked ancestor, -1 for the root
    pose_weights: np.ndarray  # per tracked body, summing to 1: its share of the reward's pose and velocity errors
    end_effectors: list[str]
    ground_contact_allowed: list[str]
    spherical_joints: dict[str, str]
    ground_friction: float
    physics_hz: float | None  # the physics rate its gains need (None: the backend's default)
    body_masses: dict[str, float]  # every body of the model, kg
    total_mass: float
    config: dict  # the config as read (model file made absolute): a checkpoint carries it to rebuild the character

    @property
    def content(self) -> dict:
        """The character as a task or a clip made for it records it: its config's content and its name."""
        return {**self.config, "name": self.name}

    @property
    def joint_names(self) -> list[str]:
        return [j.name for j in self.joints]

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def joint_lower(self) -> np.ndarray:
        return np.array([j.lower for j in self.joints])

    @property
    def joint_upper(self) -> np.ndarray:
        return np.array([j.upper for j in self.joints])

    def body_index(self, names: list[str]) -> np.ndarray:
        return np.array([self.tracked_bodies.index(n) for n in names], dtype=int)

    def fall_mask(self, also_allowed: Sequence[str] = ()) -> np.ndarray:
        """Per tracked body, whether its touching the ground is a fall: every body but the
        character's ground_contact_allowed and ``also_allowed`` (a task's, e.g. a cartwheel's hands)."""
        unknown = [b for b in also_allowed if b not in self.tracked_bodies]
        if unknown:
            raise ValueError(f"ground_contact_allowed: character '{self.name}' has no tracked body '{unknown[0]}' "
                             f"(its bodies: {', '.join(self.tracked_bodies)})")
        allowed = {*self.ground_contact_allowed, *also_allowed}
        return np.array([b not in allowed for b in self.tracked_bodies])

    def state_from_readings(self, names: list[str], positions: np.ndarray, velocities: np.ndarray,
                            root_position: np.ndarray, root_quat_wxyz: np.ndarray, root_linear: np.ndarray,
                            root_angular: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(qpos, qvel)`` from joint readings by name (any order, extra joints ignored) and the
        base state (velocities in the world); a missing joint or a non-finite value raises
        ``ValueError`` naming it."""
        index = {name: i for i, name in enumerate(names)}
        missing = [n for n in self.joint_names if n not in index]
        if missing:
            raise ValueError(f"joint state lacks joints {missing}")
        positions, velocities = np.asarray(positions, dtype=float), np.asarray(velocities, dtype=float)
        if len(positions) != len(names) or len(velocities) != len(names):
            raise ValueError(f"joint state has {len(names)} names, {len(positions)} positions and "
                             f"{len(velocities)} velocities")
        order = np.array([index[n] for n in self.joint_names], dtype=int)
        quat = np.asarray(root_quat_wxyz, dtype=float)
        norm = np.linalg.norm(quat)
        if not np.isfinite(norm) or norm < 1e-6:
            raise ValueError(f"base orientation {quat.tolist()} is not a rotation")
        qpos = np.concatenate([np.asarray(root_position, dtype=float), quat / norm, positions[order]])
        qvel = np.concatenate([np.asarray(root_linear, dtype=float), np.asarray(root_angular, dtype=float),
                               velocities[order]])
        for what, values in (("position", qpos[7:]), ("velocity", qvel[6:])):
            bad = [self.joint_names[i] for i in np.flatnonzero(~np.isfinite(values))]
            if bad:
                raise ValueError(f"joint {what} of {bad} is not finite")
        if not (np.isfinite(qpos[:3]).all() and np.isfinite(qvel[:6]).all()):
            raise ValueError("base pose or twist is not finite")
        return qpos, qvel


def _require(cfg: dict, key: str, source: Path) -> object:
    if key not in cfg:
        raise CharacterError(f"{source}: missing field '{key}'")
    return cfg[key]


def _model_path(cfg: dict, source: Path, spherical: dict[str, str], efforts: dict[str, float]) -> Path:
    model = _require(cfg, "model", source)
    if not isinstance(model, dict):
        raise CharacterError(f"{source}: field 'model' must be a mapping with 'file', 'robot_asset' or "
                             "'builder'")
    if "file" in model:
        path = Path(model["file"])
        if not path.is_absolute():
            path = (source.parent / path).resolve()
        if not path.is_file():
            raise CharacterError(f"{source}: field 'model.file': no such file {path}")
        return path
    if "robot_asset" in model:
        path = robots_dir() / str(model["robot_asset"])
        if not path.is_file():
            raise CharacterError(f"{source}: field 'model.robot_asset': no file {path}; robot files are fetched at "
                                 "set-up: run `python -m mimic_retarget.robot_assets` (scripts/setup.sh does)")
        return path
    if model.get("builder") == "deepmimic_humanoid":
        from mimic_sim.humanoid_urdf import humanoid_urdf_path

        return humanoid_urdf_path(spherical, efforts)
    raise CharacterError(f"{source}: field 'model' must name a 'file', a 'robot_asset' or builder "
                         "'deepmimic_humanoid'")


def model_spec(path: Path) -> mujoco.MjSpec:
    """A character's model file read by MuJoCo, every link kept as a body.

    URDFs name mesh files relative to the URDF, as the URDF standard and every other
    reader do; a MuJoCo ``meshdir`` some vendor files carry (Unitree's H1:
    ``meshdir="meshes"`` with ``meshes/...`` file names) would be prepended again, so it
    is ignored.  Links joined by fixed joints stay bodies (MuJoCo's URDF default fuses
    them into their parents): configs track hands and feet that are such links.
    """
    spec = mujoco.MjSpec.from_file(str(path))
    if Path(path).suffix.lower() == ".urdf":
        spec.meshdir = ""
    spec.compiler.fusestatic = False
    return spec


def _gains_for(joint: str, pd_cfg: dict, source: Path) -> dict:
    matches = [pattern for pattern in pd_cfg if fnmatch.fnmatchcase(joint, pattern)]
    if len(matches) != 1:
        how = "no pattern" if not matches else f"several patterns {matches}"
        raise CharacterError(f"{source}: field 'pd': joint '{joint}' matches {how}")
    entry = pd_cfg[matches[0]]
    for key in ("kp", "kd", "torque_limit"):
        value = entry.get(key) if isinstance(entry, dict) else None
        if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
            raise CharacterError(f"{source}: field 'pd.{matches[0]}.{key}' must be a non-negative number")
    return entry


def _armature(joints: list[str], armature_cfg: object, source: Path) -> np.ndarray:
    """Per-joint rotor inertia from ``armature`` (joint-name pattern -> kg m^2); unmatched joints get 0."""
    if armature_cfg is None:
        return np.zeros(len(joints))
    if not isinstance(armature_cfg, dict):
        raise CharacterError(f"{source}: field 'armature' must map joint-name patterns to inertias in kg m^2")
    for pattern, value in armature_cfg.items():
        if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
            raise CharacterError(f"{source}: field 'armature.{pattern}' must be a non-negative number, got {value!r}")
    values = []
    for joint in joints:
        matches = [pattern for pattern in armature_cfg if fnmatch.fnmatchcase(joint, pattern)]
        if len(matches) > 1:
            raise CharacterError(f"{source}: field 'armature': joint '{joint}' matches several patterns {matches}")
        values.append(float(armature_cfg[matches[0]]) if matches else 0.0)
    return np.array(values)


def _actuated_names_from_config(cfg: dict, source: Path) -> list[str]:
    """Joint names the builder will create (needed before the model exists)."""
    from mimic_sim.deepmimic_format import DEEPMIMIC_JOINTS

    names: list[str] = []
    for joint, size in DEEPMIMIC_JOINTS:
        if size == 4:
            names += [f"{joint}_{a}" for a in cfg["spherical_joints"][joint]]
        else:
            names.append(joint)
    return names


def _pose_weights(weights: dict | None, tracked: list[str], path: Path) -> np.ndarray:
    """The ``pose_weights`` field (tracked body -> weight; unlisted bodies weigh 0, no field: all
    weigh the same) as an array over the tracked bodies, normalized to sum to 1."""
    if weights is None:
        return np.full(len(tracked), 1.0 / len(tracked))
    if not isinstance(weights, dict):
        raise CharacterError(f"{path}: field 'pose_weights' must map tracked body names to weights")
    out = np.zeros(len(tracked))
    for body, weight in weights.items():
        if body not in tracked:
            raise CharacterError(f"{path}: field 'pose_weights': '{body}' is not in tracked_bodies")
        if not isinstance(weight, int | float) or not np.isfinite(weight) or weight < 0:
            raise CharacterError(f"{path}: field 'pose_weights.{body}': {weight!r} is not a finite weight >= 0")
        out[tracked.index(body)] = float(weight)
    if out.sum() <= 0:
        raise CharacterError(f"{path}: field 'pose_weights': every weight is 0")
    return out / out.sum()


# The character config's schema: each key's allowed type, or a nested schema (a dict of
# known keys) or "patterns" (any key: joint-name glob patterns, body names, keypoints).
_GAINS = {"kp": (int, float), "kd": (int, float), "torque_limit": (int, float)}
SCHEMA: dict = {
    "name": str,
    "model": {"file": str, "robot_asset": str, "builder": str},
    "root_body": str,
    "spherical_joints": ("patterns", str),
    "pd": ("patterns", _GAINS),
    "armature": ("patterns", (int, float)),
    "physics_hz": (int, float),
    "tracked_bodies": list,
    "end_effectors": list,
    "pose_weights": ("patterns", (int, float)),
    "ground_contact_allowed": list,
    "ground_friction": (int, float),
    "retarget": {"keypoints": ("patterns", {"link": str, "offset": list, "position": (int, float),
                                            "orientation": (int, float)}),
                 "scale": (str, int, float)},
}


def validate_config(cfg: object, source: str | Path, schema: dict = SCHEMA, prefix: str = "") -> None:
    """Check a character config against :data:`SCHEMA`: an unknown key is an error naming it and the
    closest valid key, a value of the wrong kind names the field (:class:`CharacterError`)."""
    from mimic_sim.settings import closest

    if not isinstance(cfg, dict):
        raise CharacterError(f"{source}: {'field ' + repr(prefix.rstrip('.')) if prefix else 'top level'} "
                             "must be a mapping")
    for key, value in cfg.items():
        where = f"{prefix}{key}"
        if key not in schema:
            raise CharacterError(f"{source}: unknown field '{where}'{closest(str(key), list(schema))}")
        _validate_value(value, schema[key], source, where)


def _validate_value(value: object, rule: object, source: str | Path, where: str) -> None:
    if isinstance(rule, dict):
        validate_config(value, source, rule, f"{where}.")
    elif isinstance(rule, tuple) and rule and rule[0] == "patterns":
        if not isinstance(value, dict):
            raise CharacterError(f"{source}: field '{where}' must be a mapping")
        for key, entry in value.items():
            _validate_value(entry, rule[1], source, f"{where}.{key}")
    elif not isinstance(value, rule) or isinstance(value, bool):
        names = " or ".join(t.__name__ for t in (rule if isinstance(rule, tuple) else (rule,)))
        raise CharacterError(f"{source}: field '{where}' must be {names.replace('int or float', 'a number')}, "
                             f"got {value!r}")


def load_character(name_or_path: str | Path) -> Character:
    """Load ``config/characters/<name>.yaml`` (or a YAML path) and its model."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = find_config(f"characters/{name_or_path}.yaml")
    if not path.is_file():
        raise CharacterError(f"no character config at {path}")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CharacterError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(cfg, dict):
        raise CharacterError(f"{path}: top level must be a mapping")
    model = cfg.get("model")
    if isinstance(model, dict) and isinstance(model.get("file"), str) and not Path(model["file"]).is_absolute():
        # absolute, so the config means the same file wherever it is carried (checkpoints)
        cfg = {**cfg, "model": {**model, "file": str((path.parent / model["file"]).resolve())}}
    return character_from_config(cfg, path)


def character_from_config(cfg: dict, path: Path) -> Character:
    """A character from its config's content (``path`` names it in errors and is its default name)."""
    cfg = copy.deepcopy(cfg)
    validate_config(cfg, path)
    spherical = dict(cfg.get("spherical_joints") or {})
    pd_cfg = _require(cfg, "pd", path)
    efforts: dict[str, float] = {}
    if cfg.get("model", {}).get("builder") == "deepmimic_humanoid":
        for joint in _actuated_names_from_config(cfg, path):
            efforts[joint] = float(_gains_for(joint, pd_cfg, path)["torque_limit"])
    model_path = _model_path(cfg, path, spherical, efforts)

    model = model_spec(model_path).compile()
    joints: list[JointInfo] = []
    for j in range(model.njnt):
        jtype = int(model.jnt_type[j])
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j)
        if jtype == int(mujoco.mjtJoint.mjJNT_FREE):
            continue
        if jtype not in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)):
            raise CharacterError(f"{model_path}: joint '{name}' is a ball joint; describe it as three revolute "
                                 "joints so every backend and ROS tool can drive it")
        lower, upper = model.jnt_range[j] if model.jnt_limited[j] else (-np.inf, np.inf)
        kind = "revolute" if jtype == int(mujoco.mjtJoint.mjJNT_HINGE) else "prismatic"
        joints.append(JointInfo(name, kind, model.jnt_axis[j].copy(), float(lower), float(upper)))
    gains = [_gains_for(j.name, pd_cfg, path) for j in joints]

    body_names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b) for b in range(model.nbody)]
    root_body = str(cfg.get("root_body", body_names[1]))
    tracked = list(cfg.get("tracked_bodies") or [b for b in body_names[1:] if not b.endswith("_link")])
    for field in ("tracked_bodies", "end_effectors", "ground_contact_allowed"):
        for b in cfg.get(field) or []:
            if b not in body_names:
                raise CharacterError(f"{path}: field '{field}': model {model_path.name} has no body '{b}'")
    if root_body not in body_names:
        raise CharacterError(f"{path}: field 'root_body': model {model_path.name} has no body '{root_body}'")
    pose_weights = _pose_weights(cfg.get("pose_weights"), tracked, path)
    physics_hz = cfg.get("physics_hz")
    if physics_hz is not None and (not isinstance(physics_hz, int | float) or physics_hz <= 0):
        raise CharacterError(f"{path}: field 'physics_hz' must be a positive rate in Hz, got {physics_hz!r}")
    for motion_joint, order in spherical.items():
        for axis in str(order):
            if f"{motion_joint}_{axis}" not in [j.name for j in joints]:
                raise CharacterError(f"{path}: field 'spherical_joints.{motion_joint}': model has no joint "
                                     f"'{motion_joint}_{axis}'")
    parents = []
    for b in tracked:
        p = int(model.body_parentid[body_names.index(b)])
        while p > 0 and body_names[p] not in tracked:
            p = int(model.body_parentid[p])
        parents.append(tracked.index(body_names[p]) if p > 0 else -1)
    return Character(
        name=str(cfg.get("name", path.stem)),
        config_path=path,
        model_path=model_path,
        root_body=root_body,
        joints=joints,
        kp=np.array([float(g["kp"]) for g in gains]),
        kd=np.array([float(g["kd"]) for g in gains]),
        torque_limit=np.array([float(g["torque_limit"]) for g in gains]),
        armature=_armature([j.name for j in joints], cfg.get("armature"), path),
        tracked_bodies=tracked,
        tracked_parents=np.array(parents, dtype=int),
        pose_weights=pose_weights,
        end_effectors=list(cfg.get("end_effectors") or []),
        ground_contact_allowed=list(cfg.get("ground_contact_allowed") or []),
        spherical_joints={k: str(v) for k, v in spherical.items()},
        ground_friction=float(cfg.get("ground_friction", 0.9)),
        physics_hz=None if physics_hz is None else float(physics_hz),
        body_masses={name: float(model.body_mass[b]) for b, name in enumerate(body_names) if b > 0},
        total_mass=float(model.body_subtreemass[0]),
        config=cfg,
    )
