"""An MJCF robot as a standard URDF (floating base), for the robots that ship only as MJCF.

Read with MuJoCo's own parser, so everything the MJCF resolves (default classes,
``axisangle``, ``fromto``, meshes) comes out as MuJoCo understands it:

- one link per body, with the body's inertial (mass, centre of mass, full inertia
  tensor in the link frame);
- one joint per body: its hinge (revolute, axis and range) or slide (prismatic), or a
  fixed joint for a body without one; the root body's joints are dropped, since mimic
  gives every character a floating base;
- effort limits from the actuator driving each joint (``gear`` times the control
  range, or the force range), the force an MJCF motor can apply;
- geometry: geoms that collide become ``<collision>``, the others (``contype`` and
  ``conaffinity`` 0) ``<visual>``; boxes, spheres and cylinders stay primitives,
  capsules become a cylinder capped by two spheres (standard URDF has no capsule;
  mimic's backends merge them back), meshes stay the MJCF's mesh files.

MJCF has no velocity limits and no passive joint stiffness in URDF terms; the limits
get ``VELOCITY_LIMIT`` and joint springs/damping are left out (mimic's PD law drives
every joint).
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

# rad/s (m/s) on every joint: the MJCF has none, URDF requires one; mimic's humanoid uses the same.
VELOCITY_LIMIT = 100.0


class ConversionError(ValueError):
    """The MJCF has something URDF cannot express; the message names the file and element."""


def _fmt(values: np.ndarray | list[float]) -> str:
    # round-off of the mesh frame arithmetic (1e-16) written as 0
    return " ".join(f"{float(v) if abs(v) > 1e-12 else 0.0:.9g}" for v in values)


def _rpy(quat_wxyz: np.ndarray) -> np.ndarray:
    w, x, y, z = quat_wxyz
    with warnings.catch_warnings():  # at pitch +-90 degrees scipy warns, and still returns angles of the same rotation
        warnings.simplefilter("ignore", UserWarning)
        # URDF's rpy are fixed-axis x, y, z rotations: scipy's extrinsic "xyz"
        return Rotation.from_quat([x, y, z, w]).as_euler("xyz")


def _origin(parent: ET.Element, pos: np.ndarray, quat_wxyz: np.ndarray) -> None:
    ET.SubElement(parent, "origin", xyz=_fmt(pos), rpy=_fmt(_rpy(quat_wxyz)))


def _mat(quat_wxyz: np.ndarray) -> np.ndarray:
    out = np.zeros(9)
    mujoco.mju_quat2Mat(out, np.asarray(quat_wxyz, dtype=float))
    return out.reshape(3, 3)


def _mesh_frame(model: mujoco.MjModel, g: int) -> tuple[np.ndarray, np.ndarray]:
    """The frame a mesh geom was written in: MuJoCo recentres each mesh on its centroid and
    principal axes (``mesh_pos``/``mesh_quat``) and moves the compiled geom frame by that much,
    while the URDF must place the mesh file's own coordinates."""
    mesh = int(model.geom_dataid[g])
    inverse = np.zeros(4)
    mujoco.mju_negQuat(inverse, model.mesh_quat[mesh])
    quat = np.zeros(4)
    mujoco.mju_mulQuat(quat, model.geom_quat[g], inverse)
    pos = model.geom_pos[g] - _mat(quat) @ model.mesh_pos[mesh]
    return pos, quat


def _geometry(model: mujoco.MjModel, spec: mujoco.MjSpec, g: int, mesh_dir: str, source: Path
              ) -> list[tuple[np.ndarray, np.ndarray, ET.Element]]:
    """URDF ``<geometry>`` elements with their origins for geom ``g`` (a capsule gives three)."""
    kind, size = int(model.geom_type[g]), model.geom_size[g]
    pos, quat = model.geom_pos[g].copy(), model.geom_quat[g].copy()
    geometry = ET.Element("geometry")
    if kind == mujoco.mjtGeom.mjGEOM_BOX:
        ET.SubElement(geometry, "box", size=_fmt(2 * size))
    elif kind == mujoco.mjtGeom.mjGEOM_SPHERE:
        ET.SubElement(geometry, "sphere", radius=f"{size[0]:.9g}")
    elif kind == mujoco.mjtGeom.mjGEOM_CYLINDER:
        ET.SubElement(geometry, "cylinder", radius=f"{size[0]:.9g}", length=f"{2 * size[1]:.9g}")
    elif kind == mujoco.mjtGeom.mjGEOM_CAPSULE:
        ET.SubElement(geometry, "cylinder", radius=f"{size[0]:.9g}", length=f"{2 * size[1]:.9g}")
        axis = _mat(quat)[:, 2]
        out = [(pos, quat, geometry)]
        for end in (1.0, -1.0):
            cap = ET.Element("geometry")
            ET.SubElement(cap, "sphere", radius=f"{size[0]:.9g}")
            out.append((pos + end * size[1] * axis, quat, cap))
        return out
    elif kind == mujoco.mjtGeom.mjGEOM_MESH:
        mesh = spec.meshes[int(model.geom_dataid[g])]
        pos, quat = _mesh_frame(model, g)
        ET.SubElement(geometry, "mesh", filename=f"{mesh_dir}{Path(mesh.file).name}", scale=_fmt(mesh.scale))
    else:
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) or f"#{g}"
        raise ConversionError(f"{source}: geom '{name}' of type {mujoco.mjtGeom(kind).name} has no URDF equivalent")
    return [(pos, quat, geometry)]


def _effort(model: mujoco.MjModel, joint: int, name: str, source: Path) -> float:
    """The largest force the MJCF's actuators can apply at a joint."""
    efforts = []
    for a in range(model.nu):
        if model.actuator_trntype[a] != mujoco.mjtTrn.mjTRN_JOINT or model.actuator_trnid[a, 0] != joint:
            continue
        if model.actuator_forcelimited[a]:
            efforts.append(np.abs(model.actuator_forcerange[a]).max())
        elif model.actuator_ctrllimited[a]:
            efforts.append(abs(model.actuator_gear[a, 0]) * np.abs(model.actuator_ctrlrange[a]).max())
    if model.jnt_actfrclimited[joint]:
        efforts.append(np.abs(model.jnt_actfrcrange[joint]).max())
    if not efforts:
        raise ConversionError(f"{source}: joint '{name}' has no actuator with a force or control range, "
                              "so no effort limit for the URDF")
    return float(max(efforts))


def _link(model: mujoco.MjModel, spec: mujoco.MjSpec, b: int, mesh_dir: str, source: Path) -> ET.Element:
    link = ET.Element("link", name=model.body(b).name)
    inertial = ET.SubElement(link, "inertial")
    # the principal inertia turned into the link frame: no rpy on the inertial, which some parsers ignore
    rotation = _mat(model.body_iquat[b])
    tensor = rotation @ np.diag(model.body_inertia[b]) @ rotation.T
    _origin(inertial, model.body_ipos[b], np.array([1.0, 0.0, 0.0, 0.0]))
    ET.SubElement(inertial, "mass", value=f"{model.body_mass[b]:.9g}")
    ET.SubElement(inertial, "inertia", ixx=f"{tensor[0, 0]:.9g}", ixy=f"{tensor[0, 1]:.9g}",
                  ixz=f"{tensor[0, 2]:.9g}", iyy=f"{tensor[1, 1]:.9g}", iyz=f"{tensor[1, 2]:.9g}",
                  izz=f"{tensor[2, 2]:.9g}")
    for g in np.flatnonzero(model.geom_bodyid == b):
        collides = model.geom_contype[g] != 0 or model.geom_conaffinity[g] != 0
        for pos, quat, geometry in _geometry(model, spec, int(g), mesh_dir, source):
            element = ET.SubElement(link, "collision" if collides else "visual")
            _origin(element, pos, quat)
            element.append(geometry)
    return link


def _joint(model: mujoco.MjModel, b: int, source: Path) -> ET.Element:
    body = model.body(b).name
    parent = model.body(int(model.body_parentid[b])).name
    count, first = int(model.body_jntnum[b]), int(model.body_jntadr[b])
    if count > 1:
        raise ConversionError(f"{source}: body '{body}' has {count} joints; URDF allows one per link")
    if count == 0:
        joint = ET.Element("joint", name=f"{parent}_to_{body}", type="fixed")
    else:
        name = model.joint(first).name
        kind = int(model.jnt_type[first])
        if kind not in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE):
            raise ConversionError(f"{source}: joint '{name}' is a {mujoco.mjtJoint(kind).name} joint; "
                                  "only hinge and slide joints have URDF equivalents")
        if np.abs(model.jnt_pos[first]).max() > 1e-9:
            raise ConversionError(f"{source}: joint '{name}' sits at {model.jnt_pos[first].tolist()} in body "
                                  f"'{body}'; a URDF joint sits at its child link's origin")
        limited = bool(model.jnt_limited[first])
        urdf_kind = ("revolute" if limited else "continuous") if kind == mujoco.mjtJoint.mjJNT_HINGE else "prismatic"
        joint = ET.Element("joint", name=name, type=urdf_kind)
    ET.SubElement(joint, "parent", link=parent)
    ET.SubElement(joint, "child", link=body)
    _origin(joint, model.body_pos[b], model.body_quat[b])
    if count:
        ET.SubElement(joint, "axis", xyz=_fmt(model.jnt_axis[first]))
        limit = {"effort": f"{_effort(model, first, name, source):.9g}", "velocity": f"{VELOCITY_LIMIT:.9g}"}
        if limited:
            limit.update(lower=f"{model.jnt_range[first, 0]:.9g}", upper=f"{model.jnt_range[first, 1]:.9g}")
        ET.SubElement(joint, "limit", **limit)
    return joint


def mjcf_to_urdf(mjcf: Path, mesh_dir: str = "meshes/") -> str:
    """The URDF text of an MJCF robot; mesh files are referenced as ``<mesh_dir><file name>``
    (relative to the URDF, as URDF readers resolve them)."""
    mjcf = Path(mjcf)
    spec = mujoco.MjSpec.from_file(str(mjcf))
    spec.compiler.fusestatic = False  # every body a link, as written
    model = spec.compile()
    roots = [b for b in range(1, model.nbody) if model.body_parentid[b] == 0]
    if len(roots) != 1:
        names = [model.body(b).name for b in roots]
        raise ConversionError(f"{mjcf}: the world holds {len(roots)} bodies {names}; a URDF robot has one root")
    robot = ET.Element("robot", name=spec.modelname or mjcf.stem)
    # MuJoCo reads URDF visuals only when told to, and must keep links joined by fixed joints.
    ET.SubElement(ET.SubElement(robot, "mujoco"), "compiler", discardvisual="false", fusestatic="false")
    for b in range(1, model.nbody):
        robot.append(_link(model, spec, b, mesh_dir, mjcf))
        if b != roots[0]:
            robot.append(_joint(model, b, mjcf))
    ET.indent(robot)
    return f'<?xml version="1.0"?>\n<!-- Converted by mimic_retarget.mjcf_urdf from {mjcf.name} -->\n' \
        + ET.tostring(robot, encoding="unicode") + "\n"
