"""Where an estimator marks the humanoid's keypoints: landmark files, their calibration, and
reconstruction fitting the landmarks while reporting the humanoid's own keypoints."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from mimic_retarget.ground_truth import clip_states, clip_view, frame_camera
from mimic_retarget.landmark_calibration import fit_offsets, linear_systems
from mimic_retarget.landmarks import LandmarkError, LandmarkOffsets, landmark_offsets, read_landmark_offsets
from mimic_retarget.pose_track import TRACK_KEYPOINTS, PoseTrack
from mimic_retarget.reconstruction import HumanoidKinematics, ReconstructionConfig, reconstruct
from mimic_sim import rotations as rot
from mimic_sim.character import load_character

NAMES = list(TRACK_KEYPOINTS)
# Offsets like MediaPipe's (an ankle 2.5 cm up, shoulders forward and inward), left and right mirrored.
KNOWN = {"left_ankle": [0.0, -0.005, 0.025], "right_ankle": [0.0, 0.005, 0.025],
         "left_shoulder": [0.012, -0.01, 0.0], "right_shoulder": [0.012, 0.01, 0.0], "head": [0.015, 0.0, 0.0]}


@pytest.fixture(scope="module")
def walk():
    """The humanoid's kinematics and the walk's true states at 30 frames/s."""
    character = load_character("humanoid")
    _, qpos = clip_states("walk", character, 30.0)
    return HumanoidKinematics(character), qpos


def _points(kin: HumanoidKinematics, qpos: np.ndarray, landmarks: dict | None = None) -> np.ndarray:
    with torch.no_grad():
        return kin.points(torch.tensor(qpos[:, :3]), torch.tensor(rot.quat_to_mat(qpos[:, 3:7])),
                          torch.tensor(qpos[:, 7:]), NAMES,
                          landmarks={n: torch.tensor(o, dtype=torch.float64) for n, o in (landmarks or {}).items()}
                          ).numpy()


def _camera(qpos: np.ndarray, points: np.ndarray, azimuth: float):
    return frame_camera(points, float(rot.heading(qpos[0, 3:7])), azimuth, (640, 480))


def test_a_landmark_offset_turns_with_its_body(walk):
    kin, qpos = walk
    lying = qpos[:1].copy()
    lying[0, 3:7] = rot.axis_angle_quat(np.array([1.0, 0.0, 0.0]), np.pi / 2)  # rolled onto its right side
    lying[0, 7:] = 0.0
    moved = _points(kin, lying, {"left_ankle": [0.0, 0.0, 0.03]}) - _points(kin, lying)
    ankle = NAMES.index("left_ankle")
    # The body's up (+z) now points along the world's -y; nothing else moves.
    np.testing.assert_allclose(moved[0, ankle], [0.0, -0.03, 0.0], atol=1e-12)
    assert np.abs(np.delete(moved[0], ankle, axis=0)).max() == 0.0


def test_calibration_recovers_known_offsets_through_outliers(walk):
    kin, qpos = walk
    rng = np.random.default_rng(3)
    truth = _points(kin, qpos)
    marked = _points(kin, qpos, KNOWN)
    systems = []
    for azimuth in (30.0, 90.0, 150.0):
        camera = _camera(qpos, truth, azimuth)
        pixels = camera.project(marked) + rng.normal(0.0, 1.0, (*marked.shape[:2], 2))
        lost = rng.random(len(pixels)) < 0.15  # frames where the estimator lost the body: points anywhere near
        pixels[lost] += rng.normal(0.0, 60.0, pixels[lost].shape)
        track = PoseTrack(NAMES, np.arange(len(qpos)) / 30.0, pixels, np.full(marked.shape[:2], 0.9), (640, 480),
                          None, "mediapipe")
        systems.append(linear_systems(track, kin, qpos, camera))
    fitted = fit_offsets(systems)
    assert set(fitted) == set(NAMES)
    for name in NAMES:
        offset, before, after = fitted[name]
        np.testing.assert_allclose(offset, KNOWN.get(name, np.zeros(3)), atol=0.005, err_msg=name)
        if name in KNOWN:
            assert after < 0.7 * before, (name, before, after)


def test_reconstruction_fits_the_landmarks_and_reports_the_keypoints(walk):
    """A track marked where MediaPipe marks the humanoid (config/landmarks/mediapipe.yaml): with the
    offsets, the reconstructed keypoints come closer to the true ones and the reported reprojection
    error is of the landmarks (a fraction of a pixel on exact input), not of the keypoints."""
    kin, qpos = walk
    offsets = landmark_offsets("mediapipe", "humanoid").offsets
    assert set(offsets) == set(NAMES)
    truth = _points(kin, qpos)
    marked = _points(kin, qpos, offsets)
    camera = _camera(qpos, truth, 90.0)
    hips = marked[:, [NAMES.index("left_hip"), NAMES.index("right_hip")]].mean(axis=1, keepdims=True)
    track = PoseTrack(NAMES, np.arange(len(qpos)) / 30.0, camera.project(marked), np.ones(marked.shape[:2]),
                      (640, 480), camera.to_camera(marked) - camera.to_camera(hips), "mediapipe")
    known = camera.reconstruction_camera()
    config = ReconstructionConfig(focal=known.focal, camera_height=known.height, camera_pitch=known.pitch)
    level = camera.to_level(truth)
    errors, reports = {}, {}
    for use in (True, False):
        result = reconstruct(track, replace(config, landmark_offsets=use))
        errors[use] = 1000 * np.linalg.norm(result.points - level, axis=-1).mean()
        reports[use] = result.report["reprojection_error_px"]
        used = result.report["landmark_offsets"]
        assert (used.endswith("config/landmarks/mediapipe.yaml") if use else used is None), used
        keypoints_px = np.linalg.norm(camera.reconstruction_camera().project(result.points) - track.points, axis=-1)
        if use:
            assert reports[use] < 0.5 and keypoints_px.mean() > 2 * reports[use], (reports[use], keypoints_px.mean())
    assert errors[True] < 0.6 * errors[False], errors
    assert reports[True] < reports[False], reports


def test_landmark_files_for_other_estimators_or_characters_give_none(tmp_path, monkeypatch):
    assert landmark_offsets("openpose", "humanoid") is None
    folder = tmp_path / "config" / "landmarks"
    folder.mkdir(parents=True)
    (folder / "mediapipe.yaml").write_text(LandmarkOffsets("mediapipe", "g1", {"head": np.array([0.01, 0, 0])}
                                                           ).to_yaml("a header"))
    monkeypatch.setenv("MIMIC_CONFIG_DIR", str(tmp_path / "config"))
    assert landmark_offsets("mediapipe", "humanoid") is None
    np.testing.assert_allclose(landmark_offsets("mediapipe", "g1").offsets["head"], [0.01, 0.0, 0.0])


@pytest.mark.parametrize("text, message", [
    ("- 1\n", r"bad.yaml: a landmark file is a mapping"),
    ("estimator: mediapipe\ncharacter: humanoid\noffsets: {left_thumb: [0, 0, 0]}\n",
     r"bad.yaml: field 'offsets': unknown keypoint 'left_thumb'"),
    ("estimator: mediapipe\ncharacter: humanoid\noffsets: {head: [0, 0]}\n",
     r"bad.yaml: field 'offsets', keypoint 'head': expected \[x, y, z\] in metres"),
    ("estimator: mediapipe\ncharacter: humanoid\noffsets: {head: [0, 0, 15]}\n",
     r"bad.yaml: field 'offsets', keypoint 'head': expected \[x, y, z\] in metres, each within 0.2, got \[0, 0, 15\]"),
    ("estimator: mediapipe\ncharacter: humanoid\noffsets: {head: [0, .nan, 0]}\n", r"keypoint 'head'"),
    ("estimator: mediapipe\noffsets: {}\n", r"bad.yaml: field 'character' must be a str, got None"),
    ("estimator: mediapipe\ncharacter: humanoid\noffsets: {}\nscale: 2\n", r"bad.yaml: unknown field 'scale'"),
    ("estimator: [\n", r"bad.yaml:2: not valid YAML: expected the node content"),
])
def test_a_bad_landmark_file_is_refused_by_name(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(LandmarkError, match=message):
        read_landmark_offsets(path)


def test_a_landmark_file_round_trips(tmp_path):
    written = LandmarkOffsets("mediapipe", "humanoid", {"left_ankle": np.array([0.002, -0.0067, 0.0233]),
                                                        "head": np.array([-0.0, 0.0, 0.016])})
    path = tmp_path / "mediapipe.yaml"
    path.write_text(written.to_yaml("measured\nby a test"))
    text = path.read_text()
    assert text.startswith("# measured\n# by a test\n") and "head: [0.0, 0.0, 0.016]" in text  # no -0.0
    read = read_landmark_offsets(path)
    assert (read.estimator, read.character, list(read.offsets)) == ("mediapipe", "humanoid", ["left_ankle", "head"])
    np.testing.assert_allclose(read.offsets["left_ankle"], [0.002, -0.0067, 0.0233])


def test_mimic_video_refuses_a_bad_landmark_file_and_writes_nothing(walk, tmp_path):
    kin, qpos = walk
    truth = _points(kin, qpos)
    camera = _camera(qpos, truth, 90.0)
    keypoints = PoseTrack(NAMES, np.arange(len(qpos)) / 30.0, camera.project(truth), np.ones(truth.shape[:2]),
                          (640, 480), None, "mediapipe").save(tmp_path / "walk.pose.json")
    folder = tmp_path / "config" / "landmarks"
    folder.mkdir(parents=True)
    (folder / "mediapipe.yaml").write_text("estimator: mediapipe\ncharacter: humanoid\noffsets: {head: [0, 0]}\n")
    out = tmp_path / "out" / "walk.motion.json"
    run = subprocess.run([sys.executable, "-m", "mimic_sim.tools.cli", "video", str(keypoints), "-o", str(out)],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "MIMIC_CONFIG_DIR": str(tmp_path / "config")})
    assert run.returncode != 0
    assert run.stderr.strip().splitlines()[-1] == (
        f"mimic video: {folder / 'mediapipe.yaml'}: field 'offsets', keypoint 'head': expected [x, y, z] in metres, "
        "each within 0.2, got [0, 0]")
    assert not (tmp_path / "out").exists()


def test_the_calibration_command_renders_estimates_and_writes_a_landmark_file(tmp_path):
    """The real chain on one clip from one camera: render, MediaPipe, fit, a file that reads back."""
    out = tmp_path / "landmarks" / "mediapipe.yaml"
    run = subprocess.run([sys.executable, "-m", "mimic_retarget.landmark_calibration", "--clips", "kick",
                          "--cameras", "45", "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    text = out.read_text()
    assert "python -m mimic_retarget.landmark_calibration --clips kick --cameras 45" in text
    found = read_landmark_offsets(out)
    assert (found.estimator, found.character, set(found.offsets)) == ("mediapipe", "humanoid", set(NAMES))
    mirrored = found.offsets["right_ankle"] * [1.0, -1.0, 1.0]
    np.testing.assert_allclose(found.offsets["left_ankle"], mirrored)  # one offset per pair


def test_another_estimators_keypoints_of_the_renders_calibrate_its_own_file(walk, tmp_path):
    """Keypoints of the renders kept by another estimator (here made with known offsets) give a file
    named after it with those offsets; a missing or mismatched keypoint file stops it with one line."""
    kin, _ = walk
    character = load_character("humanoid")
    rng = np.random.default_rng(5)
    keypoints = tmp_path / "keypoints"
    keypoints.mkdir()
    for azimuth in (45.0, 135.0):
        _, qpos, _, camera = clip_view("kick", character, azimuth)
        marked = _points(kin, qpos, KNOWN)
        pixels = camera.project(marked) + rng.normal(0.0, 1.0, (*marked.shape[:2], 2))
        PoseTrack(NAMES, np.arange(len(qpos)) / 30.0, pixels, np.full(marked.shape[:2], 0.9), (640, 480), None,
                  "openpose").save(keypoints / f"kick_{azimuth:.0f}.pose.json")
    command = [sys.executable, "-m", "mimic_retarget.landmark_calibration", "--clips", "kick", "--cameras", "45,135",
               "--keypoints", str(keypoints)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    found = read_landmark_offsets(tmp_path / "config" / "landmarks" / "openpose.yaml")
    assert found.estimator == "openpose"
    for name in NAMES:
        np.testing.assert_allclose(found.offsets[name], KNOWN.get(name, np.zeros(3)), atol=0.005, err_msg=name)

    run = subprocess.run([*command[:-1], str(tmp_path / "none"), "-o", str(tmp_path / "x.yaml")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and run.stderr.strip().splitlines()[-1] == (
        f"landmark_calibration: {tmp_path / 'none'}: no keypoints of kick from 45 degrees (kick_45.pose.json or an "
        "OpenPose folder kick_45/)")
    short = PoseTrack.load(keypoints / "kick_135.pose.json").segment(0.0, 1.0)
    short.save(keypoints / "kick_135.pose.json")
    run = subprocess.run([*command, "-o", str(tmp_path / "x.yaml")], capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert f"{keypoints / 'kick_135.pose.json'}: 30 frames of 640x480; the render of kick from 135 degrees has" in (
        run.stderr.strip().splitlines()[-1])
    assert not (tmp_path / "x.yaml").exists()
