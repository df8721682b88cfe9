"""CRPO: each update is either a reward step or a cost step, switched on J_c.

Xu, Liang & Lan 2021, "CRPO: A New Approach for Safe Reinforcement Learning with
Convergence Guarantee" (ICML; arXiv:2011.05869), Algorithm 1: estimate the constraint
J_c(pi_k) from the rollout; if J_c <= d + eta (eta the tolerance) take a policy step that
increases the reward, else take one that decreases the violated constraint's cost. No
multiplier (lam is ignored). The paper's step is natural policy gradient and OmniSafe's
OnCRPO a TRPO step; here it is PPO's epochs:

  cost_step = J_c > d + crpo_tolerance          (once per update, from the whole batch)
  L = -E[min(r A, clip(r, 1 -+ eps) A)],  A = standardize(-A_c) if cost_step
                                              else standardize(A_r)

J_c is LearnerBatch.episode_cost (the batch's mean episode cost), d = config.cost_limit.
A step optimises one signal only, so each advantage is standardised by its own std: the
step size is PPO's either way. The switch is reported as the metric "crpo/cost_step"
(1.0 for a cost step, 0.0 for a reward step).

Defaults: crpo_tolerance = 2.0, OmniSafe's `distance` (configs/on-policy/OnCRPO.yaml), for
Safety-Gym's d = 25; scale it with d (a one-step probe with d = 0.5 wants 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxcrl import losses
from jaxcrl.learners import ppo

METRIC_KEYS = ("crpo/cost_step",)


@struct.dataclass
class CRPOConfig(ppo.PPOConfig):
  """PPOConfig plus CRPO's switch tolerance.

  crpo_tolerance: eta; a cost step is taken when J_c > cost_limit + eta (>= 0, in the
    units of the per-episode cost). OmniSafe's default 2.0.
  """

  crpo_tolerance: float = 2.0

  CHECKS = {**ppo.PPOConfig.CHECKS, "crpo_tolerance": (">= 0", lambda v: v >= 0)}


def cost_step(episode_cost: jax.Array, cost_limit, tolerance) -> jax.Array:
  """[] bool: whether this update is a cost step (J_c > d + eta)."""
  return episode_cost > cost_limit + tolerance


def prepare(batch, config):
  """The switch, from the whole batch: -> (cost_step [] bool, {"crpo/cost_step": 0/1})."""
  switch = cost_step(batch.episode_cost, config.cost_limit, config.learner.crpo_tolerance)
  return switch, {"crpo/cost_step": switch.astype(jnp.float32)}


def crpo_advantage(adv_r: jax.Array, adv_c: jax.Array, switch: jax.Array) -> jax.Array:
  """standardize(-A_c) on a cost step, else standardize(A_r): [N], switch [] -> [N]."""
  return jnp.where(switch, losses.standardize(-adv_c), losses.standardize(adv_r))


def objective(new, mb, lam, context, config):
  """ppo.make_minibatch_learner objective: PPO-clip on `crpo_advantage`, switch = context."""
  del lam
  return losses.clipped_surrogate(new.log_prob, mb.log_prob,
                                  crpo_advantage(mb.adv_r, mb.adv_c, context),
                                  config.learner.clip_eps)


make_learner = ppo.make_minibatch_learner(objective, prepare, METRIC_KEYS)
