"""``mimic render``: a clip, or a physics rollout tracking it, to an .mp4 or .gif video."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator
from pathlib import Path

DEFAULT_SECONDS = 4.0
"""Longest default video: one cycle of the clip, at most this long."""
BACKENDS = ("mujoco", "pybullet")  # mimic_sim.backends.BACKENDS; not imported so that 'mimic --help' stays light

DESCRIPTION = """\
Render a reference clip to a video (.mp4 or .gif, by the output's suffix).

By default the clip is played kinematically: the character is posed at the reference
frame of each video frame; nothing is simulated.

With --rollout the character is simulated by a physics backend in the imitation
environment, driven open-loop by PD targets equal to the reference pose (no trained
policy).  Without feedback it loses balance and falls within a few seconds, and the
video ends when the episode ends (the fall, or the clip's end): that is the expected,
honest baseline a policy has to beat.  The reference is drawn as a translucent green
ghost.
"""


def _positive(kind: type):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a valid {kind.__name__}: {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("render", help="render a clip, or a simulated rollout of it, to .mp4/.gif",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clip", metavar="CLIP",
                   help="shipped clip name (walk, run, backflip, ...) or a DeepMimic motion file")
    p.add_argument("-o", "--output", type=Path, metavar="OUT",
                   help="video file, .mp4 or .gif (default out/<clip>.mp4, or out/<clip>_rollout.mp4 with --rollout)")
    p.add_argument("--seconds", type=_positive(float), metavar="S",
                   help=f"video length (default one cycle of the clip, at most {DEFAULT_SECONDS:g} s; "
                   f"{DEFAULT_SECONDS:g} s with --rollout)")
    p.add_argument("--fps", type=_positive(float), metavar="F", help="frames per second (default 30)")
    p.add_argument("--width", type=_positive(int), default=640, metavar="W", help="image width (default 640)")
    p.add_argument("--height", type=_positive(int), default=480, metavar="H", help="image height (default 480)")
    p.add_argument("--character", default="humanoid", help="character config name or YAML path (default humanoid)")
    p.add_argument("--rollout", action="store_true",
                   help="simulate the character driven by open-loop reference PD targets (it falls; see above)")
    p.add_argument("--backend", choices=BACKENDS, default="mujoco", help="physics engine for --rollout")
    p.add_argument("--seed", type=int, default=0, help="environment seed for --rollout (default 0)")
    p.set_defaults(func=run)


def _clip_stem(clip: str) -> str:
    return Path(clip).stem.removeprefix("humanoid3d_") if Path(clip).suffix else Path(clip).name


def run(args: argparse.Namespace) -> int:
    # Import order matters for OpenGL: mimic_sim.render chooses MUJOCO_GL before mujoco loads.
    from tqdm import tqdm

    from mimic_sim.render import CharacterRenderer, video_format, write_video

    fps = args.fps or 30.0
    output = args.output or Path("out") / f"{_clip_stem(args.clip)}{'_rollout' if args.rollout else ''}.mp4"
    video_format(output)  # an unknown suffix fails before any work
    source = _Rollout(args) if args.rollout else _Kinematic(args)
    seconds = args.seconds or source.default_seconds
    count = max(1, round(seconds * fps))
    renderer = CharacterRenderer(source.character, args.width, args.height)
    bar = tqdm(total=count, unit="frame", desc=f"render {output.name}", disable=None, file=sys.stderr)
    try:
        write_video(source.frames(renderer, count, fps, bar), output, fps)
    finally:
        bar.close()
        renderer.close()
        source.close()
    if source.note:
        print(source.note, file=sys.stderr)
    print(output)
    return 0


class _Kinematic:
    """The reference pose at each frame time."""

    note = ""

    def __init__(self, args: argparse.Namespace):
        from mimic_sim.character import load_character
        from mimic_sim.motion_file import load_clip
        from mimic_sim.reference import ReferenceMotion

        self.character = load_character(args.character)
        self.reference = ReferenceMotion(load_clip(args.clip, self.character.name), self.character)
        self.default_seconds = min(self.reference.duration, DEFAULT_SECONDS)  # one cycle

    def frames(self, renderer, count: int, fps: float, bar) -> Iterator:
        for i in range(count):
            qpos, _ = self.reference.state(i / fps)
            yield renderer.render(qpos)
            bar.update()

    def close(self) -> None:
        pass


class _Rollout:
    """An ImitationEnv episode driven by the reference pose as PD targets; the reference drawn as a ghost."""

    def __init__(self, args: argparse.Namespace):
        from mimic_sim.envs.imitation import ImitationEnv

        self.env = ImitationEnv(clip=args.clip, character=args.character, backend=args.backend, random_start=False)
        self.character = self.env.character
        self.default_seconds = DEFAULT_SECONDS  # long enough to see the fall
        self.seed = args.seed
        self.note = ""

    def frames(self, renderer, count: int, fps: float, bar) -> Iterator:
        env = self.env
        env.reset(seed=self.seed)
        done = False
        for i in range(count):
            # Step the simulation (at its control rate) up to this frame's time, unless the episode ended.
            while not done and env.time + 1e-9 < i / fps:
                _, _, terminated, truncated, info = env.step(env.reference_action())
                done = terminated or truncated
                if done:
                    why = "fell" if info.get("fell") else ("terminated" if terminated else "reached its end")
                    self.note = f"episode {why} at t = {env.time:.2f} s; the video stops there"
            if done and env.time + 1e-9 < i / fps:
                bar.total = i
                bar.refresh()
                return
            qpos, _ = env.backend.get_state()
            ghost, _ = env.reference.state(env.time)
            yield renderer.render(qpos, ghost=ghost)
            bar.update()

    def close(self) -> None:
        self.env.close()
