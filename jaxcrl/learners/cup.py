"""CUP: Constrained Update Projection (Yang, Ji, Dai, Zhang, Zhou, Li, Yang & Pan,
NeurIPS 2022, arXiv:2209.07089), in its first-order practical form (OmniSafe's CUP).

Each update, with nu the scalar Lagrange multiplier (the trainer's `lam`, updated first by
multipliers.make_lagrange: nu <- clip(nu + alpha (J_c - d), 0, nu_max)):

  1. Performance improvement: PPO-clip on the reward alone, in PPO's minibatch epochs
     (learners/ppo.py with ppo.reward_objective: clip_eps, entropy_coef, target_kl),
       theta_{k+1/2} = argmax E[min(rho A_r, clip(rho, 1 -+ eps) A_r)],  rho = pi/pi_k,
     A_r standardised per minibatch. The critics train here, in the same steps, and only
     here.
  2. Projection: from theta_{k+1/2}, num_epochs x num_minibatches Adam steps (policy_lr,
     the policy's optimizer state carried on) on
       L(theta) = mean_s [ KL(pi_theta || pi_{k+1/2})[s]
                           + nu (1 - gamma lambda) / (1 - gamma) rho(s,a) A_c(s,a) ],
     rho = pi_theta(a|s) / pi_k(a|s) against the BEHAVIOUR policy pi_k (the sample's
     log-prob), the KL the analytic one of the diagonal Gaussians against pi_{k+1/2}
     evaluated once on the batch before the projection, gamma = cost_gamma and
     lambda = gae_lambda (the cost GAE's; OmniSafe takes the reward's gamma, equal by
     default). After each projection epoch, once the full-batch mean
     KL(pi_{k+1/2} || pi_theta) exceeds cup_projection_kl, the later epochs are skipped,
     as OmniSafe breaks its loop.

The cost advantage. OmniSafe standardises A_c by its own std over the batch. Here it is
(A_c - mean A_c) / std(A_r) over the batch, the cost half of losses.penalized_advantage
(without its 1 + nu: the projection weighs the cost against a KL, not against the
reward), on the scale of phase 1's standardised reward advantage. So nu (1 - gamma
lambda) / (1 - gamma) is the multiplier in the Lagrangian's units (reward per unit of
cost), whatever the cost frequency: on the costly bandit, whose true multiplier is 1,
nu settles near 1 / 5.95 at the default discounts. The registry keeps LagrangeConfig's
defaults, as OmniSafe keeps PPOLag's rate for CUP; in reward-per-cost units nu then
moves 5.95 times as fast as ppo_lag's lambda (not yet measured on PointGoal1).

The policy's Adam state carries from the improvement step into the projection, as
OmniSafe's one actor optimizer does, so the projection's first steps keep some of the
improvement step's momentum.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from jaxcrl import losses
from jaxcrl.learners import base, ppo


@struct.dataclass
class CUPConfig:
  """Settings of CUP (defaults: OmniSafe's CUP.yaml).

  clip_eps: PPO's ratio clip epsilon of the improvement step (> 0; OmniSafe `clip: 0.2`).
  entropy_coef: entropy bonus of the improvement step, as PPO's (>= 0; OmniSafe 0.0).
  target_kl: early stop of the improvement epochs on KL(pi_k || pi_theta) of a minibatch,
    as PPO's; 0 never stops (>= 0; OmniSafe `target_kl: 0.01`, which it checks per epoch).
  cup_projection_kl: early stop of the projection epochs on the full-batch mean
    KL(pi_{k+1/2} || pi_theta) after each epoch; 0 never stops (>= 0; OmniSafe uses the
    same `target_kl: 0.01` for both steps).
  """

  clip_eps: float = 0.2
  entropy_coef: float = 0.0
  target_kl: float = 0.01
  cup_projection_kl: float = 0.01

  CHECKS = {"clip_eps": ("> 0", lambda v: v > 0), "entropy_coef": (">= 0", lambda v: v >= 0),
            "target_kl": (">= 0", lambda v: v >= 0),
            "cup_projection_kl": (">= 0", lambda v: v >= 0)}


CUP_METRIC_KEYS = ("cup/improve_kl", "cup/projection_loss", "cup/projection_kl",
                   "cup/projection_steps")


def projection_coef(cost_gamma, gae_lambda):
  """(1 - gamma lambda) / (1 - gamma): the projection's weight of the cost surrogate
  (the paper's GAE bound), with the cost GAE's gamma and lambda."""
  return (1.0 - cost_gamma * gae_lambda) / (1.0 - cost_gamma)


def projection_loss(log_prob: jax.Array, old_log_prob: jax.Array, kl: jax.Array,
                    cost_advantage: jax.Array, nu, coef) -> jax.Array:
  """CUP's projection loss to MINIMISE, inputs [M] (nu [] or [M], not differentiated):

    mean(kl + nu coef rho cost_advantage),  rho = exp(log_prob - old_log_prob),

  kl: KL(pi_theta || pi_{k+1/2}) per state; coef = (1 - gamma lambda) / (1 - gamma).
  """
  ratio = jnp.exp(log_prob - old_log_prob)
  return jnp.mean(kl + nu * coef * ratio * cost_advantage)


class _ProjectionData(NamedTuple):
  """What the projection minibatches carry, leaves [N, ...]: the sample, pi_{k+1/2}'s
  Gaussian, the scaled cost advantage and nu."""

  obs: jax.Array
  action: jax.Array
  log_prob: jax.Array
  anchor_loc: jax.Array
  anchor_scale: jax.Array
  cost_adv: jax.Array
  lam: jax.Array


def project(nets: base.Nets, lstate: base.ActorCriticState, samples: base.Samples,
            lam: jax.Array, key: jax.Array, config
            ) -> tuple[base.ActorCriticState, dict]:
  """CUP's projection step (module docstring, 2.) from lstate's policy = pi_{k+1/2}.

  -> (lstate with the projected policy and its optimizer state, metrics:
  cup/projection_loss (mean over the epochs run), cup/projection_kl (full-batch
  KL(pi_{k+1/2} || pi_{k+1})), cup/projection_steps).
  """
  anchor_loc, anchor_scale = nets.policy.apply(lstate.policy_params, samples.obs)
  cost_adv = (samples.adv_c - samples.adv_c.mean()) / (samples.adv_r.std() + 1e-8)
  coef = projection_coef(config.cost_gamma, config.gae_lambda)
  data = _ProjectionData(samples.obs, samples.action, samples.log_prob, anchor_loc,
                         anchor_scale, cost_adv, lam)

  def loss_fn(params, mb):
    loc, scale = nets.policy.apply(params, mb.obs)
    log_prob = losses.gaussian_log_prob(mb.action, loc, scale)
    kl = losses.gaussian_kl(loc, scale, mb.anchor_loc, mb.anchor_scale)
    return projection_loss(log_prob, mb.log_prob, kl, mb.cost_adv, mb.lam, coef)

  def sgd_step(carry, mb):
    params, opt_state = carry
    loss, grads = jax.value_and_grad(loss_fn)(params, mb)
    return base.adam_step(params, opt_state, grads, config.policy_lr,
                          config.max_grad_norm), loss

  def epoch(carry, key_e):
    params, opt_state, _, _ = carry
    (params, opt_state), loss = jax.lax.scan(
        sgd_step, (params, opt_state),
        base.shuffled_minibatches(data, key_e, config.num_minibatches))
    loc, scale = nets.policy.apply(params, samples.obs)
    kl = losses.gaussian_kl(anchor_loc, anchor_scale, loc, scale).mean()
    limit = config.learner.cup_projection_kl
    stopped = (limit > 0) & (kl > limit)
    return (params, opt_state, stopped, kl), (loss.mean(), jnp.ones((), jnp.float32))

  # carry: (params, opt_state, stopped, the last epoch's full-batch KL); a skipped epoch
  # leaves it as it was and outputs ran = 0.
  (params, opt_state, _, kl), (loss, ran) = jax.lax.scan(
      lambda carry, key_e: base.unless_stopped(epoch, carry, key_e, carry[2]),
      (lstate.policy_params, lstate.policy_opt_state, jnp.zeros((), bool),
       jnp.zeros((), jnp.float32)),
      jax.random.split(key, config.num_epochs))
  metrics = {"cup/projection_loss": jnp.sum(loss * ran) / jnp.maximum(ran.sum(), 1.0),
             "cup/projection_kl": kl,
             "cup/projection_steps": ran.sum() * config.num_minibatches}
  return lstate.replace(policy_params=params, policy_opt_state=opt_state), metrics


def make_cup(nets: base.Nets, static_config, episode_steps: int) -> base.Learner:
  """CUP (module docstring): PPO's minibatch learner on the reward, then `project`.

  Metrics: loss/policy, loss/value_*: the improvement step's (means over its steps
  taken); policy/kl: full-batch mean KL(pi_k || pi_{k+1}) of the whole update (exact);
  policy/entropy: pi_{k+1}'s mean entropy on the batch; policy/sgd_steps: the policy
  steps of both phases; cup/improve_kl: the improvement step's policy/kl (PPO's k3
  estimate, mean over its steps); cup/projection_*: see `project`.
  """
  improve = ppo.make_minibatch_learner(ppo.reward_objective)(nets, static_config,
                                                            episode_steps)

  def update(lstate, batch, lam, key, config):
    k_improve, k_project = jax.random.split(key)
    lstate, improved = improve.update(lstate, batch, lam, k_improve, config)
    lstate, projected = project(nets, lstate, batch.samples, lam, k_project, config)
    samples = batch.samples
    loc, scale = nets.policy.apply(lstate.policy_params, samples.obs)
    metrics = {
        "loss/policy": improved["loss/policy"],
        "loss/value_reward": improved["loss/value_reward"],
        "loss/value_cost": improved["loss/value_cost"],
        "policy/kl": losses.gaussian_kl(samples.loc, samples.scale, loc, scale).mean(),
        "policy/entropy": losses.gaussian_entropy(scale).mean(),
        "policy/sgd_steps": improved["policy/sgd_steps"] + projected["cup/projection_steps"],
        "cup/improve_kl": improved["policy/kl"],
        **projected,
    }
    return lstate, metrics

  return improve._replace(update=update, extra_metric_keys=CUP_METRIC_KEYS)
