"""The minibatch policy-gradient learner (PPO's epochs) and its objectives.

  learner = make_minibatch_learner(penalized_objective)(nets, config, episode_steps)

One update: num_epochs passes over the batch in num_minibatches shuffled minibatches; each
step takes one Adam step on objective + value losses of both critics (policy_lr for the
policy, value_lr for the critics). With target_kl > 0, once a minibatch's KL(old || new),
measured before its step, exceeds target_kl, that step and every later one are skipped.

An objective is `objective(new, mb, lam, context, config) -> [] loss to minimise`:
  new: PolicyOutput of the current parameters on the minibatch ([M] log_prob, [M, A]
    loc and scale); mb: Samples [M]; lam: [M] stop-gradiented multiplier; context: what
    `prepare(batch, config) -> (context, metrics)` computed once per update from the
    whole batch (e.g. CRPO's switch); config: the traced TrainConfig.
Settings of this family: PPOConfig (config.learner), or a subclass adding an objective's
own settings.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from jaxcrl import losses
from jaxcrl.learners import base


@struct.dataclass
class PPOConfig:
  """Settings of the clipped minibatch learners.

  clip_eps: PPO's ratio clip epsilon (> 0).
  entropy_coef: entropy bonus of the pre-tanh Gaussian (>= 0).
  target_kl: early stop of the epochs on KL(old || new) of a minibatch; 0 never stops (>= 0).
  """

  clip_eps: float = 0.2
  entropy_coef: float = 0.0
  target_kl: float = 0.0

  CHECKS = {"clip_eps": ("> 0", lambda v: v > 0), "entropy_coef": (">= 0", lambda v: v >= 0),
            "target_kl": (">= 0", lambda v: v >= 0)}


class PolicyOutput(NamedTuple):
  """The current policy on a minibatch: log_prob [M] of mb.action, loc and scale [M, A]."""

  log_prob: jax.Array
  loc: jax.Array
  scale: jax.Array


def no_context(batch: base.LearnerBatch, config) -> tuple[Any, dict]:
  del batch, config
  return None, {}


def reward_objective(new, mb, lam, context, config):
  """Unconstrained PPO: clipped surrogate on the standardised reward advantage."""
  del lam, context
  return losses.clipped_surrogate(new.log_prob, mb.log_prob, losses.standardize(mb.adv_r),
                                  config.learner.clip_eps)


def _clipped_on(advantage: Callable, doc: str) -> Callable:
  """The objective: PPO's clipped surrogate on `advantage(A_r, A_c, lam)` [M]."""

  def objective(new, mb, lam, context, config):
    del context
    return losses.clipped_surrogate(new.log_prob, mb.log_prob,
                                    advantage(mb.adv_r, mb.adv_c, lam),
                                    config.learner.clip_eps)

  objective.__doc__ = doc
  return objective


penalized_objective = _clipped_on(
    losses.penalized_advantage,
    "Lagrangian PPO: clipped surrogate on `losses.penalized_advantage(A_r, A_c, lam)`.")
statewise_objective = _clipped_on(
    losses.statewise_advantage,
    "State-wise PPO: clipped surrogate on `losses.statewise_advantage(A_r, A_c, lam)`, "
    "each sample normalised by its own 1 + lambda(s).")


def make_minibatch_learner(objective: Callable, prepare: Callable = no_context,
                           extra_metric_keys: tuple[str, ...] = ()) -> Callable:
  """-> make_learner(nets, config, episode_steps) -> base.Learner running `objective` in
  PPO's epochs.

  `prepare(batch, config) -> (context, metrics)` runs once per update; its metrics (keys
  `extra_metric_keys`) join the learner's. The loss subtracts config.learner.entropy_coef
  x entropy, so the family config must have `entropy_coef` (PPOConfig and its subclasses,
  FOCOPSConfig, CUPConfig do).
  """

  def make_learner(nets: base.Nets, static_config, episode_steps: int) -> base.Learner:
    del static_config, episode_steps

    def init(key, config):
      return base.init_actor_critic(nets, key, config)

    def update(lstate, batch, lam, key, config):
      context, extra = prepare(batch, config)
      lconfig = config.learner

      def loss_fn(params, mb, lam_mb):
        loc, scale = nets.policy.apply(params["policy"], mb.obs)
        log_prob = losses.gaussian_log_prob(mb.action, loc, scale)
        entropy = losses.gaussian_entropy(scale).mean()
        policy_loss = objective(PolicyOutput(log_prob, loc, scale), mb, lam_mb, context,
                                config)
        value_loss = losses.value_loss(nets.value.apply(params["value"], mb.obs),
                                       mb.target_r)
        cost_value_loss = losses.value_loss(nets.value.apply(params["cost_value"], mb.obs),
                                            mb.target_c)
        log_ratio = log_prob - mb.log_prob
        kl = jnp.mean(jnp.expm1(log_ratio) - log_ratio)  # k3 estimator of KL(old || new)
        total = policy_loss - lconfig.entropy_coef * entropy + value_loss + cost_value_loss
        return total, (policy_loss, value_loss, cost_value_loss, kl, entropy)

      lrs = {"policy": config.policy_lr, "value": config.value_lr,
             "cost_value": config.value_lr}

      def take(carry, minibatch):
        params, opt_states, _ = carry
        mb, lam_mb = minibatch
        grads, aux = jax.grad(loss_fn, has_aux=True)(params, mb, lam_mb)
        stopped = (lconfig.target_kl > 0) & (aux[3] > lconfig.target_kl)
        new_params, new_opt = {}, {}
        for name in params:
          new_params[name], new_opt[name] = base.adam_step(
              params[name], opt_states[name], grads[name], lrs[name], config.max_grad_norm)
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(stopped, o, n), new, old)
        taken = 1.0 - stopped.astype(jnp.float32)
        return (keep(new_params, params), keep(new_opt, opt_states), stopped), (aux, taken)

      def sgd_step(carry, minibatch):
        # Once stopped, the later steps are not computed (base.unless_stopped).
        return base.unless_stopped(take, carry, minibatch, carry[2])

      def epoch(carry, key_e):
        return jax.lax.scan(sgd_step, carry, base.shuffled_minibatches(
            (batch.samples, lam), key_e, config.num_minibatches))

      params = {"policy": lstate.policy_params, "value": lstate.value_params,
                "cost_value": lstate.cost_value_params}
      opt_states = {"policy": lstate.policy_opt_state, "value": lstate.value_opt_state,
                    "cost_value": lstate.cost_value_opt_state}
      (params, opt_states, _), (aux, taken) = jax.lax.scan(
          epoch, (params, opt_states, jnp.zeros((), bool)),
          jax.random.split(key, config.num_epochs))
      # Means over the minibatch steps taken (the first is always taken: its KL is 0).
      policy_loss, value_loss, cost_value_loss, kl, entropy = jax.tree.map(
          lambda x: jnp.sum(x * taken) / jnp.maximum(taken.sum(), 1.0), aux)
      new = base.ActorCriticState(
          policy_params=params["policy"], value_params=params["value"],
          cost_value_params=params["cost_value"], policy_opt_state=opt_states["policy"],
          value_opt_state=opt_states["value"],
          cost_value_opt_state=opt_states["cost_value"])
      metrics = {"loss/policy": policy_loss, "loss/value_reward": value_loss,
                 "loss/value_cost": cost_value_loss, "policy/kl": kl,
                 "policy/entropy": entropy, "policy/sgd_steps": taken.sum(), **extra}
      return new, metrics

    return base.Learner(init=init, update=update, policy=base.actor_critic_policy(nets),
                        values=base.actor_critic_values(nets),
                        extra_metric_keys=tuple(extra_metric_keys))

  return make_learner
