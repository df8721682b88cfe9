"""Lagrange multipliers: each is three pure functions over a pytree state.

  m = make_lagrange(obs_size, config, episode_steps)
  mstate = m.init(key, config)
  lam = m.value(mstate, obs[N, O], config)            # [] (scalar, PID) or [N] (state-wise)
  mstate, metrics = m.update(mstate, batch, key, config)

`config` is the (possibly traced) TrainConfig carried in TrainState; a multiplier reads its
own family's settings from `config.multiplier` (NoMultiplierConfig, LagrangeConfig,
PIDConfig, StatewiseConfig below) and static fields from the config given to the factory. The state lives in TrainState, so it is checkpointed,
vmapped and resumed with everything else; J_c comes from the rollout batch.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxcrl import networks
from jaxcrl.learners.base import make_optimizer
from jaxcrl.config import TrainConfig, static


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
    with T = episode_length / action_repeat agent steps.
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


class MultiplierBatch(NamedTuple):
  """What a multiplier update sees from one rollout.

  episode_cost: [] J_c estimate: mean cost of episodes completed in the batch, or the
    batch cost rate x episode length when none completed.
  obs: [N, O] normalised observations of the N = T * B visited states.
  cost_target: [N] discounted cost-to-go estimate V_c_hat(s) (GAE lambda-return).
  """

  episode_cost: jax.Array
  obs: jax.Array
  cost_target: jax.Array


class Multiplier(NamedTuple):
  init: Callable[..., Any]
  value: Callable[..., jax.Array]
  update: Callable[..., tuple[Any, dict]]


def statewise_threshold(config: TrainConfig, episode_steps: int) -> jax.Array:
  """w: config.multiplier.statewise_threshold (state-wise algorithms only), or
  d / T / (1 - cost_gamma) when it is NaN or < 0 or the algorithm has no such setting.

  d / T is the per-step cost budget (T agent steps per episode); 1 / (1 - cost_gamma)
  turns a constant per-step rate into the discounted cost-to-go V_c(s) it produces.
  """
  given = jnp.asarray(getattr(config.multiplier, "statewise_threshold", jnp.nan), jnp.float32)
  derived = config.cost_limit / episode_steps / (1.0 - config.cost_gamma)
  return jnp.where(jnp.isnan(given) | (given < 0), derived, given)


def scalar_value(mstate, obs, config) -> jax.Array:
  """The `value` of every scalar multiplier (none, Lagrange, PID): mstate.lam, shape []."""
  del obs, config
  return mstate.lam


@struct.dataclass
class LagrangeState:
  lam: jax.Array  # []


def make_none(obs_size: int, config: TrainConfig, episode_steps: int) -> Multiplier:
  """No multiplier (ppo, trpo, cpo, ...): lambda is always 0."""
  del obs_size, config, episode_steps

  def init(key, config):
    del key, config
    return LagrangeState(lam=jnp.zeros((), jnp.float32))

  def update(mstate, batch, key, config):
    del batch, key, config
    return mstate, {"loss/multiplier": jnp.zeros((), jnp.float32)}

  return Multiplier(init, scalar_value, update)


def make_lagrange(obs_size: int, config: TrainConfig, episode_steps: int) -> Multiplier:
  """lam <- clip(lam + lagrange_lr (J_c - d), 0, lambda_max): projected gradient ascent."""
  del obs_size, config, episode_steps

  def init(key, config):
    del key
    return LagrangeState(lam=jnp.asarray(config.multiplier.lambda_init, jnp.float32))

  def update(mstate, batch, key, config):
    del key
    excess = batch.episode_cost - config.cost_limit
    lam = jnp.clip(mstate.lam + config.multiplier.lagrange_lr * excess, 0.0, config.multiplier.lambda_max)
    return LagrangeState(lam=lam), {"loss/multiplier": -mstate.lam * excess}

  return Multiplier(init, scalar_value, update)


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
  del obs_size, episode_steps
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

  return Multiplier(init, scalar_value, update)


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
    excess = jax.lax.stop_gradient(batch.cost_target) - w

    def loss_fn(params):
      lam = net.apply(params, batch.obs)
      active = (lam >= config.multiplier.lambda_max) & (excess > 0)
      return -jnp.mean(lam * jnp.where(active, 0.0, excess))  # minimised: lambda ascends

    loss, grads = jax.value_and_grad(loss_fn)(mstate.params)
    opt = optimizer(config)
    updates, opt_state = opt.update(grads, mstate.opt_state, mstate.params)
    params = optax.apply_updates(mstate.params, updates)
    return StatewiseState(params, opt_state), {"loss/multiplier": loss}

  return Multiplier(init, value, update)
