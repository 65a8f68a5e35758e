"""mimic video: pose tracks and their files, OpenPose input, MediaPipe on a rendered clip, and
reconstruction against the known ground truth of a shipped clip seen through a known camera."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
from video_helpers import render_walk

from mimic_retarget.human import keypoints_from_clip
from mimic_retarget.pose_track import TRACK_KEYPOINTS, PoseTrack, PoseTrackError, read_openpose
from mimic_retarget.reconstruction import (
    SOLE_POINTS,
    Camera,
    HumanoidKinematics,
    ReconstructionConfig,
    angular_momentum_drift,
    com_dynamics_error,
    drop_collapsed,
    reconstruct,
    repair_swaps,
    root_angular_speed,
)
from mimic_sim import rotations as rot
from mimic_sim.backends import make_backend
from mimic_sim.character import load_character
from mimic_sim.motion_file import load_clip, load_motion
from mimic_sim.reference import ReferenceMotion

CAMERA = Camera(1000.0, 1.3, float(np.radians(8.0)), (1280, 720))
KNOWN = {"focal": CAMERA.focal, "camera_height": CAMERA.height, "camera_pitch": CAMERA.pitch}


@pytest.fixture(scope="module")
def truth() -> tuple[np.ndarray, np.ndarray]:
    """Times and world keypoints (T, K, 3) of the walk turned to cross the view 5 m in front of the camera."""
    return clip_truth("walk")


def clip_truth(clip: str) -> tuple[np.ndarray, np.ndarray]:
    """Times and world keypoints (T, K, 3) of a shipped clip turned to cross the view 5 m in front of the camera."""
    character = load_character("humanoid")
    kin = HumanoidKinematics(character)
    motion = load_clip(clip)
    times = np.arange(0.0, motion.duration, 1 / 30)
    qpos, _ = ReferenceMotion(motion, character).states(times)
    yaw = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    root = (qpos[:, :3] - [qpos[0, 0], qpos[0, 1], 0.0]) @ yaw.T + [5.0, -0.5, 0.0]
    points = kin.points(torch.tensor(root), torch.tensor(yaw @ rot.quat_to_mat(qpos[:, 3:7])),
                        torch.tensor(qpos[:, 7:]), list(TRACK_KEYPOINTS))
    return times, points.numpy()


def synthetic_track(times: np.ndarray, points: np.ndarray, seed: int = 0) -> PoseTrack:
    """What an estimator would report: projected points with 2 px noise, hip-relative 3D with 3 cm noise."""
    rng = np.random.default_rng(seed)
    names = list(TRACK_KEYPOINTS)
    hips = points[:, [names.index("left_hip"), names.index("right_hip")]].mean(axis=1, keepdims=True)
    return PoseTrack(names, times, CAMERA.project(points) + rng.normal(0.0, 2.0, (*points.shape[:2], 2)),
                     np.full(points.shape[:2], 0.9), CAMERA.image_size,
                     (points - hips) @ CAMERA.rotation().T + rng.normal(0.0, 0.03, points.shape), "synthetic")


def errors_mm(estimate: np.ndarray, truth: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mean keypoint error: in the world, and relative to the hips' midpoint (MPJPE)."""
    hips = [names.index("left_hip"), names.index("right_hip")]
    relative = (estimate - estimate[:, hips].mean(1, keepdims=True)) - (truth - truth[:, hips].mean(1, keepdims=True))
    return (1000 * np.linalg.norm(estimate - truth, axis=-1).mean(1),
            1000 * np.linalg.norm(relative, axis=-1).mean(1))


def test_reconstruction_repairs_a_swap_and_a_dropped_frame(truth, tmp_path):
    times, points = truth
    track = synthetic_track(times, points)
    names = track.names
    legs = [names.index(f"{s}_{p}") for s in ("left", "right") for p in ("hip", "knee", "ankle", "toe")]
    swapped, world = track.points.copy(), track.world.copy()
    swapped[10:13, legs] = track.points[10:13, legs[4:] + legs[:4]]  # the estimator mixes up the legs
    world[10:13, legs] = track.world[10:13, legs[4:] + legs[:4]]
    confidence = track.confidence.copy()
    confidence[20] = 0.0  # and misses the person in frame 20
    # frames 5 and 6 came from the second pass: the report counts them
    broken = track.replace(points=swapped, world=world, confidence=confidence,
                           redetected=np.isin(np.arange(len(times)), [5, 6]))
    repaired, swaps = repair_swaps(broken)
    assert swaps == 3
    np.testing.assert_allclose(repaired.points[10:13, legs], track.points[10:13, legs])

    result = reconstruct(broken, ReconstructionConfig(**KNOWN))
    world, relative = errors_mm(result.points, points, names)
    assert world.mean() < 50 and relative.mean() < 40, (world.mean(), relative.mean())
    assert world[20] < 60 and world[10:13].max() < 60, (world[20], world[10:13])
    report = result.report
    assert report["left_right_swaps_repaired"] == 3 and report["frames_filled"] == 1
    assert report["frames_redetected"] == 2
    assert report["detection_rate"] == pytest.approx(37 / 38)
    assert report["reprojection_error_px"] < 4 and report["ground_penetration_mm"] < 20
    # The clip plays on the humanoid as reconstructed: its keypoints (Pinocchio, through the motion file)
    # are the optimization's.
    clip = tmp_path / "walk.motion.json"
    from mimic_sim.motion_file import save_motion

    save_motion(result.motion, clip, character="humanoid")
    played = keypoints_from_clip(clip)
    np.testing.assert_allclose(played.positions[:, [played.index(n) for n in names]], result.points, atol=1e-6)


def test_the_lift_stage_starts_a_cartwheel_from_the_estimators_own_pose():
    """Started from the rest pose, the pose stage left the inverted body's limbs in wrong basins (this
    synthetic cartwheel: 39 mm root-relative on average, 132 mm in its worst frame); fitted first to the
    estimator's 3D bone directions alone (the lift stage), 18 and 37 mm."""
    times, points = clip_truth("cartwheel")
    track = synthetic_track(times, points)
    result = reconstruct(track, ReconstructionConfig(**KNOWN))
    _, relative = errors_mm(result.points, points, track.names)
    assert relative.mean() < 25 and relative.max() < 60, (relative.mean(), relative.max())


def test_the_lift_stage_leaves_a_bone_the_estimator_is_unsure_of_at_rest(truth):
    """The estimator guesses a hidden arm raised toward the camera, at confidence 0.5: the lift stage alone
    (no pixel, no floor) leaves it hanging at rest, the upper arm's length under the shoulder, unless
    told to trust bones that unsure (then it raises it as guessed)."""
    times, points = truth
    track = synthetic_track(times, points)
    shoulder, elbow, wrist = (track.index(f"right_{n}") for n in ("shoulder", "elbow", "wrist"))
    world, confidence = track.world.copy(), track.confidence.copy()
    world[:, elbow] = world[:, shoulder] + [0.0, -0.05, -0.28]  # camera axes: a little up, toward the camera
    world[:, wrist] = world[:, shoulder] + [0.0, -0.10, -0.52]
    confidence[:, [elbow, wrist]] = 0.5
    guessed = track.replace(world=world, confidence=confidence)
    drop = {}
    for threshold in (0.7, 0.0):
        config = ReconstructionConfig(**KNOWN, pose_iterations=0, full_iterations=0, lift_confidence=threshold)
        lifted = reconstruct(guessed, config).points
        drop[threshold] = lifted[:, shoulder, 2] - lifted[:, elbow, 2]  # how far the elbow hangs below
    assert drop[0.7].mean() > 0.2 and drop[0.7].min() > 0.05, drop[0.7]
    assert drop[0.0].max() < 0.0, drop[0.0]
    assert ReconstructionConfig().iterations(guessed) == 950
    assert ReconstructionConfig().iterations(guessed.replace(world=None)) == 750


def collapse_trunk(track: PoseTrack, frames: slice) -> PoseTrack:
    """The estimator's failure on a flip's landing: the shoulders and the head drawn onto the middle of the
    hips, in 2D and 3D, with the confidence unchanged."""
    points, world = track.points.copy(), track.world.copy()
    for arr in (points, world):
        middle = arr[frames][:, [track.index("left_hip"), track.index("right_hip")]].mean(axis=1)
        for name in ("left_shoulder", "right_shoulder", "head"):
            arr[frames, track.index(name)] = middle
    return track.replace(points=points, world=world)


def test_a_collapsed_skeleton_is_dropped(truth):
    """Points most of whose bones the estimator's own 3D shrank or stretched are dropped, in those frames
    only; the reconstruction then follows the clip there instead of the collapsed body."""
    times, points = truth
    clean = synthetic_track(times, points)
    _, none = drop_collapsed(clean)
    assert none == 0  # 3 cm noise on every landmark is no collapse
    broken = collapse_trunk(clean, slice(14, 19))
    repaired, dropped = drop_collapsed(broken)
    gone = (broken.confidence > 0) & (repaired.confidence == 0)
    trunk = [broken.index(n) for n in ("left_shoulder", "right_shoulder", "head")]
    assert gone[14:19][:, trunk].all() and dropped == 15, dropped
    assert not gone[:14].any() and not gone[19:].any()

    results = [reconstruct(broken, ReconstructionConfig(**KNOWN, collapse_ratio=r)) for r in (0.0, 0.6)]
    world = [errors_mm(r.points, points, list(TRACK_KEYPOINTS))[0][14:19].mean() for r in results]
    assert results[1].report["collapsed_points_dropped"] == 15
    assert world[1] < 0.75 * world[0], world


def test_the_reconstructions_centre_of_mass_is_mujocos():
    """The dynamics term's centre of mass (the model's inertias through the torch kinematics) is the
    one MuJoCo simulates, over a backflip's poses."""
    character = load_character("humanoid")
    motion = load_clip("backflip")
    qpos, qvel = ReferenceMotion(motion, character).states(np.arange(0.0, motion.duration, 0.1))
    com = HumanoidKinematics(character).points(torch.tensor(qpos[:, :3]), torch.tensor(rot.quat_to_mat(qpos[:, 3:7])),
                                                torch.tensor(qpos[:, 7:]), [], with_com=True)[:, -1]
    backend = make_backend("mujoco", character)
    np.testing.assert_allclose(com.numpy(), [backend.kinematics(p, v).com for p, v in zip(qpos, qvel, strict=True)],
                               atol=1e-6)
    backend.close()


@pytest.mark.parametrize("clip", ["run", "spinkick"])
def test_the_reconstructions_sole_points_are_where_mujocos_feet_meet_the_floor(clip):
    """The ground terms hold the sole points above the floor: over the poses of clips whose feet dip
    into it (2-7 cm; on an edge, a corner or flat), the lowest sole point is as deep as MuJoCo finds
    the feet's collision geometry, and no deeper than it where the feet are clear."""
    character = load_character("humanoid")
    motion = load_clip(clip)
    qpos, qvel = ReferenceMotion(motion, character).states(np.arange(0.0, motion.duration, 1 / 60))
    points = HumanoidKinematics(character).points(torch.tensor(qpos[:, :3]),
                                                  torch.tensor(rot.quat_to_mat(qpos[:, 3:7])),
                                                  torch.tensor(qpos[:, 7:]), list(SOLE_POINTS)).numpy()
    lowest = points[..., 2].min(axis=1)
    backend = make_backend("mujoco", character)
    feet = {backend.model.body(f"{side}_ankle").id for side in ("left", "right")}
    depths = []
    for q, v in zip(qpos, qvel, strict=True):
        backend.reset(q, v)
        contacts = backend.data.contact
        on_feet = np.isin(backend.model.geom_bodyid[contacts.geom], list(feet)).any(axis=1)
        depths.append(max(0.0, -contacts.dist[on_feet].min()) if on_feet.any() else 0.0)
    depths = np.array(depths)
    below = depths > 0
    assert below.sum() >= 5 and depths.max() > 0.02, (below.sum(), depths.max())
    np.testing.assert_allclose(-lowest[below], depths[below], atol=1e-6)
    assert (lowest[~below] >= -1e-6).all()


def test_the_reconstructions_angular_momentum_is_mujocos():
    """The angular momentum term's (finite differences of the torch kinematics, the model's inertias)
    is the one MuJoCo computes for the same motion: a backflip's mid-air pose with every joint, the
    root's position and its orientation moving at constant rates, compared at a step's middle."""
    character = load_character("humanoid")
    kin = HumanoidKinematics(character)
    qpos0, _ = ReferenceMotion(load_clip("backflip"), character).state(0.85)
    rng = np.random.default_rng(0)
    rates = rng.normal(0.0, 3.0, character.num_joints)
    lin, omega = np.array([0.5, -0.2, 1.0]), np.array([1.0, -6.0, 2.0])
    dt = 1e-3
    times = np.array([0.0, dt])

    def qpos(t: float) -> np.ndarray:
        turn = rot.axis_angle_quat(omega / np.linalg.norm(omega), np.linalg.norm(omega) * t)
        return np.concatenate([qpos0[:3] + lin * t, rot.quat_mul(turn, qpos0[3:7]), qpos0[7:] + rates * t])

    states = np.array([qpos(t) for t in times])
    momentum = kin.angular_momentum(torch.tensor(states[:, :3]), torch.tensor(rot.quat_to_mat(states[:, 3:7])),
                                    torch.tensor(states[:, 7:]), dt)[0].numpy()
    backend = make_backend("mujoco", character)
    backend.reset(qpos(dt / 2), np.concatenate([lin, omega, rates]))
    mujoco.mj_forward(backend.model, backend.data)
    mujoco.mj_subtreeVel(backend.model, backend.data)
    expected = backend.data.subtree_angmom[1] / backend.model.body_subtreemass[1]
    backend.close()
    assert np.linalg.norm(expected) > 0.5  # a flip's spin: the comparison is not of two zeros
    np.testing.assert_allclose(momentum, expected, atol=1e-4)


def test_angular_momentum_drift_of_known_histories():
    """Held angular momentum costs nothing in the air, a changing one costs its rate there and nothing on
    the floor (whose push can change it)."""
    dt = 1 / 30
    steps = torch.arange(9, dtype=torch.float64)[:, None]
    held, ramp = torch.tensor([[0.0, -1.5, 0.2]]).repeat(9, 1), steps * torch.tensor([[0.0, 0.3, 0.4]])
    air, floor = torch.zeros(10), torch.ones(10)
    np.testing.assert_allclose(angular_momentum_drift(held, air, dt).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(angular_momentum_drift(ramp, air, dt).numpy(), 0.5 / dt, atol=1e-5)
    np.testing.assert_allclose(angular_momentum_drift(ramp, floor, dt).numpy(), 0, atol=1e-5)
    touch = air.clone()
    touch[5] = 1.0
    np.testing.assert_allclose(angular_momentum_drift(ramp, touch, dt).numpy(), [15] * 3 + [0] * 3 + [15] * 2,
                               atol=1e-5)


def test_centre_of_mass_dynamics_error_of_known_trajectories():
    """Free fall costs nothing in the air, hovering there costs g; on the floor standing, being pushed up
    and accelerating within friction cost nothing, falling faster than gravity or sliding beyond
    friction costs the excess."""
    dt = 1 / 30
    t = torch.arange(10, dtype=torch.float64) * dt

    def error(horizontal: float, vertical: float, supported: torch.Tensor, friction: float = 1.0) -> np.ndarray:
        com = torch.stack([0.5 * horizontal * t**2, 0 * t, 1 + 0.5 * vertical * t**2], dim=1)
        return com_dynamics_error(com, supported, dt, friction).numpy()

    air, floor = torch.zeros(10), torch.ones(10)
    np.testing.assert_allclose(error(0, -9.81, air), 0, atol=1e-5)
    np.testing.assert_allclose(error(0, 0, air), 9.81, atol=1e-5)
    np.testing.assert_allclose(error(0, 0, floor), 0, atol=1e-5)
    np.testing.assert_allclose(error(0, 5, floor), 0, atol=1e-5)
    np.testing.assert_allclose(error(0, -15, floor), 15 - 9.81, atol=1e-5)
    np.testing.assert_allclose(error(3, 0, floor, friction=0.2), 3 - 0.2 * 9.81, atol=1e-5)
    touch = air.clone()
    touch[5] = 1.0  # a frame on the floor: the accelerations that use it are not flight
    np.testing.assert_allclose(error(0, 0, touch), [9.81] * 3 + [0] * 3 + [9.81] * 2, atol=1e-5)


def test_the_dynamics_term_makes_a_jumps_flight_ballistic():
    """A jump reconstructed from noisy estimates: with the dynamics term its centre of mass moves as
    gravity and the floor allow (a fraction of the error without it), the pose as close to the truth."""
    times, points = clip_truth("jump")
    track = synthetic_track(times, points)
    results = [reconstruct(track, ReconstructionConfig(**KNOWN, dynamics=weight)) for weight in (0.0, 1.0)]
    without, with_term = (r.report["com_dynamics_error_m_s2"] for r in results)
    relative = [errors_mm(r.points, points, list(TRACK_KEYPOINTS))[1].mean() for r in results]
    assert with_term < 0.5 * without, (without, with_term)
    assert relative[1] < relative[0] + 10, relative


def test_the_angular_momentum_term_holds_a_flips_spin_in_the_air():
    """The backflip's flight (0.6-1.2 s) reconstructed from noisy estimates: with the angular momentum term
    the body's spin changes less while nothing touches it, the pose about as close to the truth."""
    times, points = clip_truth("backflip")
    keep = (times >= 0.6) & (times < 1.2)
    track = synthetic_track(times[keep], points[keep])
    results = [reconstruct(track, ReconstructionConfig(**KNOWN, angular_momentum=weight)) for weight in (0.0, 1.0)]
    without, with_term = (r.report["flight_angular_momentum_drift_m2_s2"] for r in results)
    relative = [errors_mm(r.points, points[keep], list(TRACK_KEYPOINTS))[1].mean() for r in results]
    assert results[1].report["objective"]["angular_momentum"] > 0
    assert with_term < 0.8 * without, (without, with_term)
    assert relative[1] < relative[0] + 10, relative


def test_reconstruction_estimates_the_camera(truth):
    times, points = truth
    result = reconstruct(synthetic_track(times, points, seed=1))
    assert torch.get_default_dtype() == torch.float32  # its float64 stays inside (networks use float32)
    _, relative = errors_mm(result.points, points, list(TRACK_KEYPOINTS))
    camera = result.report["camera"]
    assert relative.mean() < 60, relative.mean()
    assert abs(camera["pitch_deg"] - 8.0) < 3.0, camera
    assert result.report["reprojection_error_px"] < 5


def test_keypoint_file_round_trip_and_bad_input(truth, tmp_path):
    times, points = truth
    track = synthetic_track(times, points)
    path = track.save(tmp_path / "walk.pose.json", video="walk.mp4")
    back = PoseTrack.load(path)
    assert back.names == track.names and back.estimator == "synthetic"
    np.testing.assert_allclose(back.points, track.points, atol=1e-3)
    np.testing.assert_allclose(back.world, track.world, atol=1e-5)

    assert back.redetected is None  # no second pass ran
    marked = track.replace(redetected=np.isin(np.arange(len(times)), [4, 5, 20]))
    again = PoseTrack.load(marked.save(tmp_path / "marked.pose.json"))
    assert list(np.flatnonzero(again.redetected)) == [4, 5, 20]
    assert list(np.flatnonzero(again.segment(0.1, 0.5).redetected)) == [1, 2]  # frames 3-14 of the clip
    data = json.loads((tmp_path / "marked.pose.json").read_text())
    for bad, why in (([4, len(times)], f"frame {len(times)} is not among the {len(times)} frames"),
                     ("4", "must be a list of frame numbers"), ([True], "must be a list of frame numbers")):
        (tmp_path / "bad.pose.json").write_text(json.dumps({**data, "redetected_frames": bad}))
        with pytest.raises(PoseTrackError, match=rf"bad.pose.json: field 'redetected_frames'.*{why}"):
            PoseTrack.load(tmp_path / "bad.pose.json")

    data = json.loads(path.read_text())
    del data["frames"][3]["points"]
    (tmp_path / "missing.pose.json").write_text(json.dumps(data))
    with pytest.raises(PoseTrackError, match=r"missing.pose.json: frame 3: field 'points' is missing"):
        PoseTrack.load(tmp_path / "missing.pose.json")
    data = json.loads(path.read_text())
    data["frames"][5]["points"][2][0] = float("nan")
    (tmp_path / "nan.pose.json").write_text(json.dumps(data))
    with pytest.raises(PoseTrackError, match=r"nan.pose.json: frame 5: field 'points' is NaN"):
        PoseTrack.load(tmp_path / "nan.pose.json")


def test_a_segment_of_a_track_and_bad_segments(truth, tmp_path):
    from mimic_retarget.pose_estimation import load_track

    times, points = truth
    path = synthetic_track(times, points).save(tmp_path / "walk.pose.json")
    part = load_track(path, start=0.2, end=0.5)
    np.testing.assert_allclose(part.times, times[6:15])  # frames at 0.2 s up to (not with) 0.5 s, times kept
    np.testing.assert_allclose(part.points, PoseTrack.load(path).points[6:15])
    with pytest.raises(PoseTrackError, match=r"walk.pose.json: 0 frame\(s\) from 9.0 s"):
        load_track(path, start=9.0)
    with pytest.raises(PoseTrackError, match=r"walk.pose.json: end 0.1 s must be after start 0.2 s"):
        load_track(path, start=0.2, end=0.1)
    with pytest.raises(PoseTrackError, match=r"walk.pose.json: a region picks the person .* a video only"):
        load_track(path, region=(0, 0, 10, 10))


def test_root_angular_speed_of_known_turns():
    """A pelvis turning at 2 rad/s about the vertical, one frame twisted 0.3 rad about its forward axis: the
    median is the turn rate, the largest the twist's jump in and out of that frame."""
    times = np.arange(30) / 30.0
    rots = rot.quat_to_mat(rot.quat_from_euler(np.stack([np.zeros(30), np.zeros(30), 2.0 * times], 1), "xyz"))
    speed = root_angular_speed(rots, times)
    assert speed["root_angular_speed_median_rad_s"] == pytest.approx(2.0)
    assert speed["root_angular_speed_max_rad_s"] == pytest.approx(2.0)
    rots[10] = rots[10] @ rot.quat_to_mat(rot.quat_from_euler(np.array([[0.3, 0.0, 0.0]]), "xyz"))[0]
    speed = root_angular_speed(rots, times)
    assert speed["root_angular_speed_median_rad_s"] == pytest.approx(2.0)
    assert speed["root_angular_speed_max_rad_s"] > 0.3 * 30 * 0.99


def test_openpose_json(tmp_path):
    folder = tmp_path / "openpose"
    folder.mkdir()
    body = np.zeros((25, 3))
    body[:, 0], body[:, 1], body[:, 2] = np.arange(25) * 10.0, 100.0, 0.8
    body[18] = (200.0, 80.0, 0.5)  # left ear
    for frame, people in ((0, [{"pose_keypoints_2d": body.ravel().tolist()}]), (1, []),
                          (2, [{"pose_keypoints_2d": body.ravel().tolist()}])):
        (folder / f"clip_{frame:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    track = read_openpose(folder, (640, 480), 30.0)
    assert track.estimator == "openpose" and track.names == list(TRACK_KEYPOINTS)
    assert track.detected.tolist() == [True, False, True]
    np.testing.assert_allclose(track.times, [0.0, 1 / 30, 2 / 30])
    head = track.index("head")
    np.testing.assert_allclose(track.points[0, head], [(170.0 + 200.0) / 2, 90.0])  # the ears' midpoint
    assert track.confidence[0, head] == pytest.approx(0.5)
    np.testing.assert_allclose(track.points[2, track.index("left_toe")], [190.0, 100.0])  # LBigToe
    np.testing.assert_allclose(track.points[2, track.index("right_hip")], [90.0, 100.0])  # RHip
    (folder / "clip_000000000003_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [1, 2]}]}))
    with pytest.raises(PoseTrackError, match=r"clip_000000000003_keypoints.json: field 'pose_keypoints_2d' has 2"):
        read_openpose(folder, (640, 480), 30.0)


@pytest.fixture(scope="module")
def rendered_walk(tmp_path_factory) -> Path:
    """The shipped walk rendered at 30 frames/s, 480 x 480: a video of a person-like figure."""
    return render_walk(tmp_path_factory.mktemp("video") / "walk.mp4", 480, 480)


def test_mediapipe_on_a_rendered_clip(rendered_walk):
    """The real estimator (model from the installed wheel) finds the rendered humanoid in most frames."""
    from mimic_retarget.pose_estimation import estimate_mediapipe

    track = estimate_mediapipe(rendered_walk)
    assert track.num_frames == len(np.arange(0.0, load_clip("walk").duration, 1 / 30))
    assert track.image_size == (480, 480)
    assert track.estimator == "mediapipe" and track.world is not None
    assert track.detected.mean() > 0.6, track.detected.mean()


def test_the_second_pass_finds_the_body_following_lost_in_a_backflip(tmp_path):
    """MediaPipe following the person from frame to frame holds on to a collapsed skeleton from the
    backflip's landing to the clip's end (docs/video.md); with the second pass that detects the
    person on every frame (``second_pass``, the default) the body is found again there.  A keypoint
    file has no estimator to run either way."""
    from mimic_retarget.ground_truth import render_clip
    from mimic_retarget.pose_errors import pa_mpjpe
    from mimic_retarget.pose_estimation import estimate_mediapipe, load_track
    from mimic_sim.render import write_video

    truth = render_clip("backflip", load_character("humanoid"), 90.0)
    video = write_video(truth.frames, tmp_path / "backflip.mp4", truth.fps)
    landing = slice(30, None)  # from the landing to the end, where tracking collapsed (frames 30-52)
    errors = {}
    for second_pass in (False, True):
        track = estimate_mediapipe(video, second_pass=second_pass)
        assert track.detected[landing].all()
        order = [track.index(n) for n in truth.names]
        errors[second_pass] = float(np.mean(pa_mpjpe(track.world[landing][:, order], truth.world[landing])))
    assert errors[True] < 0.6 * errors[False], errors
    keypoints = track.save(tmp_path / "backflip.pose.json")
    with pytest.raises(PoseTrackError, match="following the person only is a way to run the estimator: it "
                                             "applies to a video only"):
        load_track(keypoints, second_pass=False)


def test_points_found_in_a_turned_image_come_back_in_the_images_axes():
    """A point found in ``np.rot90(image, k)`` (pixel centres) is put back where it is in the image
    itself, and a 3D direction in camera axes (x right, y down) turns as the image points do."""
    from mimic_retarget.pose_estimation import unturn

    width, height = 7, 5
    for u, v in ((0, 0), (6, 1), (2, 4)):
        image = np.zeros((height, width))
        image[v, u] = 1.0
        for quarters in (1, 2, 3):
            row, col = np.argwhere(np.rot90(image, quarters) == 1.0)[0]
            found = np.array([[col + 0.5, row + 0.5], [col + 1.5, row + 0.5]])  # and one pixel to its right
            points, world = unturn(found, np.array([[1.0, 0.0, 0.3], [0.0, 0.0, 0.0]]), quarters, (width, height))
            np.testing.assert_allclose(points[0], [u + 0.5, v + 0.5])
            np.testing.assert_allclose(world[0, :2], points[1] - points[0])  # "right" in the turned image
            assert world[0, 2] == 0.3


def test_the_second_pass_fills_only_the_frames_following_lost(truth):
    """Offline, the per-frame detections replace the person followed where following lost it (no
    person, a collapsed skeleton, and the short gaps between), whole frames, and only where they
    found the same person (where following found nobody: where its nearest frame showed the person)
    with a body that did not collapse."""
    from mimic_retarget.pose_estimation import merge_passes

    times, points = truth
    followed = collapse_trunk(synthetic_track(times, points, seed=1), slice(10, 14))
    followed = followed.replace(confidence=np.where(np.arange(len(times))[:, None] == 30, 0.0, followed.confidence))
    collapsed = followed.collapsed().any(axis=1)
    assert collapsed[10:14].all() and collapsed.sum() == 4
    fresh = synthetic_track(times, points, seed=2)
    merged = merge_passes(followed, fresh)
    taken = np.all(merged.points == fresh.points, axis=(1, 2))
    assert list(np.flatnonzero(taken)) == [10, 11, 12, 13, 30]
    assert list(np.flatnonzero(merged.redetected)) == [10, 11, 12, 13, 30]  # what the report counts
    assert np.array_equal(merged.world[taken], fresh.world[taken])
    assert np.array_equal(merged.points[~taken], followed.points[~taken])

    # Two lost stretches with 3 frames followed well between are one: those are taken too; with 4, not.
    clean = synthetic_track(times, points, seed=1)
    for gap, between in ((3, True), (4, False)):
        broken = collapse_trunk(collapse_trunk(clean, slice(10, 12)), slice(12 + gap, 14 + gap))
        taken = np.all(merge_passes(broken, fresh).points == fresh.points, axis=(1, 2))
        assert list(np.flatnonzero(taken)) == ([*range(10, 14 + gap)] if between else [10, 11, 12 + gap, 13 + gap])

    # Someone else, 0.16 of the image diagonal away, is not taken (in frame 30, where following found nobody,
    # away from where the neighbouring frames show the person); nor a fresh body that collapsed too.
    elsewhere = fresh.replace(points=fresh.points + np.array([0.16 * np.hypot(*fresh.image_size), 0.0]))
    assert np.array_equal(merge_passes(followed, elsewhere).points[10:14], followed.points[10:14])
    assert not merge_passes(followed, elsewhere).detected[30]
    near = fresh.replace(points=fresh.points + np.array([0.14 * np.hypot(*fresh.image_size), 0.0]))
    assert np.array_equal(merge_passes(followed, near).points[10:14], near.points[10:14])
    assert np.array_equal(merge_passes(followed, collapse_trunk(fresh, slice(10, 14))).points[10:14],
                          followed.points[10:14])


def test_cli_from_keypoints_and_bad_video(truth, tmp_path):
    times, points = truth
    keypoints = synthetic_track(times, points).save(tmp_path / "walk.pose.json")
    out = tmp_path / "out" / "walk.motion.json"
    run = subprocess.run([sys.executable, "-m", "mimic_sim.tools.cli", "video", str(keypoints), "-o", str(out),
                          "--focal", "1000", "--dynamics", "1", "--angular-momentum", "1"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "out" / "walk.report.json").read_text())
    assert report["detection_rate"] == 1.0 and report["camera"]["focal_px"] == pytest.approx(1000.0)
    assert report["objective"]["dynamics"] > 0 and report["com_dynamics_error_m_s2"] >= 0  # the terms were on
    assert "angular_momentum" in report["objective"] and report["flight_angular_momentum_drift_m2_s2"] >= 0
    # a keypoint file that does not say which frames a second pass gave: null in the report, not printed
    assert report["frames_redetected"] is None and "frames_redetected" not in run.stderr
    assert "frames_filled: 0" in run.stderr
    assert load_motion(out).num_frames == len(times)
    assert (tmp_path / "out" / "walk.side_by_side.mp4").stat().st_size > 0

    run = subprocess.run([sys.executable, "-m", "mimic_sim.tools.cli", "video", str(keypoints), "-o",
                          str(tmp_path / "neg" / "walk.motion.json"), "--dynamics", "-1"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode != 0 and "--dynamics -1.0: a weight must be 0 or more" in run.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "neg").exists()
    run = subprocess.run([sys.executable, "-m", "mimic_sim.tools.cli", "video", str(keypoints), "-o",
                          str(tmp_path / "neg" / "walk.motion.json"), "--angular-momentum", "nan"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "--angular-momentum nan: a weight must be 0 or more" in run.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "neg").exists()

    run = subprocess.run([sys.executable, "-m", "mimic_sim.tools.cli", "video", str(keypoints), "-o",
                          str(tmp_path / "neg" / "walk.motion.json"), "--tracking-only"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert ("following the person only is a way to run the estimator: it applies to a video only"
            in run.stderr.strip().splitlines()[-1])
    assert not (tmp_path / "neg").exists()

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    out = tmp_path / "bad" / "broken.motion.json"
    run = subprocess.run([sys.executable, "-m", "mimic_sim.tools.cli", "video", str(bad), "-o", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert f"{bad}: not a readable video" in run.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_cli_never_overwrites_its_source(rendered_walk, tmp_path):
    """The outputs next to OUT are named apart from a video or keypoint file they are made from: the clip
    written beside its video keeps the video; an output named as the source is refused before any work."""
    source = tmp_path / "walk.mp4"
    source.write_bytes(rendered_walk.read_bytes())
    run = subprocess.run([sys.executable, "-m", "mimic_sim.tools.cli", "video", str(source), "-o",
                          str(tmp_path / "walk.motion.json")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert source.read_bytes() == rendered_walk.read_bytes()
    assert (tmp_path / "walk.side_by_side.mp4").stat().st_size > 0
    keypoints = tmp_path / "walk.pose.json"
    before = keypoints.read_bytes()
    run = subprocess.run([sys.executable, "-m", "mimic_sim.tools.cli", "video", str(keypoints), "-o",
                          str(tmp_path / "again" / "walk.motion.json"), "--no-video"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert keypoints.read_bytes() == before
    run = subprocess.run([sys.executable, "-m", "mimic_sim.tools.cli", "video", str(source), "-o",
                          str(tmp_path / "third" / "walk.motion.json"), "--video", str(source)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert run.stderr.strip().splitlines()[-1] == (f"mimic video: the side-by-side video output {source} is the "
                                                   "source itself; choose another -o/--video")
    assert source.read_bytes() == rendered_walk.read_bytes() and not (tmp_path / "third").exists()


def test_retarget_takes_a_video_as_a_source(rendered_walk, tmp_path):
    """`mimic retarget VIDEO --robot g1`: reconstructed as `mimic video` does, then retargeted."""
    run = subprocess.run([sys.executable, "-m", "mimic_sim.tools.cli", "retarget", str(rendered_walk), "--robot", "g1",
                          "--no-video"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    human = load_motion(tmp_path / "out" / "walk.motion.json")
    robot = load_motion(tmp_path / "out" / "walk_g1.motion.json")
    assert (tmp_path / "out" / "walk.pose.json").is_file() and (tmp_path / "out" / "walk.report.json").is_file()
    assert robot.num_frames == human.num_frames
    assert set(robot.joints) == set(load_character("g1").joint_names)
    report = json.loads((tmp_path / "out" / "walk_g1.report.json").read_text())
    assert report["joint_limit_violations"] == 0 and report["source"].endswith("walk.motion.json")


def test_mediapipe_on_real_footage():
    """sports2d's demo, fetched at set-up: MediaPipe finds the person in most of its first 90 frames."""
    from mimic_retarget.pose_estimation import estimate_mediapipe
    from mimic_retarget.sample_videos import installed, video_path

    if not installed("sports2d_demo"):
        pytest.skip("sample video not fetched: run `python -m mimic_retarget.sample_videos`")
    track = estimate_mediapipe(video_path("sports2d_demo"), max_frames=90)
    assert track.num_frames == 90 and track.image_size == (1768, 994)
    assert track.detected.mean() > 0.9, track.detected.mean()


def test_a_real_walk_picked_out_of_the_footage_and_reconstructed():
    """sports2d's demo has two people: a man on a roof and, below him, a woman walking from right to
    left.  A region below the roof keeps MediaPipe on her; her walk reconstructs with the feet on the
    floor and not sliding (before the contacts were held fixed per optimizer round, this clip came
    out 130 mm through the floor with the feet sliding 46 mm per frame)."""
    from mimic_retarget.pose_estimation import estimate_mediapipe
    from mimic_retarget.pose_track import PoseTrackError
    from mimic_retarget.sample_videos import video_path

    video = video_path("sports2d_demo")
    with pytest.raises(PoseTrackError, match=r"video.mp4: region \[0, 460, 1800, 994\] is not a box inside the "
                                             r"1768x994 image"):
        estimate_mediapipe(video, region=(0, 460, 1800, 994))
    region = (0, 460, 1768, 994)
    track = estimate_mediapipe(video, start=1.9, end=5.8, region=region)
    assert track.num_frames == 117 and abs(track.times[0] - 1.9) < 1e-9
    assert track.detected.mean() > 0.95, track.detected.mean()
    seen = track.confidence > 0.5
    assert (track.points[seen][:, 1] >= region[1]).all()  # full-frame pixels, inside the region
    hips = track.points[:, [track.index("left_hip"), track.index("right_hip")], 0].mean(axis=1)
    assert hips[0] > 1300 and hips[-1] < 500, (hips[0], hips[-1])  # her path, right to left
    report = reconstruct(track).report
    assert report["ground_penetration_mm"] < 10 and report["foot_skating_mm"] < 15, report
    assert report["reprojection_error_px"] < 8, report
    # Her pelvis turns smoothly: without the root's own smoothness term it jittered at up to 13 rad/s.
    assert report["root_angular_speed_max_rad_s"] < 5, report


def test_sample_video_fetch_extracts_the_video_and_license_once(tmp_path, monkeypatch):
    import zipfile

    from mimic_retarget import robot_assets, sample_videos

    wheel = tmp_path / "sports2d-0.8.34-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("Sports2D/Demo/demo.mp4", b"frames")
        z.writestr("sports2d-0.8.34.dist-info/licenses/LICENSE", b"BSD-3")
    downloads = []

    def download(pin, folder, remedy=""):
        downloads.append(pin.package)
        return wheel

    monkeypatch.setattr(robot_assets, "_download", download)
    root = tmp_path / "videos"
    manifest = sample_videos.fetch("sports2d_demo", root)
    assert (root / "sports2d_demo" / "video.mp4").read_bytes() == b"frames" and manifest["version"] == "0.8.34"
    assert sample_videos.video_path("sports2d_demo", root) == root / "sports2d_demo" / "video.mp4"
    assert sample_videos.fetch("sports2d_demo", root) is None and downloads == ["sports2d"]  # present: skipped
    (root / "sports2d_demo" / "video.mp4").write_bytes(b"damaged")
    with pytest.raises(FileNotFoundError, match=r"python -m mimic_retarget\.sample_videos"):
        sample_videos.video_path("sports2d_demo", root)
    assert sample_videos.fetch("sports2d_demo", root) is not None and downloads == ["sports2d"] * 2
    assert [p.name for p in root.iterdir()] == ["sports2d_demo"]  # no temporary folder left
