"""TrainConfig: static fields set shapes and control flow; float fields are traced leaves.

  config = jaxcrl.make_config("cpo", num_envs=32, max_kl=0.02)   # routes each setting
  config = dataclasses.replace(config, cost_limit=10.0)          # shared fields

The shared fields live on TrainConfig; each algorithm family's own settings live in its
family config, `config.learner` (e.g. PPOConfig, TrustRegionConfig) and
`config.multiplier` (e.g. LagrangeConfig, StatewiseConfig); None there means the
algorithm's defaults (`algorithms.resolve` fills them in). Traced leaves travel inside
`TrainState.config`, so one compiled program can train a batch of configs under
`jax.vmap` (see `stack_configs`). Changing a static field recompiles.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

ACTIVATIONS = ("tanh", "relu", "swish", "elu")


def static(default):
  """A static (pytree_node=False) dataclass field: part of the compiled program's shape."""
  return struct.field(pytree_node=False, default=default)


@struct.dataclass
class TrainConfig:
  """Settings every algorithm shares; defaults suit Safety-Gym navigation (T = 1000).

  Static (pytree_node=False):
    algo: one of ALGOS.
    num_timesteps: total env steps (counting action repeats).
    num_envs: parallel envs B (sharded over jax.devices()).
    unroll_length: agent steps per env per update T_u; batch = num_envs * unroll_length
      (the off-policy algorithms put it into their replay buffer).
    num_minibatches, num_epochs: minibatch SGD over the flattened batch (the policy and
      critics of the minibatch learners; the critics of the trust-region ones). The
      off-policy (sac*, fac) algorithms ignore them: see their batch_size and utd_ratio.
    episode_length: env steps per episode; None -> env.episode_length (1000 if absent).
    action_repeat: env steps per agent action.
    policy_hidden, value_hidden: MLP hidden sizes (the reward and cost critics share
      value_hidden).
    activation: one of ACTIVATIONS.
    normalize_observations: running mean/std normalisation of observations.

  Traced (float leaves):
    cost_limit: d, per-episode cost limit (Safety-Gym: 25).
    policy_lr, value_lr: Adam learning rates of the policy (minibatch and off-policy
      learners) and of the critics.
    gamma, cost_gamma, gae_lambda: discounts and GAE lambda (on-policy only).
    max_grad_norm: global-norm clip of every Adam step.

  Family settings (pytree nodes; None -> the algorithm's defaults):
    learner: the learner family's config (config.learner.clip_eps, .max_kl, ...).
    multiplier: the multiplier family's config (config.multiplier.lagrange_lr, ...).
  """

  algo: str = static("ppo_lag")
  num_timesteps: int = static(10_000_000)
  num_envs: int = static(64)
  unroll_length: int = static(128)
  num_minibatches: int = static(32)
  num_epochs: int = static(10)
  episode_length: int | None = static(None)
  action_repeat: int = static(1)
  policy_hidden: Sequence[int] = static((64, 64))
  value_hidden: Sequence[int] = static((64, 64))
  activation: str = static("tanh")
  normalize_observations: bool = static(True)

  cost_limit: float = 25.0
  policy_lr: float = 3e-4
  value_lr: float = 1e-3
  gamma: float = 0.99
  cost_gamma: float = 0.99
  gae_lambda: float = 0.95
  max_grad_norm: float = 40.0

  learner: Any = None
  multiplier: Any = None

  CHECKS = {
      "cost_limit": (">= 0", lambda v: v >= 0), "policy_lr": ("> 0", lambda v: v > 0),
      "value_lr": ("> 0", lambda v: v > 0), "gamma": ("in (0, 1]", lambda v: 0 < v <= 1),
      "cost_gamma": ("in (0, 1)", lambda v: 0 < v < 1),
      "gae_lambda": ("in [0, 1]", lambda v: 0 <= v <= 1),
      "max_grad_norm": ("> 0", lambda v: v > 0),
  }

  @property
  def batch_size(self) -> int:
    """Agent steps per update: num_envs * unroll_length."""
    return self.num_envs * self.unroll_length

  @property
  def num_updates(self) -> int:
    """Updates in `train`: num_timesteps // (num_envs * unroll_length * action_repeat)."""
    return self.num_timesteps // (self.batch_size * self.action_repeat)

  def validate(self) -> "TrainConfig":
    """Raises ValueError naming the first bad value and the accepted ones; returns self.

    Checks the algorithm and its family configs too (`algorithms.check`).
    """
    from jaxcrl import algorithms
    algorithms.check(self)
    if self.activation not in ACTIVATIONS:
      raise ValueError(f"unknown activation {self.activation!r}; "
                       f"choose one of: {', '.join(ACTIVATIONS)}")
    for name in ("num_timesteps", "num_envs", "unroll_length", "num_minibatches",
                 "num_epochs", "action_repeat"):
      value = getattr(self, name)
      if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if self.episode_length is not None and (
        not isinstance(self.episode_length, (int, np.integer)) or self.episode_length < 1):
      raise ValueError(f"episode_length must be None or a positive integer, "
                       f"got {self.episode_length!r}")
    for name in ("policy_hidden", "value_hidden"):
      check_sizes(name, getattr(self, name))
    algorithms.get(self.algo).driver.check(algorithms.resolve(self))
    if self.num_updates < 1:
      raise ValueError(
          f"num_timesteps={self.num_timesteps} is less than one update of "
          f"num_envs * unroll_length * action_repeat = "
          f"{self.batch_size * self.action_repeat} env steps")
    check_fields(self)
    return self


def check_sizes(name: str, sizes: Any) -> None:
  """Hidden sizes: a non-empty tuple of positive ints, else ValueError naming `name`."""
  sizes = tuple(sizes)
  if not sizes or any(not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
    raise ValueError(f"{name} must be a non-empty tuple of positive ints, got {sizes!r}")


def check_fields(config: Any, names: Sequence[str] | None = None) -> None:
  """Checks each field named in `type(config).CHECKS` ({name: (accepted, predicate)}), or
  only `names` of them, when concrete; raises ValueError '<name> must be <accepted>, got
  <value>'. A field whose default is a string (a choice such as cost_scale) is checked
  as it is; the others as numbers (arrays: every element)."""
  defaults = {f.name: f.default for f in dataclasses.fields(config)}
  for name, (accepted, ok) in type(config).CHECKS.items():
    if names is not None and name not in names:
      continue
    raw = getattr(config, name)
    if isinstance(defaults[name], str):
      if not ok(raw):
        raise ValueError(f"{name} must be {accepted}, got {raw!r}")
      continue
    value = _concrete(raw)
    if value is not None and not np.all(ok(value)):
      raise ValueError(f"{name} must be {accepted}, got {value.tolist()!r}")


def _concrete(value) -> np.ndarray | None:
  """The value as a numpy array, or None under tracing (checked when concrete)."""
  try:
    return np.asarray(value, dtype=np.float64)
  except (TypeError, jax.errors.TracerArrayConversionError,
          jax.errors.ConcretizationTypeError):
    return None


def static_fields(config: Any, prefix: str = "") -> dict:
  """Static fields by dotted name, the family configs' included ('learner.cg_iters'),
  with each family config's type under its own name."""
  out = {}
  for f in dataclasses.fields(config):
    value = getattr(config, f.name)
    if not f.metadata.get("pytree_node", True):
      out[prefix + f.name] = value
    elif dataclasses.is_dataclass(value):
      out[prefix + f.name] = type(value).__name__
      out.update(static_fields(value, prefix + f.name + "."))
  return out


def stack_configs(configs: Sequence[TrainConfig]) -> TrainConfig:
  """Stacks configs that differ only in traced leaves into one batched config [N].

  Use with `jax.vmap(train)(keys[N], stacked)`; e.g. cost limits x seeds:
    cfgs = [replace(base, cost_limit=d) for d in limits for _ in seeds]
  Raises ValueError if static fields differ (they would need separate compiles).
  """
  from jaxcrl import algorithms
  configs = [algorithms.resolve(c) for c in configs]
  if not configs:
    raise ValueError("stack_configs needs at least one config, got none")
  first = static_fields(configs[0])
  for i, cfg in enumerate(configs[1:], 1):
    other = static_fields(cfg)
    diff = sorted(k for k in set(first) | set(other) if first.get(k) != other.get(k))
    if diff:
      raise ValueError(
          f"config {i} differs from config 0 in static field(s) {diff}; only traced "
          "(float) fields may differ inside one vmapped program")
  return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x, jnp.float32) for x in xs]),
                      *configs)


__all__ = ["TrainConfig", "stack_configs", "static_fields", "static"]
