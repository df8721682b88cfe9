"""Running mean / variance observation normaliser (parallel Welford / Chan et al.).

A feature whose running variance is at most CONSTANT_VAR (a standard deviation of 1e-3 in the
feature's own units) is constant as far as training has seen: `apply` maps it to 0 whatever
its value, so the policy cannot read anything into it. Standardising it instead divides by
sqrt(var + 1e-8) ~ 1e-4, so where the feature does move (another physics, a real robot) it
hits the +-10 clip. This is what broke planar-to-mjx transfer of Car policies: the planar Car
has no roll, pitch or hop, so its accelerometer z, velocimeter z, gyro x and y and
magnetometer z are constant on planar but vary on mjx; held at 0 they cost nothing
(docs/planar.md, "Calibration and transfer"). `init`'s prior (count 1e-4, variance 1) leaves a
constant feature a variance of 1e-4 (1 + value^2) / N after N samples: under CONSTANT_VAR
after about 1e4 of them for a value of 10 (three updates of 32 envs x 125 steps). Where every
feature is constant (a bandit probe) the networks then see a zero input and each acts through
its output bias alone.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


CONSTANT_VAR = 1e-6


@struct.dataclass
class NormalizerState:
  """count: []; mean, var: [O]. Lives in TrainState so it is vmapped and checkpointed."""

  count: jax.Array
  mean: jax.Array
  var: jax.Array


def init(obs_size: int) -> NormalizerState:
  # A tiny prior count keeps the first update well defined without biasing it.
  return NormalizerState(count=jnp.asarray(1e-4, jnp.float32),
                         mean=jnp.zeros((obs_size,), jnp.float32),
                         var=jnp.ones((obs_size,), jnp.float32))


def update(state: NormalizerState, obs: jax.Array) -> NormalizerState:
  """Folds a batch obs[..., O] into the running statistics."""
  obs = obs.reshape(-1, obs.shape[-1])
  n = jnp.asarray(obs.shape[0], jnp.float32)
  batch_mean = obs.mean(0)
  batch_var = obs.var(0)
  total = state.count + n
  delta = batch_mean - state.mean
  mean = state.mean + delta * n / total
  m2 = state.var * state.count + batch_var * n + delta**2 * state.count * n / total
  return NormalizerState(count=total, mean=mean, var=m2 / total)


def apply(state: NormalizerState, obs: jax.Array, enabled: bool = True) -> jax.Array:
  """obs[..., O] -> standardised obs[..., O], clipped to +-10; features whose running
  variance is at most CONSTANT_VAR map to 0 (module docstring)."""
  if not enabled:
    return obs
  out = jnp.clip((obs - state.mean) / jnp.sqrt(state.var + 1e-8), -10.0, 10.0)
  return jnp.where(state.var > CONSTANT_VAR, out, 0.0)
