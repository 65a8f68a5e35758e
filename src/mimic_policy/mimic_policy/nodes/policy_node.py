"""``policy_node``: a trained policy driving a simulated or real robot over ROS 2.

A managed (lifecycle) node, as hardware users expect:

- *configure* loads the policy (a checkpoint, a run folder or an ``mimic export`` ONNX
  file) and checks it against the character's joints; a mismatch fails the transition;
- *activate* starts commanding at the policy rate (default: the checkpoint's, 30 Hz);
- *deactivate* sends a damping command (no position gain, velocity gain only) and stops.

Every period it reads the latest ``joint_states`` and base state, builds the
observation with the training code, runs the policy and publishes a PD command
(:mod:`mimic_policy.serving`: targets clamped to the joint limits, joints by name).
Until a first state arrives (all three parts) it sends nothing.  A watchdog then sends the damping
command instead, and logs it, when the state is older than ``state_timeout`` (default
1.5 control periods), when the policy's output is not finite, or while no reference is
known; commanding resumes, logged, when the cause is gone.

The state's deadline has a timer of its own, restarted whenever the oldest of the three
state topics is renewed: checked only at the control ticks, a timeout of T periods would
damp T to T + 1 periods after the last state; with the deadline timer the first damping
command follows the timeout by the callback latency alone (``bench/watchdog_latency.py``).

On the forward-command topic (a ros2_control ``forward_command_controller``, position
interfaces) there is no damping to command: a position controller holds whatever target
it was sent last.  So while damping the node sends the measured positions there (clamped
to the joint limits): the robot holds where it was last seen instead of chasing a policy
target computed from a state that is no longer current.  Where no valid measured state
is known, nothing is sent and the controller keeps its last target.

Subscribes:  joint_states (sensor_msgs/JointState), base_pose (geometry_msgs/PoseStamped),
             base_twist (geometry_msgs/TwistStamped, world frame), reference
             (mimic_msgs/ReferenceFrame, when ``reference_source`` is ``topic``); with
             ``base_state: odometry`` odom (nav_msgs/Odometry, twist in the base frame, as
             Gazebo's OdometryPublisher or a state estimator gives it) instead of
             base_pose and base_twist
Publishes:   pd_command (mimic_msgs/JointPDCommand); with ``forward_command_topic``
             also std_msgs/Float64MultiArray target positions in ``forward_joint_names``
             order (a ros2_control ``forward_command_controller``)

``trigger: state`` answers each state (joint_states, base_pose and base_twist of one
stamp, each received since the last answer) with one command stamped with the state's
stamp, instead of commanding on a timer: with sim_node's ``step_on_command``, which steps
on the answer to its latest state and offers a state again when no answer came, the loop
runs in lockstep, as in training (``mimic launch play``).

The reference: with ``reference_source: topic`` the clip time of the latest
ReferenceFrame, advanced by the time since it arrived (phase-locked to the stream);
with ``clip`` the node plays the checkpoint's clip itself from ``start_time`` (by its
clock since activation, or with ``trigger: state`` by the states' stamps).
"""

from __future__ import annotations

import gc
from collections.abc import Sequence

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from mimic_msgs.msg import JointPDCommand, ReferenceFrame
from mimic_policy.node_params import PolicyNodeParams
from mimic_policy.serving import (
    PDCommand,
    PolicyController,
    RobotState,
    UnsafeActionError,
    load_policy_model,
    twist_in_world,
)
from mimic_sim.nodes.common import run_node
from mimic_sim.nodes.conversions import stamp_ns
from mimic_sim.nodes.parameters import declare_settings

STATE_TOPICS = ("joint_states", "base_pose", "base_twist")
# before a first whole state: the robot is in its own start-up mode, nothing is sent
WAITING = "waiting for"


class PolicyNode(LifecycleNode):
    def __init__(self) -> None:
        super().__init__("policy_node")
        self.params = declare_settings(self, PolicyNodeParams())
        self.controller: PolicyController | None = None
        self.timer = None
        self.watchdog = None
        self.command_pub = None
        self.forward_pub = None
        self._forward_index: np.ndarray | None = None
        self._inputs: list = []  # our subscriptions (not rclpy's own _subscriptions list)
        self._joints: JointState | None = None
        self._pose: PoseStamped | None = None
        self._twist: TwistStamped | None = None
        self._received: dict[str, float] = {}
        self._reference: tuple[float, float] | None = None  # (clip time, node-clock receive time)
        self._active_since: float | None = None
        self._unanswered: set[str] = set()  # state topics received since the last answer (trigger: state)
        self._first_stamp: int | None = None  # stamp of the first state answered since activation
        self._holding: str | None = None  # why the last command was damping (None: commanding)
        self.commands_sent = 0
        self.damping_sent = 0
        if self.params.autostart and self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    # ---------------------------------------------------------------- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        params = self.params
        try:
            if params.reference_source not in ("topic", "clip"):
                raise ValueError(f"parameter reference_source: '{params.reference_source}' is not 'topic' or 'clip'")
            if params.trigger not in ("timer", "state"):
                raise ValueError(f"parameter trigger: '{params.trigger}' is not 'timer' or 'state'")
            if params.base_state not in ("topics", "odometry"):
                raise ValueError(f"parameter base_state: '{params.base_state}' is not 'topics' or 'odometry'")
            if params.base_state == "odometry":
                try:
                    from nav_msgs.msg import Odometry
                except ImportError as exc:
                    raise ValueError("parameter base_state: 'odometry' needs the nav_msgs package, which is "
                                     "not installed") from exc
            if not params.policy:
                raise ValueError("parameter policy is empty: give a checkpoint, run folder or .onnx file")
            try:
                model = load_policy_model(params.policy)
            except (ValueError, OSError):  # mimic's own errors name the file and what is wrong
                raise
            except Exception as exc:  # a truncated or corrupt file fails in whichever library reads it
                raise ValueError(f"cannot load policy {params.policy}: {type(exc).__name__}: {exc}") from exc
            controller = PolicyController(model)
            names = params.forward_joint_names or controller.character.joint_names
            unknown = [n for n in names if n not in controller.character.joint_names]
            if unknown:
                raise ValueError(f"parameter forward_joint_names: character '{controller.character.name}' has no "
                                 f"joints {unknown}")
        except (ValueError, OSError, KeyError, RuntimeError) as exc:
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.controller = controller
        self._forward_index = np.array([controller.character.joint_names.index(n) for n in names], dtype=int)
        self.period = 1.0 / (params.rate_hz if params.rate_hz > 0 else 1.0 / controller.control_dt)
        self.timeout = params.state_timeout if params.state_timeout > 0 else 1.5 * self.period
        self.command_pub = self.create_lifecycle_publisher(JointPDCommand, "pd_command", 10)
        if params.forward_command_topic:
            self.forward_pub = self.create_lifecycle_publisher(Float64MultiArray, params.forward_command_topic, 10)
        self._inputs = [self.create_subscription(JointState, "joint_states", self._on_joints, 10)]
        if params.base_state == "odometry":
            self._inputs.append(self.create_subscription(Odometry, "odom", self._on_odometry, 10))
        else:
            self._inputs += [self.create_subscription(PoseStamped, "base_pose", self._on_pose, 10),
                             self.create_subscription(TwistStamped, "base_twist", self._on_twist, 10)]
        if params.reference_source == "topic":
            self._inputs.append(self.create_subscription(ReferenceFrame, "reference", self._on_reference, 10))
        # Everything loaded so far (torch, the model, the clip) lives as long as the node: out of the
        # garbage collector's sight, a full collection no longer walks it and stalls a period.
        gc.collect()
        gc.freeze()
        self.get_logger().info(f"loaded {params.policy}: character '{controller.character.name}', "
                               f"clip '{controller.task.clip_name}', "
                               f"{controller.character.num_joints} joints, {1.0 / self.period:.1f} Hz, "
                               f"{type(controller.model).__name__}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        self._active_since = self._now()
        self._holding = None
        self._first_stamp = None
        self.timer = self.create_timer(self.period, self._tick)
        self.watchdog = self.create_timer(self.timeout, self._on_deadline)
        self.get_logger().info(f"active: commanding (state timeout {self.timeout * 1e3:.0f} ms)")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        for timer in (self.timer, self.watchdog):
            if timer is not None:
                self.destroy_timer(timer)
        self.timer = self.watchdog = None
        self._damp()
        self.get_logger().info("inactive: sent a damping command")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        for publisher in (self.command_pub, self.forward_pub):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self._inputs, self.command_pub, self.forward_pub, self.controller = [], None, None, None
        self._joints = self._pose = self._twist = self._reference = None
        self._received.clear()
        return TransitionCallbackReturn.SUCCESS

    # ---------------------------------------------------------------- inputs
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _heard(self, *topics: str) -> None:
        """Note the arrival of state topics; restart the deadline when the oldest was renewed."""
        oldest = min(self._received.get(n, -np.inf) for n in STATE_TOPICS)
        now = self._now()
        for topic in topics:
            self._received[topic] = now
        self._unanswered.update(topics)
        if self.watchdog is not None and min(self._received.get(n, -np.inf) for n in STATE_TOPICS) > oldest:
            self.watchdog.reset()

    def _on_joints(self, msg: JointState) -> None:
        self._joints = msg
        self._heard("joint_states")
        self._answer_state()

    def _on_pose(self, msg: PoseStamped) -> None:
        self._pose = msg
        self._heard("base_pose")
        self._answer_state()

    def _on_twist(self, msg: TwistStamped) -> None:
        self._twist = msg
        self._heard("base_twist")
        self._answer_state()

    def _on_odometry(self, msg) -> None:
        """nav_msgs/Odometry: the pose as base_pose, the twist turned from the base frame to the world."""
        q = msg.pose.pose.orientation
        t = msg.twist.twist
        # a degenerate orientation gives a non-finite twist here; _state refuses that orientation
        linear, angular = twist_in_world(np.array([q.w, q.x, q.y, q.z]), [t.linear.x, t.linear.y, t.linear.z],
                                         [t.angular.x, t.angular.y, t.angular.z])
        pose = PoseStamped(header=msg.header, pose=msg.pose.pose)
        twist = TwistStamped(header=msg.header)
        twist.twist.linear.x, twist.twist.linear.y, twist.twist.linear.z = (float(v) for v in linear)
        twist.twist.angular.x, twist.twist.angular.y, twist.twist.angular.z = (float(v) for v in angular)
        self._pose, self._twist = pose, twist
        self._heard("base_pose", "base_twist")
        self._answer_state()

    def _answer_state(self) -> None:
        """With ``trigger: state``: one command per state received, once its three parts (same stamp)
        are in; a state offered again (its answer was lost) is answered again."""
        if self.params.trigger != "state" or self.timer is None or not self._unanswered.issuperset(STATE_TOPICS):
            return
        stamp = stamp_ns(self._joints)
        if stamp != stamp_ns(self._pose) or stamp != stamp_ns(self._twist):
            return
        self._unanswered.clear()
        if self._first_stamp is None:
            self._first_stamp = stamp
        by_stamp = self.params.start_time + (stamp - self._first_stamp) * 1e-9
        self._command(by_stamp if self.params.reference_source == "clip" else self._clip_time(self._now()),
                      stamp=self._joints.header.stamp)

    def _on_reference(self, msg: ReferenceFrame) -> None:
        meta_clip = self.controller.task.clip_name if self.controller is not None else None
        if meta_clip is not None and msg.clip and msg.clip != meta_clip:
            self._hold(f"reference clip '{msg.clip}' is not the policy's '{meta_clip}'")
            self._reference = None
            return
        self._reference = (float(msg.clip_time), self._now())

    def _state_or_none(self) -> RobotState | None:
        try:
            return self._state()
        except ValueError:
            return None

    def _state(self) -> RobotState:
        if self._joints is None or self._pose is None or self._twist is None:
            missing = [n for n, m in (("joint_states", self._joints), ("base_pose", self._pose),
                                      ("base_twist", self._twist)) if m is None]
            raise ValueError(f"no {', '.join(missing)} yet")
        j, p, t = self._joints, self._pose.pose, self._twist.twist
        velocities = j.velocity if len(j.velocity) else np.zeros(len(j.name))
        return RobotState.from_joints(
            self.controller.character, list(j.name), np.asarray(j.position), np.asarray(velocities),
            np.array([p.position.x, p.position.y, p.position.z]),
            np.array([p.orientation.w, p.orientation.x, p.orientation.y, p.orientation.z]),
            np.array([t.linear.x, t.linear.y, t.linear.z]), np.array([t.angular.x, t.angular.y, t.angular.z]))

    def _clip_time(self, now: float) -> float | None:
        if self.params.reference_source == "clip":
            return self.params.start_time + (now - self._active_since)
        if self._reference is None:
            return None
        clip_time, received = self._reference
        return clip_time + (now - received)

    # ---------------------------------------------------------------- output
    def _stale(self, now: float) -> str | None:
        """Why the state is too old to act on, or None."""
        stale = [n for n in STATE_TOPICS if now - self._received.get(n, -np.inf) > self.timeout]
        return f"no fresh {', '.join(stale)} for {self.timeout * 1e3:.0f} ms" if stale else None

    def _tick(self) -> None:
        """Every period: the watchdog, then (``trigger: timer``) the policy's command."""
        now = self._now()
        unheard = [n for n in STATE_TOPICS if n not in self._received]
        if unheard:  # no whole state yet: the robot is still in its own start-up mode
            waiting = f"{WAITING} {', '.join(unheard)}"
            if self._holding != waiting:
                self.get_logger().info(waiting)
                self._holding = waiting
            return
        stale = self._stale(now)
        if stale:
            self._hold(stale)
            return
        if self.params.trigger == "timer":
            self._command(self._clip_time(now))

    def _on_deadline(self) -> None:
        """The state's deadline passed: damp now rather than at the next tick (the ticks go on
        damping while the state stays stale)."""
        stale = self._stale(self._now()) if self._received.keys() >= set(STATE_TOPICS) else None
        if stale and stale != self._holding:
            self._hold(stale)

    def _command(self, clip_time: float | None, stamp=None) -> None:
        if clip_time is None:
            self._hold("no reference frame yet")
            return
        try:
            command = self.controller.command(self._state(), clip_time)
        except (ValueError, UnsafeActionError) as exc:
            self._hold(str(exc))
            return
        if self._holding is not None and self._holding.startswith(WAITING):
            self.get_logger().info("state received: commanding")
        elif self._holding is not None:
            self.get_logger().info(f"resuming policy commands (was holding: {self._holding})")
        self._holding = None
        self._publish(command, stamp=stamp)

    def _hold(self, reason: str) -> None:
        """Send the damping command; log the reason when it changes."""
        if self.controller is None or self.timer is None:
            return
        if reason != self._holding:
            self.get_logger().warning(f"damping: {reason}")
            self._holding = reason
        self._damp()

    def _damp(self) -> None:
        """The damping command; the measured positions to hold on the forward-command topic."""
        state = self._state_or_none()
        command = self.controller.damping(state)
        self._publish(command, damping=True)
        if self.forward_pub is not None and state is not None:
            self.forward_pub.publish(Float64MultiArray(data=command.positions[self._forward_index].tolist()))

    def _publish(self, command: PDCommand, damping: bool = False, stamp=None) -> None:
        """``stamp``: the state's stamp the command answers (trigger: state); None: now."""
        msg = JointPDCommand()
        msg.header.stamp = self.get_clock().now().to_msg() if stamp is None else stamp
        msg.joint_names = list(command.joint_names)
        msg.positions = command.positions.tolist()
        msg.velocities = command.velocities.tolist()
        msg.kp = command.kp.tolist()
        msg.kd = command.kd.tolist()
        msg.effort = [0.0] * len(command.joint_names)
        self.command_pub.publish(msg)
        if self.forward_pub is not None and not damping:
            self.forward_pub.publish(Float64MultiArray(data=command.positions[self._forward_index].tolist()))
        if damping:
            self.damping_sent += 1
        else:
            self.commands_sent += 1


def main(args: Sequence[str] | None = None) -> int:
    return run_node(PolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
