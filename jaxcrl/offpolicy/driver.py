"""The off-policy driver: `init(key, config=None) -> TrainState` and
`update(state) -> (state, metrics)` for the SAC-family algorithms, with the signatures, the
TrainState class and the metric keys of jaxcrl/train.py's on-policy driver, so run folders,
checkpoints, resume, evaluation and sweeps treat both alike. `jaxcrl.make_init_update`
reaches it through the registry (`Algorithm.driver`).

One update:
  1. unroll_length vectorised steps of num_envs envs (Transitions into the replay buffer,
     which lives in TrainState.learner); while the buffer holds fewer than warmup_steps
     transitions the actions are uniform in [-1, 1] and steps 3-4 change nothing;
  2. the observation normaliser absorbs the new observations (the buffer keeps raw ones;
     every sample is normalised with the current statistics, as Brax's SAC does);
  3. utd_ratio x unroll_length gradient steps (the learner's `update`), each on
     batch_size transitions sampled uniformly from the buffer and penalised with the
     multiplier's lambda at the minibatch's states;
  4. the multiplier's update (discarded while warming up, and for the first
     multiplier_delay updates after): J_c is this rollout's episode cost (or its cost
     rate x episode length when no episode ended); the states are the last minibatch's and
     their cost target the Q_c(s, a), a ~ pi(s), its actor step computed (no extra pass),
     so a state-wise lambda(s) ascends on the critic's cost-to-go of the current policy.
utd_ratio is gradient steps per vectorised env step, Brax's grad_updates_per_step: with
unroll_length 1 an update is one training step of Brax's SAC.

Metrics: train.METRIC_KEYS plus the learner's (sac/*). Where the on-policy meaning needs a
rollout estimate the off-policy one uses the critic: constraint/violation_frac is the
share of the multiplier's states with Q_c(s, pi(s)) > w, lambda/* are over those states,
loss/value_cost is the cost critic's TD loss, policy/kl is KL(behaviour || updated policy)
on this rollout's states, policy/sgd_steps the gradient steps taken (0 while warming up).
"""

from __future__ import annotations

import os
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from brax.envs.base import Env

from jaxcrl import losses, multipliers, networks, normalize, train
from jaxcrl.config import TrainConfig
from jaxcrl.offpolicy import replay, sac
from jaxcrl.types import PolicyExtras


class Step(NamedTuple):
  """One unroll, time-major [T, B]: experience (what the buffer keeps), truncation,
  episode_return, episode_cost (completed totals where the episode ended), extras (the
  behaviour policy's Gaussian, for policy/kl and policy/entropy)."""

  experience: sac.Experience
  truncation: jax.Array
  episode_return: jax.Array
  episode_cost: jax.Array
  extras: PolicyExtras


def make_nets(obs_size: int, action_size: int, config: TrainConfig) -> sac.Nets:
  """The SAC-family networks: a Gaussian policy, twin reward Q heads, cost_critics cost Q
  heads."""
  return sac.Nets(
      policy=networks.make_policy(obs_size, action_size, config.policy_hidden,
                                  config.activation),
      reward_critic=networks.make_q(obs_size, action_size, config.value_hidden,
                                    config.activation, heads=2),
      cost_critic=networks.make_q(obs_size, action_size, config.value_hidden,
                                  config.activation, heads=config.learner.cost_critics),
      obs_size=obs_size, action_size=action_size)


def check(config: TrainConfig) -> None:
  """The buffer must hold at least one update's transitions."""
  if config.learner.buffer_size < config.batch_size:
    raise ValueError(
        f"buffer_size={config.learner.buffer_size} is less than one update's transitions, "
        f"num_envs * unroll_length = {config.batch_size}; raise --buffer-size")


def replay_bytes(obs_size: int, action_size: int, buffer_size: int) -> int:
  """Bytes of one member's replay buffer."""
  return buffer_size * replay.item_bytes(sac.experience_example(obs_size, action_size))


def available_bytes() -> int:
  """Memory the state can still take: the default device's free memory (accelerators), or
  the host's available memory (CPU: /proc/meminfo's MemAvailable)."""
  device = jax.devices()[0]
  if device.platform != "cpu":
    stats = device.memory_stats() or {}
    if "bytes_limit" in stats:
      return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(env: Env, config: TrainConfig, members: int = 1) -> None:
  """ValueError, before anything is allocated, if `members` replay buffers of `config`
  would not fit: training holds the state twice (the chunk's input and output), so
  2 x buffer x members must fit in `available_bytes()`. Names the bytes and --buffer-size."""
  _check_memory(*train.make_parts(env, config), members)


def _check_memory(parts: Any, static: TrainConfig, members: int) -> None:
  size = static.learner.buffer_size
  one = replay_bytes(parts.obs_size, parts.action_size, size)
  need, free = 2 * one * members, available_bytes()
  if need > free:
    fits = max(int(size * free / need), 0)
    raise ValueError(
        f"the replay buffer of {size} transitions x {one // size} bytes x {members} "
        f"member(s) = {one * members / 2**30:.2f} GiB, held twice while training "
        f"({need / 2**30:.2f} GiB), does not fit in the {free / 2**30:.2f} GiB available; "
        f"lower --buffer-size (at most about {fits} fits)")


def rollout(parts: Any, env: Any, lstate: Any, normalizer, env_state, key, warm: jax.Array,
            config: TrainConfig) -> tuple[Any, Step]:
  """config.unroll_length agent steps of the batched `env`: actions tanh(loc + scale eps)
  from the learner's policy, or uniform in [-1, 1] where `warm` ([] bool) -> (env_state,
  Step [T, B])."""

  def step(env_state, key_t):
    k_policy, k_uniform = jax.random.split(key_t)
    obs = env_state.obs
    loc, scale = parts.learner.policy(
        lstate, normalize.apply(normalizer, obs, config.normalize_observations))
    action = jnp.where(warm, jax.random.uniform(k_uniform, loc.shape, minval=-1.0, maxval=1.0),
                       jnp.tanh(loc + scale * jax.random.normal(k_policy, loc.shape)))
    nstate = parts.shard(env.step(env_state, action))
    truncation = nstate.info["truncation"]
    experience = sac.Experience(
        obs=obs, action=action, reward=nstate.reward, cost=nstate.cost,
        terminated=nstate.done * (1.0 - truncation), next_obs=nstate.info["final_obs"])
    return nstate, Step(experience=experience, truncation=truncation,
                        episode_return=nstate.info["episode_return"],
                        episode_cost=nstate.info["episode_cost"],
                        extras=PolicyExtras(loc=loc, scale=scale))

  return jax.lax.scan(step, env_state, jax.random.split(key, config.unroll_length))


def _where(flag: jax.Array, new: Any, old: Any) -> Any:
  return jax.tree.map(lambda n, o: jnp.where(flag, n, o), new, old)


def _normalized(normalizer, batch: sac.Experience, enabled: bool) -> sac.Experience:
  return batch._replace(obs=normalize.apply(normalizer, batch.obs, enabled),
                        next_obs=normalize.apply(normalizer, batch.next_obs, enabled))


def make_init_update(p: train.Parts, static: TrainConfig) -> tuple[Callable, Callable]:
  """`init(key, config=None) -> TrainState`, `update(state) -> (state, metrics)` (see the
  module docstring) from `train.make_parts`' output; `jaxcrl.train.make_init_update`
  dispatches here. ValueError if one member's replay buffer would not fit in memory
  (`check_memory`)."""
  _check_memory(p, static, members=1)
  lconfig = static.learner
  batch_size = lconfig.batch_size
  grad_steps = lconfig.utd_ratio * static.unroll_length
  steps_per_update = static.batch_size * static.action_repeat
  normalizing = static.normalize_observations
  flat = lambda x: x.reshape((static.batch_size,) + x.shape[2:])
  # The first update that learns (the buffer holds warmup_steps before its insert), plus the
  # delay: the first update whose multiplier step is kept.
  multiplier_start = float(-(-lconfig.warmup_steps // static.batch_size)
                           + lconfig.multiplier_delay)
  init = train.make_init(p, static)

  def update(state: train.TrainState) -> tuple[train.TrainState, dict[str, jax.Array]]:
    cfg = state.config
    key, k_roll, k_learn, k_mult = jax.random.split(state.key, 4)
    learning = state.learner.replay.size >= lconfig.warmup_steps
    env_state, data = rollout(p, p.batched_env(cfg), state.learner, state.normalizer,
                              state.env_state, k_roll, ~learning, static)
    buffer = replay.insert(state.learner.replay, jax.tree.map(flat, data.experience))
    normalizer = state.normalizer
    if normalizing:
      normalizer = normalize.update(normalizer, data.experience.obs)

    count, ep_return, ep_cost, cost_rate, cost_estimate = train.episode_stats(
        jnp.maximum(data.experience.terminated, data.truncation), data.episode_return,
        data.episode_cost, data.experience.cost, state, static.action_repeat,
        p.episode_length)

    def gradient_step(carry, key_g):
      core, _, _ = carry
      k_sample, k_step = jax.random.split(key_g)
      mb = _normalized(normalizer, replay.sample(buffer, k_sample, batch_size), normalizing)
      lam = jax.lax.stop_gradient(jnp.broadcast_to(
          p.multiplier.value(state.multiplier, mb.obs, cfg), (batch_size,)))
      core, metrics, q_cost = p.learner.update(core, mb, lam, k_step, cfg)
      return (core, mb.obs, q_cost), metrics

    core = state.learner.replace(replay=None)  # the gradient steps read the buffer, never write
    (stepped, mobs, q_cost), lmetrics = jax.lax.scan(
        gradient_step, (core, jnp.zeros((batch_size, p.obs_size)), jnp.zeros((batch_size,))),
        jax.random.split(k_learn, grad_steps))
    core = _where(learning, stepped, core)
    lmetrics = jax.tree.map(jnp.mean, lmetrics)

    mbatch = multipliers.MultiplierBatch(episode_cost=cost_estimate, obs=mobs,
                                         cost_target=q_cost)
    mstate, mmetrics = p.multiplier.update(state.multiplier, mbatch, k_mult, cfg)
    mstate = _where(learning & (state.update_step.as_float() >= multiplier_start), mstate,
                    state.multiplier)

    nobs = normalize.apply(state.normalizer, data.experience.obs, normalizing)
    loc, scale = p.learner.policy(core, nobs)
    kl = losses.gaussian_kl(data.extras.loc, data.extras.scale, loc, scale).mean()
    lam = jnp.broadcast_to(p.multiplier.value(mstate, mobs, cfg), (batch_size,))
    w = p.multiplier.threshold(mstate, cfg)
    update_step = state.update_step.add(1)
    cumulative_cost = state.cumulative_cost.add(data.experience.cost.sum())
    metrics = {
        "episode/return": ep_return,
        "episode/cost": ep_cost,
        "episode/cost_rate": cost_rate,
        "episode/count": count,
        **train.constraint_metrics(lam, w, q_cost, mmetrics),
        "policy/kl": kl,
        "policy/entropy": losses.gaussian_entropy(data.extras.scale).mean(),
        "policy/sgd_steps": learning * float(grad_steps),
        "sac/alpha": jnp.exp(core.log_alpha),
        "sac/buffer_size": buffer.size,
        **train.progress_metrics(update_step, cumulative_cost, steps_per_update),
        **lmetrics,
    }
    metrics = {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}
    new_state = state.replace(
        learner=core.replace(replay=buffer), multiplier=mstate, normalizer=normalizer,
        env_state=env_state, key=key, update_step=update_step,
        last_episode_return=ep_return, last_episode_cost=ep_cost,
        cumulative_cost=cumulative_cost)
    return new_state, metrics

  return init, update


DRIVER = train.Driver(make_nets=make_nets, check=check, make_init_update=make_init_update,
                      replay_path=".learner.replay")
