"""Motion reconstruction (SFV's second stage): a pose track becomes a humanoid clip.

One optimization over the whole clip finds the DeepMimic humanoid's root trajectory and
joint angles (its own bone lengths, hinge chains and joint limits) and a static camera,
so that the humanoid, seen through that camera, matches the per-frame estimates while
moving smoothly and standing on the ground.  The terms (their weights in
:class:`ReconstructionConfig`):

* **reprojection**: the humanoid's keypoints, moved to where the estimator marks them
  (:mod:`mimic_retarget.landmarks`), projected by the pinhole camera against the track's
  image points, each weighted by its confidence, through a robust (Cauchy) loss so a wrong
  estimate pulls less than a right one;
* **3D prior**: the humanoid's bone directions against the estimator's metric 3D
  landmarks (turned from camera axes into the world by the camera's pitch); this settles
  what one image cannot: depth order of the limbs, facing;
* **smoothness**: keypoint accelerations, joint-angle accelerations and the root's angular
  acceleration (its orientation barely moves the hip and trunk points, 10-20 cm from it, so
  their smoothness alone left it jittering);
* **ground**: sole points (the four bottom corners of each foot box) not below the floor,
  the lowest sole point on the floor in frames where a foot is down, and no horizontal
  sliding of a sole point while it is on the floor;
* **dynamics**: the centre of mass (the model's own masses) accelerates as gravity and the
  floor allow: in the air exactly at g, on the floor never pulled down faster than g nor
  sideways beyond friction (a foot or a hand within ``contact_height`` supports);
* **joint limits** and a weak pull of the joint angles toward the rest pose (it only
  decides what nothing else observes, such as a forearm's twist).

The camera is static at ``(0, 0, height)`` looking along +x, pitched down by ``pitch``,
principal point at the image centre, no roll; focal length, height and pitch are
estimated unless given.  Before optimizing, the track is repaired: left/right swaps of an
arm or a leg (the estimator's commonest large mistake) are found by continuity and undone,
points far from their neighbours in time are dropped, and frames without a detection are
left to the smoothness terms (filled).  See docs/video.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pinocchio
import torch
from urdf_parser_py import urdf as urdf_model

from mimic_retarget.human import DERIVED, _shape, derived_offsets
from mimic_retarget.landmarks import landmark_offsets
from mimic_retarget.pose_track import COLLAPSE_RATIO, TRACK_BONES, PoseTrack
from mimic_sim import rotations as rot
from mimic_sim.backends.base import SimConfig
from mimic_sim.character import Character, load_character
from mimic_sim.kinematics import PinocchioModel
from mimic_sim.motion import Motion
from mimic_sim.urdf_io import read_urdf

SOLE_POINTS = tuple(f"{side}_sole_{end}_{edge}" for side in ("left", "right") for end in ("front", "back")
                    for edge in ("left", "right"))
"""The bottom corners of the foot boxes (front/back, left/right in the foot's own frame): what of a foot
touches the floor first when it rolls or tips (the toe and heel centres lie 4.5 cm inside the edges)."""
HAND_POINTS = ("left_wrist", "right_wrist")  # a hand (a sphere about the wrist) on the floor also bears weight
GRAVITY = SimConfig.gravity  # the gravity a clip is learned under (m/s^2)
# Limb groups whose left and right labels an estimator swaps together.
SWAP_GROUPS = {"arms": ("shoulder", "elbow", "wrist"), "legs": ("hip", "knee", "ankle", "toe")}


@dataclass(frozen=True)
class ReconstructionConfig:
    """Camera facts (None: estimated) and the optimization's weights and iteration counts."""

    focal: float | None = None  # pixels
    camera_height: float | None = None  # metres above the floor
    camera_pitch: float | None = None  # radians, positive looking down
    reprojection: float = 1.0
    reprojection_scale: float = 0.01  # the robust loss's scale as a fraction of the image's larger side
    prior_3d: float = 20.0  # the full stage's; docs/video.md has the measured choice
    pose_prior_3d: float = 20.0  # the 3D prior's weight in the pose stage (see reconstruct)
    smoothness: float = 0.05
    angle_smoothness: float = 0.005
    root_smoothness: float = 0.02  # full stage only (see reconstruct)
    ground: float = 10.0
    sliding: float = 5.0
    dynamics: float = 0.0  # the centre of mass against gravity and the floor (full stage; docs/video.md: why off)
    friction: float = 1.0  # the floor's friction coefficient in the dynamics term
    angular_momentum: float = 0.0  # the body's angular momentum held in the air (full stage; off: docs/video.md)
    limits: float = 10.0
    rest: float = 0.002
    focal_prior: float = 0.1  # pull of log(focal) toward its initial guess
    contact_height: float = 0.03  # a sole point this close to the floor is on it (metres)
    landmark_offsets: bool = True  # fit the estimator's landmarks where it marks them (mimic_retarget.landmarks)
    lift_iterations: int = 200  # the lift stage's (see reconstruct); 0: none
    lift_confidence: float = 0.7  # a bone with an end the estimator is less sure of is left out of the lift
    pose_iterations: int = 150
    full_iterations: int = 600
    contact_rounds: int = 10  # the full stage's iterations are split into rounds, contacts re-found before each
    swap_margin: float = 0.5  # a group is swapped when that brings it this much closer to its prediction
    outlier_fraction: float = 0.25  # of the person's image height: farther from the temporal median is dropped
    collapse_ratio: float = COLLAPSE_RATIO  # points of bones (estimator's 3D) off their median by this: dropped

    def lift_stage_iterations(self, track: PoseTrack) -> int:
        """The lift stage's iterations on ``track``: none without the estimator's 3D points."""
        return self.lift_iterations if track.world is not None else 0

    def iterations(self, track: PoseTrack) -> int:
        """The optimizer iterations :func:`reconstruct` runs on ``track``."""
        return self.lift_stage_iterations(track) + self.pose_iterations + self.full_iterations


@dataclass(frozen=True)
class Camera:
    focal: float
    height: float
    pitch: float
    image_size: tuple[int, int]

    def rotation(self) -> np.ndarray:
        """World-to-camera rotation (rows: the camera's x right, y down, z forward in world axes)."""
        return _camera_rotation(torch.tensor(self.pitch, dtype=torch.float64)).numpy()

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixels (..., 2) of world points (..., 3)."""
        cam = (points - np.array([0.0, 0.0, self.height])) @ self.rotation().T
        centre = np.array(self.image_size, dtype=float) / 2
        return self.focal * cam[..., :2] / np.maximum(cam[..., 2:], 1e-6) + centre


@dataclass
class Reconstruction:
    motion: Motion
    camera: Camera
    # (T, K, 3) world positions of the track's keypoints on the reconstructed humanoid: its own, not moved to
    # where the estimator marks them (the report's reprojection error is of those, mimic_retarget.landmarks)
    points: np.ndarray
    track: PoseTrack  # the repaired track the optimization fitted
    report: dict = field(default_factory=dict)


def _camera_rotation(pitch: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(pitch), torch.sin(pitch)
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    return torch.stack([torch.stack([zero, -one, zero]), torch.stack([-s, zero, -c]),
                        torch.stack([c, zero, -s])])


def camera_to_world(pitch: float) -> np.ndarray:
    """The rotation taking camera axes (x right, y down, z forward: MediaPipe's world landmarks) into
    mimic's world (x forward, y left, z up) for a camera without roll pitched down by ``pitch``
    (radians): ``v_world = R @ v_camera``."""
    return _camera_rotation(torch.tensor(pitch, dtype=torch.float64)).numpy().T


def _axis_rotation(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """(T, 3, 3) rotations about a fixed unit axis by angles (T,) (Rodrigues)."""
    k = torch.zeros(3, 3, dtype=angle.dtype)
    k[0, 1], k[0, 2], k[1, 2] = -axis[2], axis[1], -axis[0]
    k = k - k.T
    s, c = torch.sin(angle)[:, None, None], torch.cos(angle)[:, None, None]
    return torch.eye(3, dtype=angle.dtype) + s * k + (1 - c) * (k @ k)


def _rotation_6d(r6: torch.Tensor) -> torch.Tensor:
    """(T, 3, 3) rotations from two columns (T, 6) by Gram-Schmidt (a continuous parameterization)."""
    a, b = r6[:, :3], r6[:, 3:]
    x = a / a.norm(dim=1, keepdim=True)
    y = b - (x * b).sum(1, keepdim=True) * x
    y = y / y.norm(dim=1, keepdim=True)
    return torch.stack([x, y, torch.linalg.cross(x, y)], dim=2)


class HumanoidKinematics:
    """Forward kinematics of the humanoid in torch (batched over frames, differentiable).

    The joint tree, placements and axes come from Pinocchio's model of the character's
    URDF; joint angles are addressed by the character's joint names.  Points are the
    track's keypoints (tracked bodies, the head and the toe tips as in
    :mod:`mimic_retarget.human`) and the sole points (:data:`SOLE_POINTS`).
    """

    def __init__(self, character: Character):
        self.character = character
        model = PinocchioModel(character).model
        names = list(model.names)
        column = {n: i for i, n in enumerate(character.joint_names)}
        axes = {j.name: j.axis for j in character.joints}
        self.parents, self.columns, self.axes, self.offsets, self.turns = [], [], [], [], []
        for i in range(2, model.njoints):  # 0 is the universe, 1 the floating root
            self.parents.append(model.parents[i] - 2)  # -1: the root
            self.columns.append(column[names[i]])
            axis = np.asarray(axes[names[i]], dtype=float)
            self.axes.append(torch.tensor(axis / np.linalg.norm(axis)))
            self.offsets.append(torch.tensor(np.array(model.jointPlacements[i].translation)))
            self.turns.append(torch.tensor(np.array(model.jointPlacements[i].rotation)))
        offsets = derived_offsets(character)
        urdf = read_urdf(character.model_path)
        bodies = {**{b: b for b in character.tracked_bodies}, "head": "neck", "left_toe": "left_ankle",
                  "right_toe": "right_ankle"}
        for side in ("left", "right"):
            centre, box = _shape(urdf, character.model_path, f"{side}_ankle", DERIVED[f"{side}_toe"][1])
            for end, x in (("front", 1.0), ("back", -1.0)):
                for edge, y in (("left", 1.0), ("right", -1.0)):
                    name = f"{side}_sole_{end}_{edge}"
                    offsets[name] = centre + np.array([x, y, -1.0]) * np.asarray(box.size) / 2
                    bodies[name] = f"{side}_ankle"
        self.point_names = [n for n in bodies if n != character.root_body]
        self.point_joint, self.point_offset = [], []
        for name in self.point_names:
            frame = model.frames[model.getFrameId(bodies[name], pinocchio.BODY)]
            local = frame.placement.translation + frame.placement.rotation @ offsets.get(name, np.zeros(3))
            self.point_joint.append(frame.parentJoint - 2)
            self.point_offset.append(torch.tensor(np.array(local)))
        self.hand_radius = float(_shape(urdf, character.model_path, "left_wrist", urdf_model.Sphere)[1].radius)
        self.lower = torch.tensor(character.joint_lower)
        self.upper = torch.tensor(character.joint_upper)
        # Each joint's body: its mass and centre of mass in the joint's frame (the root's first).
        self.masses = torch.tensor([model.inertias[i].mass for i in range(1, model.njoints)])
        self.levers = torch.tensor(np.array([model.inertias[i].lever for i in range(1, model.njoints)]))
        self.inertias = torch.tensor(np.array([model.inertias[i].inertia for i in range(1, model.njoints)]))
        # The root-mean-square distance of the mass from the centre of mass, standing at rest: turns a rate
        # of angular momentum per kg (m^2/s^2) into an acceleration at that distance (m/s^2).
        f64 = torch.float64
        _, centres = self.bodies(torch.zeros(1, 3, dtype=f64), torch.eye(3, dtype=f64)[None],
                                 torch.zeros(1, character.num_joints, dtype=f64))
        spread = (self.masses * ((centres[0] - self.com(centres)[0]) ** 2).sum(-1)).sum()
        spin = self.inertias.diagonal(dim1=-2, dim2=-1).sum() / 2
        self.gyration_radius = float(torch.sqrt((spread + spin) / self.masses.sum()))

    def _frames(self, root_pos: torch.Tensor, root_rot: torch.Tensor, q: torch.Tensor
                ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """World rotations and positions of the joints' frames below the root."""
        rots, poss = [], []
        for parent, col, axis, offset, turn in zip(self.parents, self.columns, self.axes, self.offsets, self.turns,
                                                   strict=True):
            prot, ppos = (root_rot, root_pos) if parent < 0 else (rots[parent], poss[parent])
            poss.append(ppos + prot @ offset)
            rots.append(prot @ turn @ _axis_rotation(axis, q[:, col]))
        return rots, poss

    def points(self, root_pos: torch.Tensor, root_rot: torch.Tensor, q: torch.Tensor,
               names: list[str], with_com: bool = False, landmarks: dict[str, torch.Tensor] | None = None
               ) -> torch.Tensor:
        """World positions (T, len(names), 3) of named points; with ``with_com``, the whole body's
        centre of mass as one more point at the end.  ``landmarks``: offsets (3,) of some points in
        their body's frame, moving them to where an estimator marks them
        (:mod:`mimic_retarget.landmarks`)."""
        rots, poss = self._frames(root_pos, root_rot, q)
        landmarks = landmarks or {}
        out = []
        for name in names:
            k = self.point_names.index(name)
            j = self.point_joint[k]
            prot, ppos = (root_rot, root_pos) if j < 0 else (rots[j], poss[j])
            offset = self.point_offset[k] + landmarks[name] if name in landmarks else self.point_offset[k]
            out.append(ppos + prot @ offset)
        if with_com:
            out.append(self.com(self._centres([root_rot, *rots], [root_pos, *poss])))
        return torch.stack(out, dim=1)

    def point_rotations(self, root_pos: torch.Tensor, root_rot: torch.Tensor, q: torch.Tensor,
                        names: list[str]) -> torch.Tensor:
        """World rotations (T, len(names), 3, 3) of the bodies the named points move with."""
        rots, _ = self._frames(root_pos, root_rot, q)
        joints = [self.point_joint[self.point_names.index(name)] for name in names]
        return torch.stack([root_rot if j < 0 else rots[j] for j in joints], dim=1)

    def _centres(self, rots: list[torch.Tensor], poss: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([p + r @ lever for r, p, lever in zip(rots, poss, self.levers, strict=True)], dim=1)

    def bodies(self, root_pos: torch.Tensor, root_rot: torch.Tensor, q: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every body's world rotation (T, B, 3, 3) and centre of mass (T, B, 3), the root's first, in
        the order of ``masses`` and ``inertias`` (each about the body's centre of mass, in its frame)."""
        rots, poss = self._frames(root_pos, root_rot, q)
        rots = [root_rot, *rots]
        return torch.stack(rots, dim=1), self._centres(rots, [root_pos, *poss])

    def com(self, centres: torch.Tensor) -> torch.Tensor:
        """The whole body's centre of mass (T, 3) from its bodies' (T, B, 3)."""
        return (self.masses[:, None] * centres).sum(1) / self.masses.sum()

    def angular_momentum(self, root_pos: torch.Tensor, root_rot: torch.Tensor, q: torch.Tensor, dt: float
                         ) -> torch.Tensor:
        """Per step between frames (T - 1, 3), the whole body's angular momentum about its centre of mass
        per kg of its mass (m^2/s), by finite differences: the bodies' centres moving about the whole
        one's, plus each body's spin (its inertia times the angular velocity of its frame's turn over
        the step)."""
        rots, centres = self.bodies(root_pos, root_rot, q)
        rel = centres - self.com(centres)[:, None]
        mid = (rel[1:] + rel[:-1]) / 2
        orbit = (self.masses[:, None] * torch.linalg.cross(mid, (rel[1:] - rel[:-1]) / dt)).sum(1)
        turn = rots[:-1].transpose(-1, -2) @ rots[1:]  # each body's turn over the step, in its frame
        skew = (turn - turn.transpose(-1, -2)) / (2 * dt)
        omega = torch.stack([skew[..., 2, 1], skew[..., 0, 2], skew[..., 1, 0]], dim=-1)
        local = (self.inertias @ omega[..., None]).squeeze(-1)
        # In world axes at the step's middle (to first order): the mean of its two ends' rotations.
        spin = ((rots[:-1] + rots[1:]) / 2 @ local[..., None]).squeeze(-1).sum(1)
        return (orbit + spin) / self.masses.sum()


# ---------------------------------------------------------------------------- repairing the track
def _partner(name: str) -> str:
    return name.replace("left_", "right_") if name.startswith("left_") else name.replace("right_", "left_")


def repair_swaps(track: PoseTrack, margin: float = 0.5) -> tuple[PoseTrack, int]:
    """Undo left/right swaps of an arm or leg pair; returns the track and the number of (frame, group) swaps.

    Frame by frame, each group's points are predicted from the two previous (repaired)
    detected frames at constant velocity; the group's labels are exchanged when the
    exchanged points lie closer to the prediction by the factor ``margin``.
    """
    points, conf = track.points.copy(), track.confidence.copy()
    world = None if track.world is None else track.world.copy()
    groups = []
    for parts in SWAP_GROUPS.values():
        left = [track.index(f"left_{p}") for p in parts if f"left_{p}" in track.names]
        groups.append((left, [track.index(_partner(track.names[i])) for i in left]))
    history: list[int] = []
    swaps = 0
    for t in range(track.num_frames):
        if not track.detected[t]:
            continue
        if len(history) >= 1:
            a = history[-1]
            b = history[-2] if len(history) >= 2 else a
            for left, right in groups:
                lr = left + right
                step = (t - a) / max(a - b, 1)
                predicted = points[a, lr] + (points[a, lr] - points[b, lr]) * (step if a != b else 0.0)
                weight = np.minimum(conf[t, lr], conf[a, lr])
                keep = (weight * np.linalg.norm(points[t, lr] - predicted, axis=1)).sum()
                swapped = (weight * np.linalg.norm(points[t, right + left] - predicted, axis=1)).sum()
                if swapped < margin * keep:
                    for arr in (points, conf) + ((world,) if world is not None else ()):
                        arr[t, lr] = arr[t, right + left]
                    swaps += 1
        history.append(t)
    return track.replace(points=points, confidence=conf, world=world), swaps


def drop_outliers(track: PoseTrack, fraction: float = 0.25) -> tuple[PoseTrack, int]:
    """Zero the confidence of points farther than ``fraction`` of the person's image height from the
    median of their detected neighbours (two frames each side); returns the track and the count."""
    conf = track.confidence.copy()
    heights = np.array([np.ptp(track.points[t, conf[t] > 0, 1]) if (conf[t] > 0).sum() > 1 else 0.0
                        for t in range(track.num_frames)])
    scale = np.median(heights[heights > 0]) if (heights > 0).any() else max(track.image_size)
    dropped = 0
    for t in range(track.num_frames):
        window = [s for s in range(max(0, t - 2), min(track.num_frames, t + 3)) if s != t]
        for k in range(len(track.names)):
            near = [s for s in window if conf[s, k] > 0 and track.confidence[s, k] > 0]
            if conf[t, k] <= 0 or len(near) < 2:
                continue
            median = np.median(track.points[near, k], axis=0)
            if np.linalg.norm(track.points[t, k] - median) > fraction * scale:
                conf[t, k] = 0.0
                dropped += 1
    return track.replace(confidence=conf), dropped


def drop_collapsed(track: PoseTrack, ratio: float = COLLAPSE_RATIO) -> tuple[PoseTrack, int]:
    """Zero the confidence of the points :meth:`PoseTrack.collapsed` finds (the estimator lost the
    body there even if it says it is sure); returns the track and the count."""
    drop = track.collapsed(ratio)
    return track.replace(confidence=np.where(drop, 0.0, track.confidence)), int(drop.sum())


# ---------------------------------------------------------------------------- initial guess
def _interpolate(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill rows of ``values`` (T, ...) where ``valid`` is false by linear interpolation over time."""
    out = values.copy()
    t = np.arange(len(values))
    flat = out.reshape(len(values), -1)
    for c in range(flat.shape[1]):
        flat[:, c] = np.interp(t, t[valid], flat[valid, c])
    return flat.reshape(values.shape)


def _initial_pitch(track: PoseTrack) -> float:
    """The camera's pitch from the estimator's 3D landmarks: the person's ankle-to-shoulder axis,
    vertical in the world, leans in camera axes by the pitch (median over detected frames)."""
    if track.world is None:
        return 0.0
    idx = [track.index(n) for n in ("left_shoulder", "right_shoulder", "left_ankle", "right_ankle")]
    up = track.world[:, idx[:2]].mean(axis=1) - track.world[:, idx[2:]].mean(axis=1)
    ok = track.detected & (np.linalg.norm(up, axis=1) > 0.5)
    if not ok.any():
        return 0.0
    # Up in camera axes (y down, z forward) is (-cos p, -sin p) in (y, z) for a camera pitched down by p.
    return float(np.median(np.arctan2(-up[ok, 2], -up[ok, 1])))


def initial_guess(track: PoseTrack, kin: HumanoidKinematics, camera: Camera,
                  landmarks: dict[str, torch.Tensor] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Root positions (T, 3) and rotations (T, 3, 3): the pelvis back-projected from the hips' pixel at
    the depth where the humanoid's limbs (between the estimator's ``landmarks`` on it) have their image
    length, facing as the 3D landmarks say."""
    names = track.names
    rest = kin.points(torch.zeros(1, 3, dtype=torch.float64), torch.eye(3, dtype=torch.float64)[None],
                      torch.zeros(1, len(kin.columns), dtype=torch.float64), names, landmarks=landmarks)[0].numpy()
    bones = [(f"{s}_{a}", f"{s}_{b}") for s in ("left", "right")
             for a, b in (("hip", "knee"), ("knee", "ankle"), ("shoulder", "hip"))]
    bones = [(names.index(a), names.index(b)) for a, b in bones if a in names and b in names]
    metres = np.array([np.linalg.norm(rest[a] - rest[b]) for a, b in bones])
    pixels = np.stack([np.linalg.norm(track.points[:, a] - track.points[:, b], axis=1) for a, b in bones], 1)
    seen = np.stack([np.minimum(track.confidence[:, a], track.confidence[:, b]) > 0.3 for a, b in bones], 1)
    # Pixels per metre: foreshortening only shrinks a bone, so the longest-looking one is the best measure.
    per_frame = np.where(seen, pixels / metres, 0.0).max(axis=1)
    valid = per_frame > 0
    if not valid.any():
        raise ValueError(f"{track.source}: no frame shows the hips, knees, ankles and shoulders: nothing to "
                         "reconstruct")
    per_frame = _interpolate(per_frame, valid)
    depth = camera.focal / per_frame
    hips = [names.index("left_hip"), names.index("right_hip")]
    centre = _interpolate(track.points[:, hips].mean(axis=1), track.confidence[:, hips].min(axis=1) > 0)
    principal = np.array(camera.image_size, dtype=float) / 2
    in_camera = np.column_stack([(centre - principal) * depth[:, None] / camera.focal, depth])
    to_world = camera.rotation()  # row vectors: v_world = v_camera @ R for the world-to-camera R
    root_pos = in_camera @ to_world + np.array([0.0, 0.0, camera.height])
    # Facing: the hips' left direction and the trunk's up direction, from the 3D landmarks where present
    # (interpolated over frames whose hips and shoulders were dropped as unreliable, or lie on each other).
    shoulders = [names.index("left_shoulder"), names.index("right_shoulder")]
    trusted = np.zeros(track.num_frames, dtype=bool)
    if track.world is not None:
        w = track.world
        left = w[:, names.index("left_hip")] - w[:, names.index("right_hip")]
        up = w[:, shoulders].mean(axis=1) - w[:, hips].mean(axis=1)
        trusted = ((track.confidence[:, hips + shoulders].min(axis=1) > 0) & (np.linalg.norm(left, axis=1) > 0.02)
                   & (np.linalg.norm(up, axis=1) > 0.05))
    if trusted.any():
        left, up = _interpolate(left, trusted) @ to_world, _interpolate(up, trusted) @ to_world
    else:  # 2D only: facing the camera when the left hip is on the image's right
        facing = np.sign(np.median(track.points[:, hips[0], 0] - track.points[:, hips[1], 0])) or 1.0
        left = np.tile(facing * np.array([0.0, -1.0, 0.0]), (track.num_frames, 1))
        up = np.tile([0.0, 0.0, 1.0], (track.num_frames, 1))
    z = up / np.linalg.norm(up, axis=1, keepdims=True)
    y = left - (left * z).sum(1, keepdims=True) * z
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    root_rot = np.stack([np.cross(y, z), y, z], axis=2)
    return root_pos, root_rot


# ---------------------------------------------------------------------------- the optimization
def _cauchy(r2: torch.Tensor) -> torch.Tensor:
    return torch.log1p(r2)


def in_flight(supported: torch.Tensor) -> torch.Tensor:
    """Per middle frame, whether the body is in the air: no support (0-1) in the frame and its two
    neighbours, the frames a second difference uses."""
    return (1 - supported[2:]) * (1 - supported[1:-1]) * (1 - supported[:-2])


def com_dynamics_error(com: torch.Tensor, supported: torch.Tensor, dt: float, friction: float) -> torch.Tensor:
    """Per middle frame of a centre-of-mass trajectory (T, 3), how far its acceleration is from what
    gravity and the floor allow (m/s^2), given per frame whether the body touches the floor
    (``supported``, 0-1): in the air (no support in the three frames) the acceleration must be
    gravity's; on the floor, the floor pushes and never pulls (vertical acceleration at least -g)
    and friction bounds the horizontal part (``friction`` times the push)."""
    acc = (com[2:] - 2 * com[1:-1] + com[:-2]) / dt**2
    push = acc[:, 2] + GRAVITY
    flight = in_flight(supported)
    in_air = torch.sqrt(acc[:, 0] ** 2 + acc[:, 1] ** 2 + push**2 + 1e-12)
    horizontal = torch.sqrt(acc[:, 0] ** 2 + acc[:, 1] ** 2 + 1e-12)
    on_floor = torch.sqrt(torch.relu(-push) ** 2 + torch.relu(horizontal - friction * torch.relu(push)) ** 2 + 1e-12)
    return flight * in_air + (1 - flight) * on_floor


def angular_momentum_drift(momentum: torch.Tensor, supported: torch.Tensor, dt: float) -> torch.Tensor:
    """Per middle frame, how fast the whole body's angular momentum per kg (``momentum``, per step
    between frames, (T - 1, 3)) changes while the body is in the air (no support in the frame and its
    two neighbours; m^2/s^2), where nothing can change it; 0 on the floor, whose push can."""
    flight = in_flight(supported)
    rate = torch.sqrt((((momentum[1:] - momentum[:-1]) / dt) ** 2).sum(-1) + 1e-12)
    return flight * rate


class _Problem:
    """The objective over (root positions, root rotations (6D), joint angles, camera)."""

    def __init__(self, track: PoseTrack, kin: HumanoidKinematics, config: ReconstructionConfig, focal0: float,
                 landmarks: dict[str, torch.Tensor], min_bone_confidence: float = 0.0,
                 relative_smoothness: bool = False):
        self.track, self.kin, self.config = track, kin, config
        self.landmarks = landmarks  # where the estimator marks the keypoints on the humanoid (reconstruct)
        self.relative_smoothness = relative_smoothness  # keypoint accelerations relative to the root's position
        self.names = list(track.names)
        self.all_names = self.names + [n for n in SOLE_POINTS if n not in self.names]
        self.sole = [self.all_names.index(n) for n in SOLE_POINTS]
        self.hands = [self.all_names.index(n) for n in HAND_POINTS if n in self.all_names]
        self.uv = torch.tensor(track.points)
        self.conf = torch.tensor(track.confidence)
        self.scale = config.reprojection_scale * max(track.image_size)
        self.centre = torch.tensor(track.image_size, dtype=torch.float64) / 2
        self.dt = float(np.median(np.diff(track.times)))
        self.log_focal0 = float(np.log(focal0))
        # the 3D prior compares the directions of the track's bones
        bones = [(a, b) for a, b in TRACK_BONES if a in self.names and b in self.names]
        self.bones = torch.tensor([[self.names.index(a), self.names.index(b)] for a, b in bones], dtype=torch.long)
        if track.world is not None and len(bones):
            w = torch.tensor(track.world)
            d = w[:, self.bones[:, 1]] - w[:, self.bones[:, 0]]
            self.world_dirs = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-6)
            bone_conf = torch.minimum(self.conf[:, self.bones[:, 0]], self.conf[:, self.bones[:, 1]])
            self.bone_conf = torch.where(bone_conf >= min_bone_confidence, bone_conf, 0.0)
        else:
            self.world_dirs = None

    def _lowest(self, z: torch.Tensor) -> torch.Tensor:
        """Per frame, the lowest sole point's height.  Not a soft minimum: one at the contact height's
        scale lies below the true minimum by up to ln 4 of it (4 cm for four points level on the
        floor), so the ground term held a planted foot that high and bent the legs to match."""
        return z.min(dim=1).values

    def contacts(self, root_pos, root_r6, q) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Where the body touches the floor in a solution: per frame, how near the lowest sole point is
        (1 on the floor, fading over 5 cm); per step and sole point, whether both ends of the step
        are within ``contact_height``; per frame, whether a foot or a hand is within it (the floor can
        push).  Sharp sigmoids.  The ground and dynamics terms weight by them."""
        with torch.no_grad():
            # the humanoid's own points (a wrist, not where the estimator marks it, holds the hand up)
            pts = self.kin.points(root_pos, _rotation_6d(root_r6), q, self.all_names)
            z = pts[:, self.sole, 2]
            down = torch.exp(-torch.relu(self._lowest(z)) / 0.05)
            planted = torch.sigmoid((self.config.contact_height - torch.maximum(z[1:], z[:-1])) / 0.005)
            clearance = z.min(dim=1).values
            if self.hands:
                clearance = torch.minimum(clearance, pts[:, self.hands, 2].min(dim=1).values - self.kin.hand_radius)
            supported = torch.sigmoid((self.config.contact_height - clearance) / 0.005)
        return down, planted, supported

    def terms(self, root_pos, root_r6, q, log_focal, height, pitch,
              contacts: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """The objective's terms; the ground terms only with ``contacts`` (:meth:`contacts`), which
        stay fixed while an optimizer runs so that the objective it sees is smooth."""
        c = self.config
        root_rot = _rotation_6d(root_r6)
        pts = self.kin.points(root_pos, root_rot, q, self.all_names, with_com=contacts is not None,
                              landmarks=self.landmarks)
        com, pts = (pts[:, -1], pts[:, :-1]) if contacts is not None else (None, pts)
        cam_r = _camera_rotation(pitch)
        cam = (pts - torch.stack([torch.zeros_like(height), torch.zeros_like(height), height])) @ cam_r.T
        n = len(self.names)
        uv = torch.exp(log_focal) * cam[:, :n, :2] / cam[:, :n, 2:].clamp_min(0.1) + self.centre
        r2 = ((uv - self.uv) ** 2).sum(-1) / self.scale**2
        total_conf = self.conf.sum().clamp_min(1e-9)
        out = {"reprojection": c.reprojection * (self.conf * _cauchy(r2)).sum() / total_conf * len(self.names)}
        if self.world_dirs is not None:
            d = pts[:, self.bones[:, 1]] - pts[:, self.bones[:, 0]]
            d = (d / d.norm(dim=-1, keepdim=True).clamp_min(1e-6)) @ cam_r.T  # into camera axes
            err = ((d - self.world_dirs) ** 2).sum(-1)
            out["prior_3d"] = c.prior_3d * (self.bone_conf * err).sum() / self.bone_conf.sum().clamp_min(1e-9)
        # Accelerations in m/s^2 and rad/s^2, scaled to stay O(1) for ordinary motion.
        moving = pts - root_pos[:, None] if self.relative_smoothness else pts
        acc = (moving[2:] - 2 * moving[1:-1] + moving[:-2]) / self.dt**2 / 10.0
        out["smoothness"] = c.smoothness * (acc**2).sum(-1).mean()
        qacc = (q[2:] - 2 * q[1:-1] + q[:-2]) / self.dt**2 / 10.0
        out["angle_smoothness"] = c.angle_smoothness * (qacc**2).mean()
        # The root frame's axes as three points 1 m from it: their accelerations are its angular acceleration.
        racc = (root_rot[2:] - 2 * root_rot[1:-1] + root_rot[:-2]) / self.dt**2 / 10.0
        out["root_smoothness"] = c.root_smoothness * (racc**2).sum((-2, -1)).mean()
        out["limits"] = c.limits * (torch.relu(q - self.kin.upper) ** 2 + torch.relu(self.kin.lower - q) ** 2
                                    ).sum(-1).mean()
        out["rest"] = c.rest * (q**2).sum(-1).mean()
        out["focal"] = c.focal_prior * (log_focal - self.log_focal0) ** 2
        if contacts is not None:
            down, planted, supported = contacts
            out["dynamics"] = c.dynamics * (com_dynamics_error(com, supported, self.dt, c.friction) / 10.0
                                            ).pow(2).mean()
            if c.angular_momentum > 0:  # a second kinematics pass: only when asked for
                momentum = self.kin.angular_momentum(root_pos, root_rot, q, self.dt)
                drift = angular_momentum_drift(momentum, supported, self.dt) / self.kin.gyration_radius
                out["angular_momentum"] = c.angular_momentum * (drift / 10.0).pow(2).mean()
            z = pts[:, self.sole, 2]
            out["penetration"] = c.ground * (torch.relu(-z) ** 2).sum(-1).mean() * 100.0
            out["ground"] = c.ground * (down * self._lowest(z) ** 2).mean() * 100.0
            slide = ((pts[1:, self.sole, :2] - pts[:-1, self.sole, :2]) ** 2).sum(-1) / self.dt**2
            out["sliding"] = c.sliding * (planted * slide).mean()
        return out


def reconstruct(track: PoseTrack, config: ReconstructionConfig = ReconstructionConfig(), name: str = "video",
                progress: Callable[[int], object] | None = None, character: Character | None = None
                ) -> Reconstruction:
    """The humanoid clip that best explains ``track`` (see the module docstring).

    ``progress(n)`` is called after each stage with its optimizer iterations
    (``config.iterations(track)`` in all).
    """
    # In double precision; torch's default dtype is process-wide, so the caller's is restored
    # (left at float64, it broke every float32 network used later in the same process).  On one
    # thread: the same track then gives the same clip on any number of cores (with two threads the
    # sums' order changed the real walk's foot sliding by 1 mm per frame), and it is as fast (a
    # 117-frame clip: 12.7 s on one thread, 12.8 s on two).
    previous, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    try:
        return _reconstruct(track, config, name, progress, character)
    finally:
        torch.set_default_dtype(previous)
        torch.set_num_threads(threads)


def _reconstruct(track: PoseTrack, config: ReconstructionConfig, name: str,
                 progress: Callable[[int], object] | None, character: Character | None) -> Reconstruction:
    character = character or load_character("humanoid")
    kin = HumanoidKinematics(character)
    missing = [n for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder", "left_knee", "right_knee",
                           "left_ankle", "right_ankle") if n not in track.names]
    if missing:
        raise ValueError(f"{track.source}: field 'keypoints': reconstruction needs {missing}")
    if not track.detected.any():
        raise ValueError(f"{track.source}: the person is detected in no frame")
    repaired, swaps = repair_swaps(track, config.swap_margin)
    repaired, outliers = drop_outliers(repaired, config.outlier_fraction)
    repaired, collapsed = drop_collapsed(repaired, config.collapse_ratio)
    focal0 = config.focal or float(max(track.image_size))
    camera = Camera(focal0, config.camera_height if config.camera_height is not None else 1.0,
                    config.camera_pitch if config.camera_pitch is not None else _initial_pitch(repaired),
                    track.image_size)
    offsets = landmark_offsets(track.estimator, character.name) if config.landmark_offsets else None
    landmarks = {n: torch.tensor(o) for n, o in offsets.offsets.items() if n in track.names} if offsets else {}
    root_pos0, root_rot0 = initial_guess(repaired, kin, camera, landmarks)
    if config.camera_height is None:
        # Put the feet (about 0.9 m below the pelvis of a standing humanoid) on the floor.
        shift = 0.9 - np.percentile(root_pos0[:, 2], 50)
        root_pos0[:, 2] += shift
        camera = Camera(camera.focal, camera.height + shift, camera.pitch, camera.image_size)
    problem = _Problem(repaired, kin, config, focal0, landmarks)
    pose_problem = _Problem(repaired, kin, replace(config, prior_3d=config.pose_prior_3d, root_smoothness=0.0), focal0,
                            landmarks)
    lift_problem = _Problem(repaired, kin, replace(config, reprojection=0.0, prior_3d=config.pose_prior_3d,
                                                   root_smoothness=0.0), focal0, landmarks, config.lift_confidence,
                            relative_smoothness=True)
    root_pos = torch.tensor(root_pos0, requires_grad=True)
    root_r6 = torch.tensor(np.concatenate([root_rot0[:, :, 0], root_rot0[:, :, 1]], axis=1), requires_grad=True)
    q = torch.zeros(track.num_frames, character.num_joints, requires_grad=True)
    log_focal = torch.tensor(np.log(camera.focal), requires_grad=True)
    height = torch.tensor(camera.height, requires_grad=True)
    pitch = torch.tensor(camera.pitch, requires_grad=True)
    camera_free = [p for p, given in ((log_focal, config.focal), (height, config.camera_height),
                                      (pitch, config.camera_pitch)) if given is None]
    # The lift stage turns the rest pose into the estimator's own 3D pose: the root's facing and the joint
    # angles fitted to its bone directions alone, no pixel, no floor.  Started from the rest pose, the
    # pose stage left limbs far from the rest in wrong basins, which the floor then held: on the
    # ground-truth renders, the run seen from the side had its swinging leg put on the floor in the first
    # frames (250 mm off), and the cartwheel's limbs 80-130 mm off (docs/video.md).  The root's position
    # stays its first guess here, so the keypoints are smoothed relative to it: smoothed in the world,
    # the limbs followed that guess's jitter (a walk away from the camera, bench/video_speed.py: 76 mm
    # root-relative against 36).  A bone with an end the estimator is unsure of (a hidden arm) is left
    # at rest: MediaPipe's guess for it was worse than the rest pose.
    # The pose stage then fits the person without the floor and without the root's own smoothness (with it,
    # the root could not turn out of a wrong initial facing: on the ground-truth renders, at 0.05, the walk
    # from 45 degrees came out at 84 mm PA-MPJPE instead of 47), the 3D prior weighted up: from the rest pose
    # the robust reprojection alone settles in wrong basins (a bent arm's depth order, an inverted
    # body's limbs; from exact input 65 mm PA-MPJPE on average over the ground-truth renders, 16 mm
    # when started from the true pose), and the bone directions lead out of them (38 mm).  The full
    # stage adds the floor and the camera, the prior at its own weight, in rounds:
    # the contacts are found from the solution at the start of each round and
    # held while L-BFGS runs (re-estimated every evaluation, they make the objective jump under
    # the line search, which then stops within a few iterations).
    rounds = max(1, config.contact_rounds)
    stages = [(lift_problem, [root_r6, q], config.lift_stage_iterations(repaired), False),
              (pose_problem, [root_pos, root_r6, q], config.pose_iterations, False)]
    stages += [(problem, [root_pos, root_r6, q, *camera_free], config.full_iterations // rounds
                + (k < config.full_iterations % rounds), True) for k in range(rounds)]
    contacts = None
    for stage_problem, params, iterations, ground in stages:
        if iterations <= 0:
            continue
        if ground:
            contacts = problem.contacts(root_pos, root_r6, q)
        with torch.no_grad():  # unit columns again: a shrinking 6D vector makes the rotation's gradient blow up
            rot_m = _rotation_6d(root_r6)
            root_r6.copy_(torch.cat([rot_m[:, :, 0], rot_m[:, :, 1]], dim=1))
        optimizer = torch.optim.LBFGS(params, lr=1.0, max_iter=iterations, history_size=20,
                                      line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)

        def closure(optimizer=optimizer, contacts=contacts, stage_problem=stage_problem) -> torch.Tensor:
            optimizer.zero_grad()
            loss = sum(stage_problem.terms(root_pos, root_r6, q, log_focal, height, pitch, contacts).values())
            loss.backward()
            return loss

        optimizer.step(closure)
        if progress is not None:
            progress(iterations)
    with torch.no_grad():
        camera = Camera(float(torch.exp(log_focal)), float(height), float(pitch), track.image_size)
        rot_m = _rotation_6d(root_r6)
        points = kin.points(root_pos, rot_m, q, problem.all_names, with_com=True).numpy()
        points, com = points[:, :-1], points[:, -1]
        marked = kin.points(root_pos, rot_m, q, track.names, landmarks=landmarks).numpy()
        contacts = problem.contacts(root_pos, root_r6, q)
        terms = {k: float(v) for k, v in problem.terms(root_pos, root_r6, q, log_focal, height, pitch,
                                                         contacts).items()}
        supported = contacts[2]
        dynamics = com_dynamics_error(torch.tensor(com), supported, problem.dt, config.friction).numpy()
        drift = angular_momentum_drift(kin.angular_momentum(root_pos, rot_m, q, problem.dt), supported, problem.dt)
        flight = in_flight(supported).sum()
    motion = _motion(name, track, root_pos.detach().numpy(), rot_m.numpy(), q.detach().numpy(), character)
    n = len(track.names)
    report = quality_report(repaired, camera, marked, points[:, problem.sole], track.times)
    report.update(root_angular_speed(rot_m.numpy(), track.times))
    report["com_dynamics_error_m_s2"] = float(dynamics.mean()) if len(dynamics) else 0.0
    report["frames_supported"] = int((supported.numpy() > 0.5).sum())
    report["flight_angular_momentum_drift_m2_s2"] = float(drift.sum() / flight) if flight > 0.5 else 0.0
    report.update({"left_right_swaps_repaired": swaps, "outlier_points_dropped": outliers,
                   "collapsed_points_dropped": collapsed,
                   "frames_filled": int((~track.detected).sum()),
                   "frames_redetected": None if track.redetected is None else int(track.redetected.sum()),
                   "landmark_offsets": offsets.source if offsets else None,
                   "camera": {"focal_px": camera.focal, "height_m": camera.height,
                              "pitch_deg": float(np.degrees(camera.pitch))},
                   "objective": terms})
    return Reconstruction(motion, camera, points[:, :n], repaired, report)


def _motion(name: str, track: PoseTrack, root_pos: np.ndarray, root_rot: np.ndarray, q: np.ndarray,
            character: Character) -> Motion:
    """The humanoid clip: spherical joints as quaternions of their hinge chains, hinges as angles."""
    column = {n: i for i, n in enumerate(character.joint_names)}
    joints: dict[str, np.ndarray] = {}
    chained = set()
    for joint, order in character.spherical_joints.items():
        cols = [column[f"{joint}_{a}"] for a in order]
        joints[joint] = rot.quat_from_euler(q[:, cols], order)
        chained.update(cols)
    for joint, i in column.items():
        if i not in chained:
            joints[joint] = q[:, i].copy()
    return Motion(name=name, frame_times=track.times - track.times[0], root_pos=root_pos,
                  root_rot=rot.mat_to_quat(root_rot), joints=joints, loop=False, source=track.source)


def root_angular_speed(root_rot: np.ndarray, times: np.ndarray) -> dict:
    """The root's angular speed between frames (rad/s) from its rotations (T, 3, 3): median, 95th
    percentile and largest. A person's pelvis turns at a few rad/s at most in walking and running (the
    shipped walk and run clips peak at 3.7 and 5.6); far more is jitter no character can follow."""
    relative = np.einsum("tji,tjk->tik", root_rot[:-1], root_rot[1:])  # R_t^T R_t+1
    cos = np.clip((np.trace(relative, axis1=1, axis2=2) - 1) / 2, -1.0, 1.0)
    speed = np.arccos(cos) / np.diff(times)
    if speed.size == 0:
        return {}
    return {"root_angular_speed_median_rad_s": float(np.median(speed)),
            "root_angular_speed_p95_rad_s": float(np.percentile(speed, 95)),
            "root_angular_speed_max_rad_s": float(speed.max())}


def quality_report(track: PoseTrack, camera: Camera, points: np.ndarray, sole: np.ndarray,
                   times: np.ndarray, contact_height: float = 0.03) -> dict:
    """Detection rate, reprojection error (px, confident points), keypoint acceleration (m/s^2),
    foot skating (mm per frame while a sole point is on the floor) and ground penetration (mm)."""
    detected = track.detected
    confident = track.confidence > 0.5
    error = np.linalg.norm(camera.project(points) - track.points, axis=-1)
    dt = np.diff(times)
    acc = (points[2:] - 2 * points[1:-1] + points[:-2]) / (dt[1:, None, None] * dt[:-1, None, None])
    z = sole[..., 2]
    on_floor = (z[1:] < contact_height) & (z[:-1] < contact_height)
    slide = np.linalg.norm(sole[1:, :, :2] - sole[:-1, :, :2], axis=-1)
    return {
        "frames": int(track.num_frames),
        "detection_rate": float(detected.mean()),
        "reprojection_error_px": float(error[confident].mean()) if confident.any() else float("nan"),
        "reprojection_error_px_p95": float(np.percentile(error[confident], 95)) if confident.any() else float("nan"),
        "mean_acceleration_m_s2": float(np.linalg.norm(acc, axis=-1).mean()),
        "foot_skating_mm": float(1000 * slide[on_floor].mean()) if on_floor.any() else 0.0,
        "ground_penetration_mm": float(1000 * max(0.0, -z.min())),
    }
