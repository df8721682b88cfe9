"""FOCOPS: First Order Constrained Optimization in Policy Space (Zhang, Vuong & Ross,
NeurIPS 2020, arXiv:2002.06506).

Each update, with nu the scalar Lagrange multiplier (the trainer's `lam`, updated first by
multipliers.make_lagrange: nu <- clip(nu + alpha (J_c - d), 0, nu_max)):

  1. The optimal update policy in the nonparametric policy space is
       pi*(a|s) = pi_k(a|s) exp((A_r(s,a) - nu A_c(s,a)) / lambda_T) / Z(s),
     lambda_T the temperature (focops_temperature).
  2. pi_theta is fitted to it by minibatch SGD on (paper, Alg. 1)
       L(theta) = mean_s [ (KL(pi_theta || pi_k)[s]
                            - (1 / lambda_T) rho(s,a) (A_r - nu A_c)(s,a))
                           * 1[KL(pi_theta || pi_k)[s] <= delta] ]
     rho = pi_theta(a|s) / pi_k(a|s), delta = focops_kl_bound. The per-state KL is the
     analytic one of the diagonal Gaussians (pi_k: the behaviour's samples.loc, .scale);
     the indicator is not differentiated and drops states that have already moved more
     than delta, so the fit cannot push them further.
  3. The epochs stop early on KL (target_kl), as the paper's code and OmniSafe do.

The advantage. The paper's code and OmniSafe standardise A_r and A_c each by its own
std over the batch, and OmniSafe divides A_r - nu A_c by (1 + nu). Here the advantage is
ours, losses.penalized_advantage: ((A_r - mean) - nu (A_c - mean)) / (std(A_r) (1 + nu))
per minibatch, as ppo_lag's, so nu keeps the Lagrangian's units (reward per unit of
cost; the constrained bandit's optimum is nu = 1) and the multiplier defaults carry over.
With that scaling pi* has the effective temperature lambda_T std(A_r) (1 + nu). The
paper's nu_lr = 0.01 and nu_max = 2 (OmniSafe: Adam at 0.035, bound 2) are in units of
standardised cost advantage; the registry keeps LagrangeConfig's defaults, which are in
ours (on the costly bandit nu oscillates about 1.2, as ppo_lag's lambda does about 1.4).

Early stop. This learner runs in the minibatch learner of learners/ppo.py, whose stop is
per minibatch step: once the k3 estimate of KL(pi_k || pi_theta) on a minibatch, measured
before its step, exceeds target_kl, that step and all later ones are skipped. The paper's
code and OmniSafe check the exact full-batch KL after each epoch and finish the epoch in
which it is exceeded; ours checks before every step (on the minibatch), so it stops
within that epoch instead of at its end.
Critics train in the same minibatch steps (value_lr), as in both references.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxcrl import losses
from jaxcrl.learners import base, ppo


@struct.dataclass
class FOCOPSConfig:
  """Settings of FOCOPS (defaults: the paper's code, github.com/ymzhang01/focops, and
  OmniSafe's FOCOPS.yaml, which agree).

  focops_temperature: lambda_T, the temperature of pi* (> 0; code `--lam 1.5`,
    OmniSafe `focops_lam: 1.5`).
  focops_kl_bound: delta of the per-state indicator 1[KL(pi_theta || pi_k)[s] <= delta]
    (> 0; code `--eta 0.02`, OmniSafe `focops_eta: 0.02`).
  target_kl: early stop of the epochs on KL(pi_k || pi_theta) of a minibatch, as PPO's;
    0 never stops (>= 0; code `--delta 0.02`, OmniSafe `target_kl: 0.02`).
  entropy_coef: entropy bonus of the pre-tanh Gaussian, as PPO's (>= 0; OmniSafe 0.0,
    the code has none).
  """

  focops_temperature: float = 1.5
  focops_kl_bound: float = 0.02
  target_kl: float = 0.02
  entropy_coef: float = 0.0

  CHECKS = {"focops_temperature": ("> 0", lambda v: v > 0),
            "focops_kl_bound": ("> 0", lambda v: v > 0),
            "target_kl": (">= 0", lambda v: v >= 0),
            "entropy_coef": (">= 0", lambda v: v >= 0)}


FOCOPS_METRIC_KEYS = ("focops/kl_new_old", "focops/masked_frac")


def focops_loss(log_prob: jax.Array, old_log_prob: jax.Array, kl: jax.Array,
                advantage: jax.Array, temperature, kl_bound) -> jax.Array:
  """FOCOPS's loss to MINIMISE, inputs [M]:

    mean((kl - rho advantage / temperature) * 1[kl <= kl_bound]),  rho = exp(lp - old_lp),

  kl: KL(pi_theta || pi_k) per state (differentiated; the indicator is not).
  """
  ratio = jnp.exp(log_prob - old_log_prob)
  inside = jax.lax.stop_gradient(kl) <= kl_bound
  return jnp.mean(jnp.where(inside, kl - ratio * advantage / temperature, 0.0))


def focops_objective(new: ppo.PolicyOutput, mb: base.Samples, lam, context, config):
  """The minibatch learner's objective: focops_loss on losses.penalized_advantage, with
  the behaviour Gaussian (mb.loc, mb.scale) as pi_k."""
  del context
  lconfig = config.learner
  advantage = losses.penalized_advantage(mb.adv_r, mb.adv_c, lam)
  kl = losses.gaussian_kl(new.loc, new.scale, mb.loc, mb.scale)
  return focops_loss(new.log_prob, mb.log_prob, kl, advantage, lconfig.focops_temperature,
                     lconfig.focops_kl_bound)


def make_focops(nets: base.Nets, static_config, episode_steps: int) -> base.Learner:
  """FOCOPS in the minibatch learner (see the module docstring).

  Metrics: base.LEARNER_METRIC_KEYS (means over the minibatch steps taken) plus, on the
  whole batch after the update, focops/kl_new_old: mean KL(pi_new || pi_k)[s] and
  focops/masked_frac: the fraction of states with KL(pi_new || pi_k)[s] > delta (those the
  indicator now leaves out).
  """
  inner = ppo.make_minibatch_learner(focops_objective)(nets, static_config, episode_steps)

  def update(lstate, batch, lam, key, config):
    lstate, metrics = inner.update(lstate, batch, lam, key, config)
    samples = batch.samples
    loc, scale = nets.policy.apply(lstate.policy_params, samples.obs)
    kl = losses.gaussian_kl(loc, scale, samples.loc, samples.scale)
    metrics = {**metrics, "focops/kl_new_old": kl.mean(),
               "focops/masked_frac": jnp.mean(kl > config.learner.focops_kl_bound)}
    return lstate, metrics

  return inner._replace(update=update, extra_metric_keys=FOCOPS_METRIC_KEYS)
