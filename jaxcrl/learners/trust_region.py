"""The trust-region learners: TRPO, TRPO-Lagrangian, CPO and PCPO.

One update is a single full-batch policy step, then the critics' minibatch epochs:

  1. Surrogates of the new policy theta on the batch, with rho = pi_theta(a|s) / pi_k(a|s):
       L_r(theta) = mean(rho A),   A = standardize(A_r)  (trpo, cpo, pcpo), or
                                   A = losses.penalized_advantage(A_r, A_c, lam)  (trpo_lag);
       L_c(theta) = mean(rho (A_c - mean A_c))            (cpo, pcpo: centred, NOT scaled).
     g = grad L_r, b = grad L_c at theta_k, flattened (jax.flatten_util.ravel_pytree).
  2. H = the Hessian at theta_k of mean_s KL(pi_k(.|s) || pi_theta(.|s)) (analytic
     diagonal-Gaussian KL against the behaviour's samples.loc, .scale: the Fisher matrix),
     plus cg_damping I; H^-1 v by `conjugate_gradient` on Hessian-vector products
     (forward-over-reverse), never forming H.
  3. A step x from the family's rule (each a pure function below):
       trpo, trpo_lag: x = sqrt(2 delta / x_g^T H x_g) x_g, x_g = H^-1 g   (`trpo_step`);
       cpo: the solution of the linearised problem (`cpo_step`);
       pcpo: the TRPO step projected on the linearised constraint (`pcpo_step`).
  4. Backtracking line search over theta_k + beta^j x, j = 0 .. line_search_steps - 1
     (`backtracking_line_search`): the first candidate with KL <= max_kl (the exact mean
     KL on the batch), a reward surrogate that improves (L_r rises) and, for cpo and pcpo,
     a cost surrogate within the linearisation's allowance,
       L_c(theta) - L_c(theta_k) <= max(-c, 0),
     (when infeasible, c >= 0, the cost surrogate must not rise). The reward check is
     dropped when infeasible (CPO's recovery cases, PCPO with c >= 0). No candidate
     accepted -> theta_k is kept. (These are the checks of Achiam's CPO code, used for
     PCPO too; OmniSafe allows KL <= 1.5 max_kl and always asks PCPO's reward to improve.)
  5. Both critics: `base.fit_critics` (num_epochs x num_minibatches Adam on value_lr).
The policy has no optimizer state (`base.init_actor_critic(..., policy_optimizer=False)`).

c, the constraint value, against b. The episode constraint J_c(theta) <= d is linearised
as c + b^T x <= 0, J_c = batch.episode_cost, d = config.cost_limit, T = the trainer's
agent steps per episode (episode_length // action_repeat). b^T x is the change of L_c, a
per-step mean; `TrustRegionConfig.cost_scale` (static; cpo and pcpo) sets c's units:
  "per_step" (the default): c = (J_c - d) / T, so that J_c + T b^T x <= d reads
    c + b^T x <= 0 and both terms are per-step costs. Achiam's reference code
    (safety-starter-agents, CPOAgent: the constraint divided by the mean EpLen).
  "episode": c = J_c - d, in episode units, against the same per-step b: the model
    treats b^T x as a change of the episode cost, so c weighs T times more than under
    "per_step". OmniSafe's CPO and PCPO (`ep_costs = EpCost - cost_limit`, not divided
    by the episode length).
  The plane c + b^T x = 0 meets the trust region iff |c| <= sqrt(2 delta s),
  s = b^T H^-1 b. Beyond that, CPO takes case 0 (the pure cost-descent recovery step)
  over the limit and case 3 (TRPO's step) under it, so with "episode" it is close to
  bang-bang: recovery whenever J_c - d > sqrt(2 delta s), which "per_step" asks only of
  T times that violation. PCPO's projection asks for b^T x = -c, a step of KL about
  c^2 / (2 s), which the line search must cut back to the trust region; its smallest
  fraction is backtrack_ratio^(line_search_steps - 1) (0.044 at the defaults), so with
  "episode" and c > ~0.044^-1 sqrt(2 delta s) no candidate fits and PCPO keeps theta_k
  (OmniSafe's PCPO searches 200 candidates): raise line_search_steps with it. The line
  search's cost allowance max(-c, 0) is in c's units too.
In both, the cost advantage is centred, not divided by its std (safety-starter-agents:
`cadv_buf -= cadv_mean`; OmniSafe's `standardized_cost_adv: True` subtracts the mean
only), so b stays in cost units.

Metrics: base.LEARNER_METRIC_KEYS with
  loss/policy: -L_r at the accepted parameters (the reward surrogate as a loss; for
    trpo_lag the Lagrangian one); loss/value_reward, loss/value_cost: the critics' mean
    minibatch losses; policy/kl: exact mean KL(pi_k || pi_new) of the accepted step (0 if
    none); policy/entropy: mean entropy of the new policy; policy/sgd_steps: 1 if the line
    search accepted a step, else 0;
plus trust_region/search_steps: the 1-based index of the accepted candidate (1 = the full
step), 0 if none (the references' AcceptanceStep), and per family:
  cpo/case: 0..4 as in the references (`cpo_step`); cpo/lambda, cpo/nu: the dual
    solution; cpo/c: c above; cpo/predicted_cost_change: frac b^T x, the linearised
    model's change of c for the accepted step (frac = the accepted step fraction, 0 if
    none), in c's units: the model predicts c_new = c + frac b^T x, to compare with the
    realised change (the next update's cpo/c minus this one's, on a new batch).
  pcpo/projected: 1 if the projection moved the TRPO step; pcpo/c,
    pcpo/predicted_cost_change: as cpo's.

Papers: Schulman et al. 2015, Trust Region Policy Optimization (arXiv:1502.05477);
Achiam, Held, Tamar & Abbeel 2017, Constrained Policy Optimization (arXiv:1705.10528);
Yang, Rosca, Narasimhan & Ramadge 2020, Projection-Based Constrained Policy Optimization
(arXiv:2010.03152); Ray, Achiam & Amodei 2019 (TRPO-Lagrangian in safety-starter-agents).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct
from jax.flatten_util import ravel_pytree

from jaxcrl import losses
from jaxcrl.config import check_fields, static
from jaxcrl.learners import base

# Relative residual (r^T r / g^T g) at which conjugate gradient stops updating.
CG_RESIDUAL_TOL = 1e-10
# b^T b at or below which the cost gradient counts as zero (CPO case 4), as in Achiam's
# reference code (safety-starter-agents, `np.dot(b, b) <= 1e-8`).
ZERO_COST_GRAD = 1e-8
# Floor of the denominators s = b^T H^-1 b, q and B in the CPO / PCPO formulas.
_TINY = 1e-12
# The units of CPO's and PCPO's constraint value c (module docstring).
COST_SCALES = ("per_step", "episode")


@struct.dataclass
class TrustRegionConfig:
  """Settings of the trust-region learners (trpo, trpo_lag, cpo, pcpo).

  max_kl: delta, the trust region mean KL(pi_k || pi_new) <= delta (> 0; 0.01 in the
    CPO paper's experiments, Achiam's code `target_kl=0.01` and OmniSafe's `target_kl`).
  cg_damping: damping added to the Fisher matrix, H = F + cg_damping I (>= 0; 0.1 in
    Achiam's code `damping_coeff` and OmniSafe's `cg_damping`).
  backtrack_ratio: beta, candidate j of the line search is theta_k + beta^j x (in (0, 1);
    0.8 in Achiam's code `backtrack_coeff` and OmniSafe's `decay`).
  cg_iters: conjugate-gradient iterations per solve (static, >= 1; 15 as OmniSafe's
    `cg_iters`; Achiam's code uses 10).
  line_search_steps: candidates of the line search (static, >= 1; 15 as OmniSafe's TRPO
    `total_steps`; Achiam's code uses 10, OmniSafe's CPO 20).
  fvp_sample_freq: the Fisher-vector products use every k-th sample of the batch (static,
    >= 1). 5 as OpenAI baselines' TRPO (`fvpargs = [arr[::5] ...]`); OmniSafe's
    `fvp_sample_freq` defaults to 1 (all samples). The products are most of the step's
    cost: at 1, CPO updates at about 0.4x PPO's rate on PointGoal1 (docs/algorithms.md).
  cost_scale: (static) one of COST_SCALES, the units of the constraint value c of cpo
    and pcpo (trpo and trpo_lag ignore it): per_step, c = (J_c - d) / T as in Achiam's
    code, or episode, c = J_c - d as in OmniSafe; see the module docstring.
  """

  max_kl: float = 0.01
  cg_damping: float = 0.1
  backtrack_ratio: float = 0.8
  cg_iters: int = static(15)
  line_search_steps: int = static(15)
  fvp_sample_freq: int = static(5)
  cost_scale: str = static("per_step")

  CHECKS = {"max_kl": ("> 0", lambda v: v > 0), "cg_damping": (">= 0", lambda v: v >= 0),
            "backtrack_ratio": ("in (0, 1)", lambda v: 0 < v < 1),
            "cg_iters": ("a positive integer", lambda v: v >= 1 and float(v).is_integer()),
            "line_search_steps": ("a positive integer",
                                  lambda v: v >= 1 and float(v).is_integer()),
            "fvp_sample_freq": ("a positive integer",
                                lambda v: v >= 1 and float(v).is_integer()),
            "cost_scale": (f"one of {', '.join(map(repr, COST_SCALES))}",
                           lambda v: v in COST_SCALES)}

  def __post_init__(self):
    # A static choice shapes the compiled step, so it is refused as soon as a config is
    # built or replaced, not only when validated.
    check_fields(self, ("cost_scale",))


# --- Pure step math (flat vectors [P]; `hvp(v) -> H v`, H symmetric positive definite) ---


def conjugate_gradient(hvp: Callable[[jax.Array], jax.Array], rhs: jax.Array, iters: int,
                       residual_tol: float = CG_RESIDUAL_TOL) -> jax.Array:
  """x ~ H^-1 rhs by `iters` conjugate-gradient iterations from x = 0: rhs [P] -> [P].

  Iterations after the residual r^T r falls to residual_tol * rhs^T rhs (or after a
  direction with p^T H p <= 0) leave x unchanged, so extra iterations never divide by 0.
  """

  def body(_, carry):
    x, r, p, rs = carry
    hp = hvp(p)
    php = p @ hp
    active = (rs > residual_tol * rs0) & (php > 0)
    alpha = jnp.where(active, rs / jnp.where(active, php, 1.0), 0.0)
    x = x + alpha * p
    r = r - alpha * hp
    rs_new = r @ r
    beta = jnp.where(active, rs_new / jnp.where(active, rs, 1.0), 0.0)
    p = jnp.where(active, r + beta * p, p)
    return x, r, p, jnp.where(active, rs_new, rs)

  rs0 = rhs @ rhs
  x, *_ = jax.lax.fori_loop(0, iters, body, (jnp.zeros_like(rhs), rhs, rhs, rs0))
  return x


def solve_both(hvp: Callable, g: jax.Array, b: jax.Array, iters: int
               ) -> tuple[jax.Array, jax.Array]:
  """(H^-1 g, H^-1 b) [P] each, by one conjugate gradient vmapped over the two right-hand
  sides: each iteration is one batched product instead of two in sequence (CPO's and
  PCPO's step then costs about what TRPO's does)."""
  x = jax.vmap(lambda rhs: conjugate_gradient(hvp, rhs, iters))(jnp.stack([g, b]))
  return x[0], x[1]


def trpo_step(g: jax.Array, hvp: Callable, max_kl, cg_iters: int) -> jax.Array:
  """The natural-gradient step to the trust region's edge: sqrt(2 delta / x^T H x) x,
  x = H^-1 g (so 0.5 step^T H step = delta). g [P] -> [P]; g = 0 gives 0."""
  x = conjugate_gradient(hvp, g, cg_iters)
  return _to_edge(x, x @ hvp(x), max_kl)


def _to_edge(x, xhx, max_kl):
  """sqrt(2 delta / xhx) x, 0 when xhx = 0."""
  return jnp.where(xhx > 0, jnp.sqrt(2.0 * max_kl / jnp.maximum(xhx, _TINY)), 0.0) * x


class CPOInfo(NamedTuple):
  """What `cpo_step` decided, each []: case (int32, 0..4), lam and nu (the dual
  solution; lam = 0 in case 0, where nu is the recovery step's scale), q, r, s."""

  case: jax.Array
  lam: jax.Array
  nu: jax.Array
  q: jax.Array
  r: jax.Array
  s: jax.Array


def cpo_step(g: jax.Array, b: jax.Array, c, hvp: Callable, max_kl, cg_iters: int
             ) -> tuple[jax.Array, CPOInfo]:
  """CPO's step (Achiam et al. 2017, Sec. 6.1 and Appendix 10.2): g, b [P], c [] -> [P].

  Solves the linearised problem
    max_x g^T x   s.t.   c + b^T x <= 0,   0.5 x^T H x <= delta,
  with q = g^T H^-1 g (as x_g^T H x_g, x_g = H^-1 g), r = g^T H^-1 b, s = b^T H^-1 b,
  A = q - r^2 / s, B = 2 delta - c^2 / s. Cases (the numbering of Achiam's code and
  OmniSafe):
    4: c < 0 and b^T b <= ZERO_COST_GRAD: no cost gradient, the TRPO step.
    3: c < 0 and B < 0: the whole trust region is feasible, the TRPO step.
    2: c < 0 and B >= 0: the constraint cuts the trust region; the dual solution.
    1: c >= 0 and B >= 0: x = 0 is infeasible but part of the region is feasible; the
       dual solution.
    0: c >= 0 and B < 0: no feasible point in the region; recovery,
       x = -sqrt(2 delta / s) H^-1 b.
  The dual solution. The paper states the theorem for the minimisation min_x g'^T x
  (g' = -g); in terms of our ascent gradient g its r' = -r, so
    x = (1 / lam) H^-1 (g - nu b),   nu = max(lam c + r, 0) / s,
    lam = argmax { f_a(lam_a), f_b(lam_b) },
    lam_a = Proj(sqrt(A / B), L_a),   f_a(lam) = -(A / lam + B lam) / 2 + r c / s,
    lam_b = Proj(sqrt(q / (2 delta)), L_b),   f_b(lam) = -(q / lam + 2 delta lam) / 2,
    L_a = {lam >= 0 : lam c + r > 0},   L_b = {lam >= 0 : lam c + r <= 0}.
  (OmniSafe's cpo.py plugs its ascent gradient into the minimisation form's
  nu = (lam c - r)_+ / s and bounds r / c, which flips r's sign: it takes a step the
  constraint does not allow whenever g^T H^-1 b > 0, and leaves the rest to its line
  search. Achiam's code uses the minimisation form with the loss gradient throughout.)
  """
  x_g, p = solve_both(hvp, g, b, cg_iters)
  q = x_g @ hvp(x_g)
  r = g @ p
  s = b @ p
  s_safe = jnp.maximum(s, _TINY)
  q_safe = jnp.maximum(q, _TINY)
  a_coef = jnp.maximum(q - r**2 / s_safe, 0.0)   # >= 0 by Cauchy-Schwarz
  b_coef = 2.0 * max_kl - c**2 / s_safe
  feasible = c < 0
  case = jnp.where(
      feasible,
      jnp.where(b @ b <= ZERO_COST_GRAD, 4, jnp.where(b_coef < 0, 3, 2)),
      jnp.where(b_coef >= 0, 1, 0)).astype(jnp.int32)

  # The dual solution (cases 1, 2). lam c + r > 0 <=> lam < -r / c (c < 0) or
  # lam > -r / c (c > 0); at c = 0 the sign of r decides alone.
  inf = jnp.inf
  c_nz = jnp.where(feasible, c, jnp.maximum(c, _TINY))
  edge = -r / c_nz
  lo_a, hi_a = jnp.where(feasible, 0.0, jnp.maximum(edge, 0.0)), jnp.where(feasible, edge, inf)
  lo_b, hi_b = jnp.where(feasible, jnp.maximum(edge, 0.0), 0.0), jnp.where(feasible, inf, edge)
  lam_a = jnp.clip(jnp.sqrt(a_coef / jnp.maximum(b_coef, _TINY)), lo_a, hi_a)
  lam_b = jnp.clip(jnp.sqrt(q_safe / (2.0 * max_kl)), lo_b, hi_b)
  lam_a_safe = jnp.maximum(lam_a, _TINY)
  lam_b_safe = jnp.maximum(lam_b, _TINY)
  f_a = -0.5 * (a_coef / lam_a_safe + b_coef * lam_a_safe) + r * c / s_safe
  f_b = -0.5 * (q / lam_b_safe + 2.0 * max_kl * lam_b_safe)
  f_a = jnp.where((lo_a <= hi_a) & (lam_a > 0), f_a, -inf)
  f_b = jnp.where((lo_b <= hi_b) & (lam_b > 0), f_b, -inf)
  lam_dual = jnp.where(f_a >= f_b, lam_a_safe, lam_b_safe)
  nu_dual = jnp.maximum(lam_dual * c + r, 0.0) / s_safe
  step_dual = (x_g - nu_dual * p) / lam_dual

  lam_trpo = jnp.sqrt(q_safe / (2.0 * max_kl))
  step_trpo = _to_edge(x_g, q, max_kl)
  nu_recover = jnp.sqrt(2.0 * max_kl / s_safe)
  step_recover = -nu_recover * p

  dual = (case == 1) | (case == 2)
  step = jnp.where(case >= 3, step_trpo, jnp.where(dual, step_dual, step_recover))
  lam = jnp.where(case >= 3, lam_trpo, jnp.where(dual, lam_dual, 0.0))
  nu = jnp.where(case >= 3, 0.0, jnp.where(dual, nu_dual, nu_recover))
  return step, CPOInfo(case=case, lam=lam, nu=nu, q=q, r=r, s=s)


def pcpo_step(g: jax.Array, b: jax.Array, c, hvp: Callable, max_kl, cg_iters: int
              ) -> tuple[jax.Array, jax.Array]:
  """PCPO's step with the KL projection (Yang et al. 2020, Eq. 6): g, b [P], c [] ->
  (step [P], projected [] bool).

  The TRPO reward step x_r = sqrt(2 delta / q) H^-1 g, then its projection in the H-norm
  on the linearised constraint's half-space {x : c + b^T x <= 0}:
    x = x_r - max(0, (b^T x_r + c) / (b^T H^-1 b)) H^-1 b,
  which lands on c + b^T x = 0 when x_r violates it and is x_r otherwise. With
  b^T H^-1 b ~ 0 (no cost gradient) the projection is skipped.
  """
  x, p = solve_both(hvp, g, b, cg_iters)
  x_r = _to_edge(x, x @ hvp(x), max_kl)
  s = b @ p
  violation = b @ x_r + c
  projected = (violation > 0) & (s > _TINY)
  mu = jnp.where(projected, violation / jnp.maximum(s, _TINY), 0.0)
  return x_r - mu * p, projected


class SearchResult(NamedTuple):
  """frac []: the accepted step fraction beta^j (0 if none); tries [] int32: j + 1, the
  1-based index of the accepted candidate (0 if none); accepted [] bool."""

  frac: jax.Array
  tries: jax.Array
  accepted: jax.Array


def backtracking_line_search(accept: Callable[[jax.Array], jax.Array], steps: int,
                             ratio) -> SearchResult:
  """The first of fracs 1, ratio, ratio^2, ... (at most `steps`) with accept(frac) True.

  A lax.while_loop, so it stops at the first accepted candidate (under vmap it runs
  until every member has stopped; the others' results do not change).
  """

  def cond(carry):
    j, done = carry
    return (j < steps) & ~done

  def body(carry):
    j, _ = carry
    return j + 1, accept(ratio ** j.astype(jnp.float32))

  tries, accepted = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32),
                                                    jnp.zeros((), bool)))
  frac = jnp.where(accepted, ratio ** (tries - 1).astype(jnp.float32), 0.0)
  return SearchResult(frac=frac, tries=jnp.where(accepted, tries, 0), accepted=accepted)


def compute_cost_violation(episode_cost, cost_limit, cost_scale: str, episode_steps: int):
  """c, the linearised constraint's value: (J_c - d) / T ("per_step") or J_c - d
  ("episode"); episode_cost J_c and cost_limit d [] (or broadcastable) -> []."""
  TrustRegionConfig(cost_scale=cost_scale)  # refuses a scale not in COST_SCALES
  violation = episode_cost - cost_limit
  return violation / episode_steps if cost_scale == "per_step" else violation


# --- The learner ---


class StepContext(NamedTuple):
  """What a step rule sees: g, b [P] (b = 0 when the rule ignores cost), c [], hvp."""

  g: jax.Array
  b: jax.Array
  c: jax.Array
  hvp: Callable


def _trpo_rule(ctx: StepContext, tconfig) -> tuple[jax.Array, jax.Array, dict]:
  """-> (step, must_improve [] bool: whether the line search checks the reward
  surrogate, extra metrics)."""
  return trpo_step(ctx.g, ctx.hvp, tconfig.max_kl, tconfig.cg_iters), jnp.ones((), bool), {}


def _cpo_rule(ctx, tconfig):
  step, info = cpo_step(ctx.g, ctx.b, ctx.c, ctx.hvp, tconfig.max_kl, tconfig.cg_iters)
  return step, ctx.c < 0, {"cpo/case": info.case, "cpo/lambda": info.lam,
                           "cpo/nu": info.nu}


def _pcpo_rule(ctx, tconfig):
  step, projected = pcpo_step(ctx.g, ctx.b, ctx.c, ctx.hvp, tconfig.max_kl, tconfig.cg_iters)
  return step, ctx.c < 0, {"pcpo/projected": projected}


def _standardized(samples: base.Samples, lam: jax.Array) -> jax.Array:
  del lam
  return losses.standardize(samples.adv_r)


def _penalized(samples: base.Samples, lam: jax.Array) -> jax.Array:
  return losses.penalized_advantage(samples.adv_r, samples.adv_c, lam)


def make_trust_region_learner(rule: Callable, advantage: Callable, cost_namespace: str | None,
                              rule_metric_keys: tuple[str, ...]) -> Callable:
  """-> make_learner(nets, static_config, episode_steps) -> base.Learner.

  rule(ctx: StepContext, config.learner) -> (step [P], must_improve [] bool, metrics
    keyed by rule_metric_keys): the policy step; with must_improve False (CPO, PCPO when
    c >= 0) the line search drops the reward check.
  advantage(samples, lam) -> [N]: the A of the reward surrogate.
  cost_namespace: for a constrained learner, its metrics' prefix ("cpo"): the cost
    surrogate's gradient b and c (config.learner.cost_scale) are computed, the line
    search checks the cost surrogate, and `<ns>/c`, `<ns>/predicted_cost_change` are
    reported. None: unconstrained (b = 0, c = -1, no cost check).
  """
  constrained = cost_namespace is not None
  cost_metric_keys = ((f"{cost_namespace}/c", f"{cost_namespace}/predicted_cost_change")
                      if constrained else ())

  def make_learner(nets: base.Nets, static_config, episode_steps: int) -> base.Learner:
    del static_config

    def init(key, config):
      return base.init_actor_critic(nets, key, config, policy_optimizer=False)

    def update(lstate, batch, lam, key, config):
      tconfig = config.learner
      samples = batch.samples
      theta_k, unravel = ravel_pytree(lstate.policy_params)
      adv = advantage(samples, lam)
      cost_adv = samples.adv_c - samples.adv_c.mean()

      def policy_at(theta):
        return nets.policy.apply(unravel(theta), samples.obs)

      def surrogate(theta, weights):
        """mean(rho weights) under the policy theta: []."""
        loc, scale = policy_at(theta)
        log_prob = losses.gaussian_log_prob(samples.action, loc, scale)
        return jnp.mean(jnp.exp(log_prob - samples.log_prob) * weights)

      every = tconfig.fvp_sample_freq
      fisher = jax.tree.map(lambda x: x[::every], (samples.obs, samples.loc, samples.scale))

      def mean_kl(theta):
        """mean_s KL(pi_k || pi_theta) over the Fisher's samples: []."""
        obs, loc_k, scale_k = fisher
        loc, scale = nets.policy.apply(unravel(theta), obs)
        return losses.gaussian_kl(loc_k, scale_k, loc, scale).mean()

      def evaluate(theta):
        """-> (L_r, L_c, mean KL(pi_k || pi_theta), mean entropy), each []."""
        loc, scale = policy_at(theta)
        ratio = jnp.exp(losses.gaussian_log_prob(samples.action, loc, scale)
                        - samples.log_prob)
        kl = losses.gaussian_kl(samples.loc, samples.scale, loc, scale).mean()
        return (jnp.mean(ratio * adv), jnp.mean(ratio * cost_adv), kl,
                losses.gaussian_entropy(scale).mean())

      # Linearised once: each of the CG's products is then one tangent pass.
      _, kl_hessian = jax.linearize(jax.grad(mean_kl), theta_k)

      def hvp(v):
        return kl_hessian(v) + tconfig.cg_damping * v

      g = jax.grad(surrogate)(theta_k, adv)
      if constrained:
        b = jax.grad(surrogate)(theta_k, cost_adv)
        c = compute_cost_violation(batch.episode_cost, config.cost_limit,
                                   tconfig.cost_scale, episode_steps)
      else:
        b, c = jnp.zeros_like(g), -jnp.ones((), jnp.float32)
      step, must_improve, extra = rule(StepContext(g=g, b=b, c=c, hvp=hvp), tconfig)

      reward_before, cost_before, _, _ = evaluate(theta_k)
      cost_allowance = jnp.maximum(-c, 0.0)

      def accept(frac):
        reward, cost, kl, _ = evaluate(theta_k + frac * step)
        ok = jnp.isfinite(reward) & jnp.isfinite(kl) & (kl <= tconfig.max_kl)
        ok &= (reward > reward_before) | ~must_improve
        if constrained:
          ok &= jnp.isfinite(cost) & (cost - cost_before <= cost_allowance)
        return ok

      search = backtracking_line_search(accept, tconfig.line_search_steps,
                                        tconfig.backtrack_ratio)
      theta = jnp.where(search.accepted, theta_k + search.frac * step, theta_k)
      reward, _, kl, entropy = evaluate(theta)
      if constrained:
        extra = {**extra, cost_metric_keys[0]: c,
                 cost_metric_keys[1]: search.frac * (b @ step)}

      lstate = lstate.replace(policy_params=unravel(theta))
      lstate, value_loss, cost_value_loss = base.fit_critics(nets, lstate, samples, key,
                                                             config)
      metrics = {"loss/policy": -reward, "loss/value_reward": value_loss,
                 "loss/value_cost": cost_value_loss, "policy/kl": kl,
                 "policy/entropy": entropy,
                 "policy/sgd_steps": search.accepted.astype(jnp.float32),
                 "trust_region/search_steps": search.tries, **extra}
      return lstate, {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}

    return base.Learner(init=init, update=update, policy=base.actor_critic_policy(nets),
                        values=base.actor_critic_values(nets),
                        extra_metric_keys=("trust_region/search_steps",) + rule_metric_keys
                        + cost_metric_keys)

  return make_learner


make_trpo = make_trust_region_learner(_trpo_rule, _standardized, None, ())
make_trpo_lag = make_trust_region_learner(_trpo_rule, _penalized, None, ())
make_cpo = make_trust_region_learner(
    _cpo_rule, _standardized, "cpo", ("cpo/case", "cpo/lambda", "cpo/nu"))
make_pcpo = make_trust_region_learner(_pcpo_rule, _standardized, "pcpo", ("pcpo/projected",))
