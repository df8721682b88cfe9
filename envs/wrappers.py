"""Training wrappers that keep `State.cost`: action repeat, episodes, vmap + auto-reset.

`wrap(env, num_envs=B, episode_length=T)` gives the batched env the jaxcrl trainer uses:

  reset(key) -> State with leading batch axis [B]; `key` is ONE key (typed or legacy
    uint32), split here into B keys. The batch size is a constructor argument and is never
    read off the key's shape (Brax's wrappers do that, which breaks on typed keys).
  step(state, action[B, A]) -> State[B]. When an env's episode ends the returned state
    already holds a fresh reset (a new random layout, not a replay of the first one), while
    `reward`, `cost`, `done`, `metrics` and the `info` entries below describe the step that
    just ended. Bootstrapping a truncated step uses `info['final_obs']`.

info entries (each [B]):
  steps: int32, env steps taken in the current episode (counting action repeats).
  truncation: float32, 1.0 when the episode was cut by the time limit and not terminated.
  episode_return, episode_cost: float32, sums over the episode so far, including this step;
    read them where `done` is 1 to get completed-episode totals. episode_return sums the
    TASK's reward: an inner wrapper that reshapes the reward the agent learns from (e.g.
    jaxcrl.saute) puts the task's own in `info['task_reward']`, and that is summed.
  final_obs: [B, obs_size], the observation reached by this step, before any reset.
  reset_key: the key the next auto-reset of this env will use.

Brax's `ppo.train` does not use these wrappers: it applies `brax.envs.training.wrap`, which
passes `cost` through unchanged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.envs.base import Env, Wrapper

from envs.base import State

EPISODE_KEYS = ("steps", "truncation", "episode_return", "episode_cost")
TASK_REWARD = "task_reward"


def reset_batch(env: Env, keys: jax.Array) -> State:
  """State[B] for keys [B]: the env's own `reset_batch` where its class defines one, else
  `jax.vmap(env.reset)`.

  Navigation tasks define one that pools layout restarts over the batch. The method is looked
  up on the class, not the instance, because Brax's `Wrapper` forwards unknown attributes to
  the env inside it: a wrapper that changes `reset` without defining `reset_batch` must not
  reach past itself. Every wrapper here defines both.
  """
  if getattr(type(env), "reset_batch", None) is None:
    return jax.vmap(env.reset)(keys)
  return env.reset_batch(keys)


def task_reward(state: State) -> jax.Array:
  """The task's own reward of the step: info['task_reward'] where a wrapper reshaped the
  reward, else the reward."""
  return state.info.get(TASK_REWARD, state.reward)


class ActionRepeat(Wrapper):
  """Repeats each action `repeats` times, summing reward, cost and the task reward."""

  def __init__(self, env: Env, repeats: int):
    if repeats < 1:
      raise ValueError(f"action_repeat must be >= 1, got {repeats}")
    super().__init__(env)
    self.repeats = repeats

  def reset_batch(self, keys: jax.Array) -> State:
    return reset_batch(self.env, keys)

  def step(self, state: State, action: jax.Array) -> State:
    if self.repeats == 1:
      return self.env.step(state, action)

    def one(carry, _):
      nstate = self.env.step(carry, action)
      return nstate, (nstate.reward, nstate.cost, nstate.done, task_reward(nstate))

    state, (rewards, costs, dones, task) = jax.lax.scan(one, state, None, self.repeats)
    info = state.info
    if TASK_REWARD in info:
      info = {**info, TASK_REWARD: task.sum(0)}
    return state.replace(
        reward=rewards.sum(0), cost=costs.sum(0), done=dones.max(0), info=info
    )


class EpisodeWrapper(Wrapper):
  """Ends episodes after `episode_length` env steps and accumulates return and cost.

  Works on one (unbatched) env; `action_repeat` is how many env steps one call advances.
  """

  def __init__(self, env: Env, episode_length: int, action_repeat: int = 1):
    if episode_length < 1:
      raise ValueError(f"episode_length must be >= 1, got {episode_length}")
    super().__init__(env)
    self.episode_length = episode_length
    self.action_repeat = action_repeat

  def reset(self, key: jax.Array) -> State:
    return self._start(self.env.reset(key))

  def reset_batch(self, keys: jax.Array) -> State:
    return jax.vmap(self._start)(reset_batch(self.env, keys))

  def _start(self, state: State) -> State:
    zero = jnp.zeros((), jnp.float32)
    info = {
        **state.info,
        "steps": jnp.zeros((), jnp.int32),
        "truncation": zero,
        "episode_return": zero,
        "episode_cost": zero,
    }
    return state.replace(info=info)

  def step(self, state: State, action: jax.Array) -> State:
    # A step that follows a finished episode starts the counters afresh.
    fresh = state.done > 0
    prev = {k: jnp.where(fresh, jnp.zeros_like(state.info[k]), state.info[k])
            for k in ("steps", "episode_return", "episode_cost")}
    nstate = self.env.step(state, action)
    steps = prev["steps"] + self.action_repeat
    timeout = steps >= self.episode_length
    terminated = nstate.done > 0
    info = {
        **nstate.info,
        "steps": steps,
        "truncation": jnp.where(timeout & ~terminated, 1.0, 0.0).astype(jnp.float32),
        "episode_return": prev["episode_return"] + task_reward(nstate),
        "episode_cost": prev["episode_cost"] + nstate.cost,
    }
    done = jnp.where(timeout | terminated, 1.0, 0.0).astype(nstate.done.dtype)
    return nstate.replace(done=done, info=info)


class AutoResetVmapWrapper(Wrapper):
  """Runs `num_envs` copies of `env` and resets each one when its episode ends.

  A reset draws a new initial state from the env's own `reset` with a fresh key, so
  navigation layouts differ between episodes. The batch reset runs under `lax.cond` only
  on steps where some env finished, so synchronised time limits cost one reset per episode.
  """

  def __init__(self, env: Env, num_envs: int):
    if num_envs < 1:
      raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    super().__init__(env)
    self.num_envs = num_envs

  def _reset_many(self, keys: jax.Array) -> State:
    """State[B] reset from keys [B], each env keeping its next reset's key."""
    pairs = jax.vmap(jax.random.split)(keys)
    state = reset_batch(self.env, pairs[:, 0])
    return state.replace(
        info={**state.info, "final_obs": state.obs, "reset_key": pairs[:, 1]}
    )

  def reset(self, key: jax.Array) -> State:
    return self._reset_many(jax.random.split(key, self.num_envs))

  def step(self, state: State, action: jax.Array) -> State:
    stepped = jax.vmap(self.env.step)(state, action)
    stepped = stepped.replace(
        info={**stepped.info, "final_obs": stepped.obs}
    )
    return self._reset_where_done(stepped)

  def _reset_done(self, s: State) -> State:
    """State[B] with every done env replaced by a fresh reset (computed for all B)."""
    fresh = self._reset_many(s.info["reset_key"])
    kept = {k: s.info[k] for k in EPISODE_KEYS + ("final_obs",) if k in s.info}
    fresh = fresh.replace(
        reward=s.reward, cost=s.cost, done=s.done, metrics=s.metrics,
        info={**fresh.info, **kept},
    )
    done = s.done > 0

    def pick(new, old):
      mask = done.reshape(done.shape + (1,) * (old.ndim - done.ndim))
      return jnp.where(mask, new, old)

    return jax.tree.map(pick, fresh, s)

  def _reset_where_done(self, s: State) -> State:
    """Resets the done envs of State[B], skipping the reset on steps where none is done.

    The skip is a `lax.cond` on `any(done)`. Under an outer `jax.vmap` (the trainer's
    members: seeds x limits) a batched predicate would turn that cond into a select that
    computes the batch reset on every step, which costs more than the step itself (80x on
    PointButton0). `batch_any_cond` keeps one cond over all vmapped copies instead.
    """
    return batch_any_cond(s.done > 0, self._reset_done, s)


def batch_any_cond(pred: jax.Array, fn, operand):
  """`fn(operand)` if any element of `pred` is true, else `operand`; also under `jax.vmap`.

  A `lax.cond` whose predicate is batched by `vmap` becomes a select that evaluates `fn`
  every time. Here the vmapped copies share one cond: whenever any copy needs `fn`, it runs
  on every copy (`jax.vmap` over them, each seeing only its own operand) and each copy keeps
  its result only where its own `pred` has a true element, as it would alone.

  Args:
    pred: [B] bool. operand: pytree whose leaves lead with the same axis B.
    fn: operand -> operand of the same structure.
  """

  def apply(pred, operand):
    new = jax.vmap(fn)(operand)
    need = jnp.any(pred, axis=1)
    return jax.tree.map(
        lambda n, o: jnp.where(need.reshape(need.shape + (1,) * (o.ndim - 1)), n, o),
        new, operand)

  # Leaves carry a copies axis G in front: [G, B, ...]; nested vmaps fold into it.
  @jax.custom_batching.custom_vmap
  def run(pred, operand):
    return jax.lax.cond(jnp.any(pred), apply, lambda _, x: x, pred, operand)

  @run.def_vmap
  def _rule(axis_size, in_batched, pred, operand):
    def fold(x, batched):
      x = x if batched else jnp.broadcast_to(x, (axis_size,) + x.shape)
      return x.reshape((x.shape[0] * x.shape[1],) + x.shape[2:])

    out = run(*jax.tree.map(fold, (pred, operand), tuple(in_batched)))
    out = jax.tree.map(
        lambda x: x.reshape((axis_size, x.shape[0] // axis_size) + x.shape[1:]), out)
    return out, jax.tree.map(lambda _: True, out)

  out = run(pred[None], jax.tree.map(lambda x: x[None], operand))
  return jax.tree.map(lambda x: x[0], out)


def wrap(
    env: Env,
    num_envs: int,
    episode_length: int | None = None,
    action_repeat: int = 1,
) -> Env:
  """The batched, auto-resetting, time-limited env used for training.

  Args:
    env: an unbatched env whose `step` returns `envs.base.State`.
    num_envs: batch size B.
    episode_length: env steps per episode; defaults to `env.episode_length` (1000 for
      Safety-Gym tasks, 500 for Circle).
    action_repeat: env steps per agent action.
  """
  if episode_length is None:
    episode_length = getattr(env, "episode_length", 1000)
  env = ActionRepeat(env, action_repeat)
  env = EpisodeWrapper(env, episode_length, action_repeat)
  return AutoResetVmapWrapper(env, num_envs)
