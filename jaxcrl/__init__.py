"""jaxcrl: constrained RL (PPO and trust-region families on-policy, SAC and FAC off-policy
from a replay buffer; Lagrangian, PID and state-wise multipliers) as pure JAX functions.

  import envs, jaxcrl
  env = envs.make("PointGoal1")
  config = jaxcrl.make_config("ppo_statewise", num_timesteps=1_000_000)
  state, metrics = jax.jit(jaxcrl.make_train(env, config))(jax.random.key(0))

`jaxcrl.ALGOS` lists the algorithms (derived from `jaxcrl.ALGORITHMS`, the registry).
"""

import envs.quiet_imports  # noqa: F401  first: mujoco.mjx (via Brax) without Warp's lines
from jaxcrl.algorithms import ALGORITHMS, ALGOS, Algorithm, make_config
from jaxcrl.config import TrainConfig, stack_configs
from jaxcrl.learners.base import LEARNER_METRIC_KEYS, Learner
from jaxcrl.returns import compute_gae
from jaxcrl.train import (METRIC_KEYS, TrainState, make_act, make_env, make_init_update,
                          make_lambda, make_train, metric_keys)
from jaxcrl.types import PolicyExtras, Transition

__all__ = [
    "ALGORITHMS", "ALGOS", "Algorithm", "LEARNER_METRIC_KEYS", "Learner", "METRIC_KEYS",
    "PolicyExtras", "TrainConfig", "TrainState", "Transition", "compute_gae", "make_act",
    "make_config", "make_env", "make_init_update", "make_lambda", "make_train",
    "metric_keys", "stack_configs",
]
