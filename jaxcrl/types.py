"""Pytrees passed between rollout, returns and losses."""

from __future__ import annotations

from typing import NamedTuple

import jax


class PolicyExtras(NamedTuple):
  """The behaviour policy's Gaussian at each step: loc, scale [T, B, A] (pre-tanh);
  FOCOPS, CUP and the trust-region learners use it for KL(old || new)."""

  loc: jax.Array
  scale: jax.Array


class Transition(NamedTuple):
  """One unroll, time-major: every field has leading axes [T, B].

  obs: [T, B, O] raw (unnormalised) observation the action was chosen from.
  action: [T, B, A] pre-tanh Gaussian sample; the env received tanh(action).
  reward, cost: [T, B] summed over action repeats.
  done: [T, B] 1.0 where the episode TERMINATED (zeroes the bootstrap).
  truncation: [T, B] 1.0 where the time limit cut the episode (bootstrap from final_obs).
  final_obs: [T, B, O] raw observation reached by the step, before any auto-reset; the
    value bootstrap V(s_{t+1}) is always taken here.
  log_prob: [T, B] log-density of `action` under the behaviour policy (pre-tanh, so the
    tanh Jacobian cancels in importance ratios).
  episode_return, episode_cost: [T, B] episode totals so far; completed totals where
    `done + truncation > 0`.
  extras: PolicyExtras, what learners need beyond the sample (leaves [T, B, ...]).
  """

  obs: jax.Array
  action: jax.Array
  reward: jax.Array
  cost: jax.Array
  done: jax.Array
  truncation: jax.Array
  final_obs: jax.Array
  log_prob: jax.Array
  episode_return: jax.Array
  episode_cost: jax.Array
  extras: PolicyExtras
