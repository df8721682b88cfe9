"""The cost-carrying env state shared by every jaxcrl environment and wrapper."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.envs import base as brax_base
from flax import struct


@struct.dataclass
class State(brax_base.State):
  """Brax's env `State` plus a per-step constraint cost.

  Brax's own wrappers only ever `state.replace(...)` fields they know, so `cost`
  passes through them unchanged and `brax.training.agents.ppo.train` runs on our envs.

  Fields (unbatched shapes; wrappers add leading batch axes):
    obs: [obs_size] float32.
    reward: [] float32.
    done: [] float32, 1.0 when the episode ended (terminated or truncated).
    cost: [] float32, the step's cost: by default the Safety-Gymnasium indicator
      (1.0 if any constraint is violated, else 0.0).
    metrics: per-source costs (`cost_hazards`, ...) and task diagnostics, each [].
    info: wrapper and task bookkeeping (see `envs.wrappers`).
  """

  cost: jax.Array = struct.field(default_factory=lambda: jnp.zeros(()))


def with_cost(state: brax_base.State, cost: jax.Array) -> State:
  """Returns a jaxcrl `State` holding every field of a Brax `state` plus `cost`."""
  return State(
      pipeline_state=state.pipeline_state,
      obs=state.obs,
      reward=state.reward,
      done=state.done,
      metrics=state.metrics,
      info=state.info,
      cost=jnp.asarray(cost, dtype=jnp.float32),
  )
