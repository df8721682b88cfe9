"""Generalised advantage estimation, used for reward and for cost."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def compute_gae(
    reward: jax.Array,
    value: jax.Array,
    next_value: jax.Array,
    done: jax.Array,
    truncation: jax.Array,
    gamma: float | jax.Array,
    lam: float | jax.Array,
) -> tuple[jax.Array, jax.Array]:
  """GAE(gamma, lambda) over a time-major unroll.

  Args:
    reward: [T, B] per-step reward (or cost).
    value: [T, B] V(s_t).
    next_value: [T, B] V(s_{t+1}) evaluated on the step's final observation (before any
      auto-reset), so a truncated step bootstraps from where it actually ended.
    done: [T, B] 1.0 where the episode terminated: the bootstrap is zeroed.
    truncation: [T, B] 1.0 where the time limit cut the episode: the bootstrap is kept,
      but the advantage recursion stops (the next row belongs to a new episode).
    gamma, lam: discount and GAE lambda (may be traced).

  Returns:
    advantages [T, B] and value targets advantages + value [T, B]; the last row
    bootstraps from next_value[T-1] only.
  """
  delta = reward + gamma * (1.0 - done) * next_value - value
  not_end = 1.0 - jnp.maximum(done, truncation)

  def backward(carry, xs):
    delta_t, not_end_t = xs
    adv = delta_t + gamma * lam * not_end_t * carry
    return adv, adv

  _, advantages = jax.lax.scan(backward, jnp.zeros_like(delta[0]), (delta, not_end),
                               reverse=True)
  return advantages, advantages + value
