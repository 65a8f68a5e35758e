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
every joint).  The URDF is built and written with urdfdom-py (:mod:`mimic_sim.urdf_io`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation
from urdf_parser_py import urdf

from mimic_sim.urdf_io import number, numbers, urdf_text

# rad/s (m/s) on every joint: the MJCF has none, URDF requires one; mimic's humanoid uses the same.
VELOCITY_LIMIT = 100.0


class ConversionError(ValueError):
    """The MJCF has something URDF cannot express; the message names the file and element."""


def _rpy(quat_wxyz: np.ndarray) -> np.ndarray:
    w, x, y, z = quat_wxyz
    with warnings.catch_warnings():  # at pitch +-90 degrees scipy warns, and still returns angles of the same rotation
        warnings.simplefilter("ignore", UserWarning)
        # URDF's rpy are fixed-axis x, y, z rotations: scipy's extrinsic "xyz"
        return Rotation.from_quat([x, y, z, w]).as_euler("xyz")


def _origin(pos: np.ndarray, quat_wxyz: np.ndarray) -> urdf.Pose:
    return urdf.Pose(xyz=numbers(pos), rpy=numbers(_rpy(quat_wxyz)))


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
              ) -> list[tuple[np.ndarray, np.ndarray, urdf.Box | urdf.Sphere | urdf.Cylinder | urdf.Mesh]]:
    """URDF geometries with their origins for geom ``g`` (a capsule gives three)."""
    kind, size = int(model.geom_type[g]), model.geom_size[g]
    pos, quat = model.geom_pos[g].copy(), model.geom_quat[g].copy()
    if kind == mujoco.mjtGeom.mjGEOM_BOX:
        geometry = urdf.Box(size=numbers(2 * size))
    elif kind == mujoco.mjtGeom.mjGEOM_SPHERE:
        geometry = urdf.Sphere(radius=number(size[0]))
    elif kind == mujoco.mjtGeom.mjGEOM_CYLINDER:
        geometry = urdf.Cylinder(radius=number(size[0]), length=number(2 * size[1]))
    elif kind == mujoco.mjtGeom.mjGEOM_CAPSULE:
        axis = _mat(quat)[:, 2]
        out = [(pos, quat, urdf.Cylinder(radius=number(size[0]), length=number(2 * size[1])))]
        for end in (1.0, -1.0):
            out.append((pos + end * size[1] * axis, quat, urdf.Sphere(radius=number(size[0]))))
        return out
    elif kind == mujoco.mjtGeom.mjGEOM_MESH:
        mesh = spec.meshes[int(model.geom_dataid[g])]
        pos, quat = _mesh_frame(model, g)
        geometry = urdf.Mesh(filename=f"{mesh_dir}{Path(mesh.file).name}", scale=numbers(mesh.scale))
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


def _link(model: mujoco.MjModel, spec: mujoco.MjSpec, b: int, mesh_dir: str, source: Path) -> urdf.Link:
    link = urdf.Link(name=model.body(b).name)
    # the principal inertia turned into the link frame: no rpy on the inertial, which some parsers ignore
    rotation = _mat(model.body_iquat[b])
    tensor = rotation @ np.diag(model.body_inertia[b]) @ rotation.T
    inertia = urdf.Inertia(ixx=number(tensor[0, 0]), ixy=number(tensor[0, 1]), ixz=number(tensor[0, 2]),
                           iyy=number(tensor[1, 1]), iyz=number(tensor[1, 2]), izz=number(tensor[2, 2]))
    link.inertial = urdf.Inertial(mass=number(model.body_mass[b]), inertia=inertia,
                                  origin=_origin(model.body_ipos[b], np.array([1.0, 0.0, 0.0, 0.0])))
    for g in np.flatnonzero(model.geom_bodyid == b):
        collides = model.geom_contype[g] != 0 or model.geom_conaffinity[g] != 0
        for pos, quat, geometry in _geometry(model, spec, int(g), mesh_dir, source):
            if collides:
                link.add_aggregate("collision", urdf.Collision(geometry=geometry, origin=_origin(pos, quat)))
            else:
                link.add_aggregate("visual", urdf.Visual(geometry=geometry, origin=_origin(pos, quat)))
    return link


def _joint(model: mujoco.MjModel, b: int, source: Path) -> urdf.Joint:
    body = model.body(b).name
    parent = model.body(int(model.body_parentid[b])).name
    count, first = int(model.body_jntnum[b]), int(model.body_jntadr[b])
    if count > 1:
        raise ConversionError(f"{source}: body '{body}' has {count} joints; URDF allows one per link")
    origin = _origin(model.body_pos[b], model.body_quat[b])
    if count == 0:
        return urdf.Joint(name=f"{parent}_to_{body}", parent=parent, child=body, joint_type="fixed", origin=origin)
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
    # unlimited: urdfdom-py writes lower and upper as 0, URDF's defaults for absent ones
    lower, upper = numbers(model.jnt_range[first]) if limited else (None, None)
    limit = urdf.JointLimit(effort=number(_effort(model, first, name, source)), velocity=number(VELOCITY_LIMIT),
                            lower=lower, upper=upper)
    return urdf.Joint(name=name, parent=parent, child=body, joint_type=urdf_kind, axis=numbers(model.jnt_axis[first]),
                      origin=origin, limit=limit)


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
    robot = urdf.Robot(name=spec.modelname or mjcf.stem)
    for b in range(1, model.nbody):
        robot.add_link(_link(model, spec, b, mesh_dir, mjcf))
        if b != roots[0]:
            robot.add_joint(_joint(model, b, mjcf))
    # MuJoCo reads URDF visuals only when told to, and must keep links joined by fixed joints.
    return urdf_text(robot, f"Converted by mimic_retarget.mjcf_urdf from {mjcf.name}",
                     {"discardvisual": "false", "fusestatic": "false"})
