"""Ground truth for the video pipeline: a shipped clip rendered from a known camera, with its 3D keypoints.

A :class:`ViewCamera` is a static pinhole camera (position, look-at point, vertical field
of view, image size) in the clip's world.  :func:`render_clip` poses the DeepMimic humanoid
frame by frame as the clip says (the kinematics are the clip's, exactly: only geoms are
added to a copy of the model), draws it through that camera and returns the images with
the true track keypoints (:data:`~mimic_retarget.pose_track.TRACK_KEYPOINTS`, the points
reconstruction fits: joint centres, the head sphere's centre and the sole's front edges) in
the world, in camera axes and in the reconstruction's level frame (the camera at
``(0, 0, height)`` looking along +x).

The plain capsule humanoid is a poor subject for MediaPipe, whose person detector looks
for a face: the ``human`` appearance gives it skin, a face (eyes, nose, mouth, ears, hair),
clothes (shirt, trousers, shoes) and body-shaped geoms (ellipsoid trunk and pelvis, tapered
limbs, hands), on a textured floor under a sky.  Each of those is a layer
(:data:`APPEARANCE_LAYERS`) so their effect on detection can be measured one by one
(``bench/video_reconstruction.py --appearance``; the figures: docs/video.md, "Ground truth").
Plain Python, no ROS.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless, as mimic_sim.render does

from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np
import torch

from mimic_retarget.pose_track import TRACK_KEYPOINTS
from mimic_retarget.reconstruction import Camera, HumanoidKinematics
from mimic_sim.character import Character, model_spec
from mimic_sim.motion_file import load_clip
from mimic_sim.reference import ReferenceMotion
from mimic_sim.render import OffscreenContext, PoseWriter

APPEARANCE_LAYERS = ("skin", "face", "clothes", "shapes", "scene")
"""What the ``human`` appearance adds to the capsule humanoid, in the order it is applied."""

SKIN = (0.87, 0.68, 0.56, 1.0)
SHIRT = (0.20, 0.35, 0.65, 1.0)
TROUSERS = (0.22, 0.22, 0.26, 1.0)
SHOES = (0.12, 0.10, 0.09, 1.0)
HAIR = (0.22, 0.14, 0.08, 1.0)
_CAPSULE_SKY = (0.78, 0.85, 0.92)

# Link frames of the Z-up humanoid: x forward, y left, z up; its limbs hang along -z from each joint.
_UPPER_ARM, _FOREARM, _THIGH, _SHIN = 0.2748, 0.2589, 0.4215, 0.4099  # bone lengths (m), from the URDF


@dataclass(frozen=True)
class ViewCamera:
    """A static pinhole camera in the clip's world (Z up): no roll, principal point at the image centre."""

    position: tuple[float, float, float]
    target: tuple[float, float, float]
    fovy_deg: float
    image_size: tuple[int, int]  # (width, height) pixels

    @property
    def focal(self) -> float:
        """Focal length in pixels (square pixels)."""
        return self.image_size[1] / 2 / np.tan(np.radians(self.fovy_deg) / 2)

    def rotation(self) -> np.ndarray:
        """World-to-camera rotation; rows: the camera's x right, y down, z forward, in world axes."""
        forward = np.subtract(self.target, self.position).astype(float)
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        return np.stack([right, np.cross(forward, right), forward])

    @property
    def pitch(self) -> float:
        """Radians below the horizon that the camera looks (positive: down)."""
        return float(np.arcsin(-self.rotation()[2, 2]))

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) in camera axes (x right, y down, z forward, metres)."""
        return (np.asarray(points) - np.asarray(self.position)) @ self.rotation().T

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixels (..., 2) of world points (..., 3)."""
        cam = self.to_camera(points)
        return self.focal * cam[..., :2] / cam[..., 2:] + np.array(self.image_size, dtype=float) / 2

    def to_level(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) in the reconstruction's frame: the camera at (0, 0, height) looking along
        +x when level, floor at z = 0 (:class:`~mimic_retarget.reconstruction.Camera`)."""
        forward = self.rotation()[2]
        yaw = np.arctan2(forward[1], forward[0])
        c, s = np.cos(-yaw), np.sin(-yaw)
        turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        return (np.asarray(points) - [self.position[0], self.position[1], 0.0]) @ turn.T

    def reconstruction_camera(self) -> Camera:
        """The same camera as reconstruction models it (focal, height, pitch, image size)."""
        return Camera(self.focal, float(self.position[2]), self.pitch, self.image_size)


@dataclass
class GroundTruth:
    """A rendered clip: ``frames`` (T, H, W, 3) uint8 RGB at ``fps``, and its keypoints ``names``
    (T, K, 3) in the ``world``, in ``camera`` axes and in the reconstruction's ``level`` frame."""

    clip: str
    fps: float
    times: np.ndarray
    frames: np.ndarray
    names: list[str]
    world: np.ndarray
    camera_points: np.ndarray
    level: np.ndarray
    camera: ViewCamera


# ---------------------------------------------------------------------------- appearance
def _geom(body: mujoco.MjsBody, kind: str, size: Sequence[float], pos: Sequence[float], rgba: Sequence[float],
          fromto: Sequence[float] | None = None, euler: Sequence[float] | None = None) -> None:
    g = body.add_geom(type=getattr(mujoco.mjtGeom, f"mjGEOM_{kind.upper()}"), size=list(size) + [0.0] * (3 - len(size)),
                      rgba=list(rgba))
    if fromto is not None:
        g.fromto = list(fromto)
    else:
        g.pos = list(pos)
    if euler is not None:
        g.alt.euler = list(euler)
    g.contype, g.conaffinity = 0, 0


def _add_face(spec: mujoco.MjSpec, skin: Sequence[float]) -> None:
    """Eyes, brows, nose, mouth, ears and hair on the head (the neck body; its sphere's centre 0.175 m up)."""
    head = spec.body("neck")
    z = 0.175
    for side in (1.0, -1.0):
        _geom(head, "sphere", [0.016], [0.084, side * 0.034, z + 0.02], (0.97, 0.97, 0.97, 1.0))
        _geom(head, "sphere", [0.008], [0.097, side * 0.034, z + 0.02], (0.08, 0.06, 0.05, 1.0))
        _geom(head, "ellipsoid", [0.006, 0.018, 0.004], [0.094, side * 0.035, z + 0.045], HAIR)
        # Ears at the head's centre height: MediaPipe's head keypoint is the ears' midpoint.
        _geom(head, "ellipsoid", [0.014, 0.008, 0.024], [0.0, side * 0.088, z], skin)
    _geom(head, "ellipsoid", [0.022, 0.012, 0.024], [0.098, 0.0, z - 0.005], skin)
    _geom(head, "ellipsoid", [0.008, 0.026, 0.006], [0.09, 0.0, z - 0.045], (0.6, 0.2, 0.2, 1.0))
    _geom(head, "ellipsoid", [0.085, 0.088, 0.085], [-0.02, 0.0, z + 0.03], HAIR)


def _add_shapes(spec: mujoco.MjSpec, colours: dict[str, Sequence[float]]) -> None:
    """Body-shaped geoms: trunk and pelvis ellipsoids, a neck, tapered limbs, hands, shoes."""
    shirt, trousers, skin, shoes = (colours[k] for k in ("shirt", "trousers", "skin", "shoes"))
    _geom(spec.body("root"), "ellipsoid", [0.10, 0.16, 0.11], [0.0, 0.0, 0.03], trousers)
    _geom(spec.body("root"), "ellipsoid", [0.095, 0.14, 0.11], [0.0, 0.0, 0.17], shirt)
    chest = spec.body("chest")
    _geom(chest, "ellipsoid", [0.11, 0.165, 0.15], [-0.005, 0.0, 0.12], shirt)
    for side in (1.0, -1.0):
        _geom(chest, "sphere", [0.058], [-0.024, side * 0.17, 0.235], shirt)
    _geom(chest, "capsule", [0.045], [], skin, fromto=[-0.01, 0.0, 0.2, -0.005, 0.0, 0.31])
    _geom(spec.body("neck"), "ellipsoid", [0.095, 0.082, 0.11], [0.005, 0.0, 0.17], skin)
    for side in ("left", "right"):
        _geom(spec.body(f"{side}_shoulder"), "capsule", [0.047], [], shirt, fromto=[0, 0, -0.02, 0, 0, -0.15])
        _geom(spec.body(f"{side}_shoulder"), "capsule", [0.04], [], skin, fromto=[0, 0, -0.15, 0, 0, -_UPPER_ARM])
        _geom(spec.body(f"{side}_elbow"), "capsule", [0.036], [], skin, fromto=[0, 0, 0, 0, 0, -0.12])
        _geom(spec.body(f"{side}_elbow"), "capsule", [0.026], [], skin, fromto=[0, 0, -0.12, 0, 0, -_FOREARM])
        # MediaPipe puts a wrist where the forearm meets the hand, a knee at the narrowing below the thigh and an
        # ankle above the shoe: the shapes place those a little past the humanoid's joints, which its detector
        # otherwise sees 3-5 cm short of them.
        _geom(spec.body(f"{side}_wrist"), "capsule", [0.024], [], skin, fromto=[0, 0, 0, 0, 0, -0.03])
        _geom(spec.body(f"{side}_wrist"), "ellipsoid", [0.035, 0.016, 0.07], [0.0, 0.0, -0.09], skin)
        _geom(spec.body(f"{side}_hip"), "capsule", [0.075], [], trousers, fromto=[0, 0, -0.03, 0, 0, -0.2])
        _geom(spec.body(f"{side}_hip"), "capsule", [0.052], [], trousers, fromto=[0, 0, -0.2, 0, 0, -_THIGH])
        _geom(spec.body(f"{side}_knee"), "capsule", [0.048], [], trousers, fromto=[-0.01, 0, -0.09, -0.01, 0, -0.22])
        _geom(spec.body(f"{side}_knee"), "capsule", [0.036], [], trousers, fromto=[0, 0, 0, 0, 0, -_SHIN])
        # A low shoe: a thin sole box whose front bottom edge is the toe keypoint, an upper over its rear.
        _geom(spec.body(f"{side}_ankle"), "box", [0.0885, 0.045, 0.012], [0.045, 0.0, -0.038], shoes)
        _geom(spec.body(f"{side}_ankle"), "ellipsoid", [0.075, 0.042, 0.03], [0.02, 0.0, -0.025], shoes)

def _add_scene(spec: mujoco.MjSpec) -> None:
    """A checkered floor and a gradient sky (MuJoCo's builtin textures: nothing read from disk)."""
    spec.add_texture(name="floor", type=mujoco.mjtTexture.mjTEXTURE_2D, builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
                     rgb1=[0.62, 0.6, 0.56], rgb2=[0.5, 0.48, 0.45], width=256, height=256)
    spec.add_material(name="floor", textures=["", "floor"], texrepeat=[8, 8], reflectance=0.0)
    spec.add_texture(name="sky", type=mujoco.mjtTexture.mjTEXTURE_SKYBOX, builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT,
                     rgb1=[0.75, 0.82, 0.9], rgb2=[0.95, 0.95, 0.95], width=256, height=256)


def build_model(character: Character, camera: ViewCamera, layers: Sequence[str] = APPEARANCE_LAYERS
                ) -> mujoco.MjModel:
    """The character's model, posable (a free root joint), dressed with ``layers`` (none: the capsule
    humanoid as ``mimic_sim.render`` draws it), with a floor and ``camera`` as its camera 0."""
    unknown = sorted(set(layers) - set(APPEARANCE_LAYERS))
    if unknown:
        raise ValueError(f"unknown appearance layers {unknown}; known: {', '.join(APPEARANCE_LAYERS)}")
    spec = model_spec(character.model_path)
    spec.compiler.discardvisual = False  # the URDF reader's default drops geoms that touch nothing: all of ours
    for actuator in list(spec.actuators):
        spec.delete(actuator)
    root = spec.body(character.root_body)
    if not any(j.type == mujoco.mjtJoint.mjJNT_FREE for j in root.joints):
        root.add_freejoint(name="root")
    skin = SKIN if "skin" in layers else (0.82, 0.78, 0.7, 1.0)
    if "skin" in layers:
        for g in spec.geoms:
            g.rgba = list(SKIN)
    if "clothes" in layers:
        for g in spec.geoms:
            body = g.parent.name
            if body in ("root",) or "hip" in body or "knee" in body:
                g.rgba = list(TROUSERS)
            elif body == "chest" or "shoulder" in body:
                g.rgba = list(SHIRT)
            elif "ankle" in body:
                g.rgba = list(SHOES)
    if "shapes" in layers:
        colours = {b: g.rgba for b, g in ((g.parent.name, g) for g in spec.geoms)}
        for g in spec.geoms:
            g.group = 3  # the capsules stay in the model (their inertias) but are not drawn
        _add_shapes(spec, {"shirt": colours["chest"], "trousers": colours["left_hip"], "skin": colours["neck"],
                           "shoes": colours["left_ankle"]})
    if "face" in layers:
        _add_face(spec, skin)
    floor = spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[50, 50, 0.1], rgba=[0.55, 0.6, 0.65, 1])
    floor.contype, floor.conaffinity = 0, 0
    if "scene" in layers:
        _add_scene(spec)
        floor.material, floor.rgba = "floor", [1, 1, 1, 1]
    else:  # the plain sky of mimic_sim.render rather than MuJoCo's black
        spec.add_texture(name="sky", type=mujoco.mjtTexture.mjTEXTURE_SKYBOX, builtin=mujoco.mjtBuiltin.mjBUILTIN_FLAT,
                         rgb1=list(_CAPSULE_SKY), rgb2=list(_CAPSULE_SKY), width=16, height=16)
    rot = camera.rotation()
    quat = np.zeros(4)  # MuJoCo's camera frame: x right, y up, looking along -z
    mujoco.mju_mat2Quat(quat, np.stack([rot[0], -rot[1], -rot[2]], axis=1).ravel())
    spec.worldbody.add_camera(name="truth", pos=list(camera.position), quat=list(quat), fovy=camera.fovy_deg)
    # A sun from above and in front of the camera, and the camera's headlight to fill the shadows.
    spec.worldbody.add_light(pos=[0, 0, 5], dir=list(np.array([*rot[2][:2], -2.0]) / np.linalg.norm([*rot[2][:2], -2])),
                             type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL, castshadow=False, diffuse=[0.6, 0.6, 0.6])
    spec.visual.headlight.ambient = [0.35, 0.35, 0.35]
    spec.visual.headlight.diffuse = [0.4, 0.4, 0.4]
    spec.visual.global_.offwidth, spec.visual.global_.offheight = camera.image_size
    return spec.compile()


class TruthRenderer:
    """Draws qpos poses (mimic's layout) of a character through a :class:`ViewCamera`."""

    def __init__(self, character: Character, camera: ViewCamera, layers: Sequence[str] = APPEARANCE_LAYERS):
        self.model = build_model(character, camera, layers)
        m = self.model
        self.data = mujoco.MjData(m)
        self._pose = PoseWriter(m, character)
        width, height = camera.image_size
        self._camera = mujoco.MjvCamera()
        self._camera.type, self._camera.fixedcamid = mujoco.mjtCamera.mjCAMERA_FIXED, 0
        self._option = mujoco.MjvOption()
        self._scene = mujoco.MjvScene(m, maxgeom=m.ngeom + 16)
        self._offscreen = OffscreenContext(m, width, height)

    def render(self, qpos: np.ndarray) -> np.ndarray:
        """An (H, W, 3) uint8 RGB image of the character in ``qpos``."""
        m, d = self.model, self.data
        self._pose.write(d, qpos)
        mujoco.mj_kinematics(m, d)
        mujoco.mj_camlight(m, d)
        mujoco.mjv_updateScene(m, d, self._option, None, self._camera, mujoco.mjtCatBit.mjCAT_ALL, self._scene)
        return self._offscreen.draw(self._scene)

    def close(self) -> None:
        """Release the OpenGL context."""
        self._offscreen.close()

    def __enter__(self) -> TruthRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------------- cameras and clips
def clip_states(clip: str, character: Character, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Times (T,) at ``fps`` over one play of a shipped clip, and the character's qpos (T, n) there."""
    motion = load_clip(clip)
    times = np.arange(0.0, motion.duration, 1.0 / fps)
    qpos, _ = ReferenceMotion(motion, character).states(times)
    return times, qpos


def true_keypoints(character: Character, qpos: np.ndarray, names: Sequence[str] = TRACK_KEYPOINTS) -> np.ndarray:
    """World positions (T, K, 3) of the track keypoints on the character posed at ``qpos`` (T, n):
    what reconstruction's kinematics give for the same pose."""
    from mimic_sim import rotations as rot

    kin = HumanoidKinematics(character)
    with torch.no_grad():
        return kin.points(torch.tensor(qpos[:, :3], dtype=torch.float64),
                          torch.tensor(rot.quat_to_mat(qpos[:, 3:7]), dtype=torch.float64),
                          torch.tensor(qpos[:, 7:], dtype=torch.float64), list(names)).numpy()


def frame_camera(points: np.ndarray, heading: float, azimuth_deg: float, image_size: tuple[int, int],
                 fovy_deg: float = 45.0, height: float = 1.2, margin: float = 0.1) -> ViewCamera:
    """A camera ``azimuth_deg`` around from a heading (radians; 0: in front of it, 90: on its left),
    ``height`` metres up, aimed at the middle of ``points`` (T, K, 3, the clip's keypoints) and as
    close as it can be with every point at least ``margin`` of the image from its edges."""
    lo, hi = points.reshape(-1, 3).min(axis=0), points.reshape(-1, 3).max(axis=0)
    centre = (lo + hi) / 2
    angle = heading + np.radians(azimuth_deg)
    out = np.array([np.cos(angle), np.sin(angle), 0.0])
    target = (centre[0], centre[1], float(centre[2]))
    distance = 1.5
    while True:
        position = (centre[0] + distance * out[0], centre[1] + distance * out[1], height)
        camera = ViewCamera(position, target, fovy_deg, image_size)
        cam = camera.to_camera(points)
        if (cam[..., 2] > 0.3).all():
            uv = camera.project(points) / np.array(image_size, dtype=float)
            if (uv >= margin).all() and (uv <= 1 - margin).all():
                return camera
        distance += 0.1


def clip_view(clip: str, character: Character, azimuth_deg: float, image_size: tuple[int, int] = (640, 480),
              fps: float = 30.0, seconds: float | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, ViewCamera]:
    """What :func:`render_clip` shows, without rendering it: times (T,), the character's qpos (T, n), the
    true track keypoints (T, K, 3) in the world, and the camera."""
    from mimic_sim import rotations as rot

    times, qpos = clip_states(clip, character, fps)
    if seconds is not None:
        times, qpos = times[times < seconds], qpos[times < seconds]
    world = true_keypoints(character, qpos)
    return times, qpos, world, frame_camera(world, float(rot.heading(qpos[0, 3:7])), azimuth_deg, image_size)


def render_clip(clip: str, character: Character, azimuth_deg: float, image_size: tuple[int, int] = (640, 480),
                fps: float = 30.0, layers: Sequence[str] = APPEARANCE_LAYERS, seconds: float | None = None
                ) -> GroundTruth:
    """A shipped clip (its first ``seconds``, or one play) seen from ``azimuth_deg`` around its start's heading
    (see :func:`frame_camera`), with its true keypoints."""
    times, qpos, world, camera = clip_view(clip, character, azimuth_deg, image_size, fps, seconds)
    with TruthRenderer(character, camera, layers) as renderer:
        frames = np.stack([renderer.render(q) for q in qpos])
    return GroundTruth(clip, fps, times, frames, list(TRACK_KEYPOINTS), world, camera.to_camera(world),
                       camera.to_level(world), camera)


# ---------------------------------------------------------------------------- command line
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mimic_retarget.ground_truth CLIP --azimuth DEG -o VIDEO``: a shipped clip rendered as a
    video of a person (input for ``mimic video``), with ``VIDEO``'s stem + ``.truth.json`` beside it: the
    camera and the true track keypoints per frame (world, metres)."""
    import argparse
    import json
    from pathlib import Path

    from mimic_sim.character import load_character
    from mimic_sim.paths import atomic_write_text
    from mimic_sim.render import video_format, write_video

    parser = argparse.ArgumentParser(prog="python -m mimic_retarget.ground_truth", description=main.__doc__)
    parser.add_argument("clip", help="shipped clip name (walk, cartwheel, backflip, ...)")
    parser.add_argument("--azimuth", type=float, default=45.0,
                        help="camera direction in degrees around the clip's starting heading (0: in front, 90: on "
                             "its left)")
    parser.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=None, help="the clip's first seconds (default: one play)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="video file, .mp4 or .gif")
    args = parser.parse_args(argv)
    try:
        video_format(args.output)
        truth = render_clip(args.clip, load_character("humanoid"), args.azimuth, tuple(args.size), args.fps,
                            seconds=args.seconds)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"ground_truth: {exc}") from exc
    cam = truth.camera
    record = {"clip": args.clip, "azimuth_deg": args.azimuth, "fps": args.fps,
              "camera": {"position": list(cam.position), "target": list(cam.target), "fovy_deg": cam.fovy_deg,
                         "image_size": list(cam.image_size), "focal_px": cam.focal, "height_m": cam.position[2],
                         "pitch_deg": float(np.degrees(cam.pitch))},
              "names": truth.names, "times": truth.times.tolist(), "world": truth.world.round(6).tolist()}
    write_video(truth.frames, args.output, args.fps)
    truth_path = args.output.with_name(args.output.name.rsplit(".", 1)[0] + ".truth.json")
    atomic_write_text(truth_path, json.dumps(record))
    print(args.output)
    print(truth_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
