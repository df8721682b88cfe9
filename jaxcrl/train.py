"""init(key) -> TrainState; update(state) -> (state, metrics); train(key) = scan(update).

  init, update = jaxcrl.make_init_update(env, config)
  state = init(jax.random.key(0))
  state, metrics = jax.jit(update)(state)  # rollout -> advantages -> multiplier -> learner

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
the envs of its own addressable shards (experiments/distributed.py does this for the CLI;
tests/test_distributed.py runs it in two processes).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from brax.envs.base import Env
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import envs as jenvs
from jaxcrl import algorithms, losses, multipliers, networks, normalize
from jaxcrl.config import TrainConfig, static_fields
from jaxcrl.counters import Count, RunningSum
from jaxcrl.learners import base
from jaxcrl.returns import compute_gae
from jaxcrl.types import PolicyExtras, Transition

# Per-update metrics, each [] float32:
#   episode/return, episode/cost: means over episodes completed in this batch (the last
#     value is carried while none completes); episode/count: episodes completed.
#   episode/cost_rate: cost per env step over the batch.
#   constraint/violation_frac: fraction of visited states whose discounted cost-to-go
#     (the cost GAE lambda-return, bootstrapped at unroll ends) exceeds w;
#     constraint/threshold: w.
#   lambda/*: the multiplier each sample was penalised with (mean, max, quantiles).
#   loss/*, policy/kl, policy/entropy (pre-tanh Gaussian), policy/sgd_steps: the
#     learner's (learners.base.LEARNER_METRIC_KEYS; for the minibatch learners, means over
#     the minibatch steps taken, and the steps taken); loss/multiplier: the multiplier's
#     own objective. A learner may add keys of its own (`extra_metric_keys`).
#   train/env_steps: env steps so far, counting action repeats.
#   train/cumulative_cost: the cost paid in training so far, summed over every env step
#     (action repeats included, as the env reports them) of every env; the running sum
#     lives in TrainState.cumulative_cost.
METRIC_KEYS = (
    "episode/return", "episode/cost", "episode/cost_rate", "episode/count",
    "constraint/violation_frac", "constraint/threshold", "lambda/mean", "lambda/max",
    "lambda/p05", "lambda/p50", "lambda/p95", "loss/policy", "loss/value_reward",
    "loss/value_cost", "loss/multiplier", "policy/kl", "policy/entropy", "policy/sgd_steps",
    "train/env_steps", "train/cumulative_cost",
)


@struct.dataclass
class TrainState:
  """Everything needed to resume bit-exactly (and to vmap over seeds and configs).

  learner: the learner's state (learners.base.ActorCriticState: policy and critics with
    their optimizer states).
  multiplier: the multiplier's state (LagrangeState, PIDState or StatewiseState with the
    lambda(s) net's params and optimizer state).
  env_state: the batched env state, leaves [B, ...].
  key: typed PRNG key. update_step: counters.Count of updates done, exact past 2**31
    (`.value()` on the host); env steps so far are update_step * num_envs *
    unroll_length * action_repeat (the train/env_steps metric is that product in
    float32: it never wraps, and the CLI's logs write it exactly from the host).
  last_episode_return, last_episode_cost: [] the latest batch means, carried so the
    metrics stay finite in updates where no episode completed.
  cumulative_cost: RunningSum of the cost of every env step trained on (the metric
    train/cumulative_cost). A run resumed from a checkpoint written before this leaf
    existed counts from the resume (experiments/rundir.py fills it with zeros).
  config: the TrainConfig (family configs resolved) whose traced leaves this run uses.
  """

  learner: Any
  multiplier: Any
  normalizer: normalize.NormalizerState
  env_state: Any
  key: jax.Array
  update_step: Count
  last_episode_return: jax.Array
  last_episode_cost: jax.Array
  cumulative_cost: RunningSum
  config: TrainConfig


class Parts(struct.PyTreeNode):
  """What make_* share: the env, learner, multiplier and sizes (all static)."""

  env: Any = struct.field(pytree_node=False)
  wrap_env: Callable = struct.field(pytree_node=False)
  learner: base.Learner = struct.field(pytree_node=False)
  multiplier: multipliers.Multiplier = struct.field(pytree_node=False)
  obs_size: int = struct.field(pytree_node=False)
  action_size: int = struct.field(pytree_node=False)
  episode_length: int = struct.field(pytree_node=False)
  episode_steps: int = struct.field(pytree_node=False)
  shard: Callable = struct.field(pytree_node=False)

  def batched_env(self, config: TrainConfig) -> Any:
    """The batched, auto-resetting env under `config` (traced leaves allowed: an
    algorithm's env wrapper, e.g. Saute's, may read the cost limit)."""
    return jenvs.wrap(self.wrap_env(self.env, config, self.episode_length), config.num_envs,
                      self.episode_length, config.action_repeat)


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


def _no_wrap(env, config, episode_length):
  del config, episode_length
  return env


class Driver(NamedTuple):
  """What trains an algorithm: its registry entry's `Algorithm.driver` (ON_POLICY below, or
  jaxcrl/offpolicy/driver.py's DRIVER).

  make_nets(obs_size, action_size, config) -> the networks its learners take;
  check(config) -> None: ValueError naming a setting this driver cannot run
    (TrainConfig.validate calls it with the family configs resolved);
  make_init_update(parts, config) -> (init, update), from `make_parts`' output;
  replay_path: the `jax.tree_util.keystr` path of the replay buffer in the TrainState
    (what a run started with --no-checkpoint-buffer leaves out of its checkpoints), or
    None for a driver without one.
  """

  make_nets: Callable
  check: Callable
  make_init_update: Callable
  replay_path: str | None


def make_parts(env: Env, config: TrainConfig) -> tuple[Parts, TrainConfig]:
  """-> (parts, config validated, with its family configs resolved): the env wrapper,
  the networks (from the algorithm's driver), learner, multiplier and sizes."""
  config = algorithms.resolve(config.validate())
  episode_length = config.episode_length or getattr(env, "episode_length", 1000)
  algo = algorithms.get(config.algo)
  wrap_env = algo.wrap_env or _no_wrap
  obs_size = wrap_env(env, config, episode_length).observation_size
  if not isinstance(obs_size, int):
    raise ValueError(f"observation_size must be an int (flat observations), got {obs_size!r}")
  nets = algo.driver.make_nets(obs_size, env.action_size, config)
  episode_steps = max(episode_length // config.action_repeat, 1)
  parts = Parts(
      env=env,
      wrap_env=wrap_env,
      learner=algo.make_learner(nets, config, episode_steps),
      multiplier=algo.make_multiplier(obs_size, config, episode_steps),
      obs_size=obs_size,
      action_size=env.action_size,
      episode_length=episode_length,
      episode_steps=episode_steps,
      shard=_make_shard(config.num_envs),
  )
  return parts, config


def _actor_critic_nets(obs_size: int, action_size: int, config: TrainConfig) -> base.Nets:
  """The on-policy learners' networks: a Gaussian policy and a state-value net (the reward
  and the cost critic are two parameter sets of it)."""
  return base.Nets(
      policy=networks.make_policy(obs_size, action_size, config.policy_hidden,
                                  config.activation),
      value=networks.make_value(obs_size, config.value_hidden, config.activation))


def _check_minibatches(config: TrainConfig) -> None:
  """The on-policy batch must split into num_minibatches equal minibatches."""
  if config.batch_size % config.num_minibatches:
    raise ValueError(
        f"num_envs * unroll_length = {config.num_envs} * {config.unroll_length} = "
        f"{config.batch_size} is not divisible by num_minibatches={config.num_minibatches}; "
        f"choose num_minibatches among the divisors of {config.batch_size}")


def make_init(p: Parts, static: TrainConfig) -> Callable:
  """`init(key, config=None) -> TrainState` of both drivers: the learner's and the
  multiplier's states, a fresh normaliser, the batched env reset, zero counters. `config`
  may replace `static`'s traced leaves (the same static fields)."""

  def init(key: jax.Array, config: TrainConfig | None = None) -> TrainState:
    cfg = _check_config(config, static)
    key = _as_typed_key(key)
    key, k_learner, k_mult, k_env = jax.random.split(key, 4)
    zero = jnp.zeros((), jnp.float32)
    return TrainState(
        learner=p.learner.init(k_learner, cfg),
        multiplier=p.multiplier.init(k_mult, cfg),
        normalizer=normalize.init(p.obs_size),
        env_state=p.shard(p.batched_env(cfg).reset(k_env)),
        key=key,
        update_step=Count.zeros(),
        last_episode_return=zero,
        last_episode_cost=zero,
        cumulative_cost=RunningSum.zeros(),
        config=cfg,
    )

  return init


def _check_config(config: TrainConfig | None, base_config: TrainConfig) -> TrainConfig:
  if config is None:
    config = base_config
  else:
    config = algorithms.resolve(config)
    ours, theirs = static_fields(base_config), static_fields(config)
    diff = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
    if diff:
      raise ValueError(f"config differs in static field(s) {diff} from the config given "
                       "to make_*; build a new init/update for those")
  # float32 leaves, so Python floats and arrays give one trace.
  return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), config)


def rollout(parts: Parts, env: Any, learner_state: Any, normalizer, env_state, key,
            config: TrainConfig) -> tuple[Any, Transition]:
  """One unroll of config.unroll_length agent steps of the batched `env` with the
  learner's policy: -> (env_state, Transition [T, B])."""

  def step(env_state, key_t):
    obs = env_state.obs
    loc, scale = parts.learner.policy(
        learner_state, normalize.apply(normalizer, obs, config.normalize_observations))
    action = loc + scale * jax.random.normal(key_t, loc.shape)
    nstate = parts.shard(env.step(env_state, jnp.tanh(action)))
    truncation = nstate.info["truncation"]
    transition = Transition(
        obs=obs, action=action, reward=nstate.reward, cost=nstate.cost,
        done=nstate.done * (1.0 - truncation), truncation=truncation,
        final_obs=nstate.info["final_obs"],
        log_prob=losses.gaussian_log_prob(action, loc, scale),
        episode_return=nstate.info["episode_return"],
        episode_cost=nstate.info["episode_cost"],
        extras=PolicyExtras(loc=loc, scale=scale))
    return nstate, transition

  return jax.lax.scan(step, env_state, jax.random.split(key, config.unroll_length))


class Advantages(NamedTuple):
  """adv_r, adv_c, target_r, target_c: [T, B] GAE advantages and lambda-returns."""

  adv_r: jax.Array
  adv_c: jax.Array
  target_r: jax.Array
  target_c: jax.Array


def compute_advantages(parts: Parts, learner_state: Any, data: Transition, nobs: jax.Array,
                       nfinal: jax.Array, config: TrainConfig) -> Advantages:
  """GAE of reward and cost with the learner's two critics: nobs, nfinal [T, B, O]."""
  values, cost_values = parts.learner.values(learner_state, nobs)
  next_values, next_cost_values = parts.learner.values(learner_state, nfinal)
  adv_r, target_r = compute_gae(data.reward, values, next_values, data.done,
                                data.truncation, config.gamma, config.gae_lambda)
  adv_c, target_c = compute_gae(data.cost, cost_values, next_cost_values, data.done,
                                data.truncation, config.cost_gamma, config.gae_lambda)
  return Advantages(adv_r, adv_c, target_r, target_c)


class EpisodeStats(NamedTuple):
  """An update's episode bookkeeping ([] each): count of episodes ended in the batch;
  ep_return, ep_cost: their means (the previous update's while none ended); cost_rate:
  cost per env step; cost_estimate: the episode cost the multiplier sees (the batch's
  mean, or cost_rate x episode_length while no episode ended)."""

  count: jax.Array
  ep_return: jax.Array
  ep_cost: jax.Array
  cost_rate: jax.Array
  cost_estimate: jax.Array


def episode_stats(ended: jax.Array, episode_return: jax.Array, episode_cost: jax.Array,
                  cost: jax.Array, state: TrainState, action_repeat: int,
                  episode_length: int) -> EpisodeStats:
  """ended, episode_return, episode_cost, cost: [T, B] of a rollout (both drivers)."""
  count = ended.sum()
  some = count > 0
  safe_count = jnp.maximum(count, 1.0)
  ep_return = jnp.where(some, (ended * episode_return).sum() / safe_count,
                        state.last_episode_return)
  ep_cost_batch = (ended * episode_cost).sum() / safe_count
  cost_rate = cost.mean() / action_repeat
  cost_estimate = jnp.where(some, ep_cost_batch, cost_rate * episode_length)
  ep_cost = jnp.where(some, ep_cost_batch, state.last_episode_cost)
  return EpisodeStats(count, ep_return, ep_cost, cost_rate, cost_estimate)


def constraint_metrics(lam: jax.Array, w: jax.Array, cost_to_go: jax.Array,
                       mmetrics: dict[str, jax.Array]) -> dict[str, jax.Array]:
  """The constraint/* and lambda/* metrics and loss/multiplier of one update (both
  drivers): lam [N] the multiplier each sample was penalised with, w [] the state-wise
  threshold, cost_to_go [...] the estimate compared with it, mmetrics the multiplier's."""
  quantiles = jnp.quantile(lam, jnp.array([0.05, 0.5, 0.95]))
  return {
      "constraint/violation_frac": jnp.mean(cost_to_go > w),
      "constraint/threshold": w,
      "lambda/mean": lam.mean(),
      "lambda/max": lam.max(),
      "lambda/p05": quantiles[0],
      "lambda/p50": quantiles[1],
      "lambda/p95": quantiles[2],
      "loss/multiplier": mmetrics["loss/multiplier"],
  }


def progress_metrics(update_step: Count, cumulative_cost: RunningSum,
                     steps_per_update: int) -> dict[str, jax.Array]:
  """train/env_steps (float32: the CLI's logs write it exactly) and
  train/cumulative_cost after an update (both drivers)."""
  return {"train/env_steps": update_step.as_float() * float(steps_per_update),
          "train/cumulative_cost": cumulative_cost.total}


def make_init_update(env: Env, config: TrainConfig) -> tuple[Callable, Callable]:
  """Builds `init(key, config=None) -> TrainState` and `update(state) -> (state, metrics)`.

  `env` is an unbatched Brax-API env returning `envs.base.State`; it is wrapped here with
  the algorithm's env wrapper (if any) and `envs.wrap(env, num_envs, episode_length,
  action_repeat)`. `config` fixes the static fields; `init(key, config)` may pass another
  config with the same static fields (its traced leaves may be batched under vmap).
  `metrics` is a flat dict of [] float32 with the keys in METRIC_KEYS plus the learner's
  `extra_metric_keys`. The algorithm's driver (`Algorithm.driver`: ON_POLICY, or the
  off-policy one) builds them.
  """
  p, static = make_parts(env, config)
  return algorithms.get(static.algo).driver.make_init_update(p, static)


def _on_policy_init_update(p: Parts, static: TrainConfig) -> tuple[Callable, Callable]:
  """ON_POLICY's `make_init_update`: `update` is rollout -> advantages -> multiplier ->
  learner."""
  batch = static.batch_size
  steps_per_update = batch * static.action_repeat
  normalizing = static.normalize_observations
  init = make_init(p, static)

  def update(state: TrainState) -> tuple[TrainState, dict[str, jax.Array]]:
    """Rollout -> GAE (reward, cost) -> multiplier update -> learner update with the
    UPDATED multiplier, stop-gradiented per sample -> normaliser update."""
    cfg = state.config
    key, k_roll, k_mult, k_learn = jax.random.split(state.key, 4)
    env_state, data = rollout(p, p.batched_env(cfg), state.learner, state.normalizer,
                              state.env_state, k_roll, static)
    # The whole update sees observations normalised as the rollout saw them, so importance
    # ratios compare the same inputs; the statistics then absorb this batch for the next
    # rollout. (Updating them first, as Brax does, skews the first updates' ratios.)
    nobs = normalize.apply(state.normalizer, data.obs, normalizing)
    nfinal = normalize.apply(state.normalizer, data.final_obs, normalizing)
    normalizer = state.normalizer
    if normalizing:
      normalizer = normalize.update(normalizer, data.obs)
    adv = compute_advantages(p, state.learner, data, nobs, nfinal, cfg)

    count, ep_return, ep_cost, cost_rate, cost_estimate = episode_stats(
        jnp.maximum(data.done, data.truncation), data.episode_return, data.episode_cost,
        data.cost, state, static.action_repeat, p.episode_length)

    flat = lambda x: x.reshape((batch,) + x.shape[2:])
    mbatch = multipliers.MultiplierBatch(
        episode_cost=cost_estimate, obs=flat(nobs), cost_target=flat(adv.target_c))
    mstate, mmetrics = p.multiplier.update(state.multiplier, mbatch, k_mult, cfg)
    lam = jax.lax.stop_gradient(
        jnp.broadcast_to(p.multiplier.value(mstate, mbatch.obs, cfg), (batch,)))

    samples = base.Samples(
        obs=flat(nobs), action=flat(data.action), log_prob=flat(data.log_prob),
        loc=flat(data.extras.loc), scale=flat(data.extras.scale), adv_r=flat(adv.adv_r),
        adv_c=flat(adv.adv_c), target_r=flat(adv.target_r), target_c=flat(adv.target_c))
    learner_state, lmetrics = p.learner.update(
        state.learner, base.LearnerBatch(samples=samples, episode_cost=cost_estimate), lam,
        k_learn, cfg)

    w = p.multiplier.threshold(mstate, cfg)
    update_step = state.update_step.add(1)
    # data.cost is per agent step: already the sum over its action repeats.
    cumulative_cost = state.cumulative_cost.add(data.cost.sum())
    metrics = {
        "episode/return": ep_return,
        "episode/cost": ep_cost,
        "episode/cost_rate": cost_rate,
        "episode/count": count,
        **constraint_metrics(lam, w, adv.target_c, mmetrics),
        **progress_metrics(update_step, cumulative_cost, steps_per_update),
        **lmetrics,
    }
    metrics = {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}
    new_state = state.replace(
        learner=learner_state, multiplier=mstate, normalizer=normalizer,
        env_state=env_state, key=key, update_step=update_step,
        last_episode_return=ep_return, last_episode_cost=ep_cost,
        cumulative_cost=cumulative_cost)
    return new_state, metrics

  return init, update


ON_POLICY = Driver(make_nets=_actor_critic_nets, check=_check_minibatches,
                   make_init_update=_on_policy_init_update, replay_path=None)


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

  obs is what the algorithm's policy sees (for Saute, the env's observation with the
  budget appended; `make_env` gives that env). deterministic=True returns tanh(mean);
  it must be a Python bool (static under jit).
  """
  parts, static = make_parts(env, config)

  def act(state: TrainState, obs: jax.Array, key: jax.Array,
          deterministic: bool = False) -> jax.Array:
    nobs = normalize.apply(state.normalizer, obs, static.normalize_observations)
    loc, scale = parts.learner.policy(state.learner, nobs)
    if deterministic:
      return jnp.tanh(loc)
    return jnp.tanh(loc + scale * jax.random.normal(_as_typed_key(key), loc.shape))

  return act


def metric_keys(env: Env, config: TrainConfig) -> tuple[str, ...]:
  """The keys of `update`'s metrics for this algorithm: METRIC_KEYS and its learner's
  `extra_metric_keys` (e.g. cpo/case)."""
  parts, _ = make_parts(env, config)
  return METRIC_KEYS + tuple(parts.learner.extra_metric_keys)


def make_env(env: Env, config: TrainConfig) -> Env:
  """The unbatched env the algorithm's policy acts in: `env` itself, or wrapped by the
  algorithm's env wrapper (Saute) under `config`."""
  parts, static = make_parts(env, config)
  return parts.wrap_env(env, static, parts.episode_length)


def make_lambda(env: Env, config: TrainConfig) -> Callable:
  """`lam(state, obs[B, O]) -> [B]`: the multiplier each state is penalised with (scalar
  algorithms broadcast their lambda; algorithms without one give zeros)."""
  parts, static = make_parts(env, config)

  def lam(state: TrainState, obs: jax.Array) -> jax.Array:
    nobs = normalize.apply(state.normalizer, obs, static.normalize_observations)
    value = parts.multiplier.value(state.multiplier, nobs, state.config)
    return jnp.broadcast_to(value, obs.shape[:1])

  return lam
