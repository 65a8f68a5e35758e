"""Offscreen rendering of a character, with an optional translucent reference "ghost", and video writing.

Rendering is kinematic: a pose (mimic's ``qpos`` layout, see :class:`~mimic_sim.character.Character`)
is written into a MuJoCo model built by :func:`~mimic_sim.backends.mujoco_backend.build_model`,
forward kinematics places the bodies, and the scene is drawn offscreen.  Nothing is
simulated here, whichever backend produced the pose.

The ghost is a second, separately compiled copy of the same model whose geoms are made
translucent; its geoms are added to the main scene with ``mjv_addGeoms``.  It lives in a
model of its own that is never stepped, so it cannot touch, push or collide with anything.

OpenGL: MuJoCo picks its OpenGL platform from ``MUJOCO_GL``.  This module sets
``MUJOCO_GL=egl`` (headless: a GPU, or Mesa's llvmpipe on the CPU) unless the variable is
already set, so a user's ``MUJOCO_GL=osmesa`` or ``glfw`` is honoured.  MuJoCo reads the
variable once, when ``mujoco`` is first imported, and that import often happens before
this module is loaded (any backend imports it); the renderer therefore creates its GL
context from the platform ``MUJOCO_GL`` names *now* rather than relying on that early choice.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import contextlib
import importlib
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

try:
    import mujoco
except Exception as exc:  # MuJoCo sets up the OpenGL platform on import; a missing library fails obscurely
    raise ImportError(f"cannot import mujoco with MUJOCO_GL={os.environ['MUJOCO_GL']!r} ({type(exc).__name__}: "
                      f"{exc}); is that OpenGL platform installed? MUJOCO_GL=egl works headless") from exc
import numpy as np

from mimic_sim.backends.base import SimConfig
from mimic_sim.backends.mujoco_backend import build_model
from mimic_sim.character import Character

VIDEO_SUFFIXES = (".mp4", ".gif")

GHOST_RGBA = (0.75, 1.0, 0.75, 0.35)
"""Colour of the reference ghost: pale green, mostly transparent."""
_GRID_RGBA = (0.45, 0.5, 0.55, 1.0)
_GRID_SPACING = 1.0  # metres between floor grid lines
_GRID_HALF_COUNT = 8  # lines drawn each side of the camera target
_SKY_RGBA = (0.78, 0.85, 0.92, 1.0)
_SKELETON_RGBA = (0.95, 0.55, 0.2, 1.0)  # the human source, drawn beside the character
_SKELETON_BONES = 32  # scene room kept for a stick figure's bones
_GL_MODULES = {"egl": "mujoco.egl", "osmesa": "mujoco.osmesa", "glfw": "mujoco.glfw"}


def _gl_context_class() -> type:
    """The GLContext class of the platform ``MUJOCO_GL`` names (MuJoCo's own default otherwise)."""
    platform = os.environ.get("MUJOCO_GL", "").strip().lower()
    module = _GL_MODULES.get(platform)
    if module is None:
        if not hasattr(mujoco, "GLContext"):
            raise RuntimeError(f"MuJoCo offscreen rendering is unavailable with MUJOCO_GL={platform!r}; "
                               "set MUJOCO_GL to egl, osmesa or glfw")
        return mujoco.GLContext
    try:
        return importlib.import_module(module).GLContext
    except ImportError as exc:
        raise RuntimeError(f"cannot use OpenGL platform MUJOCO_GL={platform}: {exc}") from exc


class OffscreenContext:
    """An offscreen OpenGL context on the platform ``MUJOCO_GL`` names, with a model's MuJoCo
    rendering context: draws a scene into an (H, W, 3) uint8 RGB image. Every renderer of mimic
    goes through it, so the platform choice and the buffer handling live in one place."""

    def __init__(self, model: mujoco.MjModel, width: int, height: int,
                 font_scale: int = mujoco.mjtFontScale.mjFONTSCALE_100):
        self.width, self.height = int(width), int(height)
        self._rect = mujoco.MjrRect(0, 0, self.width, self.height)
        self._gl = _gl_context_class()(self.width, self.height)
        self._gl.make_current()
        self._context: mujoco.MjrContext | None = mujoco.MjrContext(model, font_scale)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._pixels = np.empty((self.height, self.width, 3), dtype=np.uint8)

    @property
    def closed(self) -> bool:
        return self._context is None

    def draw(self, scene: mujoco.MjvScene) -> np.ndarray:
        """``scene`` rendered: a new (height, width, 3) uint8 RGB array, top row first."""
        if self._context is None:
            raise RuntimeError("draw() called after close()")
        self._gl.make_current()
        mujoco.mjr_render(self._rect, scene, self._context)
        mujoco.mjr_readPixels(self._pixels, None, self._rect, self._context)
        return np.flipud(self._pixels).copy()  # OpenGL rows run bottom to top

    def close(self) -> None:
        """Release the contexts; drawing afterwards is an error. Closing twice is harmless."""
        if self._context is not None:
            self._gl.make_current()
            self._context.free()
            self._context = None
        if self._gl is not None:
            self._gl.free()
            self._gl = None


class PoseWriter:
    """Writes mimic ``qpos`` (root position and quaternion, then the character's joints in its order)
    into the qpos of a MuJoCo model that holds the character, its joints found by name."""

    def __init__(self, model: mujoco.MjModel, character: Character):
        root = model.body(character.root_body).id
        free = [j for j in range(model.njnt)
                if model.jnt_bodyid[j] == root and model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
        self.root = int(model.jnt_qposadr[free[0]])
        self.joints = np.array([model.jnt_qposadr[model.joint(n).id] for n in character.joint_names], dtype=int)
        self.size = 7 + len(character.joint_names)

    def write(self, data: mujoco.MjData, qpos: np.ndarray) -> None:
        data.qpos[self.root : self.root + 7] = qpos[:7]
        data.qpos[self.joints] = qpos[7:]


class CharacterRenderer:
    """Draws a character (and optionally a translucent reference ghost) from a tracking side camera.

    The camera looks at the point ``lookat_height`` metres above the floor below the
    root, from ``distance`` metres, at a fixed ``azimuth`` (90: looking along +y, so
    motion along +x goes left to right) and ``elevation`` (degrees, negative looks down).
    A 1 m grid is drawn on the floor so that travel is visible while the camera follows.
    """

    def __init__(self, character: Character, width: int = 640, height: int = 480, *, distance: float = 3.0,
                 azimuth: float = 90.0, elevation: float = -12.0, lookat_height: float = 0.9):
        for name, value in (("width", width), ("height", height)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"image {name} must be a positive integer, got {value!r}")
        self._offscreen: OffscreenContext | None = None
        self.character = character
        self.width, self.height = int(width), int(height)
        self.lookat_height = float(lookat_height)
        # Any physics rate will do: the model is only posed, never stepped.
        self.model = build_model(character, SimConfig(physics_hz=120.0))
        m = self.model
        m.vis.global_.offwidth = max(int(m.vis.global_.offwidth), self.width)
        m.vis.global_.offheight = max(int(m.vis.global_.offheight), self.height)
        # build_model's light is a spot above the origin; make it a sun so that a character
        # that walked away from the origin stays lit.
        m.light_type[:] = mujoco.mjtLightType.mjLIGHT_DIRECTIONAL
        m.vis.headlight.ambient[:] = 0.3
        m.vis.headlight.diffuse[:] = 0.5
        self.data = mujoco.MjData(m)
        self._pose = PoseWriter(m, character)
        self._ghost_model: mujoco.MjModel | None = None
        self._ghost_data: mujoco.MjData | None = None
        self._ghost_pose: PoseWriter | None = None

        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        self.camera.distance = float(distance)
        self.camera.azimuth = float(azimuth)
        self.camera.elevation = float(elevation)
        self._option = mujoco.MjvOption()
        self._perturb = mujoco.MjvPerturb()
        self._scene = mujoco.MjvScene(m, maxgeom=2 * m.ngeom + 4 * _GRID_HALF_COUNT + 16 + _SKELETON_BONES)
        self._offscreen = OffscreenContext(m, self.width, self.height, mujoco.mjtFontScale.mjFONTSCALE_150)

    # ----------------------------------------------------------------- ghost
    def _ghost(self) -> tuple[mujoco.MjModel, mujoco.MjData, PoseWriter]:
        """The reference copy, compiled on first use: same geometry, translucent, drawn only."""
        if self._ghost_model is None:
            g = build_model(self.character, SimConfig(physics_hz=120.0))
            character_geoms = g.geom_bodyid != 0  # the floor belongs to the world body
            g.geom_rgba[character_geoms] = GHOST_RGBA
            g.geom_contype[:] = 0
            g.geom_conaffinity[:] = 0
            self._ghost_model, self._ghost_data, self._ghost_pose = g, mujoco.MjData(g), PoseWriter(g, self.character)
        return self._ghost_model, self._ghost_data, self._ghost_pose

    # ---------------------------------------------------------------- render
    def _check(self, qpos: np.ndarray, what: str) -> np.ndarray:
        q = np.asarray(qpos, dtype=float)
        if q.shape != (self._pose.size,):
            raise ValueError(f"{what} must have {self._pose.size} entries (root position 3, root quaternion 4, "
                             f"{self._pose.size - 7} joints of '{self.character.name}'), got shape {q.shape}")
        if not np.isfinite(q).all():
            raise ValueError(f"{what} contains NaN or infinite values")
        return q

    def render(self, qpos: np.ndarray, ghost: np.ndarray | None = None,
               skeleton: tuple[np.ndarray, Sequence[tuple[int, int]]] | None = None) -> np.ndarray:
        """An ``(height, width, 3)`` uint8 RGB image of the character in ``qpos``, ghost in ``ghost``, and a
        stick figure ``skeleton`` = (points (N, 3) in the world, bones as index pairs) beside it."""
        if self._offscreen is None or self._offscreen.closed:
            raise RuntimeError("render() called after close()")
        qpos = self._check(qpos, "qpos")
        m, d = self.model, self.data
        self._pose.write(d, qpos)
        mujoco.mj_kinematics(m, d)
        mujoco.mj_camlight(m, d)
        self.camera.lookat[:] = [qpos[0], qpos[1], self.lookat_height]
        scene = self._scene
        mujoco.mjv_updateScene(m, d, self._option, None, self.camera, mujoco.mjtCatBit.mjCAT_ALL, scene)
        if ghost is not None:
            ghost = self._check(ghost, "ghost")
            gm, gd, pose = self._ghost()
            pose.write(gd, ghost)
            mujoco.mj_kinematics(gm, gd)
            mujoco.mjv_addGeoms(gm, gd, self._option, self._perturb, mujoco.mjtCatBit.mjCAT_DYNAMIC, scene)
        if skeleton is not None:
            self._add_skeleton(*skeleton)
        self._add_backdrop(qpos[0], qpos[1])
        return self._offscreen.draw(scene)

    def _add_geom(self, size, pos, rgba, mat: np.ndarray | None = None, emission: float = 0.0) -> None:
        scene = self._scene
        if scene.ngeom >= scene.maxgeom:
            return
        geom = scene.geoms[scene.ngeom]
        mat = np.eye(3) if mat is None else mat
        mujoco.mjv_initGeom(geom, mujoco.mjtGeom.mjGEOM_BOX, np.asarray(size, float), np.asarray(pos, float),
                            np.asarray(mat, float).ravel(), np.asarray(rgba, np.float32))
        geom.emission = emission
        scene.ngeom += 1

    def _add_skeleton(self, points: np.ndarray, bones: Sequence[tuple[int, int]]) -> None:
        points = np.asarray(points, dtype=float)
        if points.ndim != 2 or points.shape[1] != 3 or not np.isfinite(points).all():
            raise ValueError(f"skeleton points must be finite (N, 3), got shape {points.shape}")
        scene = self._scene
        for a, b in bones:
            if scene.ngeom >= scene.maxgeom:
                return
            geom = scene.geoms[scene.ngeom]
            mujoco.mjv_initGeom(geom, mujoco.mjtGeom.mjGEOM_CAPSULE, np.zeros(3), np.zeros(3), np.eye(3).ravel(),
                                np.asarray(_SKELETON_RGBA, np.float32))
            mujoco.mjv_connector(geom, mujoco.mjtGeom.mjGEOM_CAPSULE, 0.025, points[a], points[b])
            scene.ngeom += 1

    def _add_backdrop(self, x: float, y: float) -> None:
        """A floor grid around the camera target and a far, unlit sky wall behind it."""
        n, step = _GRID_HALF_COUNT, _GRID_SPACING
        cx, cy = np.round(x / step) * step, np.round(y / step) * step
        half = n * step
        for k in range(-n, n + 1):
            self._add_geom([0.008, half, 0.001], [cx + k * step, cy, 0.001], _GRID_RGBA)
            self._add_geom([half, 0.008, 0.001], [cx, cy + k * step, 0.001], _GRID_RGBA)
        # A wall 40 m beyond the target, across the viewing direction, hides the black void.
        az = np.deg2rad(self.camera.azimuth)
        c, s = np.cos(az), np.sin(az)
        facing = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # local x along the view
        self._add_geom([0.1, 200.0, 100.0], [x + 40.0 * c, y + 40.0 * s, 0.0], _SKY_RGBA, facing, emission=0.0)

    def close(self) -> None:
        """Release the OpenGL context; the renderer cannot be used afterwards."""
        if self._offscreen is not None:
            self._offscreen.close()

    def __enter__(self) -> CharacterRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown the GL library may be gone
            self.close()


# ------------------------------------------------------------------- video
def video_format(path: Path) -> str:
    """``"mp4"`` or ``"gif"`` from the file suffix; anything else is a ValueError naming the path."""
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"cannot write video '{path}': unknown suffix '{Path(path).suffix}', "
                         f"expected one of {', '.join(VIDEO_SUFFIXES)}")
    return suffix[1:]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad a frame to even width and height (yuv420p needs them) by repeating the last row/column."""
    h, w = frame.shape[:2]
    if h % 2 or w % 2:
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frame


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"video frames must be (H, W, 3) uint8 arrays, got {frame.shape} {frame.dtype}")
    return frame


def write_video(frames: Iterable[np.ndarray], path: Path, fps: float) -> Path:
    """Write frames to ``path``: ``.mp4`` (H.264, yuv420p) or ``.gif``, chosen by the suffix.

    Frames are ``(H, W, 3)`` uint8 RGB images of one size; ``.mp4`` frames of odd size are
    padded to even.  The video is written to a temporary file in the same folder and
    renamed when complete, so an error (or Ctrl-C) leaves no partial file at ``path``.
    Note that GIF stores frame times in 1/100 s, and Pillow merges identical
    consecutive frames into one longer frame.
    """
    path = Path(path)
    kind = video_format(path)
    if not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
        raise ValueError(f"cannot write video '{path}': fps must be a positive number, got {fps!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        count = _write_mp4(frames, tmp, fps) if kind == "mp4" else _write_gif(frames, tmp, fps)
        if count == 0:
            raise ValueError(f"cannot write video '{path}': no frames")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; give it the usual mode
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write_mp4(frames: Iterable[np.ndarray], tmp: Path, fps: float) -> int:
    import imageio_ffmpeg

    writer = None
    size = None
    count = 0
    try:
        for frame in frames:
            frame = _even(_as_rgb(frame))
            if writer is None:
                size = frame.shape[:2]
                writer = imageio_ffmpeg.write_frames(str(tmp), (size[1], size[0]), fps=float(fps), codec="libx264",
                                                     pix_fmt_in="rgb24", pix_fmt_out="yuv420p", macro_block_size=1,
                                                     quality=7, ffmpeg_log_level="error")
                writer.send(None)  # start ffmpeg
            elif frame.shape[:2] != size:
                raise ValueError(f"video frames must all have one size: {size} then {frame.shape[:2]}")
            writer.send(np.ascontiguousarray(frame))
            count += 1
    finally:
        if writer is not None:
            writer.close()
    return count


def _write_gif(frames: Iterable[np.ndarray], tmp: Path, fps: float) -> int:
    import imageio.v3 as iio

    images = [_as_rgb(f) for f in frames]
    if not images:
        return 0
    if any(f.shape != images[0].shape for f in images):
        raise ValueError("video frames must all have one size")
    iio.imwrite(tmp, np.stack(images), extension=".gif", plugin="pillow", duration=1000.0 / fps, loop=0)
    return len(images)
