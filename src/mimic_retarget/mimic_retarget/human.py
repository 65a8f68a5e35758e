"""The DeepMimic humanoid's clips as human keypoints, and as BVH files.

A clip is played on the humanoid character (:class:`mimic_sim.reference.ReferenceMotion`,
the same reference training tracks, loop closure included) and its tracked bodies'
frames come from forward kinematics (Pinocchio).  Body frame origins are the joint
centres, so tracked body ``root`` is keypoint ``pelvis`` and every other tracked body
(chest, neck, hips, knees, ankles, shoulders, elbows, wrists) is the keypoint of the
same name, with that body's frame as its rotation.

Head and toes are not joints of the humanoid; they are points of its collision
geometry, read from the generated URDF (:mod:`mimic_sim.humanoid_urdf`):

* ``head``: the centre of the neck link's sphere (the skull), 0.175 m above the neck
  joint at rest; its rotation is the neck body's frame.
* ``left_toe``/``right_toe``: the middle of the front bottom edge of the ankle link's
  box (the foot), 0.1335 m ahead of and 0.05 m below the ankle at rest, i.e. the tip of
  the sole; its rotation is the foot's frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from urdf_parser_py import urdf

from mimic_retarget.bvh import CM, Y_UP, BvhJoint, BvhMotion, motion_from_rotations
from mimic_retarget.keypoints import HUMAN_KEYPOINTS, KeypointMotion
from mimic_sim.character import Character, load_character
from mimic_sim.kinematics import PinocchioModel
from mimic_sim.motion import Motion
from mimic_sim.motion_file import load_clip
from mimic_sim.reference import ReferenceMotion
from mimic_sim.urdf_io import read_urdf

CHARACTER = "humanoid"
ROOT_KEYPOINT = "pelvis"  # the tracked body 'root'; the other tracked bodies carry keypoint names
# Derived points: keypoint -> (the link it is fixed to, the kind of that link's collision shape it comes from).
DERIVED = {"head": ("neck", urdf.Sphere), "left_toe": ("left_ankle", urdf.Box),
           "right_toe": ("right_ankle", urdf.Box)}


def _shape(robot: urdf.Robot, path: Path, link: str, kind: type[urdf.Sphere | urdf.Box]
           ) -> tuple[np.ndarray, urdf.Sphere | urdf.Box]:
    """Origin (in the link frame) and geometry of the link's collision shape of ``kind``."""
    for collision in robot.link_map[link].collisions if link in robot.link_map else []:
        if not isinstance(collision.geometry, kind):
            continue
        origin = collision.origin or urdf.Pose(xyz=[0.0, 0.0, 0.0], rpy=[0.0, 0.0, 0.0])
        if any(abs(a) > 1e-9 for a in origin.rpy):
            raise ValueError(f"{path}: link '{link}': the {kind.__name__.lower()} is turned (rpy {origin.rpy}); "
                             "an axis-aligned shape is assumed")
        return np.array(origin.xyz), collision.geometry
    raise ValueError(f"{path}: link '{link}' has no collision {kind.__name__.lower()}")


def derived_offsets(character: Character) -> dict[str, np.ndarray]:
    """Head and toe points in their body's frame (metres), from the humanoid's geometry."""
    robot = read_urdf(character.model_path)
    out = {}
    for keypoint, (body, kind) in DERIVED.items():
        centre, geometry = _shape(robot, character.model_path, body, kind)
        if isinstance(geometry, urdf.Sphere):
            out[keypoint] = centre
        else:  # the sole's front edge: +x is forward and +z up in the Z-up humanoid's link frames
            size = np.array(geometry.size)
            out[keypoint] = centre + np.array([size[0] / 2, 0.0, -size[2] / 2])
    return out


class _Humanoid:
    """The humanoid's keypoints: its tracked bodies, then the derived points; each with a parent."""

    def __init__(self) -> None:
        character = load_character(CHARACTER)
        self.character = character
        self.model = PinocchioModel(character)
        bodies = character.tracked_bodies
        self.names = [ROOT_KEYPOINT if b == character.root_body else b for b in bodies]
        self.parents = [self.names[p] if p >= 0 else None for p in character.tracked_parents]
        offsets = derived_offsets(character)
        self.holders = [bodies.index(DERIVED[k][0]) for k in offsets]
        self.offsets = np.array(list(offsets.values()))
        self.names += list(offsets)
        self.parents += [self.names[h] for h in self.holders]

    def frames(self, states: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """World positions (T, K, 3) and rotations (T, K, 3, 3) of the keypoints at ``(qpos, qvel)`` states."""
        positions = np.empty((len(states), len(self.names), 3))
        rotations = np.empty((len(states), len(self.names), 3, 3))
        n = len(self.character.tracked_bodies)
        for i, (qpos, qvel) in enumerate(states):
            bodies = self.model.body_states(qpos, qvel)
            positions[i, :n], rotations[i, :n] = bodies.pos, bodies.rotmat
            held = bodies.rotmat[self.holders]
            positions[i, n:] = bodies.pos[self.holders] + np.einsum("kab,kb->ka", held, self.offsets)
            rotations[i, n:] = held
        return positions, rotations

    def clip(self, motion: Motion, times: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions, rotations and times (the clip's frame times if None) of a clip."""
        reference = ReferenceMotion(motion, self.character)
        times = motion.frame_times if times is None else np.asarray(times, dtype=float)
        positions, rotations = self.frames(list(zip(*reference.states(times), strict=True)))
        return positions, rotations, times

    def rest(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions (K, 3) and rotations (K, 3, 3) at the rest pose (every joint at zero)."""
        qpos = np.zeros(7 + self.character.num_joints)
        qpos[3] = 1.0
        positions, rotations = self.frames([(qpos, np.zeros(6 + self.character.num_joints))])
        return positions[0], rotations[0]


def _uniform_times(motion: Motion, rate: float) -> np.ndarray:
    if not (np.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be a positive number of frames per second, got {rate}")
    return np.arange(int(np.floor(motion.duration * rate + 1e-9)) + 1) / rate


def keypoints_from_clip(clip: str | Path, rate: float | None = None) -> KeypointMotion:
    """Canonical keypoints of a DeepMimic humanoid clip (a shipped clip's name or a path).

    Sampled at the clip's own frame times, or every ``1 / rate`` seconds over one cycle.
    Keypoints come in :data:`HUMAN_KEYPOINTS` order, all with rotations.
    """
    humanoid = _Humanoid()
    motion = load_clip(clip)
    positions, rotations, times = humanoid.clip(motion, None if rate is None else _uniform_times(motion, rate))
    order = [humanoid.names.index(k) for k in HUMAN_KEYPOINTS]
    return KeypointMotion(list(HUMAN_KEYPOINTS), times, positions[:, order], rotations[:, order], motion.source)


def _bvh_order(hinge_order: str) -> str:
    """A rotation order in mimic's axes (``'yxz'``) as BVH channel axes of a :data:`Y_UP` file."""
    file_axis = {"xyz"[row]: "XYZ"[int(np.argmax(Y_UP[row]))] for row in range(3)}
    return "".join(file_axis[a] for a in hinge_order)


def clip_to_bvh(clip: str | Path, rate: float | None = None) -> BvhMotion:
    """A DeepMimic humanoid clip as a BVH motion (Y up, centimetres, joints named as keypoints).

    The hierarchy is the humanoid's tracked bodies plus head and toes (rigid: their
    rotation channels stay zero); offsets are the body frames' in their parents'.
    Frames are every ``1 / rate`` seconds (default: the clip's mean frame rate, a BVH
    needs a fixed one).  Rotation orders follow the character's hinge orders, chosen to
    keep the clips away from gimbal lock; hinges rotate about their own axis first.
    ``bvh_rig.bvh_to_keypoints(clip_to_bvh(c), "mimic")`` gives the keypoints of :func:`keypoints_from_clip`.
    """
    humanoid = _Humanoid()
    character, names, parents = humanoid.character, humanoid.names, humanoid.parents
    motion = load_clip(clip)
    if rate is None:
        rate = motion.fps
    positions, rotations, _ = humanoid.clip(motion, _uniform_times(motion, rate))
    source = motion.source
    order: list[int] = []  # depth first, children in the order of ``names``

    def visit(k: int) -> None:
        order.append(k)
        for child, parent in enumerate(parents):
            if parent == names[k]:
                visit(child)

    visit(parents.index(None))
    parent_index = [order.index(names.index(parents[k])) if parents[k] else -1 for k in order]
    world = rotations[:, order]
    local = world.copy()
    for j, p in enumerate(parent_index):
        if p >= 0:
            local[:, j] = np.swapaxes(world[:, p], -1, -2) @ world[:, j]
    local = Y_UP.T @ local @ Y_UP  # the same rotations in file axes
    to_file = Y_UP.T / CM  # mimic metres -> file centimetres
    rest_positions, rest_rotations = humanoid.rest()
    hinge_orders = {j.name: _hinge_first(j.axis) for j in character.joints if j.name in names}
    hinge_orders.update({body: _bvh_order(axes) for body, axes in character.spherical_joints.items()})
    has_children = set(parent_index)
    joints = []
    for j, k in enumerate(order):
        p = parent_index[j]
        offset = np.zeros(3) if p < 0 else (rest_rotations[order[p]].T
                                            @ (rest_positions[k] - rest_positions[order[p]]))
        body = character.root_body if p < 0 else names[k]
        rotation_order = hinge_orders.get(body, _bvh_order("zyx"))  # root and rigid points: yaw, pitch, roll
        channels = tuple(f"{a}rotation" for a in rotation_order)
        if p < 0:
            channels = ("Xposition", "Yposition", "Zposition", *channels)
        end_site = None if j in has_children else np.zeros(3)  # the humanoid has nothing beyond its leaves
        joints.append(BvhJoint(names[k], p, to_file @ offset, channels, end_site))
    root_translation = positions[:, order[0]] @ to_file.T
    return motion_from_rotations(joints, 1.0 / rate, root_translation, local, source)


def _hinge_first(axis: np.ndarray) -> str:
    """BVH rotation order for a one-axis joint about ``axis`` (mimic axes): that axis first,
    so the middle angle stays zero and the hinge can turn past 90 degrees without gimbal lock."""
    first = "xyz"[int(np.argmax(np.abs(axis)))]
    return _bvh_order(first + "".join(a for a in "xyz" if a != first))
