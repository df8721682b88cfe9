"""Tiny physics-free cost environments for tests: they compile in well under a second."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from envs.base import State
from envs.probes import ProbeBase


class CountingCostEnv(ProbeBase):
  """A walker on a line whose big steps cost.

  obs = [x, t]: x starts ~U[0, 0.1) (so different keys give different resets) and adds
  action[0] every step; t counts steps since reset.
  reward = action[0]; cost = 1.0 if action[0] > 0.5 else 0.0 (also metrics['cost_big_step']).
  Terminates (done = 1) once x >= terminate_at; never truncates itself.
  """

  OBS_SIZE = 2

  def __init__(self, terminate_at: float = float("inf"), episode_length: int = 1000):
    self.terminate_at = terminate_at
    self.episode_length = episode_length

  def reset(self, key: jax.Array) -> State:
    x = jax.random.uniform(key, (), maxval=0.1)
    zero = jnp.zeros((), jnp.float32)
    return State(
        pipeline_state=None,
        obs=jnp.stack([x, zero]),
        reward=zero,
        done=zero,
        metrics={"cost_big_step": zero},
        info={},
        cost=zero,
    )

  def step(self, state: State, action: jax.Array) -> State:
    x = state.obs[0] + action[0]
    t = state.obs[1] + 1.0
    cost = jnp.where(action[0] > 0.5, 1.0, 0.0).astype(jnp.float32)
    done = jnp.where(x >= self.terminate_at, 1.0, 0.0).astype(jnp.float32)
    return state.replace(
        obs=jnp.stack([x, t]),
        reward=action[0].astype(jnp.float32),
        done=done,
        cost=cost,
        metrics={"cost_big_step": cost},
    )
