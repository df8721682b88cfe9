"""PPO losses as small pure functions. Shapes [N] are flattened minibatch samples."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_prob(x: jax.Array, loc: jax.Array, scale: jax.Array) -> jax.Array:
  """Diagonal Gaussian log-density: x, loc, scale [..., A] -> [...]."""
  z = (x - loc) / scale
  return jnp.sum(-0.5 * z**2 - jnp.log(scale) - 0.5 * LOG_2PI, axis=-1)


def gaussian_entropy(scale: jax.Array) -> jax.Array:
  """Entropy of the pre-tanh diagonal Gaussian: scale [..., A] -> [...]."""
  return jnp.sum(jnp.log(scale) + 0.5 * (1.0 + LOG_2PI), axis=-1)


def gaussian_kl(loc_p: jax.Array, scale_p: jax.Array, loc_q: jax.Array,
                scale_q: jax.Array) -> jax.Array:
  """KL(p || q) of diagonal Gaussians: loc, scale [..., A] -> [...].

  sum_a log(s_q / s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2.
  """
  var_ratio = (scale_p / scale_q) ** 2
  mean_term = ((loc_p - loc_q) / scale_q) ** 2
  return 0.5 * jnp.sum(var_ratio + mean_term - 1.0 - jnp.log(var_ratio), axis=-1)


def _spread(x: jax.Array) -> jax.Array:
  """std(x) + 1e-8: the divisor of every advantage normalisation here (never 0)."""
  return x.std() + 1e-8


def standardize(x: jax.Array) -> jax.Array:
  """(x - mean) / std over all elements; an all-equal x (e.g. no cost seen) maps to 0."""
  return (x - x.mean()) / _spread(x)


def penalized_advantage(adv_r: jax.Array, adv_c: jax.Array, lam: jax.Array) -> jax.Array:
  """((A_r - mean A_r) - lam (A_c - mean A_c)) / (std(A_r) (1 + mean lam)).

  adv_r, adv_c [N]; lam [] or [N] (broadcastable) -> [N]. Both advantages are centred over
  the (mini)batch and divided by ONE number, the reward advantage's std, so lam keeps the
  Lagrangian's meaning, L = J_r - lam J_c (reward per unit of cost), whatever the cost
  frequency; at lam = 0 this is PPO's standardised advantage. Standardising A_c by its own
  std instead makes the penalty per unit of cost grow as costs get rarer: a safer policy is
  penalised harder at the same lam (on PointGoal1 the cost critic's residual, a proxy for
  std(A_c), fell from 2.0 to 0.7 as a ppo_lag seed became safe: three times the penalty).

  With a scalar lam the divisor is the usual 1 + lam, which keeps the step size comparable
  as lam grows. With a state-wise lam [N] it is one number for the whole (mini)batch, so
  the objective stays the Lagrangian sum_i A_r,i - lam_i A_c,i up to a positive scale:
  dividing each sample by its own (1 + lam_i) would instead cap every sample's cost weight
  at 1 and let the samples where lam_i ~ 0 outvote the penalty however large lam grows
  elsewhere.
  """
  return _lagrangian(adv_r, adv_c, lam) / (1.0 + jnp.mean(lam))


def _lagrangian(adv_r: jax.Array, adv_c: jax.Array, lam: jax.Array) -> jax.Array:
  """((A_r - mean A_r) - lam (A_c - mean A_c)) / std(A_r): [N]; the numerator both
  penalised advantages share (they differ only in their 1 + lambda divisor)."""
  return ((adv_r - adv_r.mean()) - lam * (adv_c - adv_c.mean())) / _spread(adv_r)


def statewise_advantage(adv_r: jax.Array, adv_c: jax.Array, lam: jax.Array) -> jax.Array:
  """((A_r - mean A_r) - lam (A_c - mean A_c)) / (1 + lam) / std(A_r), each sample by its
  own 1 + lam: adv_r, adv_c [N], lam [N] or [] -> [N].

  Per sample this is (1 - p) A_r - p A_c with p = lam / (1 + lam) in [0, 1): where lambda(s)
  is large the sample optimises the cost alone, at the weight a reward sample has
  elsewhere, so no state's penalty outweighs the rest of the batch (with the batch-wide
  divisor of `penalized_advantage`, a few states at lambda = 100 set the gradient of the
  whole update). With a scalar lam it equals `penalized_advantage`.
  """
  return _lagrangian(adv_r, adv_c, lam) / (1.0 + lam)


def clipped_surrogate(log_prob: jax.Array, old_log_prob: jax.Array, advantage: jax.Array,
                      clip_eps: float | jax.Array) -> jax.Array:
  """PPO-clip loss to MINIMISE: -mean(min(rho A, clip(rho, 1 -+ eps) A)), inputs [N]."""
  ratio = jnp.exp(log_prob - old_log_prob)
  unclipped = ratio * advantage
  clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantage
  return -jnp.mean(jnp.minimum(unclipped, clipped))


def penalized_policy_loss(log_prob, old_log_prob, adv_r, adv_c, lam, clip_eps):
  """Clipped surrogate on `penalized_advantage(A_r, A_c, lam)`; lam [] or [N],
  stop-gradiented by the caller."""
  advantage = penalized_advantage(adv_r, adv_c, lam)
  return clipped_surrogate(log_prob, old_log_prob, advantage, clip_eps)


def reward_policy_loss(log_prob, old_log_prob, adv_r, adv_c, lam, clip_eps):
  """Unconstrained PPO: the cost advantage and lam are ignored."""
  del adv_c, lam
  return clipped_surrogate(log_prob, old_log_prob, standardize(adv_r), clip_eps)


def value_loss(prediction: jax.Array, target: jax.Array) -> jax.Array:
  """0.5 mean (V - target)^2; prediction [N] (or [N, K] for K heads), target [N] or
  broadcastable to the prediction ([N, 1] for K heads on one target); the target is not
  differentiated."""
  return 0.5 * jnp.mean((prediction - jax.lax.stop_gradient(target)) ** 2)
