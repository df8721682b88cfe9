"""Lagrange multipliers: each is three pure functions over a pytree state.

  m = make_lagrange(obs_size, config, episode_steps)
  mstate = m.init(key, config)
  lam = m.value(mstate, obs[N, O], config)            # [] (scalar, PID) or [N] (state-wise)
  mstate, metrics = m.update(mstate, batch, key, config)

`config` is the (possibly traced) TrainConfig carried in TrainState; a multiplier reads its
own family's settings from `config.multiplier` (NoMultiplierConfig, LagrangeConfig,
PIDConfig, StatewiseConfig, StatewiseAutoConfig, FACConfig below) and static fields from
the config given to the factory. The state lives in TrainState, so it is checkpointed,
vmapped and resumed with everything else; J_c comes from the rollout batch.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxcrl import networks
from jaxcrl.learners.base import adam_step, make_optimizer
from jaxcrl.config import TrainConfig, static


# The smallest lambda(s) of the self-tuning state-wise multiplier: its log-space steps
# cannot reach 0, and at 1e-3 reward per unit of cost the penalty is negligible.
LAMBDA_FLOOR = 1e-3
# EMA factor per update of its episode excess E_bar: about 4 episodes end per update on
# Safety-Gym's batches, so one update's E is noisy; 0.9 averages about 10 updates.
EXCESS_EMA = 0.9


@struct.dataclass
class NoMultiplierConfig:
  """Algorithms without a multiplier (lambda = 0): no settings."""

  CHECKS = {}


@struct.dataclass
class LagrangeConfig:
  """Scalar Lagrange multiplier (ppo_lag and the other Lagrangian algorithms).

  lambda_init: lambda at the start (>= 0).
  lambda_max: upper bound of lambda (>= 0). Every lambda is in reward per unit of cost
    (see losses.penalized_advantage); on PointGoal1 ppo_lag's lambda settled at about 0.5.
  lagrange_lr: beta in lam <- clip(lam + beta (J_c - d), 0, lambda_max) (>= 0); the
    default is the rate measured on PointGoal1 (docs).
  """

  lambda_init: float = 0.0
  lambda_max: float = 100.0
  lagrange_lr: float = 5e-5

  CHECKS = {"lambda_init": (">= 0", lambda v: v >= 0), "lambda_max": (">= 0", lambda v: v >= 0),
            "lagrange_lr": (">= 0", lambda v: v >= 0)}


@struct.dataclass
class PIDConfig:
  """PID Lagrangian (ppo_pid).

  lambda_init, lambda_max: lambda at the start and its upper bound (>= 0).
  pid_kp, pid_ki, pid_kd: proportional, integral and derivative gains (the earlier gains
    rescaled to lambda's reward-per-cost units; not yet measured on PointGoal1).
  pid_alpha_p, pid_alpha_d: EMA factors of the P and D terms, in [0, 1).
  pid_delay: updates between the derivative's two cost samples (static).
  """

  lambda_init: float = 0.0
  lambda_max: float = 100.0
  pid_kp: float = 5e-3
  pid_ki: float = 5e-5
  pid_kd: float = 5e-4
  pid_alpha_p: float = 0.95
  pid_alpha_d: float = 0.95
  pid_delay: int = static(10)

  CHECKS = {"lambda_init": (">= 0", lambda v: v >= 0), "lambda_max": (">= 0", lambda v: v >= 0),
            "pid_alpha_p": ("in [0, 1)", lambda v: 0 <= v < 1),
            "pid_alpha_d": ("in [0, 1)", lambda v: 0 <= v < 1),
            "pid_delay": ("a positive integer", lambda v: v >= 1 and float(v).is_integer())}


@struct.dataclass
class StatewiseConfig:
  """State-wise multiplier lambda_phi(s) (ppo_statewise).

  statewise_lr: Adam learning rate of the lambda(s) net, one ascent step per update (>= 0).
  statewise_lambda_init: lambda(s) in every state at initialisation (> 0: softplus head).
  lambda_max: upper bound of lambda(s) (>= 0).
  statewise_threshold: w in V_c(s) <= w; NaN or negative -> w = d / T / (1 - cost_gamma)
    with T = episode_length / action_repeat agent steps (`statewise_threshold`).
  multiplier_hidden: hidden sizes of the lambda(s) MLP (static).
  """

  statewise_lr: float = 3e-4
  statewise_lambda_init: float = 0.01
  lambda_max: float = 100.0
  statewise_threshold: float = float("nan")
  multiplier_hidden: tuple = static((64, 64))

  CHECKS = {"statewise_lr": (">= 0", lambda v: v >= 0),
            "statewise_lambda_init": ("> 0", lambda v: v > 0),
            "lambda_max": (">= 0", lambda v: v >= 0)}


@struct.dataclass
class StatewiseAutoConfig:
  """Self-tuning state-wise multiplier lambda(s) (ppo_statewise_auto; `make_statewise_auto`).

  statewise_lr: Adam learning rate of the shape net f(s)'s regression onto its target
    (>= 0).
  statewise_lambda_init: lambda(s) in every state at initialisation (> 0).
  lambda_max: upper bound of lambda(s) (> LAMBDA_FLOOR).
  statewise_step: eta, the step per update of the level b (times the episode excess)
    and of the shape's target f* (times the state's excess), both in log lambda (>= 0):
    lambda moves by a factor up to exp(eta) per update, whatever its scale.
  statewise_threshold: w in V_c(s) <= w, which selects the states whose lambda rises
    relative to the others; NaN or negative -> derived from d (`episode_threshold`:
    d / T / (1 - cost_gamma) for long episodes, about d for short ones).
  statewise_kp: k_p, the proportional gain on the smoothed episode excess (>= 0): every
    lambda(s) is multiplied by exp(k_p E_bar), E_bar in [-1, 1].
  statewise_shape_max: F, the bound on the shape |f(s)| in log lambda (>= 0; NaN or
    larger than log(lambda_max / LAMBDA_FLOOR) -> that span, no bound of its own): a
    state's lambda is at most exp(F) times the level's and at least exp(-F) times it.
    0 makes lambda the same in every state (a scalar multiplier, PI-controlled in log
    space).
  regression_steps: Adam steps of the regression per update (static).
  multiplier_hidden: hidden sizes of the lambda(s) MLP (static).
  """

  statewise_lr: float = 1e-3
  statewise_lambda_init: float = 0.01
  lambda_max: float = 10.0
  statewise_step: float = 0.02
  statewise_threshold: float = float("nan")
  statewise_kp: float = 2.0
  statewise_shape_max: float = 1.0
  regression_steps: int = static(4)
  multiplier_hidden: tuple = static((64, 64))

  CHECKS = {"statewise_lr": (">= 0", lambda v: v >= 0),
            "statewise_lambda_init": ("> 0", lambda v: v > 0),
            "lambda_max": (f"> {LAMBDA_FLOOR:g}", lambda v: v > LAMBDA_FLOOR),
            "statewise_step": (">= 0", lambda v: v >= 0),
            "statewise_kp": (">= 0", lambda v: v >= 0),
            "statewise_shape_max": (">= 0 or NaN", lambda v: (v != v) | (v >= 0)),
            "regression_steps": ("a positive integer",
                                 lambda v: v >= 1 and float(v).is_integer())}


@struct.dataclass
class FACConfig:
  """FAC's state-wise multiplier lambda(s) (fac; `make_fac`): gradient ascent of a net on
  mean_s lambda(s) (Q_c(s, pi(s)) - w), with the stabilisers of Ma et al. 2021's code.

  fac_lr: Adam learning rate of the lambda(s) net at its first ascent step (>= 0).
  fac_lr_end: its rate from fac_decay_steps ascent steps on, reached linearly (>= 0): the
    decaying multiplier rate (FAC: 5e-6 to 1e-6 over 150k gradient steps).
  fac_decay_steps: ascent steps over which the rate decays (> 0).
  fac_output_bias: the net's output bias at initialisation (< 0, at least -13), so
    lambda(s) = softplus(bias) ~ 0 everywhere and the penalty grows only as the ascent
    lifts it (FAC: -10).
  fac_interval: updates between ascent steps (static): delayed ascent. Each update takes
    utd_ratio x unroll_length gradient steps, so the default 1 ascends once per that many
    primal steps (FAC: once per 12).
  lambda_max: upper bound of lambda(s) (>= 0).
  statewise_threshold: w in Q_c(s, pi(s)) <= w; NaN or negative -> derived from d
    (`episode_threshold`: the discounted cost-to-go of spending d evenly over an episode).
  multiplier_hidden: hidden sizes of the lambda(s) MLP (static).
  """

  fac_lr: float = 1e-3
  fac_lr_end: float = 2e-4
  fac_decay_steps: float = 10_000.0
  fac_output_bias: float = -5.0
  fac_interval: int = static(1)
  lambda_max: float = 100.0
  statewise_threshold: float = float("nan")
  multiplier_hidden: tuple = static((64, 64))

  CHECKS = {"fac_lr": (">= 0", lambda v: v >= 0), "fac_lr_end": (">= 0", lambda v: v >= 0),
            "fac_decay_steps": ("> 0", lambda v: v > 0),
            "fac_output_bias": ("in [-13, 0)", lambda v: -13 <= v < 0),
            "fac_interval": ("a positive integer", lambda v: v >= 1 and float(v).is_integer()),
            "lambda_max": (">= 0", lambda v: v >= 0)}


class MultiplierBatch(NamedTuple):
  """What a multiplier update sees from one rollout.

  episode_cost: [] J_c estimate: mean cost of episodes completed in the batch, or the
    batch cost rate x episode length when none completed.
  obs: [N, O] normalised observations of the N = T * B visited states (the off-policy
    driver: N states sampled from the replay buffer).
  cost_target: [N] discounted cost-to-go estimate V_c_hat(s): the GAE lambda-return (the
    off-policy driver: the cost critic's Q_c(s, a), a ~ pi(s)).
  """

  episode_cost: jax.Array
  obs: jax.Array
  cost_target: jax.Array


class Multiplier(NamedTuple):
  """init(key, config) -> mstate; value(mstate, obs[N, O], config) -> [] or [N];
  update(mstate, batch, key, config) -> (mstate, metrics); threshold(mstate, config) -> []
  the per-state budget w the trainer's constraint/* metrics compare V_c_hat(s) with."""

  init: Callable[..., Any]
  value: Callable[..., jax.Array]
  update: Callable[..., tuple[Any, dict]]
  threshold: Callable[..., jax.Array]


def _given_or(config: TrainConfig, derived: jax.Array) -> jax.Array:
  """config.multiplier.statewise_threshold, or `derived` when it is NaN or < 0 or the
  algorithm has no such setting."""
  given = jnp.asarray(getattr(config.multiplier, "statewise_threshold", jnp.nan), jnp.float32)
  return jnp.where(jnp.isnan(given) | (given < 0), derived, given)


def statewise_threshold(config: TrainConfig, episode_steps: int) -> jax.Array:
  """w of ppo_statewise (and of the constraint/* metrics of algorithms without a w):
  config.multiplier.statewise_threshold, or d / T / (1 - cost_gamma) when it is NaN or < 0
  or the algorithm has no such setting.

  d / T is the per-step cost budget (T agent steps per episode); 1 / (1 - cost_gamma)
  turns a constant per-step rate into the discounted cost-to-go V_c(s) it produces in an
  endless episode. (Kept as it was so ppo_statewise's runs resume unchanged; for episodes
  not much longer than 1 / (1 - cost_gamma), `episode_threshold` is the exact budget.)
  """
  return _given_or(config, config.cost_limit / episode_steps / (1.0 - config.cost_gamma))


def episode_threshold(config: TrainConfig, episode_steps: int) -> jax.Array:
  """w of ppo_statewise_auto: config.multiplier.statewise_threshold, or
  (d / T) (1 - cost_gamma^T) / (1 - cost_gamma) when it is NaN or < 0: the discounted
  cost-to-go, from an episode's first state, of a constant per-step cost d / T that
  spends exactly d in the episode's T agent steps. For T >> 1 / (1 - cost_gamma), as
  Safety-Gym's T = 1000 at 0.99, that is `statewise_threshold`'s d / T / (1 - cost_gamma)
  (2.4999 against 2.5); for short episodes it is about d (ProbeTwoRegion, d = 3, T = 20:
  2.72, where the endless-episode budget, 15, lies above every state's cost-to-go).
  """
  horizon = (1.0 - config.cost_gamma ** episode_steps) / (1.0 - config.cost_gamma)
  return _given_or(config, config.cost_limit / episode_steps * horizon)


def fixed_threshold(episode_steps: int, derive: Callable = statewise_threshold
                    ) -> Callable[..., jax.Array]:
  """The `threshold` of a multiplier whose w does not move: `derive(config, T)`."""

  def threshold(mstate, config):
    del mstate
    return derive(config, episode_steps)

  return threshold


def scalar_value(mstate, obs, config) -> jax.Array:
  """The `value` of every scalar multiplier (none, Lagrange, PID): mstate.lam, shape []."""
  del obs, config
  return mstate.lam


@struct.dataclass
class LagrangeState:
  lam: jax.Array  # []


def make_none(obs_size: int, config: TrainConfig, episode_steps: int) -> Multiplier:
  """No multiplier (ppo, trpo, cpo, ...): lambda is always 0."""
  del obs_size, config

  def init(key, config):
    del key, config
    return LagrangeState(lam=jnp.zeros((), jnp.float32))

  def update(mstate, batch, key, config):
    del batch, key, config
    return mstate, {"loss/multiplier": jnp.zeros((), jnp.float32)}

  return Multiplier(init, scalar_value, update, fixed_threshold(episode_steps))


def make_lagrange(obs_size: int, config: TrainConfig, episode_steps: int) -> Multiplier:
  """lam <- clip(lam + lagrange_lr (J_c - d), 0, lambda_max): projected gradient ascent."""
  del obs_size, config

  def init(key, config):
    del key
    return LagrangeState(lam=jnp.asarray(config.multiplier.lambda_init, jnp.float32))

  def update(mstate, batch, key, config):
    del key
    excess = batch.episode_cost - config.cost_limit
    lam = jnp.clip(mstate.lam + config.multiplier.lagrange_lr * excess, 0.0, config.multiplier.lambda_max)
    return LagrangeState(lam=lam), {"loss/multiplier": -mstate.lam * excess}

  return Multiplier(init, scalar_value, update, fixed_threshold(episode_steps))


@struct.dataclass
class PIDState:
  """lam, integral, p_ema (EMA of J_c - d), d_ema (EMA of J_c): []; d_history:
  [pid_delay] ring buffer of past d_ema values; index: [] int32, its oldest slot."""

  lam: jax.Array
  integral: jax.Array
  p_ema: jax.Array
  d_ema: jax.Array
  d_history: jax.Array
  index: jax.Array


def make_pid(obs_size: int, config: TrainConfig, episode_steps: int) -> Multiplier:
  """PID Lagrangian (Stooke, Achiam & Abbeel 2020, Alg. 2; OmniSafe's PIDLagrangian).

    delta = J_c - d
    I     <- max(0, I + Ki delta)
    P     <- a_p P + (1 - a_p) delta               (EMA for the proportional term)
    C     <- a_d C + (1 - a_d) J_c                 (EMA for the derivative term)
    D      = max(0, C - C[pid_delay updates ago])  (only rising cost pushes lambda up)
    lam    = clip(Kp P + I + Kd D, 0, lambda_max)
  The delay buffer starts at zeros, as OmniSafe's deque starts at [0].
  """
  del obs_size
  delay = config.multiplier.pid_delay

  def init(key, config):
    del key
    zero = jnp.zeros((), jnp.float32)
    return PIDState(lam=jnp.asarray(config.multiplier.lambda_init, jnp.float32), integral=zero,
                    p_ema=zero, d_ema=zero, d_history=jnp.zeros((delay,), jnp.float32),
                    index=jnp.zeros((), jnp.int32))

  def update(mstate, batch, key, config):
    del key
    delta = batch.episode_cost - config.cost_limit
    integral = jnp.maximum(0.0, mstate.integral + config.multiplier.pid_ki * delta)
    p_ema = config.multiplier.pid_alpha_p * mstate.p_ema + (1.0 - config.multiplier.pid_alpha_p) * delta
    d_ema = (config.multiplier.pid_alpha_d * mstate.d_ema
             + (1.0 - config.multiplier.pid_alpha_d) * batch.episode_cost)
    derivative = jnp.maximum(0.0, d_ema - mstate.d_history[mstate.index])
    lam = jnp.clip(config.multiplier.pid_kp * p_ema + integral + config.multiplier.pid_kd * derivative,
                   0.0, config.multiplier.lambda_max)
    new = PIDState(lam=lam, integral=integral, p_ema=p_ema, d_ema=d_ema,
                   d_history=mstate.d_history.at[mstate.index].set(d_ema),
                   index=(mstate.index + 1) % delay)
    return new, {"loss/multiplier": -mstate.lam * delta}

  return Multiplier(init, scalar_value, update, fixed_threshold(episode_steps))


def _ascent_loss(net: networks.Network, batch: MultiplierBatch, w: jax.Array,
                 lambda_max: jax.Array) -> Callable[[Any], jax.Array]:
  """params -> -mean_s lambda_phi(s) (V_c_hat(s) - w), minimised so lambda ascends where the
  cost target exceeds w; a violating sample whose lambda is at lambda_max contributes no
  gradient (the bound is active), a satisfied one still pulls lambda down."""
  excess = jax.lax.stop_gradient(batch.cost_target) - w

  def loss_fn(params):
    lam = net.apply(params, batch.obs)
    active = (lam >= lambda_max) & (excess > 0)
    return -jnp.mean(lam * jnp.where(active, 0.0, excess))

  return loss_fn


@struct.dataclass
class StatewiseState:
  params: Any
  opt_state: Any


def make_statewise(obs_size: int, config: TrainConfig, episode_steps: int) -> Multiplier:
  """State-wise multiplier lambda_phi(s) for the constraints V_c(s) <= w in every state.

  update: one full-batch Adam step of gradient ASCENT on
    L(phi) = mean_s lambda_phi(s) (V_c_hat(s) - w),
  once per PPO update like the scalar multipliers. (A pass of num_minibatches steps
  moves lambda about that many times faster at one learning rate, but cost ~10% of PPO's
  throughput in experiments/bench_train.py; raise statewise_lr instead.)
  V_c_hat(s) is the stop-gradiented cost GAE lambda-return of the current batch, not the
  cost critic's V_c(s): the gradient is linear in V_c_hat, so its zero-mean noise averages
  out over samples and steps, while the critic lags the current policy by an update and is
  biased towards its initialisation early on. Where lambda_phi(s) has reached
  lambda_max, a violating sample contributes no gradient (the bound is active) but a
  satisfied one still pulls lambda down, so the bound never traps the net.
  value: min(lambda_phi(s), lambda_max) [N], stop-gradiented by the trainer.
  """
  net = networks.make_multiplier(obs_size, config.multiplier.multiplier_hidden,
                                 config.activation)

  def optimizer(config):
    return make_optimizer(config.multiplier.statewise_lr, config.max_grad_norm)

  def init(key, config):
    params = net.init(key, config.multiplier.statewise_lambda_init)
    return StatewiseState(params=params, opt_state=optimizer(config).init(params))

  def value(mstate, obs, config):
    return jnp.minimum(net.apply(mstate.params, obs), config.multiplier.lambda_max)

  def update(mstate, batch, key, config):
    del key
    w = statewise_threshold(config, episode_steps)
    loss, grads = jax.value_and_grad(_ascent_loss(net, batch, w, config.multiplier.lambda_max))(
        mstate.params)
    opt = optimizer(config)
    updates, opt_state = opt.update(grads, mstate.opt_state, mstate.params)
    params = optax.apply_updates(mstate.params, updates)
    return StatewiseState(params, opt_state), {"loss/multiplier": loss}

  return Multiplier(init, value, update, fixed_threshold(episode_steps))


@struct.dataclass
class StatewiseAutoState:
  """params, opt_state: the shape net f_phi(s) and its Adam state; level: [] b, the log
  multiplier of a typical state; excess_ema: [] E_bar, the EMA of the episode excess E."""

  params: Any
  opt_state: Any
  level: jax.Array
  excess_ema: jax.Array


def make_statewise_auto(obs_size: int, config: TrainConfig, episode_steps: int) -> Multiplier:
  """Self-tuning state-wise multiplier lambda(s) (ppo_statewise_auto).

    log lambda(s) = clip(b + clip(f_phi(s), -F, F) + statewise_kp E_bar,
                         log LAMBDA_FLOOR, log lambda_max)

    E      = clip((J_c - d) / d, -1, 1)              relative episode excess
    b     <- clip(b + statewise_step E, log LAMBDA_FLOOR - max_s f,
                 log lambda_max - min_{s: e(s) > 0} f)                   the level
    E_bar <- EXCESS_EMA E_bar + (1 - EXCESS_EMA) E                      the P term
    e(s)   = clip((V_c_hat(s) - w) / w, -1, 1)       relative state excess
    f*(s)  = clip(f_old(s) + statewise_step (e(s) - mean_batch e), -F, F),
             F = min(statewise_shape_max, log(lambda_max / LAMBDA_FLOOR))  the shape's target
    phi   <- regression_steps Adam steps on 0.5 mean_s (f_phi(s) - f*(s))^2

  Why not ppo_statewise's update: its lambda(s) takes Adam steps of gradient ascent on
  mean_s lambda(s) (V_c_hat(s) - w), so how far lambda moves per update is set by the net's
  learning rate and by lambda's own scale, and it keeps rising wherever V_c_hat(s) > w
  however far below d the episode cost already is; on PointGoal1 it collapsed the return
  at lambda_max 100 and needed a task-specific bound (docs/algorithms.md). Here:
  - The user's constraint, J_c <= d, sets the level: b integrates the episode excess
    alone, so it is stationary only where J_c = d on average, as ppo_lag's lambda. The
    per-state constraints V_c(s) <= w set only the shape: f rises in the states over w
    and falls in the others, centred over the batch, so it redistributes the penalty and
    cannot bias the level. w therefore only has to pick out where cost comes from, and
    the derived w (`episode_threshold`) does. Measured on PointGoal1 (docs/statewise.md):
    with each state's own excess as its dual step, about 90% of states stayed over the
    derived w long after J_c had fallen to 1.5 d, lambda wound up to its bound and the
    return collapsed; an outer loop moving w by the episode excess oscillated with it;
    and gating the violating states' rise by E but letting the safe states fall freely
    held J_c at about 1.3 d, because the net couples the two.
  - Multiplicative (log-space) steps are scale-free: lambda moves by a factor
    exp(statewise_step) per update whether it is 1e-3 or 10, so an initial value off by
    1000x costs log(1000) / statewise_step updates, and the net's learning rate only sets
    how closely f tracks its target (b moves exactly).
  - The P term damps the integral's overshoot: when J_c falls under d the penalty drops
    at once by exp(statewise_kp E_bar) instead of waiting for b to unwind (PI control in
    log space, as the PID Lagrangian adds P to the scalar one). E_bar, not E: about four
    episodes end per update on Safety-Gym's batches.
  - The regression's MSE learns the conditional mean of the noisy per-sample targets
    (V_c_hat is the batch's GAE cost return), so each state's shape step is the average
    excess of the samples the net cannot tell apart from it (the ALaM idea: a net that
    regresses onto a dual target instead of ascending the dual itself).
  - lambda(s) is in reward per unit of cost like every multiplier here; ppo_statewise_auto's
    objective (losses.statewise_advantage) divides each sample by its own 1 + lambda(s),
    so a state at lambda_max optimises -A_c without drowning out the reward advantage of
    the others.
  value: lambda(s) above [N]. threshold: w (fixed; `episode_threshold`).
  """
  net = networks.make_multiplier(obs_size, config.multiplier.multiplier_hidden,
                                 config.activation, link="log")
  steps = config.multiplier.regression_steps
  log_floor = float(jnp.log(LAMBDA_FLOOR))
  threshold = fixed_threshold(episode_steps, episode_threshold)

  def optimizer(config):
    return make_optimizer(config.multiplier.statewise_lr, config.max_grad_norm)

  def init(key, config):
    params = net.init(key, 1.0)  # log link: f = log 1 = 0 in every state
    level = jnp.log(jnp.asarray(config.multiplier.statewise_lambda_init, jnp.float32))
    return StatewiseAutoState(params=params, opt_state=optimizer(config).init(params),
                              level=level, excess_ema=jnp.zeros((), jnp.float32))

  def shape_bound(config):
    """F [] = min(statewise_shape_max, log(lambda_max / LAMBDA_FLOOR)); NaN -> the span."""
    mc = config.multiplier
    span = jnp.log(mc.lambda_max) - log_floor
    return jnp.where(jnp.isnan(mc.statewise_shape_max), span,
                     jnp.minimum(mc.statewise_shape_max, span))

  def shape_of(params, obs, config):
    """f(s) [N], the net's output within +-F."""
    bound = shape_bound(config)
    return jnp.clip(net.apply(params, obs), -bound, bound)

  def value(mstate, obs, config):
    mc = config.multiplier
    z = mstate.level + shape_of(mstate.params, obs, config) + mc.statewise_kp * mstate.excess_ema
    return jnp.exp(jnp.clip(z, log_floor, jnp.log(mc.lambda_max)))

  def update(mstate, batch, key, config):
    del key
    mc = config.multiplier
    log_max = jnp.log(mc.lambda_max)
    limit = jnp.maximum(config.cost_limit, 1e-6)
    episodic = jnp.clip((batch.episode_cost - config.cost_limit) / limit, -1.0, 1.0)
    w = jnp.maximum(threshold(mstate, config), 1e-6)
    excess = jnp.clip((batch.cost_target - w) / w, -1.0, 1.0)
    shape = shape_of(mstate.params, batch.obs, config)
    # Anti-windup: b stops rising once every state over w (every state, if none is) is at
    # lambda_max, and stops falling once every state is at the floor; beyond, its steps
    # change no lambda that matters and would only have to be unwound.
    over = excess > 0
    lowest = jnp.where(over.any(), jnp.min(jnp.where(over, shape, jnp.inf)), shape.min())
    level = jnp.clip(mstate.level + mc.statewise_step * episodic,
                     log_floor - shape.max(), log_max - lowest)
    excess_ema = EXCESS_EMA * mstate.excess_ema + (1.0 - EXCESS_EMA) * episodic

    bound = shape_bound(config)
    # A constant of the regression: computed from the old parameters, outside loss_fn.
    target = jnp.clip(shape + mc.statewise_step * (excess - excess.mean()), -bound, bound)

    def loss_fn(params):
      return 0.5 * jnp.mean((net.apply(params, batch.obs) - target) ** 2)

    def step(carry, _):
      params, opt_state = carry
      loss, grads = jax.value_and_grad(loss_fn)(params)
      params, opt_state = adam_step(params, opt_state, grads, mc.statewise_lr,
                                    config.max_grad_norm)
      return (params, opt_state), loss

    (params, opt_state), losses_ = jax.lax.scan(step, (mstate.params, mstate.opt_state),
                                                None, length=steps)
    new = StatewiseAutoState(params=params, opt_state=opt_state, level=level,
                             excess_ema=excess_ema)
    return new, {"loss/multiplier": losses_[0]}

  return Multiplier(init, value, update, threshold)


@struct.dataclass
class FACState:
  """params, opt_state: the lambda(s) net and its Adam state; calls: [] int32, updates
  seen (the delayed ascent's clock)."""

  params: Any
  opt_state: Any
  calls: jax.Array


def make_fac(obs_size: int, config: TrainConfig, episode_steps: int) -> Multiplier:
  """FAC's state-wise multiplier lambda_phi(s) for Q_c(s, pi(s)) <= w in every state
  (Ma et al. 2021, "Feasible Actor-Critic"), as its code trains it.

  update: `make_statewise`'s ascent step, Adam on -mean_s lambda_phi(s) (V_c_hat(s) - w)
  (V_c_hat: the off-policy driver's Q_c(s, a ~ pi(s)) on replay states; FAC's code uses
  the replay action instead), with FAC's three stabilisers:
    delayed ascent: the n-th call (n = 0, 1, ...) steps only if n % fac_interval == 0;
      the others leave phi and Adam untouched (the driver's SACConfig.multiplier_delay
      holds the first calls back, FAC's delayed start);
    decaying rate: the k-th ascent step uses fac_lr + (fac_lr_end - fac_lr) min(k /
      fac_decay_steps, 1);
    negative output bias: phi starts with lambda_phi(s) = softplus(fac_output_bias) in
      every state (the head's kernel at zero, its bias at fac_output_bias), so the actor is
      barely penalised until the ascent has lifted lambda where the critic sees violation.
  value: min(lambda_phi(s), lambda_max) [N]. threshold: w (`episode_threshold`).
  """
  net = networks.make_multiplier(obs_size, config.multiplier.multiplier_hidden,
                                 config.activation)
  interval = config.multiplier.fac_interval
  threshold = fixed_threshold(episode_steps, episode_threshold)

  def init(key, config):
    params = net.init(key, jax.nn.softplus(
        jnp.asarray(config.multiplier.fac_output_bias, jnp.float32)))
    return FACState(params=params, opt_state=make_optimizer(
        config.multiplier.fac_lr, config.max_grad_norm).init(params),
                    calls=jnp.zeros((), jnp.int32))

  def value(mstate, obs, config):
    return jnp.minimum(net.apply(mstate.params, obs), config.multiplier.lambda_max)

  def update(mstate, batch, key, config):
    del key
    mc = config.multiplier
    ascend = mstate.calls % interval == 0
    progress = jnp.minimum((mstate.calls // interval) / mc.fac_decay_steps, 1.0)
    lr = mc.fac_lr + (mc.fac_lr_end - mc.fac_lr) * progress
    loss, grads = jax.value_and_grad(_ascent_loss(net, batch, threshold(mstate, config),
                                                  mc.lambda_max))(mstate.params)
    params, opt_state = adam_step(mstate.params, mstate.opt_state, grads, lr,
                                  config.max_grad_norm)
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(ascend, n, o), new, old)
    new = FACState(params=keep(params, mstate.params),
                   opt_state=keep(opt_state, mstate.opt_state), calls=mstate.calls + 1)
    return new, {"loss/multiplier": loss}

  return Multiplier(init, value, update, threshold)
