"""envs.wrappers on the physics-free CountingCostEnv: time limits, resets, sums, keys."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from tests.cost_envs import CountingCostEnv

B = 3


def _run(benv, key, actions):
  """Resets, then steps through actions [T, B, 1] eagerly; returns [reset, step1, ...]."""
  states = [benv.reset(key)]
  for action in actions:
    states.append(benv.step(states[-1], action))
  return states


def _const(value, steps):
  return jnp.full((steps, B, 1), value, jnp.float32)


def test_truncation_keeps_final_obs_and_resets():
  benv = envs.wrap(CountingCostEnv(), num_envs=B, episode_length=3)
  s0, s1, s2, s3, s4 = _run(benv, jax.random.key(0), _const(0.25, 4))
  chex.assert_shape(s3.obs, (B, 2))
  np.testing.assert_array_equal(s1.done, 0.0)
  np.testing.assert_array_equal(s2.done, 0.0)
  np.testing.assert_array_equal(s3.done, 1.0)
  np.testing.assert_array_equal(s3.info["truncation"], 1.0)
  # The pre-reset obs: x0 + 3 * 0.25 after t = 3 steps.
  np.testing.assert_allclose(s3.info["final_obs"][:, 0], s0.obs[:, 0] + 0.75, rtol=1e-6)
  np.testing.assert_array_equal(s3.info["final_obs"][:, 1], 3.0)
  # obs is already a fresh reset: t = 0, a start x in [0, 0.1) drawn with a new key.
  np.testing.assert_array_equal(s3.obs[:, 1], 0.0)
  assert np.all((s3.obs[:, 0] >= 0.0) & (s3.obs[:, 0] < 0.1))
  assert not np.allclose(s3.obs[:, 0], s0.obs[:, 0])
  # The step after a reset starts a new episode.
  np.testing.assert_array_equal(s4.done, 0.0)
  np.testing.assert_array_equal(s4.info["steps"], 1)
  np.testing.assert_allclose(s4.info["episode_return"], 0.25)
  np.testing.assert_array_equal(s4.info["final_obs"], s4.obs)


def test_episode_return_and_cost_sum_over_the_episode():
  benv = envs.wrap(CountingCostEnv(), num_envs=B, episode_length=4)
  # Per-env actions: 0.75 costs 1 per step, 0.25 and -0.5 cost nothing.
  actions = jnp.tile(jnp.array([[0.75], [0.25], [-0.5]]), (4, 1, 1))
  states = _run(benv, jax.random.key(1), actions)
  for t, state in enumerate(states[1:], start=1):
    np.testing.assert_allclose(state.info["episode_return"], t * np.array([0.75, 0.25, -0.5]))
    np.testing.assert_allclose(state.info["episode_cost"], t * np.array([1.0, 0.0, 0.0]))
    np.testing.assert_array_equal(state.cost, [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(state.metrics["cost_big_step"], [1.0, 0.0, 0.0])
  np.testing.assert_array_equal(states[-1].done, 1.0)


def test_action_repeat_sums_reward_and_cost():
  benv = envs.wrap(CountingCostEnv(), num_envs=B, episode_length=4, action_repeat=2)
  s0, s1, s2 = _run(benv, jax.random.key(2), _const(0.75, 2))
  np.testing.assert_allclose(s1.reward, 1.5)  # 2 env steps x 0.75
  np.testing.assert_array_equal(s1.cost, 2.0)
  np.testing.assert_array_equal(s1.info["steps"], 2)
  np.testing.assert_array_equal(s1.obs[:, 1], 2.0)
  np.testing.assert_array_equal(s1.done, 0.0)
  # 2 calls x 2 repeats reach episode_length 4.
  np.testing.assert_array_equal(s2.done, 1.0)
  np.testing.assert_array_equal(s2.info["truncation"], 1.0)
  np.testing.assert_allclose(s2.info["episode_return"], 3.0)
  np.testing.assert_array_equal(s2.info["episode_cost"], 4.0)
  np.testing.assert_allclose(s2.info["final_obs"][:, 0], s0.obs[:, 0] + 3.0, rtol=1e-6)


def test_terminated_is_not_truncated():
  # x0 < 0.1, so with +0.6 per step x crosses 1.0 on step 2 exactly.
  benv = envs.wrap(CountingCostEnv(terminate_at=1.0), num_envs=B, episode_length=5)
  _, s1, s2 = _run(benv, jax.random.key(3), _const(0.6, 2))
  np.testing.assert_array_equal(s1.done, 0.0)
  np.testing.assert_array_equal(s2.done, 1.0)
  np.testing.assert_array_equal(s2.info["truncation"], 0.0)
  np.testing.assert_array_equal(s2.info["final_obs"][:, 1], 2.0)
  np.testing.assert_array_equal(s2.obs[:, 1], 0.0)


def test_termination_on_the_last_step_is_not_truncation():
  benv = envs.wrap(CountingCostEnv(terminate_at=1.0), num_envs=B, episode_length=2)
  _, _, s2 = _run(benv, jax.random.key(4), _const(0.6, 2))
  np.testing.assert_array_equal(s2.done, 1.0)
  np.testing.assert_array_equal(s2.info["truncation"], 0.0)


def test_episode_length_defaults_to_the_env_attribute():
  benv = envs.wrap(CountingCostEnv(episode_length=2), num_envs=B)
  _, s1, s2 = _run(benv, jax.random.key(5), _const(0.1, 2))
  np.testing.assert_array_equal(s1.done, 0.0)
  np.testing.assert_array_equal(s2.info["truncation"], 1.0)


@pytest.mark.parametrize("make_key", [jax.random.key, jax.random.PRNGKey],
                         ids=["typed", "legacy_uint32"])
def test_typed_and_legacy_keys(make_key):
  benv = envs.wrap(CountingCostEnv(), num_envs=B, episode_length=2)
  states = _run(benv, make_key(6), _const(0.1, 3))
  chex.assert_shape(states[-1].obs, (B, 2))
  # Both key kinds hold the same bits, so they draw the same starts and auto-resets.
  typed = _run(benv, jax.random.key(6), _const(0.1, 3))
  for ours, ref in zip(states, typed):
    np.testing.assert_array_equal(ours.obs, ref.obs)


def test_jitted_reset_and_step_trace_once():
  benv = envs.wrap(CountingCostEnv(terminate_at=0.5), num_envs=B, episode_length=3)
  reset = jax.jit(chex.assert_max_traces(benv.reset, n=1))
  step = jax.jit(chex.assert_max_traces(benv.step, n=1))
  state = reset(jax.random.key(7))
  # Steps that terminate, truncate and continue all reuse one trace.
  for action in _const(0.2, 7):
    state = step(state, action)
  chex.assert_tree_all_finite((state.obs, state.reward, state.cost, state.info["final_obs"]))
  reset(jax.random.key(8))


def test_same_key_same_states_different_key_different_starts():
  benv = envs.wrap(CountingCostEnv(terminate_at=0.5), num_envs=B, episode_length=3)
  actions = _const(0.2, 5)
  first = _run(benv, jax.random.key(9), actions)
  again = _run(benv, jax.random.key(9), actions)
  for a, b in zip(first, again):
    chex.assert_trees_all_equal(a, b)
  other = _run(benv, jax.random.key(10), actions)
  assert not np.allclose(other[0].obs, first[0].obs)
  # Each of the B envs draws its own start.
  assert len(np.unique(np.asarray(first[0].obs[:, 0]))) == B


@pytest.mark.parametrize("kwargs", [{"num_envs": 0}, {"num_envs": 2, "episode_length": 0},
                                    {"num_envs": 2, "action_repeat": 0}])
def test_bad_sizes_raise(kwargs):
  with pytest.raises(ValueError, match=">= 1"):
    envs.wrap(CountingCostEnv(), **kwargs)


def test_batch_any_cond_runs_fn_only_when_some_copy_needs_it_under_vmap():
  calls = []

  def fn(x):
    jax.debug.callback(lambda: calls.append(1))
    return x + jnp.sum(x) + 1.0  # a whole-batch function: copies must not see each other

  f = jax.jit(jax.vmap(jax.vmap(lambda p, x: envs.wrappers.batch_any_cond(p, fn, x))))
  x = jnp.zeros((2, 3, B)).at[0, 1, 2].set(5.0)
  none = jnp.zeros((2, 3, B), bool)
  out = f(none, x)
  jax.effects_barrier()
  assert calls == []  # a select would have evaluated fn
  np.testing.assert_array_equal(out, x)
  out = f(none.at[1, 2, 0].set(True), x)
  jax.effects_barrier()
  assert calls == [1]  # one cond over all 2 x 3 copies
  # Copy (1, 2) took fn of its own rows alone; the others kept theirs, as without vmap.
  expected = np.asarray(x).copy()
  expected[1, 2] += 1.0 + expected[1, 2].sum()
  np.testing.assert_array_equal(out, expected)
  out = f(none.at[0, 1, 1].set(True), x)
  expected = np.asarray(x).copy()
  expected[0, 1] += 1.0 + expected[0, 1].sum()  # the 5.0 in its rows reaches only them
  np.testing.assert_array_equal(out, expected)


def test_vmapped_members_step_as_they_do_alone():
  # Members end episodes at different steps (terminations), so some steps reset one member only.
  benv = envs.wrap(CountingCostEnv(terminate_at=0.5), num_envs=B, episode_length=3)
  keys = jax.random.split(jax.random.key(11), 2)
  actions = jnp.stack([_const(0.2, 6), _const(0.3, 6)], axis=1)  # [T, M, B, 1]
  step = jax.jit(jax.vmap(benv.step))
  states = jax.vmap(benv.reset)(keys)
  alone = [benv.reset(k) for k in keys]
  for action in actions:
    states = step(states, action)
    alone = [benv.step(s, a) for s, a in zip(alone, action)]
    chex.assert_trees_all_equal(states, jax.tree.map(lambda *x: jnp.stack(x), *alone))
