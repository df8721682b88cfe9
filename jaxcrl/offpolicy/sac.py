"""SAC with a cost critic: the learner of the off-policy algorithms (sac, sac_lag, sac_pid,
fac, sac_statewise_auto).

  learner = make_sac(lagrangian_objective)(nets, config, episode_steps)  # None: plain SAC
  lstate = learner.init(key, config)      # SACState: nets, targets, alpha, replay buffer
  loc, scale = learner.policy(lstate, nobs)    # action = tanh(loc + scale eps), as on-policy
  lstate, metrics, q_c = learner.update(lstate, minibatch, lam, key, config)  # one step

One gradient step on a replay minibatch (Experience [M], observations normalised):
  critics  Q_r1, Q_r2 -> r + gamma (1 - term) (min_k Qbar_rk(s', a') - alpha log pi(a'|s'))
           Q_ck       -> c + cost_gamma (1 - term) max(Qbar_ck(s', a'), 0),   a' ~ pi(s')
  actor    objective(alpha log pi(a|s), min_k Q_rk(s, a), max_k Q_ck(s, a), lam), a ~ pi(s)
           (unconstrained SAC: mean(alpha log pi - min_k Q_rk), without the cost critic)
  alpha    log alpha descends alpha (-log pi(a|s) - target_entropy) (Haarnoja et al. 2018b)
  targets  Qbar <- (1 - tau) Qbar + tau Q
in Brax's order: the critics and the actor see the temperature from before the step, the
actor the updated critics. The cost bootstrap is floored at 0 (costs are non-negative), as
FAC's code clips its cost targets: the actor minimises Q_c, so it seeks the actions where
the critic errs low, and without the floor those errors feed back through the targets (on
PointGoal1 sac_lag's Q_c(s, pi(s)) fell to -20 within 200k steps). Truncated episodes
bootstrap from the observation the step reached (Experience.next_obs, taken before the
auto-reset), so unlike Brax's SAC no transition is dropped from the critic loss.
k = 1..K, K = cost_critics (default 1): with K >= 2 the actor sees the maximum of K
independently trained Q_c heads, a pessimistic cost critic in the spirit of FAC's
`double_QC`: it cannot settle where one head alone errs low. Each head bootstraps from its
own target head: with the maximum in the target too, Q_c at the policy's actions
compounded on PointGoal1 to 200-270, above the largest cost-to-go (100 at cost_gamma
0.99; docs/offpolicy.md).
Settings: SACConfig (config.learner) and the shared policy_lr (actor), value_lr (critics),
gamma, cost_gamma, max_grad_norm.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from jaxcrl import losses, networks
from jaxcrl.config import static
from jaxcrl.learners.base import adam_step, make_optimizer
from jaxcrl.offpolicy import replay

SAC_METRIC_KEYS = ("sac/alpha", "sac/q_reward", "sac/q_reward_replay", "sac/q_cost",
                   "sac/q_cost_replay", "sac/log_prob", "sac/buffer_size")


@struct.dataclass
class SACConfig:
  """Settings of the off-policy (SAC) learners. One update runs unroll_length vectorised
  steps of num_envs envs into the replay buffer, then utd_ratio x unroll_length gradient
  steps; TrainConfig's num_minibatches, num_epochs and gae_lambda do not apply.

  buffer_size: replay capacity in transitions per member, at least num_envs x unroll_length
    (static). Memory: buffer_size x (2 x observation size + action size + 3) x 4 bytes per
    member, held twice while training; it is part of the checkpoints.
  batch_size: transitions per gradient step, sampled uniformly from the buffer (static; not
    TrainConfig.batch_size, the agent steps per update).
  utd_ratio: gradient steps per vectorised env step (one step of all num_envs envs), as
    Brax's grad_updates_per_step: utd_ratio x unroll_length gradient steps per update
    (static).
  warmup_steps: transitions (agent steps of all envs) collected with uniform random
    actions before the first gradient step, as Brax's min_replay_size; the multiplier
    waits too (static).
  multiplier_delay: updates after the warm-up during which the multiplier keeps its
    initial state (its updates are discarded, as during the warm-up), so the critics and
    the actor learn the task under the initial lambda (0 for the scalar multipliers, about
    0 for fac's) before the penalty grows: FAC's delayed start, for every multiplier
    (static).
  tau: Polyak factor of the target critics per gradient step, in (0, 1].
  alpha_init: SAC's entropy temperature at the start (> 0).
  alpha_lr: Adam learning rate of log alpha (>= 0; 0 keeps alpha fixed).
  target_entropy: the policy entropy the temperature steers towards; NaN -> -action_size / 2
    (Brax's SAC).
  cost_critics: K, the independent Q_c heads (static), each bootstrapped from its own
    target head; the actor takes their maximum, a pessimistic cost critic for K >= 2
    (after FAC's `double_QC`); 1 is one plain Q_c.
  """

  buffer_size: int = static(1_000_000)
  batch_size: int = static(256)
  utd_ratio: int = static(1)
  warmup_steps: int = static(10_000)
  multiplier_delay: int = static(0)
  tau: float = 0.005
  alpha_init: float = 1.0
  alpha_lr: float = 3e-4
  target_entropy: float = float("nan")
  cost_critics: int = static(1)

  CHECKS = {
      "buffer_size": ("an integer in [1, 2**31)",
                      lambda v: 1 <= v < 2**31 and float(v).is_integer()),
      "batch_size": ("a positive integer", lambda v: v >= 1 and float(v).is_integer()),
      "utd_ratio": ("a positive integer", lambda v: v >= 1 and float(v).is_integer()),
      "warmup_steps": ("a non-negative integer", lambda v: v >= 0 and float(v).is_integer()),
      "multiplier_delay": ("a non-negative integer",
                           lambda v: v >= 0 and float(v).is_integer()),
      "tau": ("in (0, 1]", lambda v: 0 < v <= 1), "alpha_init": ("> 0", lambda v: v > 0),
      "alpha_lr": (">= 0", lambda v: v >= 0),
      "cost_critics": ("a positive integer", lambda v: v >= 1 and float(v).is_integer()),
  }


class Nets(NamedTuple):
  """policy: obs -> (loc, scale) (networks.make_policy); reward_critic: (obs, action) ->
  [..., 2] (the twin Q_r, networks.make_q); cost_critic: (obs, action) -> [..., K] (the
  Q_c heads, SACConfig.cost_critics);
  the sizes shape the replay buffer."""

  policy: networks.Network
  reward_critic: networks.Network
  cost_critic: networks.Network
  obs_size: int
  action_size: int


class Experience(NamedTuple):
  """What the replay buffer holds per transition (leaves [...] for one, [N, ...] for many).

  obs: [O] the observation the action was chosen from (raw; normalised when sampled).
  action: [A] the action the env received, in [-1, 1].
  reward, cost: [] summed over action repeats.
  terminated: [] 1.0 where the episode terminated (zeroes the bootstrap; a time-limit
    truncation does not).
  next_obs: [O] the observation the step reached, before any auto-reset.
  """

  obs: jax.Array
  action: jax.Array
  reward: jax.Array
  cost: jax.Array
  terminated: jax.Array
  next_obs: jax.Array


def experience_example(obs_size: int, action_size: int) -> Experience:
  """One all-zero Experience of these sizes (float32)."""
  zero = jnp.zeros((), jnp.float32)
  return Experience(obs=jnp.zeros((obs_size,), jnp.float32),
                    action=jnp.zeros((action_size,), jnp.float32), reward=zero, cost=zero,
                    terminated=zero, next_obs=jnp.zeros((obs_size,), jnp.float32))


@struct.dataclass
class SACState:
  """The learner's state in TrainState.learner: the policy; the critics {"reward": twin
  Q_r, "cost": Q_c} and their Polyak targets; log alpha ([]); one Adam state per group
  (policy, each critic, alpha); the replay buffer (ReplayState of Experience; None inside
  a gradient step, which does not touch it)."""

  policy_params: Any
  critic_params: Any
  target_critic_params: Any
  log_alpha: jax.Array
  policy_opt_state: Any
  critic_opt_state: Any
  alpha_opt_state: Any
  replay: Any


class OffPolicyLearner(NamedTuple):
  """init(key, config) -> SACState; policy(lstate, nobs) -> (loc, scale);
  update(lstate, minibatch, lam, key, config) -> (lstate, metrics, q_c): one gradient step
  (see the module docstring), metrics [] each, q_c [M] the cost critic's Q_c(s, a),
  a ~ pi(s), at the minibatch's states (the actor step's, stop-gradiented): the
  state-wise multipliers' cost target."""

  init: Callable[..., Any]
  update: Callable[..., tuple[Any, dict, jax.Array]]
  policy: Callable[..., tuple[jax.Array, jax.Array]]
  extra_metric_keys: tuple[str, ...] = SAC_METRIC_KEYS


def tanh_log_prob(raw: jax.Array, loc: jax.Array, scale: jax.Array) -> jax.Array:
  """log-density of the action tanh(raw), raw ~ N(loc, scale): [..., A] -> [...].

  log N(raw) - sum log(1 - tanh(raw)^2), the Jacobian written 2 (log 2 - raw -
  softplus(-2 raw)) so it stays finite where tanh saturates.
  """
  log_det = 2.0 * (jnp.log(2.0) - raw - jax.nn.softplus(-2.0 * raw))
  return losses.gaussian_log_prob(raw, loc, scale) - jnp.sum(log_det, axis=-1)


def sample_action(policy: networks.Network, params: Any, nobs: jax.Array, key: jax.Array
                  ) -> tuple[jax.Array, jax.Array]:
  """a = tanh(loc + scale eps) ~ pi(nobs) and its log-density: [..., A], [...]."""
  loc, scale = policy.apply(params, nobs)
  raw = loc + scale * jax.random.normal(key, loc.shape)
  return jnp.tanh(raw), tanh_log_prob(raw, loc, scale)


def lagrangian_objective(alpha_log_prob, q_r, q_c, lam):
  """mean(alpha log pi - Q_r + lam Q_c) / (1 + mean lam): all [M] (lam [] or [M],
  stop-gradiented) -> [] to minimise.

  The Lagrangian of max Q_r + entropy s.t. Q_c, lambda in reward per unit of cost, divided
  by ONE number for the minibatch as `losses.penalized_advantage` does (OmniSafe's SACLag
  divides by 1 + lam): with lam = 0 this is SAC's actor loss, with a state-wise lam [M] it
  stays the state-wise Lagrangian up to a positive scale.
  """
  return jnp.mean(alpha_log_prob - q_r + lam * q_c) / (1.0 + jnp.mean(lam))


def statewise_objective(alpha_log_prob, q_r, q_c, lam):
  """mean((alpha log pi - Q_r + lam Q_c) / (1 + lam)), each sample divided by its own
  1 + lambda(s) as `losses.statewise_advantage` does: where lambda(s) is large the sample
  minimises its cost alone. Equals `lagrangian_objective` for a scalar lam."""
  return jnp.mean((alpha_log_prob - q_r + lam * q_c) / (1.0 + lam))


def polyak(target: Any, online: Any, tau: jax.Array) -> Any:
  """(1 - tau) target + tau online, leaf by leaf (Brax's form)."""
  return jax.tree.map(lambda t, o: t * (1.0 - tau) + o * tau, target, online)


def make_sac(objective: Callable | None = lagrangian_objective) -> Callable:
  """-> make_learner(nets, config, episode_steps) -> OffPolicyLearner whose actor minimises
  `objective(alpha log pi, min Q_r, Q_c, lam)` (lagrangian_objective, statewise_objective),
  or, with None, SAC's own mean(alpha log pi - min Q_r): the actor step then leaves out the
  cost critic (a third of a penalised step's critic work) and the q_c it returns is
  Q_c(s, a) at the replay actions, from the critic step."""

  def make_learner(nets: Nets, static_config, episode_steps: int) -> OffPolicyLearner:
    del episode_steps
    example = experience_example(nets.obs_size, nets.action_size)
    buffer_size = static_config.learner.buffer_size

    def init(key, config):
      k_pol, k_reward, k_cost = jax.random.split(key, 3)
      policy_params = nets.policy.init(k_pol)
      critic_params = {"reward": nets.reward_critic.init(k_reward),
                       "cost": nets.cost_critic.init(k_cost)}
      log_alpha = jnp.log(jnp.asarray(config.learner.alpha_init, jnp.float32))
      critic_opt = make_optimizer(config.value_lr, config.max_grad_norm)
      return SACState(
          policy_params=policy_params, critic_params=critic_params,
          target_critic_params=critic_params, log_alpha=log_alpha,
          policy_opt_state=make_optimizer(config.policy_lr, config.max_grad_norm).init(
              policy_params),
          critic_opt_state={name: critic_opt.init(params)
                            for name, params in critic_params.items()},
          alpha_opt_state=make_optimizer(config.learner.alpha_lr, config.max_grad_norm).init(
              log_alpha),
          replay=replay.init(example, buffer_size))

    def policy(lstate, nobs):
      return nets.policy.apply(lstate.policy_params, nobs)

    def update(lstate, mb, lam, key, config):
      lconfig = config.learner
      target_entropy = jnp.where(jnp.isnan(lconfig.target_entropy),
                                 -0.5 * nets.action_size, lconfig.target_entropy)
      alpha = jnp.exp(lstate.log_alpha)
      k_next, k_act = jax.random.split(key)

      next_action, next_log_prob = sample_action(nets.policy, lstate.policy_params,
                                                 mb.next_obs, k_next)
      targets = lstate.target_critic_params
      q_r_next = nets.reward_critic.apply(targets["reward"], mb.next_obs, next_action)
      # [M, K]: each cost head bootstraps from its own target head.
      q_c_next = nets.cost_critic.apply(targets["cost"], mb.next_obs, next_action)
      v_r = jnp.min(q_r_next, axis=-1) - alpha * next_log_prob
      target_r = mb.reward + config.gamma * (1.0 - mb.terminated) * v_r
      target_c = mb.cost[:, None] + (config.cost_gamma * (1.0 - mb.terminated))[:, None] * (
          jnp.maximum(q_c_next, 0.0))

      def critic_loss(params):
        q_r = nets.reward_critic.apply(params["reward"], mb.obs, mb.action)
        q_c = nets.cost_critic.apply(params["cost"], mb.obs, mb.action)
        # Brax's 0.5 mean over both reward heads; the same over the cost heads. The two
        # share no parameters, so the gradient of the sum is each one's own.
        loss_r = losses.value_loss(q_r, target_r[:, None])
        loss_c = losses.value_loss(q_c, target_c)
        return loss_r + loss_c, (loss_r, loss_c, jnp.min(q_r, axis=-1), jnp.max(q_c, axis=-1))

      (_, (loss_r, loss_c, q_r_replay, q_c_replay)), grads = jax.value_and_grad(
          critic_loss, has_aux=True)(lstate.critic_params)
      critic_params, critic_opt = {}, {}
      for name in grads:
        critic_params[name], critic_opt[name] = adam_step(
            lstate.critic_params[name], lstate.critic_opt_state[name], grads[name],
            config.value_lr, config.max_grad_norm)

      def actor_loss(params):
        action, log_prob = sample_action(nets.policy, params, mb.obs, k_act)
        q_r = jnp.min(nets.reward_critic.apply(critic_params["reward"], mb.obs, action),
                      axis=-1)
        if objective is None:
          return jnp.mean(alpha * log_prob - q_r), (log_prob, q_r, q_c_replay)
        q_c = jnp.max(nets.cost_critic.apply(critic_params["cost"], mb.obs, action), axis=-1)
        return objective(alpha * log_prob, q_r, q_c, lam), (log_prob, q_r, q_c)

      (policy_loss, (log_prob, q_r, q_c)), grads = jax.value_and_grad(
          actor_loss, has_aux=True)(lstate.policy_params)
      policy_params, policy_opt = adam_step(lstate.policy_params, lstate.policy_opt_state,
                                            grads, config.policy_lr, config.max_grad_norm)

      # d/d log_alpha of mean(alpha (-log pi - H)): the sample is the actor's, drawn from
      # the policy before its step, as Brax draws its own for the same loss.
      excess = jax.lax.stop_gradient(-log_prob - target_entropy)
      alpha_grad = jnp.mean(alpha * excess)
      log_alpha, alpha_opt = adam_step(lstate.log_alpha, lstate.alpha_opt_state, alpha_grad,
                                       lconfig.alpha_lr, config.max_grad_norm)

      new = lstate.replace(
          policy_params=policy_params, critic_params=critic_params,
          target_critic_params=polyak(lstate.target_critic_params, critic_params,
                                      lconfig.tau),
          log_alpha=log_alpha, policy_opt_state=policy_opt, critic_opt_state=critic_opt,
          alpha_opt_state=alpha_opt)
      metrics = {"loss/policy": policy_loss, "loss/value_reward": loss_r,
                 "loss/value_cost": loss_c, "sac/q_reward": q_r.mean(),
                 "sac/q_reward_replay": q_r_replay.mean(), "sac/q_cost": q_c.mean(),
                 "sac/q_cost_replay": q_c_replay.mean(), "sac/log_prob": log_prob.mean()}
      return new, metrics, jax.lax.stop_gradient(q_c)

    return OffPolicyLearner(init=init, update=update, policy=policy)

  return make_learner
