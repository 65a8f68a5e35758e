"""``trainer``: PPO training as a ROS 2 node (the same loop as ``mimic train``).

Publishes:  training_status (mimic_msgs/TrainingStatus) after every iteration
Services:   ~/save (std_srvs/Trigger): checkpoint now; ~/stop (std_srvs/Trigger):
            checkpoint and exit after the current iteration
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from rclpy.node import Node
from std_srvs.srv import Trigger

from mimic_msgs.msg import TrainingStatus
from mimic_policy.logs import TrainingLog
from mimic_policy.ppo import PPOConfig
from mimic_policy.runner import Trainer
from mimic_policy.session import TrainingSession
from mimic_policy.train_cli import TrainConfig, describe, make_envs
from mimic_sim.nodes.common import declare, run_node
from mimic_sim.reward import TERMS


class TrainerNode(Node):
    def __init__(self) -> None:
        super().__init__("trainer")
        defaults, ppo = TrainConfig(), PPOConfig()
        clip = str(declare(self, "clip", defaults.clip, "clip to imitate (shipped name or motion file)"))
        config = TrainConfig(
            clip=clip,
            character=str(declare(self, "character", defaults.character, "character config name or YAML path")),
            backend=str(declare(self, "backend", defaults.backend, "physics engine: mujoco or pybullet")),
            physics_hz=float(declare(self, "physics_hz", 0.0,
                                     "physics rate (Hz); 0 = the character's, else the backend's")) or None,
            num_envs=int(declare(self, "envs", defaults.num_envs, "environments stepped in parallel")),
            num_workers=int(declare(self, "workers", defaults.num_workers, "worker processes (one per core)")),
            total_samples=int(declare(self, "samples", defaults.total_samples, "total environment steps")),
            seed=int(declare(self, "seed", defaults.seed, "random seed")),
            checkpoint_every=int(declare(self, "checkpoint_every", defaults.checkpoint_every,
                                         "iterations between checkpoints")),
            ppo=PPOConfig(
                num_steps=int(declare(self, "steps_per_env", ppo.num_steps, "steps per environment per iteration")),
                learning_rate=float(declare(self, "learning_rate", ppo.learning_rate, "Adam step size")),
                epochs=int(declare(self, "epochs", ppo.epochs, "PPO passes per iteration")),
                minibatches=int(declare(self, "minibatches", ppo.minibatches, "minibatches per pass")),
                hidden=tuple(int(h) for h in declare(self, "hidden", list(ppo.hidden), "hidden layer sizes")),
            ),
        )
        run_dir = str(declare(self, "run_dir", "", "run folder; empty = runs/<clip>_<UTC time>"))
        self.run_dir = Path(run_dir or f"runs/{clip}_{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))
        self.config = config
        self.envs = make_envs(config)
        meta, expect = describe(config, self.envs)
        self.session = TrainingSession(Trainer(self.envs, config.ppo, seed=config.seed), config, self.run_dir,
                                       meta=meta, expect=expect)
        self.log = TrainingLog(self.run_dir)  # the same CSV, TensorBoard and plot as mimic train
        self.status = self.create_publisher(TrainingStatus, "training_status", 10)
        self.create_service(Trigger, "~/save", self._on_save)
        self.create_service(Trigger, "~/stop", self._on_stop)
        self.stop_requested = False
        self.start = time.monotonic()
        self.get_logger().info(f"training '{clip}' for {config.total_samples} samples into {self.run_dir}")

    def work(self) -> bool:
        """One training iteration; True when done."""
        trainer = self.session.trainer
        if self.stop_requested or trainer.samples >= self.config.total_samples:
            return True
        stats = self.session.iterate()
        self.log.log(stats)
        msg = TrainingStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.iteration, msg.samples = int(stats["iteration"]), int(stats["samples"])
        msg.samples_per_second = float(stats["samples_per_second"])
        msg.mean_return = float(stats.get("mean_return", 0.0))
        msg.mean_episode_length = float(stats.get("mean_length", 0.0))
        msg.reward_terms = [t for t in TERMS if f"reward_{t}" in stats]
        msg.reward_term_means = [float(stats[f"reward_{t}"]) for t in msg.reward_terms]
        elapsed = time.monotonic() - self.start
        msg.eta_seconds = elapsed / max(trainer.samples, 1) * max(self.config.total_samples - trainer.samples, 0)
        msg.checkpoint = str(self.run_dir / "checkpoints")
        self.status.publish(msg)
        return False

    def _on_save(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        path = self.session.checkpoint()
        response.success, response.message = True, str(path)
        return response

    def _on_stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.stop_requested = True
        response.success, response.message = True, "stopping after the current iteration"
        return response

    def close(self) -> None:
        path = self.session.checkpoint()
        self.get_logger().info(f"final checkpoint {path}")
        self.log.close()
        self.envs.close()


def main(args: Sequence[str] | None = None) -> int:
    return run_node(TrainerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
