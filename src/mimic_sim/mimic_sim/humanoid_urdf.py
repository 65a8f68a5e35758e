"""Build the DeepMimic humanoid as a standard URDF, at run time, from ``pybullet_data``.

``pybullet_data/humanoid/humanoid.urdf`` is DeepMimic's character, but not a
standard URDF: Y-up, drawn 4x too large (PyBullet loads it with
``globalScaling=0.25``), spherical joints, capsule shapes, no visuals, stray NUL
bytes.  This module rewrites it so that MuJoCo, PyBullet, Pinocchio, ros2_control
and Gazebo read the same file:

* lengths scaled by 0.25 and every frame turned from Y-up to Z-up (x forward,
  y left, z up; link frames stay parallel to the world at the rest pose);
* each spherical joint becomes a chain of three revolute joints ``<joint>_<axis>``
  (axis order per joint from the character config, chosen so the clips stay away
  from gimbal lock), joined by light links;
* capsules become a cylinder plus two spheres; visuals repeat the collision shapes;
* inertias are those of the solid collision shape with the file's mass (the file's
  placeholder 0.1 kg m^2 inertias are not physical);
* the floating base is the ``root`` link (the file's 0.1 g ``base`` link is dropped).

The source is read with ElementTree: urdfdom-py refuses it (``spherical`` joints and
``<capsule>`` geometry are not URDF).  The result is built and written with urdfdom-py
(:mod:`mimic_sim.urdf_io`), cached under the user's cache folder, keyed by a hash of
the source file and the options, and written atomically.
"""

from __future__ import annotations

import hashlib
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from urdf_parser_py import urdf

from mimic_sim import rotations as rot
from mimic_sim.paths import atomic_write_text, cache_dir
from mimic_sim.urdf_io import number, numbers, rpy_matrix, urdf_text

GENERATOR_VERSION = "5"
SCALE = 0.25
# Y-up to Z-up, as a matrix: (x, y, z)_yup -> (x, -z, y)_zup.
C = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# Links between the three hinges of a spherical joint.  Not vanishingly light: near
# gimbal lock the first and last hinge turn mostly the connector, and a 1e-6 kg m^2
# connector there lets a limit torque spin it up by thousands of rad/s in one step.
CONNECTOR_MASS = 0.01  # kg
CONNECTOR_INERTIA = 1e-4  # kg m^2


@dataclass(frozen=True)
class HingeLimits:
    """Limits of the hinges that replace a spherical joint.

    The middle hinge stops 5 degrees short of gimbal lock (+-90 degrees, where the
    outer two hinges align); the shipped clips reach 80.2 degrees (right shoulder,
    ``dance_a``).  The outer two reach a little past +-pi so that clips crossing +-pi
    (the same shoulder) stay continuous.  Revolute joints keep the source's limits
    widened by ``revolute_margin``: the clips hyperextend the knees by up to 0.23 rad
    past the source's [-3.14, 0], and a reference outside its own model's range could
    not be reproduced.
    """

    outer: float = 3.8
    middle: float = math.radians(85.0)
    revolute_margin: float = 0.25


def source_urdf() -> Path:
    import pybullet_data

    return Path(pybullet_data.getDataPath()) / "humanoid" / "humanoid.urdf"


def _floats(text: str | None, n: int = 3) -> np.ndarray:
    if text is None:
        return np.zeros(n)
    return np.array([float(v) for v in text.split()])


def _rpy_of(m: np.ndarray) -> np.ndarray:
    """URDF rpy (fixed-axis roll, pitch, yaw) of a rotation matrix."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(m).as_euler("xyz")


def _z_to(axis: np.ndarray) -> np.ndarray:
    """A rotation taking +z onto ``axis`` (unit)."""
    z = np.array([0.0, 0.0, 1.0])
    v = np.cross(z, axis)
    s = np.linalg.norm(v)
    if s < 1e-9:
        return np.eye(3) if axis[2] > 0 else np.diag([1.0, -1.0, -1.0])
    return rot.quat_to_mat(rot.rotvec_to_quat(v / s * math.atan2(s, float(np.dot(z, axis)))))


@dataclass
class _Shape:
    kind: str  # sphere | capsule | box
    pos: np.ndarray  # in the (Z-up) link frame
    rot: np.ndarray  # 3x3; the shape's own axis is its local z (capsules)
    size: np.ndarray  # sphere: (r,), capsule: (r, length), box: (sx, sy, sz)


def _convert_shape(collision: ET.Element) -> _Shape:
    origin = collision.find("origin")
    pos = C @ (_floats(origin.get("xyz") if origin is not None else None) * SCALE)
    r_src = rpy_matrix(_floats(origin.get("rpy") if origin is not None else None))
    geom = collision.find("geometry")
    child = next(iter(geom))
    if child.tag == "sphere":
        return _Shape("sphere", pos, np.eye(3), np.array([float(child.get("radius")) * SCALE]))
    if child.tag == "capsule":
        axis = C @ r_src @ np.array([0.0, 0.0, 1.0])
        size = np.array([float(child.get("radius")), float(child.get("length"))]) * SCALE
        return _Shape("capsule", pos, _z_to(axis), size)
    if child.tag == "box":
        m = C @ r_src
        # Axis-aligned after the turn: permute the extents instead of rotating the box.
        if not np.allclose(np.abs(m), np.round(np.abs(m))):
            raise ValueError(f"box in {source_urdf()} is not axis-aligned after the Y-up to Z-up turn")
        size = np.abs(m) @ (_floats(child.get("size")) * SCALE)
        return _Shape("box", pos, np.eye(3), size)
    raise ValueError(f"unsupported geometry '{child.tag}' in {source_urdf()}")


def _inertia(shape: _Shape, mass: float) -> np.ndarray:
    """Principal inertia (in the shape's frame) of a solid shape of uniform density."""
    if shape.kind == "sphere":
        i = 0.4 * mass * shape.size[0] ** 2
        return np.array([i, i, i])
    if shape.kind == "capsule":
        r, h = shape.size
        v_cyl, v_sph = math.pi * r * r * h, 4.0 / 3.0 * math.pi * r**3
        m_cyl, m_sph = mass * v_cyl / (v_cyl + v_sph), mass * v_sph / (v_cyl + v_sph)
        izz = m_cyl * r * r / 2 + m_sph * 0.4 * r * r
        ixx = m_cyl * (h * h / 12 + r * r / 4) + m_sph * (0.4 * r * r + h * h / 4 + 3 * h * r / 8)
        return np.array([ixx, ixx, izz])
    sx, sy, sz = shape.size
    return mass / 12.0 * np.array([sy * sy + sz * sz, sx * sx + sz * sz, sx * sx + sy * sy])


def _pose(xyz: np.ndarray, rpy: np.ndarray) -> urdf.Pose:
    return urdf.Pose(xyz=numbers(xyz), rpy=numbers(rpy))


def _geometries(shape: _Shape) -> list[tuple[urdf.Pose, urdf.Sphere | urdf.Box | urdf.Cylinder]]:
    """(origin, geometry) of the standard-URDF pieces of one shape."""
    rpy = _rpy_of(shape.rot)
    if shape.kind == "sphere":
        return [(_pose(shape.pos, rpy), urdf.Sphere(radius=number(shape.size[0])))]
    if shape.kind == "box":
        return [(_pose(shape.pos, rpy), urdf.Box(size=numbers(shape.size)))]
    r, h = shape.size
    axis = shape.rot @ np.array([0.0, 0.0, 1.0])
    return [
        (_pose(shape.pos, rpy), urdf.Cylinder(radius=number(r), length=number(h))),
        (_pose(shape.pos + axis * h / 2, np.zeros(3)), urdf.Sphere(radius=number(r))),
        (_pose(shape.pos - axis * h / 2, np.zeros(3)), urdf.Sphere(radius=number(r))),
    ]


def _link(name: str, mass: float, com: np.ndarray, inertia: np.ndarray, inertia_rpy: np.ndarray,
          shape: _Shape | None, color: str) -> urdf.Link:
    link = urdf.Link(name=name)
    link.inertial = urdf.Inertial(mass=number(mass), origin=_pose(com, inertia_rpy),
                                  inertia=urdf.Inertia(ixx=number(inertia[0]), iyy=number(inertia[1]),
                                                       izz=number(inertia[2])))
    if shape is not None:
        for origin, geometry in _geometries(shape):
            link.add_aggregate("visual", urdf.Visual(geometry=geometry, origin=origin,
                                                     material=urdf.LinkMaterial(name=color)))
            link.add_aggregate("collision", urdf.Collision(geometry=geometry, origin=origin))
    return link


def _joint(name: str, kind: str, parent: str, child: str, xyz: np.ndarray, axis: np.ndarray | None = None,
           limits: tuple[float, float] | None = None, effort: float = 0.0, velocity: float = 0.0) -> urdf.Joint:
    limit = None if limits is None else urdf.JointLimit(effort=number(effort), velocity=number(velocity),
                                                        lower=number(limits[0]), upper=number(limits[1]))
    return urdf.Joint(name=name, parent=parent, child=child, joint_type=kind, origin=_pose(xyz, np.zeros(3)),
                      axis=None if axis is None else numbers(axis), limit=limit)


def build_humanoid_urdf(
    spherical_axes: dict[str, str],
    effort: dict[str, float],
    velocity_limit: float = 100.0,
    limits: HingeLimits = HingeLimits(),
) -> str:
    """URDF text of the Z-up humanoid.

    ``spherical_axes`` maps each spherical joint to its hinge order (``"yxz"``:
    first about y, nearest the parent); ``effort`` maps model joint names to the
    torque limit written into the URDF.
    """
    src = source_urdf()
    # ElementTree, not urdfdom-py: the file has spherical joints and capsules, which urdfdom-py refuses
    root = ET.fromstring(src.read_bytes().replace(b"\x00", b"").decode())
    links = {link.get("name"): link for link in root.findall("link")}
    out_links: list[urdf.Link] = []
    out_joints: list[urdf.Joint] = []
    colors = {"left": "left", "right": "right"}

    def color_of(name: str) -> str:
        return colors.get(name.split("_")[0], "body")

    def add_link(name: str) -> None:
        link = links[name]
        inertial = link.find("inertial")
        mass = float(inertial.find("mass").get("value"))
        collision = link.find("collision")
        shape = _convert_shape(collision) if collision is not None else None
        if shape is None:
            com = C @ (_floats(inertial.find("origin").get("xyz")) * SCALE)
            out_links.append(_link(name, mass, com, np.full(3, CONNECTOR_INERTIA), np.zeros(3), None, "body"))
            return
        inertia = _inertia(shape, mass)
        out_links.append(_link(name, mass, shape.pos, inertia, _rpy_of(shape.rot), shape, color_of(name)))

    add_link("root")
    for joint in root.findall("joint"):
        name, kind = joint.get("name"), joint.get("type")
        parent, child = joint.find("parent").get("link"), joint.find("child").get("link")
        if parent == "base":  # the dropped placeholder base link
            continue
        xyz = C @ (_floats(joint.find("origin").get("xyz")) * SCALE)
        if kind != "spherical":
            add_link(child)
        if kind == "fixed":
            out_joints.append(_joint(name, "fixed", parent, child, xyz))
        elif kind == "revolute":
            lim = joint.find("limit")
            axis = C @ _floats(joint.find("axis").get("xyz"))
            out_joints.append(_joint(name, "revolute", parent, child, xyz, axis,
                                         (float(lim.get("lower")) - limits.revolute_margin,
                                          float(lim.get("upper")) + limits.revolute_margin),
                                         effort[name], velocity_limit))
        elif kind == "spherical":
            order = spherical_axes.get(name)
            if order is None or sorted(order) != ["x", "y", "z"]:
                raise ValueError(f"spherical joint '{name}' needs a hinge order (a permutation of 'xyz'), "
                                 f"got {order!r}")
            chain = [parent] + [f"{name}_{a}_link" for a in order[:2]] + [child]
            for k, axis_name in enumerate(order):
                hinge = f"{name}_{axis_name}"
                bound = limits.middle if k == 1 else limits.outer
                if k < 2:
                    out_links.append(_link(chain[k + 1], CONNECTOR_MASS, np.zeros(3),
                                               np.full(3, CONNECTOR_INERTIA), np.zeros(3), None, "body"))
                else:  # parents before children, as tools that keep the file's link order expect
                    add_link(child)
                out_joints.append(_joint(hinge, "revolute", chain[k], chain[k + 1], xyz if k == 0 else np.zeros(3),
                                             rot.axis_vector(axis_name), (-bound, bound), effort[hinge],
                                             velocity_limit))
        else:
            raise ValueError(f"unsupported joint type '{kind}' for joint '{name}' in {src}")
    robot = urdf.Robot(name="humanoid")
    for name, rgba in (("body", [0.82, 0.78, 0.70, 1.0]), ("left", [0.35, 0.55, 0.85, 1.0]),
                       ("right", [0.85, 0.45, 0.35, 1.0])):
        robot.add_aggregate("material", urdf.Material(name=name, color=urdf.Color(rgba)))
    for link in out_links:
        robot.add_link(link)
    for joint in out_joints:
        robot.add_joint(joint)
    comment = (f"Generated by mimic_sim.humanoid_urdf (version {GENERATOR_VERSION}) from pybullet_data's\n"
               "     humanoid/humanoid.urdf (DeepMimic's humanoid): Z-up, scaled 0.25, spherical joints as\n"
               "     three revolute joints, capsules as cylinder + spheres.  Do not edit; regenerate.")
    # MuJoCo keeps fixed-joint links (the wrists, end-effectors) as bodies.
    return urdf_text(robot, comment, {"fusestatic": "false", "discardvisual": "true"})


def humanoid_urdf_path(spherical_axes: dict[str, str], effort: dict[str, float]) -> Path:
    """Path of the generated humanoid URDF, building it into the cache if needed."""
    key = hashlib.sha256()
    key.update(GENERATOR_VERSION.encode())
    key.update(source_urdf().read_bytes())
    key.update(repr(sorted(spherical_axes.items())).encode())
    key.update(repr(sorted(effort.items())).encode())
    path = cache_dir() / "models" / f"humanoid-{key.hexdigest()[:16]}.urdf"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, build_humanoid_urdf(spherical_axes, effort))
    return path

