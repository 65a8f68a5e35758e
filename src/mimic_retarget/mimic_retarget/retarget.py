"""Human keypoints -> a robot clip: scaling, foot contacts, whole-body IK, ground, quality report.

The steps, per clip:

1. Scale: human positions times ``s`` (the robot's leg length over the human's,
   thigh plus shank, so poses do not change it); then, from the pelvis out, each
   bone keeps the human's direction and takes the robot's length (between the
   mapped points at the robot's zero pose), so arms, shoulders and hips of other
   proportions still get reachable targets; then a vertical shift so the human's
   standing ankle height lands on the robot's.
2. Contacts: a foot is planted where its (scaled) ankle is within
   ``contact_height`` of the standing height and moves slower than
   ``contact_speed``; over each planted run its target is held at the run's mean
   horizontal position and at standing height: no skating, no sinking.
3. Orientation targets for the pelvis, chest and feet are frames built from keypoint
   positions (hips and chest; shoulders and neck; toe, else the pelvis heading, and
   the vertical), mapped through the same construction on the robot's zero pose.
   Sources need no rotations, and their joint-frame conventions do not matter.
4. IK frame by frame (:class:`mimic_retarget.ik.WholeBodyIK`), starting from and
   weakly pulled toward the previous two frames' extrapolation (temporal
   smoothness: a penalty on joint acceleration); joints clamped to their limits.
5. Ground: any frame where the robot's collision geometry reaches below the floor
   (MuJoCo's contacts with it) is lifted by that depth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import mujoco
import numpy as np

from mimic_retarget.ik import LinkTarget, WholeBodyIK, urdf_links
from mimic_retarget.keypoints import HUMAN_KEYPOINTS, HUMAN_PARENTS, KeypointMotion
from mimic_retarget.mapping import RetargetMapping, load_mapping
from mimic_sim import rotations as rot
from mimic_sim.backends.base import SimConfig
from mimic_sim.backends.mujoco_backend import FLOOR, MujocoBackend
from mimic_sim.character import Character
from mimic_sim.kinematics import PinocchioModel
from mimic_sim.motion import Motion

UP = np.array([0.0, 0.0, 1.0])
TORSO_POINTS = ("chest", "neck", "left_hip", "right_hip", "left_shoulder", "right_shoulder")
"""Keypoints rigidly attached to the pelvis or chest frame (see ``Retargeter._robot_proportions``)."""
NEAR_LINKS = 3
"""Bodies this many links apart or fewer are not counted as colliding (see ``self_collision_frames``)."""


class RetargetError(ValueError):
    """The source lacks what the robot's map needs."""


@dataclass(frozen=True)
class RetargetConfig:
    iterations: int = 2
    """Gauss-Newton iterations per frame at most (from an extrapolated start 2 reach reachable targets;
    more barely change the error: docs/retargeting.md)."""
    tolerance: float = 1e-3
    """Stop a frame's iterations once no joint moves more than this (rad, or m for the root); Gauss-Newton
    converges quadratically on reachable targets, so the error left is of the order of its square."""
    first_frame_iterations: int = 30
    smoothness: float = 1e-3
    """Pull of each joint toward its value extrapolated from the previous two frames (penalizes acceleration),
    relative to a 1 m position error at weight 1; it also settles directions the targets leave free."""
    contact_height: float = 0.03
    """A foot is planted within this height (m) above its standing height ..."""
    contact_speed: float = 0.3
    """... and while moving slower than this (m/s, horizontally)."""
    loop: bool = False
    """The source clip wraps: mark the output clip as looping, and solve its frames twice round, keeping the
    second round, whose first frame continues from the last (see ``Retargeter.retarget``)."""
    match_proportions: bool = True
    """Give the scaled human the robot's bone lengths, keeping its bone directions (step 1)."""
    align_ankle_height: bool = True
    """Shift the scaled human vertically so its standing ankle height is the robot's (step 1)."""
    hold_contacts: bool = True
    """Hold planted feet in place (step 2)."""
    ground_clearance: bool = True
    """Lift frames whose geometry reaches below the floor (step 5)."""


@dataclass
class RetargetResult:
    motion: Motion
    qpos: np.ndarray  # (T, 7 + joints)
    scale: float
    contacts: dict[str, np.ndarray] = field(default_factory=dict)  # foot link -> (T,) planted
    report: dict = field(default_factory=dict)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _frame(y_axis: np.ndarray, z_hint: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) with y along ``y_axis`` and z nearest ``z_hint``."""
    y = _unit(y_axis)
    z = _unit(z_hint - np.sum(z_hint * y, axis=-1, keepdims=True) * y)
    return np.stack([np.cross(y, z), y, z], axis=-1)


def _level_frame(forward: np.ndarray) -> np.ndarray:
    """Upright frames whose x is ``forward`` projected on the ground plane."""
    flat = forward * np.array([1.0, 1.0, 0.0])
    return _frame(np.cross(np.broadcast_to(UP, flat.shape), _unit(flat)), np.broadcast_to(UP, flat.shape))


def keypoint_frames(points: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Frames of the pelvis, chest and feet built from keypoint positions (arrays of (..., 3))."""
    frames = {}
    pelvis = _frame(points["left_hip"] - points["right_hip"],
                    points.get("chest", points.get("neck", points["pelvis"] + UP)) - points["pelvis"])
    frames["pelvis"] = pelvis
    if {"left_shoulder", "right_shoulder", "chest", "neck"} <= points.keys():
        frames["chest"] = _frame(points["left_shoulder"] - points["right_shoulder"], points["neck"] - points["chest"])
    for side in ("left", "right"):
        toe = points.get(f"{side}_toe")
        forward = toe - points[f"{side}_ankle"] if toe is not None else pelvis[..., :, 0]
        frames[f"{side}_ankle"] = _level_frame(forward)
    return frames


class Retargeter:
    """Retargets keypoint motions onto one robot (built once, reused for every clip or streamed frame)."""

    def __init__(self, character: Character, config: RetargetConfig | None = None):
        self.character = character
        self.config = config or RetargetConfig()
        pin = PinocchioModel(character)
        self.mapping: RetargetMapping = load_mapping(character, urdf_links(pin))
        links = self.mapping.links
        self.ik = WholeBodyIK(character, [LinkTarget(k.link, k.offset, k.position_weight, k.orientation_weight)
                                          for k in links], regularization=self.config.smoothness,
                              root_regularization=self.config.smoothness / 10, pin=pin)
        self._ground = MujocoBackend(character)  # posed for the floor contacts only (characters meet the floor)
        self._zero = self._standing_qpos()
        points, rotations = self.ik.link_poses(self._zero)
        self._rest_points = {k.keypoint: points[i] for i, k in enumerate(links)}
        self._rest_rotations = {k.keypoint: rotations[i] for i, k in enumerate(links)}
        self._rest_frames = keypoint_frames(self._rest_points)
        self.leg_length = self._leg(self._rest_points)
        # the skeleton over the mapped keypoints: each one's nearest mapped ancestor, parents first
        self._bones = []
        for keypoint in HUMAN_KEYPOINTS:
            if keypoint == "pelvis" or keypoint not in self._rest_points:
                continue
            parent = HUMAN_PARENTS[keypoint]
            while parent not in self._rest_points:
                parent = HUMAN_PARENTS[parent]
            self._bones.append((keypoint, parent))
        self._bone_length = {c: float(np.linalg.norm(self._rest_points[c] - self._rest_points[p]))
                             for c, p in self._bones}
        self.ankle_height = float(np.mean([self._rest_points[f"{s}_ankle"][2] for s in ("left", "right")]))

    # ------------------------------------------------------------- the robot
    def _standing_qpos(self) -> np.ndarray:
        """Zero joint angles (clamped into the limits), upright, soles on the floor."""
        from mimic_sim.backends.mujoco_backend import standing_height

        joints = np.clip(np.zeros(self.character.num_joints), self.character.joint_lower, self.character.joint_upper)
        qpos = np.concatenate([[0.0, 0.0, 0.0], rot.IDENTITY, joints])
        qpos[2] = standing_height(self.character, joints)
        return qpos

    @staticmethod
    def _leg(points: dict[str, np.ndarray]) -> float | np.ndarray:
        lengths = [np.linalg.norm(points[f"{s}_hip"] - points[f"{s}_knee"], axis=-1)
                   + np.linalg.norm(points[f"{s}_knee"] - points[f"{s}_ankle"], axis=-1) for s in ("left", "right")]
        return (lengths[0] + lengths[1]) / 2

    def penetration(self, qpos: np.ndarray) -> float:
        """How deep (m, >= 0) the robot's collision geometry reaches below the floor at a pose."""
        return self._ground.penetration_at(qpos)

    # ------------------------------------------------------------- targets
    def scale_for(self, human: KeypointMotion) -> float:
        if self.mapping.scale is not None:
            return self.mapping.scale
        points = {k: human.positions[:, human.index(k)] for k in self.mapping.keypoints if k in human.names}
        return float(self.leg_length / np.median(self._leg(points)))

    def _check_source(self, names: list[str] | tuple[str, ...], source: str) -> None:
        missing = [k for k in self.mapping.keypoints if k not in names]
        if missing:
            raise RetargetError(f"{source}: lacks keypoints {missing} that {self.mapping.source} maps")

    def _shaped(self, points: dict[str, np.ndarray], scale: float) -> dict[str, np.ndarray]:
        """Mapped keypoints scaled, with the robot's proportions if configured (arrays (T, 3))."""
        points = {k: scale * points[k] for k in self.mapping.keypoints}
        return self._robot_proportions(points) if self.config.match_proportions else points

    def _lift(self, points: dict[str, np.ndarray], standing: float) -> None:
        """Shift so that an ankle at ``standing`` height is at the robot's standing ankle height."""
        if self.config.align_ankle_height:
            for k in points:
                points[k] = points[k] + (self.ankle_height - standing) * UP

    def _planted(self, ankle: np.ndarray, speed: np.ndarray) -> np.ndarray:
        return (ankle[..., 2] < self.ankle_height + self.config.contact_height) & (speed < self.config.contact_speed)

    def _link_targets(self, points: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Per-link target positions (T, K, 3) and rotations (T, K, 3, 3) from prepared keypoints."""
        frames = keypoint_frames(points)
        links = self.mapping.links
        positions = np.stack([points[k.keypoint] for k in links], axis=1)
        rotations = np.broadcast_to(np.eye(3), (*positions.shape[:2], 3, 3)).copy()
        for i, k in enumerate(links):
            if k.orientation_weight > 0 and k.keypoint in frames:
                # the human's frame, then the robot link's rotation relative to that frame at its zero pose
                offset = self._rest_frames[k.keypoint].T @ self._rest_rotations[k.keypoint]
                rotations[:, i] = frames[k.keypoint] @ offset
        return positions, rotations

    def targets(self, human: KeypointMotion, scale: float) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Scaled, contact-corrected target positions (T, K, 3), rotations (T, K, 3, 3) and planted masks."""
        self._check_source(human.names, human.source)
        points = self._shaped({k: human.positions[:, human.index(k)] for k in self.mapping.keypoints}, scale)
        ankles = np.stack([points["left_ankle"][:, 2], points["right_ankle"][:, 2]])
        self._lift(points, float(np.percentile(ankles, 10)))  # the planted height, robust to a stray low frame
        contacts = {}
        dt = np.gradient(human.times)
        for side in ("left", "right"):
            ankle = points[f"{side}_ankle"]
            planted = self._planted(ankle, np.linalg.norm(np.gradient(ankle[:, :2], axis=0), axis=1) / dt)
            if self.config.hold_contacts:
                self._hold_runs(points, side, planted)
            contacts[side] = planted
        return (*self._link_targets(points), contacts)

    def _robot_proportions(self, points: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The (scaled) human with the robot's proportions, from the pelvis out.

        Points fixed to the pelvis or the chest (hips, chest, neck, shoulders) take the robot's
        offsets turned by the human's pelvis or chest frame: their directions differ between
        bodies (a robot's hip joints sit well below its pelvis origin).  Limb bones keep the
        human's direction and take the robot's length.
        """
        human_frames = keypoint_frames(points)
        out = {"pelvis": points["pelvis"]}
        for child, parent in self._bones:
            if parent in human_frames and child in TORSO_POINTS:
                turn = human_frames[parent] @ self._rest_frames[parent].T
                out[child] = out[parent] + turn @ (self._rest_points[child] - self._rest_points[parent])
            else:
                out[child] = out[parent] + _unit(points[child] - points[parent]) * self._bone_length[child]
        return out

    def _hold_runs(self, points: dict[str, np.ndarray], side: str, planted: np.ndarray) -> None:
        """Hold the foot's keypoints still over each planted run (mean position, standing height)."""
        edges = np.flatnonzero(np.diff(np.concatenate([[0], planted.astype(int), [0]])))
        names = [k for k in (f"{side}_ankle", f"{side}_toe") if k in points]
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            for name in names:
                run = points[name][start:stop]
                held = run.mean(axis=0)
                if name.endswith("_ankle"):
                    held[2] = self.ankle_height
                run[:] = held

    # ------------------------------------------------------------------ solve
    def _first_frame(self, positions: np.ndarray, rotations: np.ndarray) -> tuple[np.ndarray, float]:
        """The first frame and its cost, from the zero pose placed at the pelvis target, and from the same
        with joints bent a third of the way into ranges that end near zero (elbows, knees): zero leaves
        such a limb straight, on the wrong side of its only bend."""
        start = self._zero.copy()
        pelvis = self.mapping.keypoints.index("pelvis")
        start[:3] = positions[pelvis]
        start[3:7] = rot.mat_to_quat(rotations[pelvis] @ self._rest_rotations["pelvis"].T)
        lower, upper = self.character.joint_lower, self.character.joint_upper
        one_sided = np.where(np.abs(lower) < 0.5 * np.abs(upper), lower + (upper - lower) / 3,
                             np.where(np.abs(upper) < 0.5 * np.abs(lower), upper - (upper - lower) / 3, 0.0))
        best, best_cost = None, np.inf
        for joints in (start[7:], np.clip(one_sided, lower, upper)):
            guess = start.copy()
            guess[7:] = joints
            q = self.ik.solve(guess, positions, rotations, reference=guess,
                              iterations=self.config.first_frame_iterations, tolerance=1e-4)
            cost = self.ik.cost(q, positions, rotations)
            if cost < best_cost:
                best, best_cost = q, cost
        return best, best_cost

    def _next_frame(self, previous: np.ndarray, before: np.ndarray | None, positions: np.ndarray,
                    rotations: np.ndarray, previous_cost: float) -> tuple[np.ndarray, float]:
        """A frame's solution and cost, from the last two frames' solutions and the last cost."""
        cfg = self.config
        guess = previous.copy()
        if before is not None:  # constant-velocity extrapolation (the root quaternion is renormalized)
            guess = 2 * previous - before
            guess[3:7] = rot.quat_normalize(guess[3:7])
            guess[7:] = np.clip(guess[7:], self.character.joint_lower, self.character.joint_upper)
        q = self.ik.solve(guess, positions, rotations, iterations=cfg.iterations, tolerance=cfg.tolerance)
        cost = self.ik.last_cost
        if cost > 2.0 * previous_cost + 1e-4:
            # A jump in the error: the extrapolation led into another branch (a limb swinging through
            # a straight, singular pose).  Retry from the previous frame, first held near it (a strong
            # pull keeps the limbs on its branch), then free, and keep the better.
            retry = self.ik.solve(previous, positions, rotations, iterations=2 * cfg.iterations, pull=100.0)
            retry = self.ik.solve(retry, positions, rotations, iterations=2 * cfg.iterations)
            if self.ik.last_cost < cost:
                q, cost = retry, self.ik.last_cost
        return q, cost

    def retarget(self, human: KeypointMotion, name: str = "clip", progress: Callable[[int], None] | None = None,
                 report: bool = True) -> RetargetResult:
        """The robot clip for a keypoint motion; ``report`` adds the quality figures (:meth:`report`)."""
        scale = self.scale_for(human)
        positions, rotations, contacts = self.targets(human, scale)
        cfg = self.config
        n = human.num_frames
        qpos = np.zeros((n, 7 + self.character.num_joints))
        qpos[0], cost = self._first_frame(positions[0], rotations[0])
        self._solve_frames(qpos, positions, rotations, cost, 1, progress)
        if cfg.loop and n > 2:
            # Where the targets leave a joint free (an elbow's twist while the arm is straight), a frame
            # keeps the value it was reached with, so the first frame's, found from the zero pose, need
            # not match the last's: Atlas's walk wrapped with an elbow twisting by 3.1 rad in one frame.
            # A second round from the end of the first continues the clip across its wrap.
            first = qpos.copy()
            previous, before = first[-1].copy(), first[-2].copy()
            previous[:3] = before[:3] = first[0, :3]  # the root where the clip starts, not where it ends
            qpos[0], cost = self._next_frame(previous, before, positions[0], rotations[0], cost)
            self._solve_frames(qpos, positions, rotations, cost, 1, None)
        if cfg.ground_clearance:
            for t in range(n):
                qpos[t, 2] += self.penetration(qpos[t])
        motion = Motion(name=name, frame_times=human.times - human.times[0], root_pos=qpos[:, :3],
                        root_rot=qpos[:, 3:7], joints={j: qpos[:, 7 + i] for i, j in
                                                       enumerate(self.character.joint_names)},
                        loop=cfg.loop, source=f"{human.source} retargeted onto {self.character.name}",
                        close_loop=False)
        result = RetargetResult(motion, qpos, scale, contacts)
        if report:
            result.report = self.report(result, positions)
        return result

    def _solve_frames(self, qpos: np.ndarray, positions: np.ndarray, rotations: np.ndarray, cost: float,
                      start: int, progress: Callable[[int], None] | None) -> None:
        """Solve frames ``start`` on into ``qpos``, each from the two before it."""
        for t in range(start, len(qpos)):
            qpos[t], cost = self._next_frame(qpos[t - 1], qpos[t - 2] if t >= 2 else None, positions[t],
                                             rotations[t], cost)
            if progress is not None:
                progress(1)

    # ----------------------------------------------------------------- report
    def report(self, result: RetargetResult, targets: np.ndarray) -> dict:
        """Quality figures of a retargeted clip (mm where lengths)."""
        qpos = result.qpos
        reached = np.stack([self.ik.link_poses(q)[0] for q in qpos])
        weighted = np.array([k.position_weight > 0 for k in self.mapping.links])
        error = np.linalg.norm(reached - targets, axis=-1)[:, weighted]
        joints = qpos[:, 7:]
        violations = int(((joints < self.character.joint_lower - 1e-9) | (joints > self.character.joint_upper + 1e-9))
                         .sum())
        depth = max(self.penetration(q) for q in qpos)
        skating = []
        for side, planted in result.contacts.items():
            ankle = reached[:, self.mapping.keypoints.index(f"{side}_ankle"), :2]
            both = planted[1:] & planted[:-1]
            skating.extend(np.linalg.norm(np.diff(ankle, axis=0), axis=1)[both])
        return {
            "frames": len(qpos),
            "scale": result.scale,
            "keypoint_error_mean_mm": float(error.mean() * 1e3),
            "keypoint_error_max_mm": float(error.max() * 1e3),
            "joint_limit_violations": violations,
            "foot_skating_mm_per_contact_frame": float(np.mean(skating) * 1e3) if skating else 0.0,
            "contact_frames": int(sum(int(p.sum()) for p in result.contacts.values())),
            "ground_penetration_max_mm": depth * 1e3,
            "self_collision_frames": self.self_collision_frames(qpos),
        }

    def self_collision_frames(self, qpos: np.ndarray) -> int:
        """Frames in which collision geometry of two robot bodies overlaps.

        Pairs that touch by construction are left out: bodies at most ``NEAR_LINKS`` links
        apart in the kinematic tree (a hip's three hinge links and the pelvis, a waist's
        links and the torso) and pairs that already overlap at the zero pose.  What is
        counted is limb against limb or against the trunk.
        """
        bodies = MujocoBackend(self.character, SimConfig(self_collision=True))
        model = bodies.model
        floor = model.geom(FLOOR).id

        def ancestors(body: int) -> list[int]:
            chain = [body]
            while chain[-1] > 0:
                chain.append(int(model.body_parentid[chain[-1]]))
            return chain

        def links_apart(a: int, b: int) -> int:
            up_a, up_b = ancestors(a), ancestors(b)
            common = next(x for x in up_a if x in up_b)
            return up_a.index(common) + up_b.index(common)

        def touching(qpos: np.ndarray) -> set[tuple[int, int]]:
            data = bodies.pose(qpos)
            mujoco.mj_collision(model, data)
            pairs = set()
            for geoms, dist in zip(data.contact.geom[: data.ncon], data.contact.dist[: data.ncon], strict=True):
                if floor in geoms or dist >= 0:
                    continue
                a, b = sorted(int(model.geom_bodyid[g]) for g in geoms)
                if links_apart(a, b) > NEAR_LINKS:
                    pairs.add((a, b))
            return pairs

        at_rest = touching(self._zero)
        return sum(bool(touching(q) - at_rest) for q in qpos)


class StreamingRetargeter:
    """Retargets a live pose stream frame by frame, causally (what ``retarget_node`` runs).

    The same steps as :meth:`Retargeter.retarget`, each made causal: the scale (unless the
    map or ``scale`` fixes it) and the standing ankle height come from the first frame, so
    a stream should start with the person standing; a foot is held where it was planted
    (not at its run's mean, which needs the future); velocities are backward differences.
    """

    def __init__(self, retargeter: Retargeter, scale: float | None = None):
        self.retargeter = retargeter
        self.fixed_scale = scale if scale is not None else retargeter.mapping.scale
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next frame is a first frame again."""
        self.scale: float | None = self.fixed_scale
        self._standing: float | None = None
        self._last: tuple[float, dict[str, np.ndarray]] | None = None
        self._held: dict[str, dict[str, np.ndarray]] = {}
        self._qpos: list[np.ndarray] = []
        self._cost = np.inf
        self._order: tuple[tuple[str, ...], np.ndarray] | None = None

    def _indices(self, names: Sequence[str], source: str) -> np.ndarray:
        names = tuple(names)
        if self._order is None or self._order[0] != names:
            self.retargeter._check_source(names, source)
            self._order = (names, np.array([names.index(k) for k in self.retargeter.mapping.keypoints]))
        return self._order[1]

    def step(self, time: float, names: Sequence[str], positions: np.ndarray,
             source: str = "stream") -> tuple[np.ndarray, np.ndarray]:
        """(qpos, qvel) of the robot for one human frame at ``time`` (s); keypoints joined by name."""
        r = self.retargeter
        positions = np.asarray(positions, dtype=float)
        if positions.shape != (len(names), 3) or not np.isfinite(positions).all():
            raise RetargetError(f"{source}: a frame needs finite (x, y, z) for each of its {len(names)} names, "
                                f"got shape {positions.shape}")
        index = self._indices(names, source)
        raw = {k: positions[i][None] for k, i in zip(r.mapping.keypoints, index, strict=True)}
        if self.scale is None:
            self.scale = float(r.leg_length / r._leg(raw)[0])
        points = r._shaped(raw, self.scale)
        if self._standing is None:
            self._standing = float(min(points["left_ankle"][0, 2], points["right_ankle"][0, 2]))
        r._lift(points, self._standing)
        unheld = {k: v.copy() for k, v in points.items()}  # where the feet are, for their speed next frame
        self._hold(time, points)
        targets, rotations = (a[0] for a in r._link_targets(points))
        if not self._qpos:
            q, self._cost = r._first_frame(targets, rotations)
        else:
            before = self._qpos[-2] if len(self._qpos) >= 2 else None
            q, self._cost = r._next_frame(self._qpos[-1], before, targets, rotations, self._cost)
        if r.config.ground_clearance:
            q[2] += r.penetration(q)
        qvel = np.zeros(6 + r.character.num_joints)
        if self._qpos and self._last is not None and time > self._last[0]:
            dt = time - self._last[0]
            previous = self._qpos[-1]
            qvel[:3] = (q[:3] - previous[:3]) / dt
            qvel[3:6] = rot.quat_to_rotvec(rot.quat_mul(q[3:7], rot.quat_conj(previous[3:7]))) / dt
            qvel[6:] = (q[7:] - previous[7:]) / dt
        self._qpos = [*self._qpos[-1:], q]
        self._last = (time, unheld)
        return q, qvel

    def _hold(self, time: float, points: dict[str, np.ndarray]) -> None:
        """Hold each planted foot where it touched down (standing height), until it lifts or moves off."""
        r = self.retargeter
        for side in ("left", "right"):
            ankle = points[f"{side}_ankle"][0]
            speed = 0.0
            if self._last is not None and time > self._last[0]:
                moved = ankle[:2] - self._last[1][f"{side}_ankle"][0, :2]
                speed = float(np.linalg.norm(moved) / (time - self._last[0]))
            if not (r.config.hold_contacts and r._planted(ankle, np.float64(speed))):
                self._held.pop(side, None)
                continue
            names = [k for k in (f"{side}_ankle", f"{side}_toe") if k in points]
            if side not in self._held:
                held = {k: points[k][0].copy() for k in names}
                held[f"{side}_ankle"][2] = r.ankle_height
                self._held[side] = held
            for k in names:
                points[k] = self._held[side][k][None].copy()
