"""TrainConfig: static fields set shapes and control flow; float fields are traced leaves.

  config = dataclasses.replace(jaxcrl.TrainConfig(), algo="ppo_statewise", num_envs=32)

Traced leaves travel inside `TrainState.config`, so one compiled program can train a batch
of configs under `jax.vmap` (see `stack_configs`). Changing a static field recompiles.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

ALGOS = ("ppo", "ppo_lag", "ppo_pid", "ppo_statewise")
ACTIVATIONS = ("tanh", "relu", "swish", "elu")


def _static(default):
  return struct.field(pytree_node=False, default=default)


@struct.dataclass
class TrainConfig:
  """PPO with a Lagrange multiplier; defaults suit Safety-Gym navigation (T = 1000).

  Static (pytree_node=False):
    algo: one of ALGOS.
    num_timesteps: total env steps (counting action repeats).
    num_envs: parallel envs B (sharded over jax.devices()).
    unroll_length: agent steps per env per update T_u; batch = num_envs * unroll_length.
    num_minibatches, num_epochs: PPO SGD over the flattened batch.
    episode_length: env steps per episode; None -> env.episode_length (1000 if absent).
    action_repeat: env steps per agent action.
    policy_hidden, value_hidden, multiplier_hidden: MLP hidden sizes (the reward and
      cost critics share value_hidden; multiplier_hidden is the lambda(s) net).
    activation: one of ACTIVATIONS.
    normalize_observations: running mean/std normalisation of observations.
    pid_delay: updates between the PID derivative's two cost samples.

  Traced (float leaves):
    cost_limit: d, per-episode cost limit (Safety-Gym: 25).
    policy_lr, value_lr: Adam learning rates of the policy and of both critics.
    gamma, cost_gamma, gae_lambda: discounts and GAE lambda.
    clip_eps, entropy_coef, max_grad_norm: PPO clip, entropy bonus, global-norm clip.
    target_kl: early stop of the PPO epochs: once a minibatch's KL(old || new), measured
      before its step, exceeds target_kl, that step and every later one of the update
      are skipped (SB3 checks each minibatch against 1.5 x its target_kl; OmniSafe checks
      the whole batch after each epoch). 0 (default) never stops.
    lambda_init, lambda_max: scalar multiplier start and upper bound (all algos' bound).
      Every lambda is in reward per unit of cost (see losses.penalized_advantage);
      on PointGoal1 ppo_lag's lambda settled at about 0.5 (cost 17-31). The rates below
      are the ones measured there (README); the PID gains are the earlier ones
      rescaled to these units and not yet measured on PointGoal1.
    lagrange_lr: beta in lam <- clip(lam + beta (J_c - d), 0, lambda_max) (ppo_lag).
    pid_kp, pid_ki, pid_kd, pid_alpha_p, pid_alpha_d: PID gains and EMA factors (ppo_pid).
    statewise_lr: Adam learning rate of the lambda(s) net (one ascent step per update).
    statewise_lambda_init: lambda(s) in every state at initialisation (> 0: softplus head).
      Both defaults are those of the PointGoal1 runs that met the cost limit with half of
      ppo's return, which also bounded lambda(s) with lambda_max=1 (README, Measured);
      unbounded, lambda(s) overshoots there and the return collapses.
    statewise_threshold: w in V_c(s) <= w; NaN or negative -> w = d / T / (1 - cost_gamma)
      with T = episode_length / action_repeat agent steps.
  """

  algo: str = _static("ppo_lag")
  num_timesteps: int = _static(10_000_000)
  num_envs: int = _static(64)
  unroll_length: int = _static(128)
  num_minibatches: int = _static(32)
  num_epochs: int = _static(10)
  episode_length: int | None = _static(None)
  action_repeat: int = _static(1)
  policy_hidden: Sequence[int] = _static((64, 64))
  value_hidden: Sequence[int] = _static((64, 64))
  multiplier_hidden: Sequence[int] = _static((64, 64))
  activation: str = _static("tanh")
  normalize_observations: bool = _static(True)
  pid_delay: int = _static(10)

  cost_limit: float = 25.0
  policy_lr: float = 3e-4
  value_lr: float = 1e-3
  gamma: float = 0.99
  cost_gamma: float = 0.99
  gae_lambda: float = 0.95
  clip_eps: float = 0.2
  entropy_coef: float = 0.0
  max_grad_norm: float = 40.0
  target_kl: float = 0.0
  lambda_init: float = 0.0
  lambda_max: float = 100.0
  lagrange_lr: float = 5e-5
  pid_kp: float = 5e-3
  pid_ki: float = 5e-5
  pid_kd: float = 5e-4
  pid_alpha_p: float = 0.95
  pid_alpha_d: float = 0.95
  statewise_lr: float = 3e-4
  statewise_lambda_init: float = 0.01
  statewise_threshold: float = float("nan")

  @property
  def batch_size(self) -> int:
    """Agent steps per update: num_envs * unroll_length."""
    return self.num_envs * self.unroll_length

  @property
  def num_updates(self) -> int:
    """Updates in `train`: num_timesteps // (num_envs * unroll_length * action_repeat)."""
    return self.num_timesteps // (self.batch_size * self.action_repeat)

  def validate(self) -> "TrainConfig":
    """Raises ValueError naming the first bad value and the accepted ones; returns self."""
    if self.algo not in ALGOS:
      raise ValueError(f"unknown algo {self.algo!r}; choose one of: {', '.join(ALGOS)}")
    if self.activation not in ACTIVATIONS:
      raise ValueError(f"unknown activation {self.activation!r}; "
                       f"choose one of: {', '.join(ACTIVATIONS)}")
    for name in ("num_timesteps", "num_envs", "unroll_length", "num_minibatches",
                 "num_epochs", "action_repeat", "pid_delay"):
      value = getattr(self, name)
      if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if self.episode_length is not None and (
        not isinstance(self.episode_length, (int, np.integer)) or self.episode_length < 1):
      raise ValueError(f"episode_length must be None or a positive integer, "
                       f"got {self.episode_length!r}")
    for name in ("policy_hidden", "value_hidden", "multiplier_hidden"):
      sizes = tuple(getattr(self, name))
      if not sizes or any(not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
        raise ValueError(f"{name} must be a non-empty tuple of positive ints, got {sizes!r}")
    if self.batch_size % self.num_minibatches:
      raise ValueError(
          f"num_envs * unroll_length = {self.num_envs} * {self.unroll_length} = "
          f"{self.batch_size} is not divisible by num_minibatches={self.num_minibatches}; "
          f"choose num_minibatches among the divisors of {self.batch_size}")
    if self.num_updates < 1:
      raise ValueError(
          f"num_timesteps={self.num_timesteps} is less than one update of "
          f"num_envs * unroll_length * action_repeat = "
          f"{self.batch_size * self.action_repeat} env steps")
    checks = {
        "cost_limit": lambda v: v >= 0, "lambda_init": lambda v: v >= 0,
        "lambda_max": lambda v: v >= 0, "policy_lr": lambda v: v > 0,
        "value_lr": lambda v: v > 0, "lagrange_lr": lambda v: v >= 0,
        "statewise_lr": lambda v: v >= 0, "statewise_lambda_init": lambda v: v > 0,
        "gamma": lambda v: 0 < v <= 1, "cost_gamma": lambda v: 0 < v < 1,
        "gae_lambda": lambda v: 0 <= v <= 1, "clip_eps": lambda v: v > 0,
        "max_grad_norm": lambda v: v > 0, "entropy_coef": lambda v: v >= 0,
        "target_kl": lambda v: v >= 0,
        "pid_alpha_p": lambda v: 0 <= v < 1, "pid_alpha_d": lambda v: 0 <= v < 1,
    }
    accepted = {"gamma": "in (0, 1]", "cost_gamma": "in (0, 1)", "gae_lambda": "in [0, 1]",
                "pid_alpha_p": "in [0, 1)", "pid_alpha_d": "in [0, 1)"}
    for name, ok in checks.items():
      value = _concrete(getattr(self, name))
      if value is not None and not np.all(ok(value)):
        want = accepted.get(name, "> 0" if not ok(0.0) else ">= 0")
        raise ValueError(f"{name} must be {want}, got {value.tolist()!r}")
    return self


def _concrete(value) -> np.ndarray | None:
  """The value as a numpy array, or None under tracing (checked when concrete)."""
  try:
    return np.asarray(value, dtype=np.float64)
  except (TypeError, jax.errors.TracerArrayConversionError,
          jax.errors.ConcretizationTypeError):
    return None


def static_fields(config: TrainConfig) -> dict:
  return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
          if not f.metadata.get("pytree_node", True)}


def stack_configs(configs: Sequence[TrainConfig]) -> TrainConfig:
  """Stacks configs that differ only in traced leaves into one batched config [N].

  Use with `jax.vmap(train)(keys[N], stacked)`; e.g. cost limits x seeds:
    cfgs = [replace(base, cost_limit=d) for d in limits for _ in seeds]
  Raises ValueError if static fields differ (they would need separate compiles).
  """
  configs = list(configs)
  if not configs:
    raise ValueError("stack_configs needs at least one config, got none")
  first = static_fields(configs[0])
  for i, cfg in enumerate(configs[1:], 1):
    other = static_fields(cfg)
    diff = sorted(k for k in first if first[k] != other[k])
    if diff:
      raise ValueError(
          f"config {i} differs from config 0 in static field(s) {diff}; only traced "
          "(float) fields may differ inside one vmapped program")
  return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x, jnp.float32) for x in xs]),
                      *configs)


__all__ = ["TrainConfig", "stack_configs", "ALGOS", "static_fields"]
