"""``trainer``: PPO training as a ROS 2 node (the same loop as ``mimic train``).

Publishes:  training_status (mimic_msgs/TrainingStatus) after every iteration
Services:   ~/save (std_srvs/Trigger): checkpoint now; ~/stop (std_srvs/Trigger):
            checkpoint and exit after the current iteration
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from rclpy.node import Node
from std_srvs.srv import Trigger

from mimic_msgs.msg import TrainingStatus
from mimic_policy.checkpoint import latest_checkpoint
from mimic_policy.logs import TrainingLog
from mimic_policy.train_cli import TrainConfig, default_run_dir, load_init, make_envs, new_session
from mimic_sim.nodes.common import declare, run_node
from mimic_sim.nodes.parameters import declare_settings
from mimic_sim.paths import atomic_write_text
from mimic_sim.reward import TERMS
from mimic_sim.settings import to_dict
from mimic_sim.task import Task


class TrainerNode(Node):
    def __init__(self) -> None:
        super().__init__("trainer")
        config = declare_settings(self, TrainConfig())
        run_dir = str(declare(self, "run_dir", "", "run folder; empty = runs/[<character>_]<clip>_<UTC time>"))
        self.run_dir = Path(run_dir) if run_dir else default_run_dir(config)
        task = Task.resolve(config.task)
        init = load_init(config, task)  # a bad task or init_from is refused before the run folder is made
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.run_dir / "config.json", json.dumps(to_dict(config), indent=2))
        self.config = config
        self.envs = make_envs(config, task)
        self.session = new_session(config, task, self.envs, self.run_dir, init)
        self.log = TrainingLog(self.run_dir)  # the same CSV, TensorBoard and plot as mimic train
        self.status = self.create_publisher(TrainingStatus, "training_status", 10)
        self.create_service(Trigger, "~/save", self._on_save)
        self.create_service(Trigger, "~/stop", self._on_stop)
        self.stop_requested = False
        self.start = time.monotonic()
        self.get_logger().info(f"training '{config.task.clip}' for {config.total_samples} samples into {self.run_dir}")

    def work(self) -> bool:
        """One training iteration; True when done."""
        trainer = self.session.trainer
        if self.stop_requested or trainer.samples >= self.config.total_samples:
            return True
        stats = self.session.iterate(self.log.log)
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
        """A final checkpoint, unless an iteration was interrupted (by an error or a second signal:
        its state is half updated and the last checkpoint stays the latest); then the workers stop."""
        try:
            path = self.session.final_checkpoint()
            if path is None:
                self.get_logger().warning("training interrupted in the middle of an iteration: no final checkpoint; "
                                          f"the latest stays {latest_checkpoint(self.run_dir)}")
            else:
                self.get_logger().info(f"final checkpoint {path}")
                self.log.close()
        finally:
            self.envs.close()


def main(args: Sequence[str] | None = None) -> int:
    return run_node(TrainerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
