"""Imitation environments, registered with gymnasium as ``mimic/Imitation-v0``.

Gymnasium 1.x loads no plugins by itself: import this package first (``import
mimic_sim.envs``) or name it in the id, ``gymnasium.make("mimic_sim.envs:mimic/Imitation-v0",
clip="run", character="g1")``.  ``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``
gives :class:`~mimic_sim.envs.imitation_vector.ImitationVectorEnv` (one process, batched
reward and observation); any keyword is an :class:`~mimic_sim.task.ImitationConfig` field.
Registration names modules only, so importing this package does not load a simulator.
"""

import gymnasium

ENV_ID = "mimic/Imitation-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(ENV_ID, entry_point="mimic_sim.envs.imitation:ImitationEnv",
                       vector_entry_point="mimic_sim.envs.imitation_vector:ImitationVectorEnv",
                       disable_env_checker=True)
