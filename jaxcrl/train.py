"""init(key) -> TrainState; update(state) -> (state, metrics); train(key) = scan(update).

  init, update = jaxcrl.make_init_update(env, config)
  state = init(jax.random.key(0))
  state, metrics = jax.jit(update)(state)       # one rollout + multiplier + PPO epochs

  train = jaxcrl.make_train(env, config)
  state, metrics = jax.jit(train)(key)          # metrics: dict of [num_updates]
  jax.jit(jax.vmap(train))(keys)                # seeds in one program
  jax.jit(jax.vmap(train))(keys, jaxcrl.stack_configs(cfgs))   # limits x seeds

Scale-out: the env batch axis B of the env state and the rollout is sharded over
`jax.devices()` (NamedSharding on a 1-D 'batch' mesh); parameters, optimizer and
multiplier states are replicated and XLA inserts the gradient all-reduce. num_envs must
divide by the device count. Multi-host: call `jax.distributed.initialize()` in every
process before building (jax.devices() then lists every host's devices, so the same
mesh spans hosts); give every process the same key and config, and each process steps
the envs of its own addressable shards.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from brax.envs.base import Env
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import envs as jenvs
from jaxcrl import losses, multipliers, networks, normalize
from jaxcrl.algorithms import ALGORITHMS
from jaxcrl.config import TrainConfig, static_fields
from jaxcrl.returns import compute_gae
from jaxcrl.types import Transition

# Per-update metrics, each [] float32:
#   episode/return, episode/cost: means over episodes completed in this batch (the last
#     value is carried while none completes); episode/count: episodes completed.
#   episode/cost_rate: cost per env step over the batch.
#   constraint/violation_frac: fraction of visited states whose discounted cost-to-go
#     (the cost GAE lambda-return, bootstrapped at unroll ends) exceeds w;
#     constraint/threshold: w.
#   lambda/*: the multiplier each sample was penalised with (mean, max, quantiles).
#   loss/*, policy/kl (k3 estimator), policy/entropy (pre-tanh Gaussian): means over the
#     minibatch steps taken; policy/sgd_steps: steps taken (num_epochs * num_minibatches
#     unless target_kl stopped the update early); loss/multiplier: the multiplier's own
#     objective.
#   train/env_steps: env steps so far, counting action repeats.
METRIC_KEYS = (
    "episode/return", "episode/cost", "episode/cost_rate", "episode/count",
    "constraint/violation_frac", "constraint/threshold", "lambda/mean", "lambda/max",
    "lambda/p05", "lambda/p50", "lambda/p95", "loss/policy", "loss/value_reward",
    "loss/value_cost", "loss/multiplier", "policy/kl", "policy/entropy", "policy/sgd_steps",
    "train/env_steps",
)


@struct.dataclass
class TrainState:
  """Everything needed to resume bit-exactly (and to vmap over seeds and configs).

  multiplier: the algorithm's multiplier state (LagrangeState, PIDState or
    StatewiseState with the lambda(s) net's params and optimizer state).
  env_state: the batched env state, leaves [B, ...].
  key: typed PRNG key. update_step: [] int32, updates done (env steps so far are
    update_step * num_envs * unroll_length * action_repeat; the train/env_steps metric
    is that product in float32, so it never wraps).
  last_episode_return, last_episode_cost: [] the latest batch means, carried so the
    metrics stay finite in updates where no episode completed.
  config: the TrainConfig whose traced leaves this run uses.
  """

  policy_params: Any
  value_params: Any
  cost_value_params: Any
  policy_opt_state: Any
  value_opt_state: Any
  cost_value_opt_state: Any
  multiplier: Any
  normalizer: normalize.NormalizerState
  env_state: Any
  key: jax.Array
  update_step: jax.Array
  last_episode_return: jax.Array
  last_episode_cost: jax.Array
  config: TrainConfig


class _Parts(struct.PyTreeNode):
  """What make_* share: wrapped env, networks, multiplier, sizes (all static)."""

  env: Any = struct.field(pytree_node=False)
  policy: networks.Network = struct.field(pytree_node=False)
  value: networks.Network = struct.field(pytree_node=False)
  multiplier: multipliers.Multiplier = struct.field(pytree_node=False)
  policy_loss: Callable = struct.field(pytree_node=False)
  obs_size: int = struct.field(pytree_node=False)
  action_size: int = struct.field(pytree_node=False)
  episode_length: int = struct.field(pytree_node=False)
  episode_steps: int = struct.field(pytree_node=False)
  shard: Callable = struct.field(pytree_node=False)


def _as_typed_key(key: jax.Array) -> jax.Array:
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    return key
  return jax.random.wrap_key_data(key)


def _make_shard(num_envs: int) -> Callable[[Any], Any]:
  """tree -> tree with the leading (batch) axis of every leaf sharded over all devices."""
  devices = jax.devices()
  if len(devices) == 1:
    return lambda tree: tree
  if num_envs % len(devices):
    raise ValueError(f"num_envs={num_envs} must be divisible by the {len(devices)} "
                     "devices it is sharded over")
  mesh = Mesh(devices, ("batch",))
  sharding = NamedSharding(mesh, PartitionSpec("batch"))
  return lambda tree: jax.tree.map(
      lambda x: jax.lax.with_sharding_constraint(x, sharding), tree)


def _make_parts(env: Env, config: TrainConfig) -> _Parts:
  config.validate()
  episode_length = config.episode_length or getattr(env, "episode_length", 1000)
  obs_size = env.observation_size
  if not isinstance(obs_size, int):
    raise ValueError(f"observation_size must be an int (flat observations), got {obs_size!r}")
  algo = ALGORITHMS[config.algo]
  episode_steps = max(episode_length // config.action_repeat, 1)
  return _Parts(
      env=jenvs.wrap(env, config.num_envs, episode_length, config.action_repeat),
      policy=networks.make_policy(obs_size, env.action_size, config.policy_hidden,
                                  config.activation),
      value=networks.make_value(obs_size, config.value_hidden, config.activation),
      multiplier=algo.make_multiplier(obs_size, config, episode_steps),
      policy_loss=algo.policy_loss,
      obs_size=obs_size,
      action_size=env.action_size,
      episode_length=episode_length,
      episode_steps=episode_steps,
      shard=_make_shard(config.num_envs),
  )


def _check_config(config: TrainConfig | None, base: TrainConfig) -> TrainConfig:
  if config is None:
    config = base
  else:
    ours, theirs = static_fields(base), static_fields(config)
    diff = sorted(k for k in ours if ours[k] != theirs[k])
    if diff:
      raise ValueError(f"config differs in static field(s) {diff} from the config given "
                       "to make_*; build a new init/update for those")
  # float32 leaves, so Python floats and arrays give one trace.
  return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), config)


def make_init_update(env: Env, config: TrainConfig) -> tuple[Callable, Callable]:
  """Builds `init(key, config=None) -> TrainState` and `update(state) -> (state, metrics)`.

  `env` is an unbatched Brax-API env returning `envs.base.State`; it is wrapped here with
  `envs.wrap(env, num_envs, episode_length, action_repeat)`. `config` fixes the static
  fields; `init(key, config)` may pass another config with the same static fields (its
  traced leaves may be batched under vmap). `metrics` is a flat dict of [] float32 with
  the keys in METRIC_KEYS.
  """
  parts = _make_parts(env, config)
  p, c = parts, config
  batch = c.batch_size
  minibatch = batch // c.num_minibatches
  steps_per_update = batch * c.action_repeat

  def init(key: jax.Array, config: TrainConfig | None = None) -> TrainState:
    cfg = _check_config(config, c)
    key = _as_typed_key(key)
    key, k_pol, k_val, k_cval, k_mult, k_env = jax.random.split(key, 6)
    policy_params = p.policy.init(k_pol)
    value_params = p.value.init(k_val)
    cost_value_params = p.value.init(k_cval)
    pol_opt = multipliers.make_optimizer(cfg.policy_lr, cfg.max_grad_norm)
    val_opt = multipliers.make_optimizer(cfg.value_lr, cfg.max_grad_norm)
    zero = jnp.zeros((), jnp.float32)
    return TrainState(
        policy_params=policy_params,
        value_params=value_params,
        cost_value_params=cost_value_params,
        policy_opt_state=pol_opt.init(policy_params),
        value_opt_state=val_opt.init(value_params),
        cost_value_opt_state=val_opt.init(cost_value_params),
        multiplier=p.multiplier.init(k_mult, cfg),
        normalizer=normalize.init(p.obs_size),
        env_state=p.shard(p.env.reset(k_env)),
        key=key,
        update_step=jnp.zeros((), jnp.int32),
        last_episode_return=zero,
        last_episode_cost=zero,
        config=cfg,
    )

  def rollout(policy_params, normalizer, env_state, key):
    """One unroll of unroll_length agent steps: -> (env_state, Transition [T, B])."""

    def step(env_state, key_t):
      obs = env_state.obs
      loc, scale = p.policy.apply(
          policy_params, normalize.apply(normalizer, obs, c.normalize_observations))
      action = loc + scale * jax.random.normal(key_t, loc.shape)
      nstate = p.shard(p.env.step(env_state, jnp.tanh(action)))
      truncation = nstate.info["truncation"]
      transition = Transition(
          obs=obs, action=action, reward=nstate.reward, cost=nstate.cost,
          done=nstate.done * (1.0 - truncation), truncation=truncation,
          final_obs=nstate.info["final_obs"],
          log_prob=losses.gaussian_log_prob(action, loc, scale),
          episode_return=nstate.info["episode_return"],
          episode_cost=nstate.info["episode_cost"])
      return nstate, transition

    return jax.lax.scan(step, env_state, jax.random.split(key, c.unroll_length))

  def update(state: TrainState) -> tuple[TrainState, dict[str, jax.Array]]:
    """Rollout -> GAE (reward, cost) -> multiplier update -> PPO epochs whose policy
    loss uses the UPDATED multiplier, stop-gradiented per sample -> normaliser update."""
    cfg = state.config
    key, k_roll, k_mult, k_sgd = jax.random.split(state.key, 4)
    env_state, data = rollout(state.policy_params, state.normalizer, state.env_state,
                              k_roll)
    # The whole update sees observations normalised as the rollout saw them, so PPO's
    # ratios compare the same inputs; the statistics then absorb this batch for the next
    # rollout. (Updating them first, as Brax does, skews the first updates' ratios.)
    nobs = normalize.apply(state.normalizer, data.obs, c.normalize_observations)
    nfinal = normalize.apply(state.normalizer, data.final_obs, c.normalize_observations)
    normalizer = state.normalizer
    if c.normalize_observations:
      normalizer = normalize.update(normalizer, data.obs)

    values = p.value.apply(state.value_params, nobs)
    next_values = p.value.apply(state.value_params, nfinal)
    cost_values = p.value.apply(state.cost_value_params, nobs)
    next_cost_values = p.value.apply(state.cost_value_params, nfinal)
    adv_r, target_r = compute_gae(data.reward, values, next_values, data.done,
                                  data.truncation, cfg.gamma, cfg.gae_lambda)
    adv_c, target_c = compute_gae(data.cost, cost_values, next_cost_values, data.done,
                                  data.truncation, cfg.cost_gamma, cfg.gae_lambda)

    ended = jnp.maximum(data.done, data.truncation)
    count = ended.sum()
    some = count > 0
    safe_count = jnp.maximum(count, 1.0)
    ep_return = jnp.where(some, (ended * data.episode_return).sum() / safe_count,
                          state.last_episode_return)
    ep_cost_batch = (ended * data.episode_cost).sum() / safe_count
    cost_rate = data.cost.mean() / c.action_repeat
    cost_estimate = jnp.where(some, ep_cost_batch, cost_rate * p.episode_length)
    ep_cost = jnp.where(some, ep_cost_batch, state.last_episode_cost)

    flat = lambda x: x.reshape((batch,) + x.shape[2:])
    mbatch = multipliers.MultiplierBatch(
        episode_cost=cost_estimate, obs=flat(nobs), cost_target=flat(target_c))
    mstate, mmetrics = p.multiplier.update(state.multiplier, mbatch, k_mult, cfg)
    lam = jax.lax.stop_gradient(
        jnp.broadcast_to(p.multiplier.value(mstate, mbatch.obs, cfg), (batch,)))

    samples = {
        "obs": flat(nobs), "action": flat(data.action), "log_prob": flat(data.log_prob),
        "adv_r": flat(adv_r), "adv_c": flat(adv_c), "target_r": flat(target_r),
        "target_c": flat(target_c), "lam": lam,
    }
    pol_opt = multipliers.make_optimizer(cfg.policy_lr, cfg.max_grad_norm)
    val_opt = multipliers.make_optimizer(cfg.value_lr, cfg.max_grad_norm)

    def loss_fn(params, mb):
      loc, scale = p.policy.apply(params["policy"], mb["obs"])
      log_prob = losses.gaussian_log_prob(mb["action"], loc, scale)
      entropy = losses.gaussian_entropy(scale).mean()
      policy_loss = p.policy_loss(log_prob, mb["log_prob"], mb["adv_r"], mb["adv_c"],
                                  mb["lam"], cfg.clip_eps)
      value_loss = losses.value_loss(p.value.apply(params["value"], mb["obs"]),
                                     mb["target_r"])
      cost_value_loss = losses.value_loss(p.value.apply(params["cost_value"], mb["obs"]),
                                          mb["target_c"])
      log_ratio = log_prob - mb["log_prob"]
      kl = jnp.mean(jnp.expm1(log_ratio) - log_ratio)  # k3 estimator of KL(old || new)
      total = policy_loss - cfg.entropy_coef * entropy + value_loss + cost_value_loss
      return total, (policy_loss, value_loss, cost_value_loss, kl, entropy)

    def sgd_step(carry, mb):
      params, opt_states, stopped = carry
      grads, aux = jax.grad(loss_fn, has_aux=True)(params, mb)
      # target_kl > 0: skip this step and all later ones once the KL before a step is
      # too large.
      stopped = stopped | ((cfg.target_kl > 0) & (aux[3] > cfg.target_kl))
      new_params, new_opt = {}, {}
      for name, opt in (("policy", pol_opt), ("value", val_opt), ("cost_value", val_opt)):
        upd, new_opt[name] = opt.update(grads[name], opt_states[name], params[name])
        new_params[name] = jax.tree.map(jnp.add, params[name], upd)
      keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(stopped, o, n), new, old)
      taken = 1.0 - stopped.astype(jnp.float32)
      return (keep(new_params, params), keep(new_opt, opt_states), stopped), (aux, taken)

    def epoch(carry, key_e):
      perm = jax.random.permutation(key_e, batch)
      mbs = jax.tree.map(
          lambda x: x[perm].reshape((c.num_minibatches, minibatch) + x.shape[1:]), samples)
      return jax.lax.scan(sgd_step, carry, mbs)

    params = {"policy": state.policy_params, "value": state.value_params,
              "cost_value": state.cost_value_params}
    opt_states = {"policy": state.policy_opt_state, "value": state.value_opt_state,
                  "cost_value": state.cost_value_opt_state}
    (params, opt_states, _), (aux, taken) = jax.lax.scan(
        epoch, (params, opt_states, jnp.zeros((), bool)),
        jax.random.split(k_sgd, c.num_epochs))
    # Means over the minibatch steps taken (the first step is always taken: its KL is 0).
    policy_loss, value_loss, cost_value_loss, kl, entropy = jax.tree.map(
        lambda x: jnp.sum(x * taken) / jnp.maximum(taken.sum(), 1.0), aux)

    w = multipliers.statewise_threshold(cfg, p.episode_steps)
    quantiles = jnp.quantile(lam, jnp.array([0.05, 0.5, 0.95]))
    update_step = state.update_step + 1
    metrics = {
        "episode/return": ep_return,
        "episode/cost": ep_cost,
        "episode/cost_rate": cost_rate,
        "episode/count": count,
        "constraint/violation_frac": jnp.mean(target_c > w),
        "constraint/threshold": w,
        "lambda/mean": lam.mean(),
        "lambda/max": lam.max(),
        "lambda/p05": quantiles[0],
        "lambda/p50": quantiles[1],
        "lambda/p95": quantiles[2],
        "loss/policy": policy_loss,
        "loss/value_reward": value_loss,
        "loss/value_cost": cost_value_loss,
        "loss/multiplier": mmetrics["loss/multiplier"],
        "policy/kl": kl,
        "policy/entropy": entropy,
        "policy/sgd_steps": taken.sum(),
        "train/env_steps": update_step.astype(jnp.float32) * float(steps_per_update),
    }
    metrics = {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}
    new_state = state.replace(
        policy_params=params["policy"], value_params=params["value"],
        cost_value_params=params["cost_value"], policy_opt_state=opt_states["policy"],
        value_opt_state=opt_states["value"], cost_value_opt_state=opt_states["cost_value"],
        multiplier=mstate, normalizer=normalizer, env_state=env_state, key=key,
        update_step=update_step,
        last_episode_return=ep_return, last_episode_cost=ep_cost)
    return new_state, metrics

  return init, update


def make_train(env: Env, config: TrainConfig) -> Callable:
  """Builds `train(key, config=None) -> (TrainState, metrics)`, metrics [num_updates] each.

  Pure: `jax.jit(train)(key)`, `jax.jit(jax.vmap(train))(keys)`, or vmapped over a
  batched config from `stack_configs` (static fields equal).
  """
  init, update = make_init_update(env, config)
  num_updates = config.num_updates

  def train(key: jax.Array, config: TrainConfig | None = None):
    state = init(key, config)
    return jax.lax.scan(lambda s, _: update(s), state, None, length=num_updates)

  return train


def make_act(env: Env, config: TrainConfig) -> Callable:
  """`act(state, obs[B, O], key, deterministic=False) -> action[B, A]` in [-1, 1].

  deterministic=True returns tanh(mean); it must be a Python bool (static under jit).
  """
  config.validate()
  policy = networks.make_policy(env.observation_size, env.action_size,
                                config.policy_hidden, config.activation)

  def act(state: TrainState, obs: jax.Array, key: jax.Array,
          deterministic: bool = False) -> jax.Array:
    nobs = normalize.apply(state.normalizer, obs, config.normalize_observations)
    loc, scale = policy.apply(state.policy_params, nobs)
    if deterministic:
      return jnp.tanh(loc)
    return jnp.tanh(loc + scale * jax.random.normal(_as_typed_key(key), loc.shape))

  return act


def make_lambda(env: Env, config: TrainConfig) -> Callable:
  """`lam(state, obs[B, O]) -> [B]`: the multiplier each state is penalised with (scalar
  algorithms broadcast their lambda; ppo gives zeros)."""
  parts = _make_parts(env, config)

  def lam(state: TrainState, obs: jax.Array) -> jax.Array:
    nobs = normalize.apply(state.normalizer, obs, config.normalize_observations)
    value = parts.multiplier.value(state.multiplier, nobs, state.config)
    return jnp.broadcast_to(value, obs.shape[:1])

  return lam
