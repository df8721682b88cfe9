"""P3O: PPO's epochs on an exact (ReLU) penalty of the clipped cost surrogate.

Zhang, Shen, Yang, Chen, Yuan, Wang & Tao 2022, "Penalized Proximal Policy Optimization for
Safe Reinforcement Learning" (arXiv:2205.11814), L^CLIP_R, L^CLIP_C and L^P3O:

  L^P3O = L^CLIP_R + kappa max(0, L^CLIP_C)
  L^CLIP_R = -E[min(r A_r, clip(r, 1 -+ eps) A_r)]            (PPO's loss)
  L^CLIP_C =  E[max(r A_c, clip(r, 1 -+ eps) A_c)] + (1 - gamma)(J_c - d)

r = pi(a|s) / pi_old(a|s). The cost surrogate is clipped pessimistically (max), so a step
never counts on more than the trust region's worth of cost reduction. By the exact-penalty
theorem the minimiser is the constrained one for any finite kappa above the optimal
Lagrange multiplier, so kappa is a fixed setting and there is no multiplier to learn
(lam is ignored). While the predicted cost is under the limit the penalty is 0 and the
step is PPO's.

What we minimise, per minibatch (`p3o_loss`):

  sigma = std(A_r) + 1e-8
  L = L^CLIP_R(A_r_hat) + kappa relu(L^CLIP_C(A_c_tilde) + (J_c - d) / sigma)
  A_r_hat = (A_r - mean A_r) / sigma,  A_c_tilde = (A_c - mean A_c) / sigma

Advantage normalisation. PPO here standardises A_r per minibatch; Lagrangian PPO divides
A_r and A_c by ONE number, std(A_r), so lam is reward per unit of cost
(losses.penalized_advantage). We do the same: L is the paper's objective (centred
advantages) divided by the positive sigma, which commutes with the ReLU. So kappa keeps the
paper's meaning, reward per unit of cost like ppo_lag's lambda (exactness needs kappa >
lambda*), and at r = 1 the penalty is on exactly when J_c > d, whatever the cost critic's
bias (hence the centring of A_c; OmniSafe centres it too).

The scale of J_c - d. J_c is the batch's mean undiscounted episode cost
(LearnerBatch.episode_cost) and d = config.cost_limit, the per-episode limit. The paper's
(1 - gamma) turns a discounted J_c into the per-sample scale of the surrogate; for our
undiscounted J_c and samples drawn uniformly over T-step episodes that scale is 1 / T.
The scale does not move the fixed point (at r = 1 the penalty is on iff J_c > d); it sets
the margin, scale x |J_c - d|, by which one update's predicted cost may move before the
penalty switches. A thin margin lets minibatch noise trip the penalty, and with
kappa >> 1 (Adam then sizes its steps by the penalty's large gradients) the policy drifts
to the safe side: on ProbeCostlyBandit (T = 1, d = 0.5) the paper's literal
(1 - cost_gamma) = 0.01 took the cost rate to 0.15-0.21 (second-half means of 300
updates, 4 seeds), scale 1 to 0.465-0.469 (tests/test_p3o_crpo_saute.py). So we use
J_c - d unscaled, as OmniSafe's P3O does (penalty_function/p3o.py:
`relu(surr_cadv + EpCost - cost_limit)`): exactly 1 / T at T = 1; for T > 1 a wider margin,
so the penalty acts as a switch on J_c > d, smoothed within an update. (The exact 1 / T
would need the episode length in the learner, which `make_learner` is not given.)

Defaults: p3o_kappa = 20 (OmniSafe configs/on-policy/P3O.yaml `kappa: 20.0`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxcrl import losses
from jaxcrl.learners import ppo


@struct.dataclass
class P3OConfig(ppo.PPOConfig):
  """PPOConfig plus P3O's penalty factor.

  p3o_kappa: kappa, the fixed exact-penalty factor in reward per unit of cost (>= 0; 0 is
    unconstrained PPO). OmniSafe's default 20, far above the lambda ~ 0.5 ppo_lag settled
    at on PointGoal1 and 1 on the probes; larger kappa errs to the safe side (measured on
    ProbeTwoRegion, d = 5 per 20-step episode, 2 seeds: episode cost 3.8-4.0 at 20,
    4.7-4.8 at 2).
  """

  p3o_kappa: float = 20.0

  CHECKS = {**ppo.PPOConfig.CHECKS, "p3o_kappa": (">= 0", lambda v: v >= 0)}


def clipped_cost_surrogate(log_prob: jax.Array, old_log_prob: jax.Array, adv_c: jax.Array,
                           clip_eps: float | jax.Array) -> jax.Array:
  """P3O's pessimistic cost surrogate E[max(r A_c, clip(r, 1 -+ eps) A_c)], inputs [N] -> []
  (to minimise, like a cost)."""
  ratio = jnp.exp(log_prob - old_log_prob)
  clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
  return jnp.mean(jnp.maximum(ratio * adv_c, clipped * adv_c))


def p3o_loss(log_prob: jax.Array, old_log_prob: jax.Array, adv_r: jax.Array,
             adv_c: jax.Array, episode_cost: jax.Array, cost_limit, kappa,
             clip_eps) -> jax.Array:
  """The P3O loss L of the module docstring: log_prob, old_log_prob, adv_r, adv_c [N] (not
  normalised); episode_cost J_c, cost_limit d, kappa, clip_eps [] -> [] loss to minimise."""
  sigma = adv_r.std() + 1e-8
  adv_r_hat = (adv_r - adv_r.mean()) / sigma
  adv_c_tilde = (adv_c - adv_c.mean()) / sigma
  reward_loss = losses.clipped_surrogate(log_prob, old_log_prob, adv_r_hat, clip_eps)
  cost_surrogate = (clipped_cost_surrogate(log_prob, old_log_prob, adv_c_tilde, clip_eps)
                    + (episode_cost - cost_limit) / sigma)
  return reward_loss + kappa * jax.nn.relu(cost_surrogate)


def prepare(batch, config):
  """Context of the objective: J_c of the whole batch (the same for every minibatch)."""
  del config
  return batch.episode_cost, {}


def objective(new, mb, lam, context, config):
  """ppo.make_minibatch_learner objective: `p3o_loss` on the minibatch, J_c = context."""
  del lam
  return p3o_loss(new.log_prob, mb.log_prob, mb.adv_r, mb.adv_c, context, config.cost_limit,
                  config.learner.p3o_kappa, config.learner.clip_eps)


make_learner = ppo.make_minibatch_learner(objective, prepare)
