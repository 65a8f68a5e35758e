"""``sim_node``: a character in MuJoCo or PyBullet, driven by PD commands over ROS 2.

The physics is the training code's (``mimic_sim.backends``), so the PD law and rates
are the same.  Commands are checked whole (``mimic_sim.commands``): unknown joints,
wrong lengths, NaN or out-of-range targets, and gains, target velocities or efforts
beyond the limits (``max_gain_factor`` times the character's configured kp and kd,
``max_target_velocity``, the character's torque limits) are rejected with a warning
naming the field and joint (rate-limited: a peer sending bad commands at any rate
cannot flood the log) and never applied; the character keeps its previous command.

A simulation that blows up all the same (a non-finite state, the root faster than
``max_root_speed``, the root or a joint spinning faster than ``max_angular_speed``,
or MuJoCo's own instability warning: MuJoCo resets a diverged simulation by itself)
is reset to the initial state, with the character's gains, and an error says why
(``mimic_sim.stability``).

Subscribes:  pd_command (mimic_msgs/JointPDCommand); with ``track_reference``,
             reference (mimic_msgs/ReferenceFrame) as open-loop PD targets and target
             velocities
Publishes:   joint_states (sensor_msgs/JointState), base_pose (geometry_msgs/PoseStamped),
             base_twist (geometry_msgs/TwistStamped, world frame), imu (sensor_msgs/Imu,
             root frame), foot_contacts (mimic_msgs/FootContacts), /tf (tf2_msgs/TFMessage,
             every link), /clock (rosgraph_msgs/Clock, when not real time)
Services:    ~/reset (std_srvs/Trigger), ~/pause (std_srvs/SetBool)

With ``step_on_command`` the node runs in lockstep with its commander: it publishes the
initial state (again every 0.5 s until a command answers), then the accepted command that
answers the latest state (its header stamp is that state's stamp) advances the simulation
one control period and publishes the new state, so a policy that answers each state acts
exactly as in training, however fast either side runs (``mimic launch play``).  Any other
command (a late second answer to a state already stepped, a damping command) is ignored:
one step per state.  ``duration`` ends the node after that much sim time, once every
reliable subscriber (a recorder) has acknowledged every state, so a launch that needs the
node ends by itself with a whole recording.

Target velocities are applied (the PD law's ``qdot_target``; zero when a command gives
none), and so are a command's gains (kp, kd; the character's configured gains where a
command gives none): kp = 0 makes the policy node's damping command damp.  Feed-forward effort is
checked but not applied.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.duration import Duration
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Imu, JointState
from std_srvs.srv import SetBool, Trigger
from tf2_msgs.msg import TFMessage

from mimic_msgs.msg import FootContacts, JointPDCommand, ReferenceFrame
from mimic_sim import rotations as rot
from mimic_sim.backends import BACKENDS, make_backend
from mimic_sim.backends.mujoco_backend import standing_height
from mimic_sim.character import load_character
from mimic_sim.commands import CommandError, CommandLimits, LogThrottle, check_command
from mimic_sim.deepmimic_format import shipped_clips
from mimic_sim.kinematics import LinkTree, PinocchioModel
from mimic_sim.motion_file import load_clip
from mimic_sim.nodes.common import SubscriberWait, character_names, parameter, run_node
from mimic_sim.nodes.conversions import pose_msg, stamp_ns, tf_message, twist_msg
from mimic_sim.nodes.parameters import declare_settings
from mimic_sim.reference import ReferenceMotion
from mimic_sim.stability import engine_warnings, instability
from mimic_sim.tools.node_params import SimNodeParams

# Published states kept for reliable subscribers that lag behind (a recorder on a loaded
# machine): the lockstep sim does not wait for them, and a writer history of 10 lost states.
STATE_QUEUE_DEPTH = 1000
# How long the finished node waits for its subscribers to acknowledge the last states.
ACK_TIMEOUT_SECONDS = 10.0


class SimNode(Node):
    def __init__(self) -> None:
        super().__init__("sim_node")
        self.params = params = declare_settings(self, SimNodeParams())
        self.wait_for = SubscriberWait(self, params.wait_for_subscribers)
        with parameter("character", params.character, character_names):
            self.character = load_character(params.character)
        self.limits = CommandLimits.of(self.character, params.max_gain_factor, params.max_target_velocity)
        with parameter("backend", params.backend, lambda: BACKENDS):
            self.backend = make_backend(params.backend, self.character, params.sim)
        self.dt = self.backend.config.control_dt
        with parameter("initial_pose", params.initial_pose, lambda: ["stand", *shipped_clips()]):
            self.initial = self._initial_state(params.initial_pose)
        self.targets = self.initial[0][7:].copy()
        self.target_velocities: np.ndarray | None = None
        self.paused = False
        self.sim_time = 0.0
        self.rejected = 0
        self.blow_ups = 0
        self._rejections_log, self._blow_ups_log = LogThrottle(), LogThrottle()
        self._prev_lin_vel: np.ndarray | None = None
        self.finished = False  # run_node ends the node once this is set
        self._published_at = -np.inf  # monotonic time of the last state published
        self._state_stamp: int | None = None  # stamp (ns) of the last state published, until a command steps it
        self._ignored, self._ignored_log = 0, LogThrottle()
        self.backend.reset(*self.initial)

        self.joint_pub = self.create_publisher(JointState, "joint_states", STATE_QUEUE_DEPTH)
        self.pose_pub = self.create_publisher(PoseStamped, "base_pose", STATE_QUEUE_DEPTH)
        self.twist_pub = self.create_publisher(TwistStamped, "base_twist", STATE_QUEUE_DEPTH)
        self.imu_pub = self.create_publisher(Imu, "imu", STATE_QUEUE_DEPTH)
        self.contact_pub = self.create_publisher(FootContacts, "foot_contacts", STATE_QUEUE_DEPTH)
        self.clock_pub = None if params.realtime else self.create_publisher(Clock, "/clock", STATE_QUEUE_DEPTH)
        self.tree = LinkTree(PinocchioModel(self.character), params.frame_id) if params.publish_tf else None
        self.tf_pub = self.create_publisher(TFMessage, "/tf", STATE_QUEUE_DEPTH) if params.publish_tf else None
        self.create_subscription(JointPDCommand, "pd_command", self._on_command, 10)
        if params.track_reference:
            self.create_subscription(ReferenceFrame, "reference", self._on_reference, 10)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_service(SetBool, "~/pause", self._on_pause)
        if params.step_on_command:
            # The initial state, and again while no command answers it (a subscriber may have
            # joined late): the commander's cue for the first step.
            self.create_timer(0.5, self._offer_state)
        else:
            self.create_timer(self.dt if params.realtime else 0.0, self._tick)
        self._wall_start = time.monotonic()
        self.get_logger().info(f"{self.character.name} in {self.backend.name} at {self.backend.config.physics_hz:.0f} "
                               f"Hz physics, {params.sim.control_hz:.0f} Hz control, "
                               f"{'real time' if params.realtime else 'as fast as possible'}")

    def _initial_state(self, initial: str) -> tuple[np.ndarray, np.ndarray]:
        n = self.character.num_joints
        if initial == "stand":
            qpos = np.zeros(7 + n)
            qpos[3] = 1.0
            qpos[2] = standing_height(self.character)
            return qpos, np.zeros(6 + n)
        reference = ReferenceMotion(load_clip(initial, self.character.name), self.character)
        qpos, qvel = reference.state(self.params.initial_time)
        return self.backend.reset_clear_of_floor(qpos, qvel), qvel  # as an episode starts (ImitationEnv)

    # ------------------------------------------------------------- inputs
    def _answers_state(self, stamp: int) -> bool:
        """Lockstep: whether a command stamped ``stamp`` (ns) answers the latest state, not yet stepped."""
        if stamp == self._state_stamp:
            return True
        self._ignored += 1
        unlogged = self._ignored_log("ignored")
        if unlogged is not None:
            latest = "none (already stepped)" if self._state_stamp is None else f"{self._state_stamp * 1e-9:.6f} s"
            self.get_logger().warning(f"command stamped {stamp * 1e-9:.6f} s ignored: it does not answer the "
                                      f"latest state (stamp {latest}); {self._ignored} ignored so far")
        return False

    def _apply(self, names: Sequence[str], positions: Sequence[float], stamp: int,
               **optional: Sequence[float]) -> None:
        if self.params.step_on_command and not self._answers_state(stamp):
            return
        try:
            command = check_command(self.character, names, positions, require_all=False, current=self.targets,
                                    limits=self.limits, **optional)
        except CommandError as exc:
            self.rejected += 1
            unlogged = self._rejections_log((exc.field, exc.joint))
            if unlogged is not None:
                more = f", {unlogged} warnings not logged since the last" if unlogged else ""
                self.get_logger().warning(f"command rejected ({self.rejected} so far{more}): {exc}")
            return
        self.targets = command.targets
        self.target_velocities = command.target_velocities
        kp = command.kp if command.kp is not None else self.backend.gains.kp
        kd = command.kd if command.kd is not None else self.backend.gains.kd
        if not (np.array_equal(kp, self.backend.gains.kp) and np.array_equal(kd, self.backend.gains.kd)):
            self.backend.set_gains(kp, kd)
        if self.params.step_on_command and not self.paused:
            self._state_stamp = None
            self._tick()

    def _on_command(self, msg: JointPDCommand) -> None:
        self._apply(msg.joint_names, msg.positions, stamp_ns(msg), velocities=msg.velocities, kp=msg.kp,
                    kd=msg.kd, effort=msg.effort)

    def _on_reference(self, msg: ReferenceFrame) -> None:
        # the reference's pose and velocities as PD targets: what a zero residual action commands
        self._apply(msg.joint_names, msg.positions, stamp_ns(msg), velocities=msg.velocities)

    def _reset_character(self) -> None:
        """The initial state, holding its pose with the character's gains."""
        self.backend.reset(*self.initial)
        self.backend.set_gains(self.character.kp, self.character.kd)
        self.targets = self.initial[0][7:].copy()
        self.target_velocities = None
        self._prev_lin_vel = None

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self._reset_character()
        response.success, response.message = True, "reset to the initial state"
        return response

    def _on_pause(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        self.paused = bool(request.data)
        response.success, response.message = True, "paused" if self.paused else "running"
        return response

    # ------------------------------------------------------------- stepping
    def _tick(self) -> None:
        if self.paused:
            return
        if self.params.duration > 0 and self.sim_time >= self.params.duration - 1e-9:
            if not self.finished:
                self._finish()
            return
        self.backend.step(self.targets, self.target_velocities)
        self.sim_time += self.dt
        qpos, qvel = self.backend.get_state()
        reason = instability(qpos, qvel, self.character.joint_names, self.params.bounds, engine_warnings(self.backend))
        if reason is not None:
            self.blow_ups += 1
            self._reset_character()
            if self._blow_ups_log("blow-up") is not None:
                self.get_logger().error(f"physics blew up at sim time {self.sim_time:.3f} s ({reason}); reset to the "
                                        f"initial state with the character's gains ({self.blow_ups} so far)")
        self._publish()

    def _finish(self) -> None:
        publishers = [p for p in (self.joint_pub, self.pose_pub, self.twist_pub, self.imu_pub, self.contact_pub,
                                  self.clock_pub, self.tf_pub) if p is not None]
        deadline = time.monotonic() + ACK_TIMEOUT_SECONDS
        acked = all(p.wait_for_all_acked(Duration(seconds=max(0.0, deadline - time.monotonic())))
                    for p in publishers)
        note = "" if acked else f"; not every subscriber acknowledged the last states in {ACK_TIMEOUT_SECONDS:.0f} s"
        self.get_logger().info(f"reached duration {self.params.duration:.2f} s of sim time; finished{note}")
        self.finished = True

    def _offer_state(self) -> None:
        if self.sim_time == 0.0 and not self.wait_for.ready():
            return  # e.g. until the recorder of `mimic launch play` listens, so the recording is whole
        if time.monotonic() - self._published_at > 0.5 and not self.finished:
            self._publish()

    def _stamp(self):
        if self.params.realtime:
            return self.get_clock().now().to_msg()
        clock = Clock()
        # from whole nanoseconds: a sum of 1/30 steps just under a second must not become 0 s + 1e9 ns
        clock.clock.sec, clock.clock.nanosec = divmod(round(self.sim_time * 1e9), 1_000_000_000)
        self.clock_pub.publish(clock)
        return clock.clock

    def _publish(self) -> None:
        self._published_at = time.monotonic()
        qpos, qvel = self.backend.get_state()
        stamp = self._stamp()
        self._state_stamp = stamp_ns(stamp)
        joints = JointState()
        joints.header.stamp = stamp
        joints.name = self.character.joint_names
        joints.position = qpos[7:].tolist()
        joints.velocity = qvel[6:].tolist()
        self.joint_pub.publish(joints)
        pose = PoseStamped()
        pose.header.stamp, pose.header.frame_id = stamp, self.params.frame_id
        pose.pose = pose_msg(qpos[:3], qpos[3:7])
        self.pose_pub.publish(pose)
        twist = TwistStamped()
        twist.header.stamp, twist.header.frame_id = stamp, self.params.frame_id
        twist.twist = twist_msg(qvel[:3], qvel[3:6])
        self.twist_pub.publish(twist)
        # IMU on the root: orientation, body-frame angular velocity and specific force.
        accel = np.zeros(3) if self._prev_lin_vel is None else (qvel[:3] - self._prev_lin_vel) / self.dt
        self._prev_lin_vel = qvel[:3].copy()
        specific_force = rot.quat_inv_rotate(qpos[3:7], accel + np.array([0.0, 0.0, self.backend.config.gravity]))
        imu = Imu()
        imu.header.stamp, imu.header.frame_id = stamp, self.character.root_body
        imu.orientation = pose.pose.orientation
        w = rot.quat_inv_rotate(qpos[3:7], qvel[3:6])
        imu.angular_velocity.x, imu.angular_velocity.y, imu.angular_velocity.z = (float(v) for v in w)
        la = imu.linear_acceleration
        la.x, la.y, la.z = (float(v) for v in specific_force)
        self.imu_pub.publish(imu)
        contacts = FootContacts()
        contacts.header.stamp = stamp
        touching = self.backend.ground_contacts()
        feet = self.character.body_index(self.character.ground_contact_allowed)
        contacts.bodies = self.character.ground_contact_allowed
        contacts.in_contact = [bool(touching[i]) for i in feet]
        self.contact_pub.publish(contacts)
        if self.tree is not None:
            self.tf_pub.publish(tf_message(self.tree.transforms(qpos), stamp, self.params.tf_prefix,
                                           self.params.frame_id))

    def close(self) -> None:
        self.backend.close()


def main(args: Sequence[str] | None = None) -> int:
    return run_node(SimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
