"""The Learner seam: what turns one rollout's batch into new policy and critic parameters.

The trainer (jaxcrl/train.py) runs rollout -> advantages -> multiplier -> learner and
never knows which learner it drives:

  learner = algorithm.make_learner(nets, config, episode_steps)   # static parts
  lstate = learner.init(key, config)                  # pytree, lives in TrainState.learner
  loc, scale = learner.policy(lstate, nobs)           # nobs [..., O] -> [..., A] each
  v_r, v_c = learner.values(lstate, nobs)             # [...] each (reward and cost critics)
  lstate, metrics = learner.update(lstate, batch, lam, key, config)

`config` is the traced TrainConfig; a learner reads its own family's settings from
`config.learner` (e.g. PPOConfig, TrustRegionConfig) and the shared ones (learning rates,
discounts, num_minibatches, num_epochs, cost_limit) from `config`. `lam` [N] is the
multiplier each sample is penalised with, already stop-gradiented (zeros for algorithms
without a multiplier). Every learner returns the keys of LEARNER_METRIC_KEYS plus its own
`extra_metric_keys`, each [] float32.

Every learner here acts with the same diagonal Gaussian policy over pre-tanh actions and
keeps its parameters in an ActorCriticState, so acting, evaluation and the lambda map are
shared; what differs is `update`.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxcrl import losses, networks

LEARNER_METRIC_KEYS = ("loss/policy", "loss/value_reward", "loss/value_cost", "policy/kl",
                       "policy/entropy", "policy/sgd_steps")


class Nets(NamedTuple):
  """The static networks every learner shares: policy (obs -> loc, scale) and value
  (obs -> []), the latter used for both the reward and the cost critic."""

  policy: networks.Network
  value: networks.Network


@struct.dataclass
class ActorCriticState:
  """Policy and critics with their optimizer states (a learner without a policy
  optimizer, e.g. a trust-region one, keeps `policy_opt_state` as an empty tuple)."""

  policy_params: Any
  value_params: Any
  cost_value_params: Any
  policy_opt_state: Any
  value_opt_state: Any
  cost_value_opt_state: Any


class Samples(NamedTuple):
  """One rollout, flattened to N = T * B samples.

  obs: [N, O] observations normalised as the rollout saw them.
  action: [N, A] pre-tanh Gaussian sample.
  log_prob: [N] its log-density under the behaviour policy.
  loc, scale: [N, A] the behaviour policy's Gaussian (Transition.extras).
  adv_r, adv_c: [N] GAE advantages of reward and cost (not normalised).
  target_r, target_c: [N] GAE lambda-returns, the critics' targets.
  """

  obs: jax.Array
  action: jax.Array
  log_prob: jax.Array
  loc: jax.Array
  scale: jax.Array
  adv_r: jax.Array
  adv_c: jax.Array
  target_r: jax.Array
  target_c: jax.Array


class LearnerBatch(NamedTuple):
  """samples: Samples [N]; episode_cost: [] the batch's J_c estimate (mean cost of the
  episodes completed in it, or cost rate x episode length when none completed)."""

  samples: Samples
  episode_cost: jax.Array


class Learner(NamedTuple):
  """Pure functions over a learner's own pytree state (see the module docstring)."""

  init: Callable[..., Any]
  update: Callable[..., tuple[Any, dict]]
  policy: Callable[..., tuple[jax.Array, jax.Array]]
  values: Callable[..., tuple[jax.Array, jax.Array]]
  extra_metric_keys: tuple[str, ...] = ()


def make_optimizer(learning_rate, max_grad_norm) -> optax.GradientTransformation:
  """The optimizer of every parameter group (learning rates may be traced)."""
  return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate))


def init_actor_critic(nets: Nets, key: jax.Array, config, policy_optimizer: bool = True
                      ) -> ActorCriticState:
  """Fresh policy and critics; Adam states for the critics (value_lr) and, if
  `policy_optimizer`, for the policy (policy_lr)."""
  k_pol, k_val, k_cval = jax.random.split(key, 3)
  policy_params = nets.policy.init(k_pol)
  value_params = nets.value.init(k_val)
  cost_value_params = nets.value.init(k_cval)
  val_opt = make_optimizer(config.value_lr, config.max_grad_norm)
  pol_opt_state = (make_optimizer(config.policy_lr, config.max_grad_norm).init(policy_params)
                   if policy_optimizer else ())
  return ActorCriticState(
      policy_params=policy_params, value_params=value_params,
      cost_value_params=cost_value_params, policy_opt_state=pol_opt_state,
      value_opt_state=val_opt.init(value_params),
      cost_value_opt_state=val_opt.init(cost_value_params))


def actor_critic_policy(nets: Nets) -> Callable:
  """`policy(lstate, nobs[..., O]) -> (loc, scale) [..., A]` of an ActorCriticState."""
  return lambda lstate, nobs: nets.policy.apply(lstate.policy_params, nobs)


def actor_critic_values(nets: Nets) -> Callable:
  """`values(lstate, nobs[..., O]) -> (v_r, v_c) [...]` of an ActorCriticState."""
  return lambda lstate, nobs: (nets.value.apply(lstate.value_params, nobs),
                               nets.value.apply(lstate.cost_value_params, nobs))


def shuffled_minibatches(tree: Any, key: jax.Array, num_minibatches: int) -> Any:
  """Leaves [N, ...] -> [num_minibatches, N / num_minibatches, ...], randomly permuted."""
  n = jax.tree.leaves(tree)[0].shape[0]
  perm = jax.random.permutation(key, n)
  return jax.tree.map(
      lambda x: x[perm].reshape((num_minibatches, n // num_minibatches) + x.shape[1:]), tree)


def unless_stopped(step: Callable, carry: Any, x: Any, stopped: jax.Array) -> tuple[Any, Any]:
  """A scan body of epochs that stop early: `step(carry, x) -> (carry, out)` when not
  `stopped` [] bool, else (carry, zeros shaped like out).

  lax.cond, so once stopped a step costs nothing (under vmap with a batched `stopped`,
  lax.cond computes both branches and selects, as masking would).
  """
  out_shape = jax.eval_shape(step, carry, x)[1]
  skip = lambda c, _: (c, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out_shape))
  return jax.lax.cond(stopped, skip, step, carry, x)


def adam_step(params, opt_state, grads, learning_rate, max_grad_norm):
  """One step of `make_optimizer(learning_rate, max_grad_norm)`: -> (params, opt_state)."""
  updates, opt_state = make_optimizer(learning_rate, max_grad_norm).update(
      grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


def fit_critics(nets: Nets, lstate: ActorCriticState, samples: Samples, key: jax.Array,
                config) -> tuple[ActorCriticState, jax.Array, jax.Array]:
  """num_epochs x num_minibatches Adam steps (value_lr) of both critics on their GAE
  targets, for learners whose policy step is separate (trust region, CUP).

  -> (lstate with new critics, mean reward-critic loss, mean cost-critic loss) [].
  """
  data = (samples.obs, samples.target_r, samples.target_c)

  def critic_losses(params, obs, target_r, target_c):
    v_loss = losses.value_loss(nets.value.apply(params[0], obs), target_r)
    c_loss = losses.value_loss(nets.value.apply(params[1], obs), target_c)
    return v_loss + c_loss, (v_loss, c_loss)

  def step(carry, mb):
    v_params, c_params, v_opt, c_opt = carry
    # One backward pass for both critics (their losses share nothing, so the gradient of
    # the sum is each one's own).
    (_, (v_loss, c_loss)), (v_grads, c_grads) = jax.value_and_grad(
        critic_losses, has_aux=True)((v_params, c_params), *mb)
    v_params, v_opt = adam_step(v_params, v_opt, v_grads, config.value_lr,
                                config.max_grad_norm)
    c_params, c_opt = adam_step(c_params, c_opt, c_grads, config.value_lr,
                                config.max_grad_norm)
    return (v_params, c_params, v_opt, c_opt), (v_loss, c_loss)

  def epoch(carry, key_e):
    return jax.lax.scan(step, carry, shuffled_minibatches(data, key_e, config.num_minibatches))

  carry = (lstate.value_params, lstate.cost_value_params, lstate.value_opt_state,
           lstate.cost_value_opt_state)
  (v_params, c_params, v_opt, c_opt), (v_loss, c_loss) = jax.lax.scan(
      epoch, carry, jax.random.split(key, config.num_epochs))
  new = lstate.replace(value_params=v_params, cost_value_params=c_params,
                       value_opt_state=v_opt, cost_value_opt_state=c_opt)
  return new, v_loss.mean(), c_loss.mean()
