"""Running mean / variance observation normaliser (parallel Welford / Chan et al.)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


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
  """obs[..., O] -> standardised obs[..., O], clipped to +-10 (constant features map to 0)."""
  if not enabled:
    return obs
  out = (obs - state.mean) / jnp.sqrt(state.var + 1e-8)
  return jnp.clip(out, -10.0, 10.0)
