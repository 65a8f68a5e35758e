"""PPO imitation learning on mimic_sim characters: networks, storage, algorithm, runner, checkpoints."""
