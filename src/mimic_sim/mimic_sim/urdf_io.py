"""URDF files read and written with urdfdom-py (``urdf_parser_py``), the ROS URDF parser.

urdfdom-py models standard URDF: links (inertial, visuals and collisions with box,
cylinder, sphere and mesh geometry), joints of the standard types, materials,
transmissions and ``<gazebo>`` blocks (kept as raw XML).  Two things around it are
mimic's (docs/architecture.md, "URDF handling"):

* reading: elements and attributes urdfdom-py does not model are extensions in the
  files mimic reads (MuJoCo's ``<mujoco>``, ``<ros2_control>``, G1's ``dont_collapse``
  attribute on fixed joints); urdfdom-py skips them and notes each on stderr, a note
  :func:`read_urdf` leaves out while passing urdfdom-py's other complaints on;
* writing: urdfdom-py has no element for MuJoCo's ``<mujoco><compiler/></mujoco>``
  options, so :func:`urdf_text` adds it to the tree urdfdom-py writes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from lxml import etree
from urdf_parser_py import urdf
from urdf_parser_py.xml_reflection import core

# urdfdom-py reports through a module-wide hook: one parse at a time swaps it.
_HOOK = threading.Lock()


def rpy_matrix(rpy: Iterable[float]) -> np.ndarray:
    """The rotation matrix of a URDF ``rpy`` (fixed-axis roll, pitch, yaw: Rz(yaw) Ry(pitch) Rx(roll))."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("xyz", [float(a) for a in rpy]).as_matrix()


def read_urdf(path: Path) -> urdf.Robot:
    """The URDF at ``path`` parsed by urdfdom-py (its ``ParseError`` or ``lxml`` error when it
    is no URDF urdfdom-py accepts)."""
    text = Path(path).read_bytes()
    with _HOOK:
        previous = core.on_error

        def report(message: str) -> None:
            if not message.startswith("Unknown "):  # "Unknown tag/attribute": an extension, see above
                previous(message)

        core.on_error = report
        try:
            return urdf.URDF.from_xml_string(text)
        finally:
            core.on_error = previous


def number(value: float) -> float:
    """``value`` to the 9 significant digits mimic's URDF numbers have (urdfdom-py writes
    every digit of a float): the written models keep the values they had when written with
    ElementTree, and PyBullet's PD-held stance already changes with the last bits of an
    inertia."""
    return float(f"{float(value):.9g}")


def numbers(values: Iterable[float]) -> list[float]:
    """:func:`number` of each value, round-off below 1e-12 (of frame arithmetic) as 0."""
    return [number(v) if abs(v) > 1e-12 else 0.0 for v in values]


def urdf_text(robot: urdf.Robot, comment: str, mujoco_compiler: dict[str, str]) -> str:
    """The URDF file of ``robot``: an XML declaration, ``comment``, then the robot with
    MuJoCo's ``<compiler>`` options ``mujoco_compiler`` as its first element."""
    root = robot.to_xml()
    extension = etree.Element("mujoco")
    etree.SubElement(extension, "compiler", mujoco_compiler)
    root.insert(0, extension)
    return f'<?xml version="1.0"?>\n<!-- {comment} -->\n' + etree.tostring(root, pretty_print=True,
                                                                            encoding="unicode")
