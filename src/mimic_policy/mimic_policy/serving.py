"""A trained policy outside training: robot state and reference in, checked PD command out.

The ROS-free core of the policy node.  It loads a checkpoint or its ONNX export
(:class:`PolicyModel`), builds the observation with the environment's own code
(:mod:`mimic_sim.observation`, body states from the character's kinematics) and turns
the action into a PD command the way the environment does (residual actions: PD target
= reference + action, target velocity = the reference's).  What reaches a robot is
checked: joints are matched by name, a non-finite action raises :class:`UnsafeActionError`
(the node then sends :meth:`PolicyController.damping`), targets are clamped to the
joint limits.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mimic_policy.checkpoint import stored_task
from mimic_sim import rotations as rot
from mimic_sim.character import Character
from mimic_sim.kinematics import PinocchioModel
from mimic_sim.observation import build_observation, observation_size
from mimic_sim.pd import clamp_targets
from mimic_sim.reference import ReferenceMotion
from mimic_sim.task import Task


class UnsafeActionError(RuntimeError):
    """The policy produced an action that must not reach the robot (NaN or infinite)."""


class PolicyModel(ABC):
    """Observation -> deterministic action, with the checkpoint's metadata in ``meta``."""

    meta: dict
    source: Path

    @abstractmethod
    def act(self, observation: np.ndarray) -> np.ndarray:
        """Actions (batch x joints, float64) for observations (batch x observation size)."""


class TorchPolicyModel(PolicyModel):
    """A checkpoint (or a run folder's latest) run with torch, on one thread."""

    def __init__(self, path: Path):
        import torch

        from mimic_policy.evaluate import load_policy

        torch.set_num_threads(1)
        self.source = Path(path)
        self.model, self.meta = load_policy(self.source)
        self._torch = torch

    def act(self, observation: np.ndarray) -> np.ndarray:
        with self._torch.no_grad():
            obs = self._torch.as_tensor(np.asarray(observation, dtype=np.float32))
            return self.model.act_deterministic(obs).numpy().astype(np.float64)


class OnnxPolicyModel(PolicyModel):
    """An ONNX export (``mimic export``) run with onnxruntime on one thread."""

    def __init__(self, path: Path):
        import onnxruntime

        from mimic_policy.export import read_metadata

        self.source = Path(path)
        self.meta = read_metadata(self.source)
        missing = [k for k in ("character", "joint_names", "observation_size", "task") if k not in self.meta]
        if missing:
            raise ValueError(f"{self.source}: not a mimic policy export (metadata lacks {', '.join(missing)})")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(self.source), options, providers=["CPUExecutionProvider"])

    def act(self, observation: np.ndarray) -> np.ndarray:
        obs = np.asarray(observation, dtype=np.float32)
        return self.session.run(["action"], {"observation": obs})[0].astype(np.float64)


def load_policy_model(path: Path | str) -> PolicyModel:
    """An ``.onnx`` file with onnxruntime, anything else (a checkpoint, run or policy folder, or a
    shipped skill's name such as ``g1/walk``) as a checkpoint with torch."""
    from mimic_policy.skills import resolve_policy

    path = resolve_policy(path)
    return OnnxPolicyModel(path) if path.suffix == ".onnx" else TorchPolicyModel(path)


def load_policy_task(path: Path | str) -> Task:
    """The task of a checkpoint, run folder or ``.onnx`` export (what it was trained on)."""
    model = load_policy_model(path)
    return stored_task(model.meta, model.source)


def twist_in_world(root_quat_wxyz: np.ndarray, linear: np.ndarray, angular: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A base twist given in the base's own frame (nav_msgs/Odometry's convention: the
    child frame) expressed in the world, as :class:`RobotState` takes it."""
    quat = np.asarray(root_quat_wxyz, dtype=float)
    quat = quat / np.linalg.norm(quat)
    return rot.quat_rotate(quat, np.asarray(linear, dtype=float)), rot.quat_rotate(quat, np.asarray(angular, float))


@dataclass(frozen=True)
class RobotState:
    """What the policy observes of the robot, in mimic's layout (``Character`` docs):
    ``qpos`` = root position, root quaternion w, x, y, z, joint angles; ``qvel`` = root
    linear and angular velocity (world), joint rates; joints in the character's order."""

    qpos: np.ndarray
    qvel: np.ndarray

    @staticmethod
    def from_joints(character: Character, names: list[str], positions: np.ndarray, velocities: np.ndarray,
                    root_position: np.ndarray, root_quat_wxyz: np.ndarray, root_linear: np.ndarray,
                    root_angular: np.ndarray) -> RobotState:
        """Joint readings by name and the base state (``Character.state_from_readings``)."""
        return RobotState(*character.state_from_readings(names, positions, velocities, root_position,
                                                         root_quat_wxyz, root_linear, root_angular))


@dataclass(frozen=True)
class PDCommand:
    """Per joint (``joint_names`` order): target position and velocity, gains; the law
    of :mod:`mimic_sim.pd`."""

    joint_names: list[str]
    positions: np.ndarray
    velocities: np.ndarray
    kp: np.ndarray
    kd: np.ndarray


class PolicyController:
    """A policy model bound to its character and clip: observations and PD commands."""

    def __init__(self, model: PolicyModel, character: Character | None = None):
        """``model`` with the task its metadata carries; ``character``, if given, is the robot it
        will drive, checked against the task's (name and joint order)."""
        meta = model.meta
        self.model = model
        self.task = stored_task(meta, model.source)
        c = self.character = self.task.character
        if character is not None and character.name != c.name:
            raise ValueError(f"policy {model.source} was trained for character '{c.name}', not '{character.name}'")
        for joints, what in ((meta["joint_names"], "its metadata"),
                             (character.joint_names if character is not None else c.joint_names, "the robot")):
            if list(joints) != c.joint_names:
                differing = sorted(set(joints) ^ set(c.joint_names))
                raise ValueError(f"policy {model.source}: the joints of {what} do not match character '{c.name}'"
                                 + (f" (differing: {differing})" if differing else " (order differs)"))
        config = self.task.config
        self.residual = config.residual_actions
        self.target_observation = config.target_observation
        self.control_dt = config.sim.control_dt
        self.reference = ReferenceMotion(self.task.motion, c)
        self.kinematics = PinocchioModel(c)
        self._root = int(np.flatnonzero(c.tracked_parents < 0)[0])
        size = int(meta["observation_size"])
        expected = observation_size(len(c.tracked_bodies), self.target_observation)
        if size != expected:
            raise ValueError(f"policy {model.source}: observation size {size}, character '{c.name}' gives {expected}")

    def observation(self, state: RobotState, clip_time: float) -> np.ndarray:
        """The observation at reference time ``clip_time``, as the environment builds it."""
        sim = self.kinematics.body_states(state.qpos, state.qvel)
        target = None
        if self.target_observation:
            target = self.kinematics.body_states(*self.reference.state(clip_time + self.control_dt))
        return build_observation(sim, self._root, self.reference.phase(clip_time), target).astype(np.float32)

    def command(self, state: RobotState, clip_time: float) -> PDCommand:
        """The PD command for the coming control period (raises :class:`UnsafeActionError`)."""
        action = self.model.act(self.observation(state, clip_time)[None])[0]
        if action.shape != (self.character.num_joints,) or not np.isfinite(action).all():
            bad = [self.character.joint_names[i] for i in np.flatnonzero(~np.isfinite(action))]
            raise UnsafeActionError(f"policy output for joints {bad} is not finite" if bad else
                               f"policy output has shape {action.shape}")
        c = self.character
        if self.residual:
            ref_qpos, ref_qvel = self.reference.state(clip_time + self.control_dt)
            targets, velocities = ref_qpos[7:] + action, ref_qvel[6:]
        else:
            targets, velocities = action, np.zeros(c.num_joints)
        return PDCommand(c.joint_names, clamp_targets(targets, c.joint_lower, c.joint_upper), velocities,
                         c.kp.copy(), c.kd.copy())

    def damping(self, state: RobotState | None = None) -> PDCommand:
        """The safe command: no position gain, the velocity gain pulling every joint to rest
        (the targets are the measured positions when known, for drives that need one)."""
        c = self.character
        positions = np.clip(state.qpos[7:], c.joint_lower, c.joint_upper) if state is not None \
            else np.clip(np.zeros(c.num_joints), c.joint_lower, c.joint_upper)
        return PDCommand(c.joint_names, positions, np.zeros(c.num_joints), np.zeros(c.num_joints), c.kd.copy())
