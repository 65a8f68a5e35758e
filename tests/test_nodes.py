"""The ROS 2 nodes over real DDS (localhost only, a domain of their own)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import BIN, WAIT, NodeProcess, Process, spin_until, unique_domain_id

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("mimic_msgs")

from geometry_msgs.msg import PoseStamped  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402

from mimic_msgs.msg import JointPDCommand, ReferenceFrame  # noqa: E402
from mimic_sim.character import load_character  # noqa: E402

# ------------------------------------------------------------------ parameters
START_WAIT = 90.0  # s: eight node processes start at once on 2 cores that CI shares (30 s was once too short)


def _parameters(node, executor, target: str) -> dict[str, tuple[object, str]]:
    """``target``'s declared parameters, through its parameter services: name -> (value, description)."""
    from rcl_interfaces.srv import DescribeParameters, GetParameters, ListParameters
    from rclpy.parameter import parameter_value_to_python

    def call(kind, service: str, request):
        client = node.create_client(kind, f"/{target}/{service}")
        try:
            assert client.wait_for_service(timeout_sec=START_WAIT), f"no /{target}/{service}"
            future = client.call_async(request)
            assert spin_until(executor, future.done, timeout=WAIT), f"/{target}/{service} did not answer"
            return future.result()
        finally:
            node.destroy_client(client)

    names = list(call(ListParameters, "list_parameters", ListParameters.Request()).result.names)
    values = call(GetParameters, "get_parameters", GetParameters.Request(names=names)).values
    descriptors = call(DescribeParameters, "describe_parameters", DescribeParameters.Request(names=names)).descriptors
    # arrays arrive as array.array
    values = [v if isinstance(v, str | bool | int | float) else list(v) for v in map(parameter_value_to_python, values)]
    return {n: (v, d.description) for n, v, d in zip(names, values, descriptors, strict=True)}


def test_each_node_declares_its_settings_class_as_parameters_with_their_help_and_defaults(domain, tmp_path):
    # the parameter files are checked against these classes without ROS (test_node_parameters)
    from node_settings import ROS_OWN, declared

    from mimic_sim.settings import parameter_default, parameter_help

    node, executor = domain
    started = {name: NodeProcess(name) for name in ("sim_node", "reference_player", "policy_node", "retarget_node",
                                                    "human_player", "pose_node")}
    # its images to a topic nobody reads: it waits for a subscriber instead of playing to its end and exiting.
    # Hidden (a leading '_'), since the recorder, recording every visible topic by default, would read it
    started["video_player"] = Process([str(BIN / "video_player"), "--ros-args", "-r", "image:=_image_nobody_reads"])
    started["recorder"] = Process([str(BIN / "recorder")], cwd=tmp_path)  # its default bag folder: in tmp_path
    try:
        for name, process in started.items():
            try:
                parameters = _parameters(node, executor, name)
            except AssertionError as exc:
                status = process.proc.poll()
                raise AssertionError(f"{exc}; its exit status {status}, output:\n{process.output()}") from exc
            expected = declared(name)
            assert set(parameters) == set(expected), (name, set(parameters) ^ set(expected), process.output())
            for key, (value, description) in parameters.items():
                if key not in {leaf.name for leaf in ROS_OWN}:
                    leaf = expected[key]
                    assert (value, description) == (parameter_default(leaf), parameter_help(leaf)), (name, key)
                    assert description, (name, key)
    finally:
        codes = {name: process.stop() for name, process in started.items()}
    assert all(code == 0 for code in codes.values()), codes


def test_sim_node_holds_a_commanded_pose_and_survives_bad_commands(domain):
    node, executor = domain
    humanoid = load_character("humanoid")
    poses: list[PoseStamped] = []
    states: list[JointState] = []
    node.create_subscription(PoseStamped, "base_pose", poses.append, 10)
    node.create_subscription(JointState, "joint_states", states.append, 10)
    commands = node.create_publisher(JointPDCommand, "pd_command", 10)
    sim = NodeProcess("sim_node", "realtime:=true", "initial_pose:=stand")
    try:
        assert spin_until(executor, lambda: len(poses) > 3 and commands.get_subscription_count() > 0), sim.output()
        assert states[-1].name == humanoid.joint_names

        def send(names, positions, **gains) -> None:
            msg = JointPDCommand(joint_names=list(names), positions=[float(p) for p in positions],
                                 **{k: [float(g) for g in v] for k, v in gains.items()})
            commands.publish(msg)

        hold = np.zeros(humanoid.num_joints)
        huge = np.full(humanoid.num_joints, 1e9)  # the reproduction: MuJoCo's root flew 85-283 m
        # a held standing pose for 3 s of simulated time, with bad commands in between
        bad = [([*humanoid.joint_names[:-1], "left_wing"], hold), (humanoid.joint_names, hold[:-1]),
               (humanoid.joint_names, np.where(np.arange(len(hold)) == 2, np.nan, hold)),
               (humanoid.joint_names, hold, {"kp": huge}), (humanoid.joint_names, hold, {"kd": huge})]
        start = len(poses)
        for i in range(90):
            command = bad[i // 18] if i % 18 == 9 else (humanoid.joint_names, hold)
            send(*command[:2], **(command[2] if len(command) > 2 else {}))
            spin_until(executor, lambda n=start + i: len(poses) > n, timeout=2.0)
        assert sim.proc.poll() is None, "sim_node crashed"
        assert len(poses) - start >= 60
        heights = [p.pose.position.z for p in poses[start:]]
        assert min(heights) > 0.85, f"the character fell: root height down to {min(heights):.3f} m"
        tilt = poses[-1].pose.orientation
        assert abs(tilt.w) > 0.99
    finally:
        code = sim.stop()
    out = sim.output()
    assert out.count("command rejected") >= 5, out
    assert "left_wing" in out and "'positions' has 27 values" in out and "is nan" in out
    first = humanoid.joint_names[0]
    assert f"'kp' of joint '{first}' is 1e+09, beyond its limit" in out
    assert f"'kd' of joint '{first}' is 1e+09, beyond its limit" in out
    assert "blew up" not in out
    assert code == 0


def test_sim_node_resets_a_simulation_beyond_its_bounds_and_says_why(domain):
    """The detection and reset path over ROS, made deterministic: a bound on the root speed that an
    ordinary collapse exceeds (kp = 0). Absurd gains blow MuJoCo up only from some states (they
    saturate at the torque limits otherwise); tests/test_stability.py checks that reproduction."""
    node, executor = domain
    humanoid = load_character("humanoid")
    poses: list[PoseStamped] = []
    node.create_subscription(PoseStamped, "base_pose", poses.append, 10)
    commands = node.create_publisher(JointPDCommand, "pd_command", 10)
    sim = NodeProcess("sim_node", "realtime:=true", "initial_pose:=stand", "max_root_speed:=1.0")
    try:
        assert spin_until(executor, lambda: len(poses) > 3 and commands.get_subscription_count() > 0), sim.output()
        n = humanoid.num_joints
        # sent once (reliable, and the sim's subscription has matched): a command after the reset
        # would collapse the character again
        commands.publish(JointPDCommand(joint_names=humanoid.joint_names, positions=[0.0] * n, kp=[0.0] * n))
        assert spin_until(executor, lambda: "physics blew up" in sim.output(), timeout=6 * WAIT), sim.output()
        count = len(poses)
        assert spin_until(executor, lambda: len(poses) > count + 10, timeout=6 * WAIT)
    finally:
        code = sim.stop()
    out = sim.output()
    line = next(line for line in out.splitlines() if "physics blew up" in line)
    assert "[ERROR]" in line and "root speed" in line and "beyond 1 m/s" in line
    assert "reset to the initial state" in line
    # what follows the reset: the character standing where it started, with its own gains
    for pose in poses[count:]:
        p = pose.pose.position
        assert abs(p.x) < 0.2 and abs(p.y) < 0.2 and 0.8 < p.z < 1.0, (p, out)
    assert code == 0


def test_reference_player_streams_the_clip_with_seek_and_pause(domain):
    from std_srvs.srv import Trigger

    from mimic_msgs.srv import Seek
    from mimic_sim.deepmimic_format import load_deepmimic, resolve_clip
    from mimic_sim.reference import ReferenceMotion

    node, executor = domain
    humanoid = load_character("humanoid")
    reference = ReferenceMotion(load_deepmimic(resolve_clip("run")), humanoid)
    frames: list[ReferenceFrame] = []
    node.create_subscription(ReferenceFrame, "reference", frames.append, 50)
    player = NodeProcess("reference_player", "clip:=run", "rate:=60.0")
    try:
        assert spin_until(executor, lambda: len(frames) >= 30), player.output()
        for frame in frames[-10:]:
            qpos, qvel = reference.state(frame.clip_time)
            assert list(frame.joint_names) == humanoid.joint_names
            assert np.allclose(frame.positions, qpos[7:], atol=1e-9)
            assert np.allclose(frame.velocities, qvel[6:], atol=1e-9)
            assert abs(frame.root_pose.position.x - qpos[0]) < 1e-9 and len(frame.future) == 2
        # In real time: each frame's clip time is its stamp's (the loop wrapped), whatever the machine's
        # load did to the timer; the timer runs at the rate asked for (not timed here: a loaded machine is late)
        stamps = np.array([f.header.stamp.sec + f.header.stamp.nanosec * 1e-9 for f in frames[-20:]])
        drift = np.diff([f.clip_time for f in frames[-20:]]) - np.diff(stamps)
        drift = (drift + reference.duration / 2) % reference.duration - reference.duration / 2
        assert np.abs(drift).max() < 1e-6, drift
        assert "at 60.0 Hz" in player.output()
        stop = node.create_client(Trigger, "/reference_player/stop")
        seek = node.create_client(Seek, "/reference_player/seek")
        assert stop.wait_for_service(timeout_sec=WAIT) and seek.wait_for_service(timeout_sec=WAIT)
        future = stop.call_async(Trigger.Request())
        assert spin_until(executor, future.done)
        stopped = time.time()
        # paused: nothing is published after the stop (frames published before it may still be in
        # flight on a loaded machine, so they are told apart by their stamps, not counted)
        spin_until(executor, lambda: False, timeout=0.3)
        assert max(f.header.stamp.sec + f.header.stamp.nanosec * 1e-9 for f in frames) <= stopped
        future = seek.call_async(Seek.Request(time=-1.0))
        assert spin_until(executor, future.done) and not future.result().success
        future = seek.call_async(Seek.Request(time=0.4))
        assert spin_until(executor, future.done) and future.result().success
    finally:
        assert player.stop() == 0


def test_nodes_publish_the_link_tree_on_tf(domain):
    from tf2_msgs.msg import TFMessage

    node, executor = domain
    humanoid = load_character("humanoid")
    messages: list[TFMessage] = []
    node.create_subscription(TFMessage, "/tf", messages.append, 50)
    sim = NodeProcess("sim_node", "realtime:=true")
    player = NodeProcess("reference_player", "clip:=walk")
    try:
        def frames() -> set[str]:
            return {t.child_frame_id for m in messages for t in m.transforms}

        assert spin_until(executor, lambda: {"root", "reference/root"} <= frames()), sim.output() + player.output()
        for body in humanoid.tracked_bodies:
            assert body in frames() and f"reference/{body}" in frames()
        parents = {t.child_frame_id: t.header.frame_id for m in messages for t in m.transforms}
        assert parents["root"] == "world" and parents["reference/chest_y_link"] == "reference/root"
    finally:
        assert sim.stop() == 0 and player.stop() == 0


def test_mimic_launch_sim_runs_the_graph_records_it_and_stops_everything(domain, tmp_path):
    from mimic_sim.tools.bag import read_bag
    from mimic_sim.tools.graph import load_scenario

    node, executor = domain
    scenario = load_scenario("sim")
    launcher = Process([str(BIN / "mimic"), "launch", "sim", "clip:=run"], cwd=tmp_path)
    lines = launcher.lines
    declared = {t if t.startswith("/") else "/" + t for spec in scenario.nodes for t in spec.topics}
    try:
        def published() -> set[str]:
            return {name for name, _ in node.get_topic_names_and_types()}

        assert spin_until(executor, lambda: declared <= published(), timeout=30), (declared - published(), lines)
        # the recorder subscribes to a topic once it sees its publisher: wait for that (discovery can take
        # seconds on a loaded machine), then let it record for a while
        recorded = ("/reference", "/joint_states", "/base_pose")
        assert spin_until(executor, lambda: all(node.count_subscribers(t) >= 1 for t in recorded), timeout=30), lines
        spin_until(executor, lambda: False, timeout=1.5)
    finally:
        code = launcher.stop(timeout=30)
    text = launcher.output()
    assert code == 0, text
    pids = [int(line.split("(pid ")[1].split(")")[0]) for line in lines if "started" in line and "(pid " in line]
    assert len(pids) == len(scenario.nodes)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z", text
    assert "[reference_player]" in text and "[sim_node]" in text and "[recorder]" in text
    bags = list((tmp_path / "bags").iterdir())
    assert len(bags) == 1 and (bags[0] / "metadata.yaml").is_file(), text
    topics = {topic for topic, _, _ in read_bag(bags[0])}
    assert {"/reference", "/joint_states", "/base_pose"} <= topics, text


def test_reference_player_to_recorder_to_bag_gives_the_clip(domain, tmp_path):
    from mimic_sim.deepmimic_format import load_deepmimic, resolve_clip
    from mimic_sim.reference import ReferenceMotion
    from mimic_sim.tools.bag import read_bag

    node, executor = domain
    humanoid = load_character("humanoid")
    reference = ReferenceMotion(load_deepmimic(resolve_clip("cartwheel")), humanoid)
    frames: list[ReferenceFrame] = []
    node.create_subscription(ReferenceFrame, "reference", frames.append, 50)
    bag = tmp_path / "bag"
    recorder = NodeProcess("recorder", "topics:=[reference]", f"output:={bag}")
    player = NodeProcess("reference_player", "clip:=cartwheel", "rate:=120.0", "publish_tf:=false")
    try:
        # the recorder subscribes once the player publishes; then record 1 s of frames
        assert spin_until(executor, lambda: node.count_subscribers("reference") >= 2), \
            player.output() + recorder.output()
        start = len(frames)
        assert spin_until(executor, lambda: len(frames) >= start + 120), player.output()
    finally:
        assert player.stop() == 0
        assert recorder.stop() == 0, recorder.output()
    recorded = [m for topic, _, m in read_bag(bag) if topic == "/reference"]
    assert len(recorded) > 100
    times = [m.clip_time for m in recorded]
    assert times == sorted(times), "frames out of order"
    for m in recorded:
        qpos, qvel = reference.state(m.clip_time)
        assert list(m.joint_names) == humanoid.joint_names
        assert np.allclose(m.positions, qpos[7:], atol=1e-12) and np.allclose(m.velocities, qvel[6:], atol=1e-12)
        assert np.allclose([m.root_pose.position.x, m.root_pose.position.y, m.root_pose.position.z], qpos[:3],
                           atol=1e-12)
        assert np.allclose([m.root_pose.orientation.w, m.root_pose.orientation.x, m.root_pose.orientation.y,
                            m.root_pose.orientation.z], qpos[3:7], atol=1e-12)


def test_trainer_node_publishes_status_saves_on_request_and_stops(domain, tmp_path):
    from std_srvs.srv import Trigger

    from mimic_msgs.msg import TrainingStatus

    node, executor = domain
    statuses: list[TrainingStatus] = []
    node.create_subscription(TrainingStatus, "training_status", statuses.append, 10)
    run_dir = tmp_path / "run"
    trainer = NodeProcess("trainer", "num_envs:=2", "num_workers:=1", "num_steps:=16", "hidden:=[32]", "epochs:=1",
                          "total_samples:=100000", "checkpoint_every:=1000", f"run_dir:={run_dir}")
    try:
        assert spin_until(executor, lambda: len(statuses) >= 2, timeout=60), trainer.output()
        from node_settings import declared

        assert set(_parameters(node, executor, "trainer")) == set(declared("trainer"))
        status = statuses[-1]
        assert status.samples == status.iteration * 32 and status.samples_per_second > 0
        assert list(status.reward_terms) == ["pose", "velocity", "end_effector", "root", "com"]
        save = node.create_client(Trigger, "/trainer/save")
        stop = node.create_client(Trigger, "/trainer/stop")
        assert save.wait_for_service(timeout_sec=WAIT) and stop.wait_for_service(timeout_sec=WAIT)
        future = save.call_async(Trigger.Request())
        assert spin_until(executor, future.done, timeout=30) and future.result().success
        saved = Path(future.result().message)
        assert (saved / "weights.safetensors").is_file() and (saved / "meta.json").is_file()
        future = stop.call_async(Trigger.Request())
        assert spin_until(executor, future.done, timeout=30) and future.result().success
        assert trainer.proc.wait(timeout=60) == 0, trainer.output()
    finally:
        trainer.stop()
    assert "final checkpoint" in trainer.output()
    assert (run_dir / "checkpoints" / "latest").is_file() and (run_dir / "progress.csv").is_file()
    assert (run_dir / "learning_curve.png").is_file()


# ------------------------------------------------------------------ policy_node
class _StatePublisher:
    """The probe as a robot: joint_states, base_pose and base_twist of one state, at 30 Hz
    while ``on``; the monotonic time of its last message."""

    def __init__(self, node, state):
        from geometry_msgs.msg import TwistStamped

        from mimic_sim.nodes.conversions import pose_msg, twist_msg

        qpos, qvel = state
        names = load_character("humanoid").joint_names
        self.joint = JointState(name=names, position=qpos[7:].tolist(), velocity=qvel[6:].tolist())
        self.pose = PoseStamped(pose=pose_msg(qpos[:3], qpos[3:7]))
        self.twist = TwistStamped(twist=twist_msg(qvel[:3], qvel[3:6]))
        self.pubs = [node.create_publisher(JointState, "joint_states", 10),
                     node.create_publisher(PoseStamped, "base_pose", 10),
                     node.create_publisher(TwistStamped, "base_twist", 10)]
        self.on = True
        self.last = 0.0
        node.create_timer(1 / 30, self._tick)

    def _tick(self) -> None:
        if self.on:
            for pub, msg in zip(self.pubs, (self.joint, self.pose, self.twist), strict=True):
                pub.publish(msg)
            self.last = time.monotonic()


def _is_damping(msg: JointPDCommand) -> bool:
    return all(k == 0.0 for k in msg.kp)


@pytest.fixture(scope="module")
def policy_run(tmp_path_factory):
    from policy_helpers import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory.mktemp("policy"))


def _standing_state():
    from mimic_sim.envs.imitation import ImitationEnv

    env = ImitationEnv()
    env.reset(options={"start_time": 0.0})
    state = env.backend.get_state()
    env.close()
    return state


def test_policy_node_commands_damps_on_stale_state_recovers_and_deactivates(domain, policy_run):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState
    from std_msgs.msg import Float64MultiArray

    node, executor = domain
    commands: list[tuple[float, JointPDCommand]] = []
    node.create_subscription(JointPDCommand, "pd_command", lambda m: commands.append((time.monotonic(), m)), 50)
    forward: list[tuple[float, np.ndarray]] = []  # what a ros2_control forward_command_controller receives
    node.create_subscription(Float64MultiArray, "forward", lambda m: forward.append((time.monotonic(),
                                                                                    np.array(m.data))), 50)
    robot = _StatePublisher(node, _standing_state())
    policy = NodeProcess("policy_node", f"policy:={policy_run}", "autostart:=true", "reference_source:=clip",
                         "forward_command_topic:=forward")
    try:
        assert spin_until(executor, lambda: sum(not _is_damping(m) for _, m in commands) >= 5, timeout=120), \
            policy.output()
        humanoid = load_character("humanoid")
        first = next(m for _, m in commands if not _is_damping(m))
        assert list(first.joint_names) == humanoid.joint_names and np.allclose(first.kp, humanoid.kp)
        assert np.all(np.asarray(first.positions) <= humanoid.joint_upper)

        robot.on = False  # the robot goes silent: damping after the timeout (1.5 periods at 30 Hz)
        assert spin_until(executor, lambda: commands and _is_damping(commands[-1][1]) and
                          commands[-1][0] > robot.last, timeout=WAIT), policy.output()
        # how soon, in control periods, is a timing figure: bench/watchdog_latency.py measures it
        # a position-controlled robot is held where it was last seen, not left chasing the last target
        held = np.clip(np.asarray(robot.joint.position), humanoid.joint_lower, humanoid.joint_upper)
        assert spin_until(executor, lambda: any(t > robot.last and np.allclose(d, held, rtol=0, atol=1e-12)
                                                for t, d in forward), timeout=WAIT), policy.output()
        # the log line may reach us after the command did: wait for it (bounded)
        assert spin_until(executor, lambda: "damping: no fresh joint_states" in policy.output(), timeout=WAIT), \
            policy.output()

        robot.on = True
        count = len(commands)
        assert spin_until(executor, lambda: any(not _is_damping(m) for _, m in commands[count:]), timeout=WAIT)
        assert spin_until(executor, lambda: "resuming policy commands" in policy.output(), timeout=WAIT)

        change = node.create_client(ChangeState, "/policy_node/change_state")
        assert change.wait_for_service(timeout_sec=WAIT)
        count = len(commands)
        future = change.call_async(ChangeState.Request(transition=Transition(id=Transition.TRANSITION_DEACTIVATE)))
        assert spin_until(executor, future.done, timeout=WAIT) and future.result().success
        assert spin_until(executor, lambda: any(_is_damping(m) for _, m in commands[count:]), timeout=WAIT)
    finally:
        policy.stop()
    for _, m in commands:
        assert np.all(np.isfinite(m.positions)) and np.all(np.isfinite(m.velocities))


def test_policy_node_never_publishes_a_poisoned_models_output(domain, policy_run, tmp_path):
    import torch

    from mimic_policy.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

    tensors, meta = load_checkpoint(latest_checkpoint(policy_run))
    bias = next(k for k in tensors if k.startswith("model.actor.") and k.endswith(".bias") and
                tensors[k].shape[0] == len(meta["joint_names"]))
    tensors[bias] = torch.full_like(tensors[bias], float("nan"))
    poisoned = save_checkpoint(tmp_path / "poisoned", tensors, meta)

    node, executor = domain
    commands: list[JointPDCommand] = []
    node.create_subscription(JointPDCommand, "pd_command", commands.append, 50)
    _StatePublisher(node, _standing_state())
    policy = NodeProcess("policy_node", f"policy:={poisoned}", "autostart:=true", "reference_source:=clip")
    try:
        assert spin_until(executor, lambda: len(commands) >= 10, timeout=120), policy.output()
    finally:
        policy.stop()
    assert all(_is_damping(m) for m in commands)
    assert all(np.all(np.isfinite(m.positions)) for m in commands)
    assert "not finite" in policy.output()


def test_policy_node_refuses_to_configure_with_a_truncated_onnx_file(domain, policy_run, tmp_path):
    export = policy_run.parent / "policy.onnx"
    truncated = tmp_path / "policy.onnx"
    truncated.write_bytes(export.read_bytes()[: export.stat().st_size // 2])
    policy = NodeProcess("policy_node", f"policy:={truncated}", "autostart:=true")
    try:
        assert spin_until(domain[1], lambda: "configure failed" in policy.output(), timeout=60), policy.output()
    finally:
        policy.stop()
    line = next(line for line in policy.output().splitlines() if "configure failed" in line)
    assert "[ERROR]" in line and str(truncated) in line and "Traceback" not in policy.output()


def test_policy_node_refuses_to_configure_with_a_missing_policy(domain, tmp_path):
    policy = NodeProcess("policy_node", f"policy:={tmp_path / 'nothing'}", "autostart:=true")
    try:
        assert spin_until(domain[1], lambda: "configure failed" in policy.output(), timeout=60), policy.output()
    finally:
        policy.stop()
    assert "does not exist" in policy.output()


def test_mimic_launch_play_runs_the_policy_in_lockstep_and_its_bag_matches_the_environment(policy_run, tmp_path,
                                                                                          monkeypatch):
    """reference_player + sim_node + policy_node + recorder over DDS, started as the README shows
    (no output:=): it ends by itself at its duration with the bag closed, the bag holds every
    state, and its report shows the trajectory the policy has in-process (same fall step, same
    rewards)."""
    import torch

    from mimic_policy.evaluate import load_policy
    from mimic_policy.serving import load_policy_task
    from mimic_sim.envs.imitation import ImitationEnv
    from mimic_sim.tools.report import report

    monkeypatch.setenv("ROS_DOMAIN_ID", str(unique_domain_id()))
    launch = subprocess.run([sys.executable, "-m", "mimic_sim.tools.cli", "launch", "play", f"policy:={policy_run}",
                             "duration:=3"], cwd=tmp_path, capture_output=True, text=True, timeout=180,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    out = launch.stdout + launch.stderr
    assert launch.returncode == 0, out
    assert "reached duration 3.00 s of sim time; finished\n" in out and "sim_node exited with status 0" in out, out
    bags = list((tmp_path / "bags").iterdir())
    assert len(bags) == 1 and (bags[0] / "metadata.yaml").is_file(), out  # the default output, closed
    bag = bags[0]

    task = load_policy_task(policy_run)  # scored as `mimic report --policy` does: against its own clip
    result = report(bag, task.character, task.config.reward, motion=task.motion)
    assert result["states"] == 91 and result["states_without_base_state"] == 0  # initial state + 90 steps

    model, _ = load_policy(policy_run)
    env = ImitationEnv(residual_actions=True, target_observation=True, episode_seconds=3.0)
    obs, _ = env.reset(options={"start_time": 0.0})
    rewards = []
    for _ in range(90):
        obs, reward, terminated, truncated, _ = env.step(model.act_deterministic(torch.as_tensor(obs[None]))[0].numpy())
        rewards.append(reward)
        if terminated or truncated:
            break
    env.close()
    if terminated:  # the same fall, at the same step
        assert result["first_fall_seconds"] == pytest.approx(len(rewards) / 30, abs=1e-6)
    else:
        assert result["falls"] == 0
    # the bag also scores the initial state (the reference pose itself: reward 1)
    assert result["normalized_return"] * 91 - 1.0 == pytest.approx(sum(rewards), abs=0.03 * 90)


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def test_lockstep_sim_node_steps_once_per_state_on_the_answer_to_it(domain):
    """A late second answer to a state already stepped (or any command not stamped with the
    latest state) does not step the simulation; a state nobody answered is offered again."""
    node, executor = domain
    humanoid = load_character("humanoid")
    states: list[JointState] = []
    node.create_subscription(JointState, "joint_states", states.append, 50)
    commands = node.create_publisher(JointPDCommand, "pd_command", 10)
    sim = NodeProcess("sim_node", "realtime:=false", "step_on_command:=true", "initial_pose:=walk",
                      "publish_tf:=false")

    def answer(state: JointState) -> None:
        msg = JointPDCommand(joint_names=list(state.name), positions=list(state.position))
        msg.header.stamp = state.header.stamp
        commands.publish(msg)

    step = round(1e9 / 30)
    try:
        assert spin_until(executor, lambda: states and commands.get_subscription_count() > 0), sim.output()
        initial = states[-1]
        assert _stamp_ns(initial) == 0 and list(initial.name) == humanoid.joint_names
        answer(initial)
        assert spin_until(executor, lambda: _stamp_ns(states[-1]) == step), sim.output()
        count = len(states)
        answer(initial)  # late: the state it answers was stepped already
        # the unanswered state is offered again (0.5 s); nothing stepped in between
        assert spin_until(executor, lambda: len(states) > count, timeout=WAIT), sim.output()
        assert [_stamp_ns(m) for m in states[count:]] == [step] * (len(states) - count)
        assert spin_until(executor, lambda: "does not answer the latest state" in sim.output(), timeout=WAIT)
        answer(states[-1])
        assert spin_until(executor, lambda: _stamp_ns(states[-1]) == round(2e9 / 30)), sim.output()
    finally:
        assert sim.stop() == 0, sim.output()
    assert sorted({_stamp_ns(m) for m in states}) == [0, step, round(2e9 / 30)]


def test_policy_node_answers_each_state_it_receives_stamped_with_the_state(domain, policy_run):
    """trigger: state answers a state offered again (its answer was lost on the way) once more,
    and each command carries the stamp of the state it answers: what the lockstep sim steps on.
    Part of a first state is no state: no damping before the rest of it comes."""
    node, executor = domain
    commands: list[JointPDCommand] = []
    node.create_subscription(JointPDCommand, "pd_command", commands.append, 50)
    robot = _StatePublisher(node, _standing_state())
    robot.on = False
    for stamped in (robot.joint, robot.pose, robot.twist):
        stamped.header.stamp.sec, stamped.header.stamp.nanosec = 3, 500
    policy = NodeProcess("policy_node", f"policy:={policy_run}", "autostart:=true", "reference_source:=clip",
                         "trigger:=state", "state_timeout:=60.0")
    try:
        assert spin_until(executor, lambda: all(p.get_subscription_count() > 0 for p in robot.pubs)
                          and "active" in policy.output(), timeout=120), policy.output()
        robot.pubs[0].publish(robot.joint)  # a part of the first state: nothing is sent until the rest comes
        spin_until(executor, lambda: len(commands) > 0, timeout=0.5)
        assert not commands, policy.output()
        for offered in (1, 2):  # the same state, twice
            for pub, msg in zip(robot.pubs, (robot.joint, robot.pose, robot.twist), strict=True):
                pub.publish(msg)
            assert spin_until(executor, lambda n=offered: len(commands) >= n, timeout=WAIT), policy.output()
        robot.joint.header.stamp.nanosec = 600  # a part of another state: no answer until the rest comes
        robot.pubs[0].publish(robot.joint)
        spin_until(executor, lambda: len(commands) > 2, timeout=0.5)
    finally:
        policy.stop()
    assert len(commands) == 2 and not any(_is_damping(m) for m in commands)
    assert all(_stamp_ns(m) == 3_000_000_500 for m in commands)


def test_retarget_node_streams_robot_frames_and_drops_bad_ones(domain):
    from geometry_msgs.msg import Point

    from mimic_msgs.msg import HumanFrame
    from mimic_retarget.human import keypoints_from_clip
    from mimic_retarget.retarget import Retargeter, StreamingRetargeter

    node, executor = domain
    humanoid = load_character("humanoid")
    human = keypoints_from_clip("walk")
    frames: list[ReferenceFrame] = []
    node.create_subscription(ReferenceFrame, "reference", frames.append, 50)
    publisher = node.create_publisher(HumanFrame, "human", 50)
    retarget = NodeProcess("retarget_node", "robot:=humanoid", "publish_tf:=false", "clip:=walk_live")

    def message(i: int, names: list[str], positions: np.ndarray) -> HumanFrame:
        msg = HumanFrame(source="walk", names=names, positions=[Point(x=x, y=y, z=z) for x, y, z in positions])
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(round(float(human.times[i]) * 1e9), 10**9)
        return msg

    try:
        assert spin_until(executor, lambda: publisher.get_subscription_count() >= 1
                          and node.count_publishers("reference") >= 1), retarget.output()
        count = 12
        for i in range(count):
            publisher.publish(message(i, list(human.names), human.positions[i]))
            assert spin_until(executor, lambda i=i: len(frames) > i), retarget.output()
            if i == 5:  # a frame without the left wrist, then one with a NaN: dropped, the node carries on
                publisher.publish(message(i, list(human.names[:-8]) + list(human.names[-7:]),
                                          np.delete(human.positions[i], -8, axis=0)))
                publisher.publish(message(i, list(human.names), np.full_like(human.positions[i], np.nan)))
        spin_until(executor, lambda: len(frames) > count, timeout=0.5)
        assert len(frames) == count, "a bad frame was published"
        assert "frame dropped" in retarget.output() and retarget.proc.poll() is None
        # the same frames retargeted in-process give the same robot frames
        stream = StreamingRetargeter(Retargeter(humanoid))
        for i, frame in enumerate(frames):
            qpos, _ = stream.step(float(human.times[i]), list(human.names), human.positions[i])
            assert frame.clip == "walk_live" and list(frame.joint_names) == humanoid.joint_names
            assert np.allclose(frame.positions, qpos[7:], atol=1e-9)
            assert abs(frame.root_pose.position.z - qpos[2]) < 1e-9
        assert np.isfinite([v for f in frames for v in f.velocities]).all()
    finally:
        assert retarget.stop() == 0, retarget.output()


def test_mimic_launch_retarget_streams_human_frames_onto_the_robot_and_records_both(domain, tmp_path):
    from mimic_sim.tools.bag import read_bag

    node, executor = domain
    humanoid = load_character("humanoid")
    frames: list[ReferenceFrame] = []
    node.create_subscription(ReferenceFrame, "reference", frames.append, 50)
    # as the README shows it: no output:=, the bag goes to bags/mimic_<UTC time> under the working directory
    launcher = Process([str(BIN / "mimic"), "launch", "retarget", "robot:=humanoid", "source:=run"], cwd=tmp_path)
    lines = launcher.lines

    def bag() -> Path:
        return next((tmp_path / "bags").glob("mimic_*"), tmp_path / "bags" / "none")

    try:
        # The recorder subscribes to each topic once it sees a publisher there, and a publisher
        # delivers to it only once the two have matched, which can take seconds on a loaded
        # machine: wait until the bag itself holds what is asserted below (the recorder writes it
        # out every second), not for a number of frames here (those may all predate its match).
        def recorded_both() -> bool:
            counts = _live_counts(bag())
            return counts.get("/human", 0) > 30 and counts.get("/reference", 0) > 30

        assert spin_until(executor, recorded_both, timeout=60), (_live_counts(bag()), lines)
        assert spin_until(executor, lambda: len(frames) >= 45, timeout=30), lines  # 1.5 s at 30 Hz
    finally:
        code = launcher.stop(timeout=30)
    text = launcher.output()
    assert code == 0, text
    assert all(list(f.joint_names) == humanoid.joint_names for f in frames)
    # the run moves forward, retargeted live: the root advances and stays at running height
    x = [f.root_pose.position.x for f in frames]
    assert x[-1] - x[0] > 1.0 and all(0.6 < f.root_pose.position.z < 1.2 for f in frames)
    topics = {topic: n for topic, n in _count_topics(read_bag(bag()))}
    assert topics.get("/human", 0) > 30 and topics.get("/reference", 0) > 30, (topics, text)


def _image(rgb: np.ndarray, stamp: float, encoding: str = "rgb8"):
    from sensor_msgs.msg import Image

    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding=encoding, step=3 * rgb.shape[1])
    msg.data = rgb.tobytes()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(round(stamp * 1e9), 10**9)
    msg.header.frame_id = "test_camera"
    return msg


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def test_pose_node_gives_the_offline_estimates_filtered_and_survives_bad_images(domain, tmp_path):
    """A rendered walk's frames as camera images: one HumanFrame per frame with a person, whose keypoints
    are the offline pipeline's per-frame estimates (mimic video's) through the node's one-euro filter."""
    from video_helpers import render_walk

    from mimic_msgs.msg import HumanFrame
    from mimic_retarget.keypoints import HUMAN_KEYPOINTS
    from mimic_retarget.live_pose import OneEuroConfig, OneEuroFilter, human_keypoints
    from mimic_retarget.pose_estimation import estimate_mediapipe, read_video
    from mimic_retarget.reconstruction import camera_to_world

    node, executor = domain
    video = render_walk(tmp_path / "walk.mp4", seconds=1.0)
    track = estimate_mediapipe(video, second_pass=False)  # pose_node follows the person only
    frames, _, fps, _ = read_video(video)
    humans: list[HumanFrame] = []
    node.create_subscription(HumanFrame, "human", humans.append, 50)
    images = node.create_publisher(Image, "image", 50)
    # every image queued, so that the node sees the same sequence as the offline estimator did
    pose = NodeProcess("pose_node", "image_queue_depth:=100")
    start = 1000.0  # image stamps: the node filters on them
    try:
        assert spin_until(executor, lambda: images.get_subscription_count() >= 1
                          and node.count_publishers("human") >= 1, timeout=START_WAIT), pose.output()
        bad = _image(np.zeros((4, 4, 3), np.uint8), start - 1.0)
        bad.step = 5  # shorter than a row
        images.publish(bad)
        for i, rgb in enumerate(frames):
            if i == 10:  # another bad one amid the stream (its warning falls within the first's throttle)
                images.publish(_image(rgb, start + i / fps, encoding="yuv422"))
            images.publish(_image(rgb, start + i / fps))
            if track.detected[i]:  # an answer is due: wait for it (for an image without a person there is none)
                expected = int(track.detected[:i + 1].sum())
                assert spin_until(executor, lambda n=expected: len(humans) >= n, timeout=WAIT), (i, pose.output())
        assert pose.proc.poll() is None, pose.output()
    finally:
        assert pose.stop() == 0, pose.output()
    out = pose.output()
    assert "image dropped: step 5 is shorter than a row of 4 rgb8 pixels" in out, out
    assert len(humans) == int(track.detected.sum()) and track.detected.mean() > 0.6
    smooth = OneEuroFilter(OneEuroConfig())
    times = start + np.arange(track.num_frames) / fps
    received = iter(humans)
    raw_error = []
    for i in range(track.num_frames):
        if not track.detected[i]:
            smooth.reset()
            continue
        msg = next(received)
        assert list(msg.names) == list(HUMAN_KEYPOINTS) and msg.source == "test_camera"
        assert abs(_stamp(msg) - times[i]) < 1e-6
        got = np.array([[p.x, p.y, p.z] for p in msg.positions])
        raw = human_keypoints(track.world[i], camera_to_world(0.0))
        assert np.allclose(got, smooth(times[i], raw), atol=1e-6), i
        raw_error.append(np.linalg.norm(got - raw, axis=1).mean())
    # what the filter takes off the raw estimates: centimetres (its lag at a walk's limb speeds), not more
    assert 0.0 < np.mean(raw_error) < 0.05, raw_error


def test_video_player_plays_a_video_as_camera_images_and_ends(domain, tmp_path):
    from video_helpers import render_walk

    node, executor = domain
    video = render_walk(tmp_path / "walk.mp4", 320, 240, seconds=1.0)
    images: list[Image] = []
    node.create_subscription(Image, "image", images.append, 50)
    # it waits for a subscriber (this probe) before the first frame
    player = NodeProcess("video_player", f"video:={video}", "width:=160", "end_wait:=0.2", "frame_id:=cam")
    try:
        assert player.proc.wait(timeout=60) == 0, player.output()
        spin_until(executor, lambda: len(images) >= 30, timeout=WAIT)
    finally:
        player.stop()
    assert len(images) == 30, (len(images), player.output())
    assert all((m.width, m.height, m.encoding, m.step, len(m.data)) == (160, 120, "rgb8", 480, 160 * 120 * 3)
               for m in images)
    stamps = [_stamp(m) for m in images]
    assert (np.diff(stamps) > 0).all() and images[-1].header.frame_id == "cam"
    assert 0.5 < stamps[-1] - stamps[0] < 3.0  # played at about its 30 frames/s
    assert np.asarray(images[10].data).std() > 1.0  # a picture, not a blank
    bad = NodeProcess("video_player", f"video:={tmp_path / 'none.mp4'}")
    assert bad.proc.wait(timeout=60) == 2 and "parameter 'video'" in bad.output(), bad.output()


def test_video_player_waits_for_subscribers_downstream_on_its_remapped_topics(domain, tmp_path):
    """With 'image=1, human=1' the first frame waits for a listener on the estimates made of the images
    too (the recorder of `mimic launch video`), named as the node names them: remapped, as its images are."""
    from video_helpers import render_walk

    from mimic_msgs.msg import HumanFrame

    node, executor = domain
    video = render_walk(tmp_path / "walk.mp4", 160, 120, seconds=0.5)
    images: list[Image] = []
    node.create_subscription(Image, "camera/image", images.append, 50)
    args = [str(BIN / "video_player"), "--ros-args", "-r", "image:=camera/image", "-p", f"video:={video}",
            "-p", "end_wait:=0.2", "-p", "wait_for_subscribers:=['image=1', 'human=1']"]
    player = Process(args)
    try:
        assert spin_until(executor, lambda: node.count_publishers("camera/image") >= 1, timeout=30), player.output()
        # half the clip's length at its frame rate: a player that did not wait would have sent images by then
        spin_until(executor, lambda: bool(images), timeout=0.5)
        assert not images and player.proc.poll() is None, player.output()
        node.create_subscription(HumanFrame, "human", lambda _: None, 10)
        assert player.proc.wait(timeout=60) == 0, player.output()
        spin_until(executor, lambda: len(images) >= 15, timeout=WAIT)
    finally:
        player.stop()
    assert len(images) == 15, (len(images), player.output())
    bad = Process([str(BIN / "video_player"), "--ros-args", "-p", f"video:={video}",
                   "-p", "wait_for_subscribers:=['image']"])
    assert bad.proc.wait(timeout=60) == 2 and "'image' is not 'topic=count'" in bad.output(), bad.output()


def test_video_player_publishes_through_a_shared_memory_segment_that_holds_whole_images(domain):
    """Fast DDS's default segment (512 kB) holds less than one 640x480 image: the fragments that do not fit
    wait for the reliable protocol's repair, ~12 ms (bench/pose_node_latency.py)."""
    from mimic_retarget.nodes.video_player import SHM_SEGMENT_BYTES

    node, executor = domain
    player = Process([str(BIN / "video_player"), "--ros-args", "-r", "image:=image_nobody_reads"])  # it waits
    try:
        assert spin_until(executor, lambda: node.count_publishers("image_nobody_reads") >= 1, timeout=30), \
            player.output()
        mapped = {line.split()[-1] for line in Path(f"/proc/{player.proc.pid}/maps").read_text().splitlines()}
        sizes = [os.stat(f).st_size for f in mapped if f.startswith("/dev/shm/fastdds_") and os.path.isfile(f)]
    finally:
        assert player.stop() == 0, player.output()
    assert sizes and max(sizes) >= SHM_SEGMENT_BYTES, (sizes, player.output())


def test_video_player_keeps_a_fast_dds_profile_the_user_named(monkeypatch, tmp_path):
    from mimic_retarget.nodes.video_player import use_image_transport_profile

    monkeypatch.setenv("MIMIC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", "/somewhere/mine.xml")
    use_image_transport_profile()
    assert os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] == "/somewhere/mine.xml"
    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE")
    use_image_transport_profile()
    assert os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] == str(tmp_path / "fastdds" / "images.xml")


def test_mimic_launch_video_records_images_human_frames_and_robot_frames(domain, tmp_path):
    """`mimic launch video` on a short video ends by itself, its bag holding the chain: images, the human
    frames estimated from them (same stamps), the robot's reference frames retargeted from those."""
    from video_helpers import render_walk

    from mimic_sim.tools.bag import read_bag

    video = render_walk(tmp_path / "walk.mp4", 640, 480, seconds=1.0)
    # 10 frames/s: time for the estimator on a loaded machine (it keeps only the newest image)
    launcher = Process([str(BIN / "mimic"), "launch", "video", f"video:={video}", "robot:=humanoid", "rate:=10",
                        "output:=bag"], cwd=tmp_path)
    try:
        code = launcher.proc.wait(timeout=120)
    finally:
        launcher.stop(timeout=30)
    text = launcher.output()
    assert code == 0 and "video_player exited with status 0" in text, text
    stamps: dict[str, list[int]] = {}
    for topic, _, msg in read_bag(tmp_path / "bag", topics=["/image", "/human", "/reference"]):
        stamps.setdefault(topic, []).append(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)
    counts = {t: len(s) for t, s in stamps.items()}
    assert counts.get("/image") == 30 and counts.get("/human", 0) >= 10 and counts.get("/reference", 0) >= 10, \
        (counts, text)
    assert set(stamps["/human"]) <= set(stamps["/image"]) and set(stamps["/reference"]) <= set(stamps["/human"])


def _live_counts(bag: Path) -> dict[str, int]:
    """Messages per topic in a bag the recorder is still writing (as far as it has flushed it)."""
    from mimic_sim.tools.bag import scan_mcap

    file = bag / f"{bag.name}.mcap"
    if not file.is_file():
        return {}
    topics: dict[int, str] = {}
    counts: dict[str, int] = {}
    try:
        for event in scan_mcap(file):
            if event[0] == "channel":
                topics[event[1]] = event[3]
            elif event[0] == "message":
                topic = topics.get(event[1], "")
                counts[topic] = counts.get(topic, 0) + 1
    except ValueError:  # created, its magic bytes not flushed yet
        return {}
    return counts


def _count_topics(messages) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for topic, _, _ in messages:
        counts[topic] = counts.get(topic, 0) + 1
    return list(counts.items())
