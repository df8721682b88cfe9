"""Probe environments with known constrained optima, for testing the trainer.

No physics: each step is a few jnp ops, so a whole training run compiles and runs in
seconds. Both envs follow the Brax `Env` API, return `envs.base.State` with `cost`, and
accept typed or legacy uint32 keys (Brax's `ppo.train` passes legacy keys).

ProbeCostlyBandit: one-step episodes. obs = [1.0]; action a in [-1, 1]. Choosing a > 0
  earns reward 1 and costs 1; a <= 0 earns and costs 0. Every step terminates (done = 1,
  no truncation). With a per-episode cost limit d in [0, 1] the constrained optimum takes
  a > 0 with probability d, so the cost rate equals d; unconstrained PPO drives it to 1.

ProbeTwoRegion: episodes of `episode_length` steps (default 20) that end by truncation.
  At reset the agent lands in region 0 or 1 with equal chance and stays there;
  obs = one_hot(region) [2]. a > 0 earns reward 1 in both regions but costs 1 only in
  region 0. Under any policy that ever picks a > 0 in region 0, the discounted
  cost-to-go V_c(s) exceeds a small threshold w there, and is 0 everywhere in region 1,
  so a state-wise multiplier lambda(s) must rise in region 0 only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.envs.base import Env

from envs import registry
from envs.base import State


class ProbeBase(Env):
  """Brax Env sizes and backend name of physics-free test envs (one action, `OBS_SIZE` obs);
  the probes here and the test-only envs in tests/ subclass it."""

  OBS_SIZE = 1

  @property
  def observation_size(self) -> int:
    return self.OBS_SIZE

  @property
  def action_size(self) -> int:
    return 1

  @property
  def backend(self) -> str:
    return "probe"


class ProbeCostlyBandit(ProbeBase):
  """One-step bandit where the rewarding action costs 1 (see module docstring)."""

  episode_length = 1

  def reset(self, rng: jax.Array) -> State:
    del rng
    zero = jnp.zeros((), jnp.float32)
    return State(pipeline_state=None, obs=jnp.ones((1,), jnp.float32), reward=zero,
                 done=zero, metrics={}, info={}, cost=zero)

  def step(self, state: State, action: jax.Array) -> State:
    hit = jnp.where(action[0] > 0, 1.0, 0.0).astype(jnp.float32)
    return state.replace(reward=hit, cost=hit, done=jnp.ones((), jnp.float32))


class ProbeTwoRegion(ProbeBase):
  """Two absorbing regions; only region 0 makes the rewarding action costly."""

  OBS_SIZE = 2

  def __init__(self, episode_length: int = 20):
    self.episode_length = episode_length

  def reset(self, rng: jax.Array) -> State:
    region = jax.random.bernoulli(rng).astype(jnp.int32)
    zero = jnp.zeros((), jnp.float32)
    return State(pipeline_state=None, obs=jax.nn.one_hot(region, 2, dtype=jnp.float32),
                 reward=zero, done=zero, metrics={}, info={}, cost=zero)

  def step(self, state: State, action: jax.Array) -> State:
    hit = jnp.where(action[0] > 0, 1.0, 0.0).astype(jnp.float32)
    return state.replace(reward=hit, cost=hit * state.obs[0],
                         done=jnp.zeros((), jnp.float32))


registry.register("ProbeCostlyBandit", ProbeCostlyBandit)
registry.register("ProbeTwoRegion", ProbeTwoRegion)
