"""``mimic play SKILL``: watch a trained policy, in-process or over ROS 2.

``SKILL`` is a shipped skill (``g1/walk``, see ``policies/README.md``), a policy or
checkpoint folder, a run folder or an ``.onnx`` export. Everything it needs comes from
the policy itself: its character, reference motion, rates and reward.

* In-process (default): the deterministic policy for one episode from ``--start-time``,
  rendered headless with the reference as a ghost to ``play.mp4`` and ``play.gif``,
  scored like ``mimic eval`` (``play.json``).
* ``--ros``: the ``play`` scenario (reference_player, sim_node, policy_node, recorder as
  separate processes over DDS, in lockstep), which ends by itself after ``--seconds``;
  then the bag's ``mimic report`` and a video rendered from the recorded states.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mimic_sim.paths import atomic_write_text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("play", help="play a trained skill: video, or closed loop over ROS 2 (--ros)",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("skill", help="shipped skill (g1/walk, humanoid/backflip, ...), policy or checkpoint folder, "
                                      "run folder or .onnx export")
    parser.add_argument("-o", "--out", type=Path, default=None,
                        help="output folder (default: out/play_<character>_<clip>[_ros])")
    parser.add_argument("--seconds", type=float, default=None,
                        help="how long to play (default: 10 s, or the clip's length if it does not loop)")
    parser.add_argument("--start-time", type=float, default=0.0, help="clip time to start from (s)")
    parser.add_argument("--backend", choices=("mujoco", "pybullet"), default=None,
                        help="physics engine (default: the one the policy was trained in)")
    parser.add_argument("--ros", action="store_true",
                        help="run the play scenario over ROS 2 and record it, instead of playing in-process")
    parser.add_argument("--no-gif", action="store_true", help="in-process: write the MP4 only")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mimic_policy.serving import load_policy_task
    from mimic_policy.skills import resolve_policy

    policy = resolve_policy(args.skill)
    task = load_policy_task(policy)
    motion = task.motion
    seconds = args.seconds
    if seconds is None:
        seconds = 10.0 if motion.loop else max(motion.duration - args.start_time, 1.0 / task.config.sim.control_hz)
    if not seconds > 0:
        raise ValueError(f"--seconds must be positive, got {seconds}")
    if not 0.0 <= args.start_time < motion.duration:  # NaN too
        raise ValueError(f"--start-time {args.start_time} is outside clip '{motion.name}' "
                         f"(0 to {motion.duration:.2f} s)")
    name = f"play_{task.character.name}_{motion.name}" + ("_ros" if args.ros else "")
    out = args.out or Path("out") / name
    if args.ros:
        return _play_ros(policy, task, seconds, args.start_time, args.backend, out)
    return _play_here(policy, seconds, args.start_time, args.backend, out, gif=not args.no_gif)


def _play_here(policy: Path, seconds: float, start_time: float, backend: str | None, out: Path, gif: bool) -> int:
    from mimic_policy.evaluate import evaluate, load_policy

    model, meta = load_policy(policy)
    videos = [out / "play.mp4", *([out / "play.gif"] if gif else [])]
    result = evaluate(model, meta, episodes=1, seconds=seconds, video=videos, start_time=start_time, backend=backend)
    result.pop("_curve")
    atomic_write_text(out / "play.json", json.dumps({"policy": str(policy), **result}, indent=2) + "\n")
    episode = result["per_episode"][0]
    ending = "fell" if episode["fell"] else "no fall"
    print(f"{policy}: {episode['steps']} steps, normalized return {result['normalized_return']:.3f}, MPJPE "
          f"{result['mpjpe_mm']:.0f} mm, {ending}; written to {', '.join(str(v) for v in videos)}")
    return 0


def _play_ros(policy: Path, task, seconds: float, start_time: float, backend: str | None, out: Path) -> int:
    from mimic_sim.motion_file import save_motion
    from mimic_sim.render import CharacterRenderer, write_video
    from mimic_sim.tools.graph import load_scenario
    from mimic_sim.tools.launcher import Launcher
    from mimic_sim.tools.report import report, write_report

    bag = out / "bag"
    if bag.exists():
        raise FileExistsError(f"{bag} exists: choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    # The reference the policy was trained on, as a file both the reference player and the sim read:
    # a retargeted or video-derived clip need not exist on this machine.
    clip = save_motion(task.motion, out / "reference.motion.json", task.character.name)
    backend = backend or task.config.backend
    physics_hz = task.config.sim.physics_hz if backend == task.config.backend else 0.0
    arguments = {"policy": str(policy.resolve()), "character": task.character.name, "clip": str(clip.resolve()),
                 "backend": backend, "physics_hz": f"{physics_hz}", "start_time": f"{start_time}",
                 "duration": f"{seconds}", "output": str(bag.resolve())}
    status = Launcher(load_scenario("play"), arguments).run()
    if status != 0:
        print(f"mimic play: the play scenario failed (status {status}); see the node output above", file=sys.stderr)
        return status
    result = report(bag, task.character, task.config.reward, backend, task.motion, task.config.ground_contact_allowed)
    with CharacterRenderer(task.character) as renderer:
        frames = [renderer.render(qpos, ghost=ref) for qpos, ref in result["_states"]]
    video = write_video(frames, out / "play.mp4", fps=task.config.sim.control_hz)
    print(write_report(result, out / "report"))
    print(f"bag {bag}, video {video}")
    return 0
