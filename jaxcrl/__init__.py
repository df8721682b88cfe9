"""jaxcrl: constrained PPO (ppo, ppo_lag, ppo_pid, ppo_statewise) as pure JAX functions.

  import envs, jaxcrl
  env = envs.make("PointGoal1")
  config = jaxcrl.TrainConfig(algo="ppo_statewise", num_timesteps=1_000_000)
  state, metrics = jax.jit(jaxcrl.make_train(env, config))(jax.random.key(0))
"""

from jaxcrl.algorithms import ALGORITHMS, Algorithm
from jaxcrl.config import ALGOS, TrainConfig, stack_configs
from jaxcrl.returns import compute_gae
from jaxcrl.train import (METRIC_KEYS, TrainState, make_act, make_init_update, make_lambda,
                          make_train)
from jaxcrl.types import Transition

__all__ = [
    "ALGORITHMS", "ALGOS", "Algorithm", "METRIC_KEYS", "TrainConfig", "TrainState",
    "Transition", "compute_gae", "make_act", "make_init_update", "make_lambda",
    "make_train", "stack_configs",
]
