"""The trainer end to end on probe envs: shapes, traces, determinism, resume, sweeps."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
import jaxcrl
from jaxcrl.counters import Count, RunningSum

TINY = dict(num_envs=4, unroll_length=8, num_minibatches=2, num_epochs=2,
            num_timesteps=4 * 8 * 3, policy_hidden=(8,), value_hidden=(8,), cost_limit=0.5)


def small(algo: str, **settings) -> jaxcrl.TrainConfig:
  """TINY for `algo` (the state-wise multipliers get a small net and w = 1; the off-policy
  ones a 64-transition buffer, minibatches of 16 and a warm-up of 16 transitions)."""
  if jaxcrl.algorithms.is_statewise(algo):
    settings = {"multiplier_hidden": (8,), "statewise_threshold": 1.0, **settings}
  if jaxcrl.algorithms.is_off_policy(algo):
    settings = {"buffer_size": 64, "batch_size": 16, "warmup_steps": 16, **settings}
  return jaxcrl.make_config(algo, **{**TINY, **settings})


SMALL = small("ppo_lag")


def _env():
  return envs.make("ProbeTwoRegion", episode_length=5)


@pytest.fixture(scope="session")
def built():
  """algo -> (init, jitted update with a trace counter, config), compiled lazily."""
  cache = {}

  def get(algo):
    if algo not in cache:
      cfg = small(algo)
      init, update = jaxcrl.make_init_update(_env(), cfg)
      # chex counts traces per code location, shared by every algo's `update`.
      chex.clear_trace_counter()
      cache[algo] = (init, jax.jit(chex.assert_max_traces(update, n=1)), update, cfg)
    return cache[algo]

  return get


def _assert_trees_equal(a, b):
  for x, y in zip(jax.tree.leaves(_keyless(a)), jax.tree.leaves(_keyless(b))):
    np.testing.assert_array_equal(x, y)


def _keyless(tree):
  return jax.tree.map(
      lambda x: jax.random.key_data(x)
      if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x, tree)


# The trainer's own bookkeeping, for a scalar and a state-wise multiplier; every algorithm's
# shapes, traces, acting and lambda are in test_every_algorithm_... below.
@pytest.mark.parametrize("algo", ["ppo_lag", "ppo_statewise"])
def test_update_shapes_finite_single_trace(built, algo):
  init, update, _, cfg = built(algo)
  state = init(jax.random.key(0))
  for _ in range(3):
    state, metrics = update(state)
  assert set(metrics) == set(jaxcrl.metric_keys(_env(), cfg))
  for name, value in metrics.items():
    chex.assert_shape(value, (), custom_message=name)
  chex.assert_tree_all_finite((_keyless(state.replace(config=None)), metrics))
  assert state.update_step.value() == 3
  assert float(metrics["train/env_steps"]) == 3 * cfg.batch_size
  # update_step is a two-word count: past 2**31 - 1 updates it carries instead of
  # wrapping negative, and the env-steps metric keeps growing.
  _, late = update(state.replace(update_step=Count.of(2**31 - 1)))
  np.testing.assert_allclose(float(late["train/env_steps"]), 2**31 * cfg.batch_size,
                             rtol=1e-6)


def test_count_is_exact_past_int32_and_float32():
  """int32 wraps at 2**31, float32 skips odd integers past 2**24; Count does neither,
  under jit and vmap (2**30 - 1 + 1 carries into high; the host value is exact)."""
  add = jax.jit(lambda c: c.add(1))
  count = Count.of(2**31 - 2)
  for _ in range(3):
    count = add(count)
  assert count.value() == 2**31 + 1
  assert (int(count.high), int(count.low)) == (2, 1)   # 2 * 2**30 + 1
  count = jax.jit(jax.vmap(lambda c: c.add(7)))(
      jax.tree.map(lambda *x: jnp.stack(x), Count.of(2**24 + 1), Count.of(2**30 - 3)))
  np.testing.assert_array_equal(count.value(), [2**24 + 8, 2**30 + 4])
  chex.assert_shape((count.high, count.low), (2,))
  with pytest.raises(ValueError, match="out of range"):
    Count.of(-1)
  with pytest.raises(ValueError, match="out of range"):
    Count.zeros().add(2**30)


def test_cumulative_cost_counts_every_env_step_cost():
  """train/cumulative_cost sums each update's batch cost, action repeats included: with
  action_repeat 2 an agent step costs 0, 1 or 2 on ProbeTwoRegion, and the batch's cost is
  cost_rate (per env step) x batch x 2."""
  cfg = jaxcrl.make_config("ppo_lag", **{**TINY, "action_repeat": 2,
                                         "num_timesteps": 4 * 8 * 2 * 4})
  _, metrics = jax.jit(jaxcrl.make_train(_env(), cfg))(jax.random.key(6))
  total = np.asarray(metrics["train/cumulative_cost"], np.float64)
  per_update = np.asarray(metrics["episode/cost_rate"], np.float64) * cfg.batch_size * 2
  np.testing.assert_allclose(total, np.cumsum(per_update), rtol=1e-6)
  assert total[-1] > 0 and np.all(np.diff(total) >= 0)
  np.testing.assert_array_equal(total, np.round(total))   # unit costs: whole numbers
  assert np.all(total <= metrics["train/env_steps"])


def test_running_sum_keeps_counting_past_float32_integers():
  """float32 stops at 2**24 + 1 -> 2**24; the compensated sum does not, also under jit."""
  assert np.float32(2**24) + np.float32(1) == np.float32(2**24)
  add = jax.jit(lambda total, x: total.add(x))
  total = RunningSum(high=jnp.float32(2**24), low=jnp.float32(0))
  for _ in range(3):
    total = add(total, jnp.float32(1))
  assert float(total.high) + float(total.low) == 2**24 + 3
  chex.assert_shape((total.high, total.low), ())


def test_same_key_same_result_different_keys_differ(built):
  init, update, _, _ = built("ppo_statewise")
  a, ma = update(init(jax.random.key(7)))
  b, mb = update(init(jax.random.key(7)))
  _assert_trees_equal((a, ma), (b, mb))
  c, _ = update(init(jax.random.key(8)))
  assert not np.allclose(a.learner.policy_params["params"]["dense_0"]["kernel"],
                         c.learner.policy_params["params"]["dense_0"]["kernel"])


def test_jit_and_no_jit_agree(built):
  init, update, raw_update, _ = built("ppo_lag")
  state = init(jax.random.key(3))
  jitted = update(state)
  eager = raw_update(state)
  for x, y in zip(jax.tree.leaves(_keyless(jitted)), jax.tree.leaves(_keyless(eager))):
    np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


def test_resume_from_host_copy_is_bit_exact(built):
  """TrainState alone (copied to host and back, as a checkpoint would) resumes exactly."""
  init, update, _, _ = built("ppo_pid")
  state, _ = update(init(jax.random.key(4)))
  leaves, treedef = jax.tree.flatten(state)
  restored = jax.tree.unflatten(treedef, [
      jax.random.wrap_key_data(np.asarray(jax.random.key_data(x)))
      if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else jnp.asarray(np.asarray(x))
      for x in leaves])
  _assert_trees_equal(update(state), update(restored))


def test_target_kl_stops_the_epochs_early(built):
  """target_kl is traced: the compiled update stops once a step's KL exceeds it."""
  init, update, _, cfg = built("ppo_lag")
  all_steps = cfg.num_epochs * cfg.num_minibatches
  key = jax.random.key(5)
  full, m_full = update(init(key))
  assert float(m_full["policy/sgd_steps"]) == all_steps   # 0: never stops
  tiny = 1e-9  # the first step's KL is ~0 (same policy), every later one is larger
  stopped, m_stop = update(init(key, cfg.replace(learner=cfg.learner.replace(target_kl=tiny))))
  assert float(m_stop["policy/sgd_steps"]) == 1
  assert float(m_stop["policy/kl"]) <= tiny                # only steps under the target
  # The rollout and everything before the first step are the same.
  np.testing.assert_array_equal(m_stop["episode/cost_rate"], m_full["episode/cost_rate"])
  # One Adam step moved the policy, less than all_steps steps did.
  start = init(key).learner.policy_params
  moved = lambda p: sum(float(jnp.abs(a - b).sum()) for a, b in
                        zip(jax.tree.leaves(p), jax.tree.leaves(start)))
  assert 0.0 < moved(stopped.learner.policy_params) < moved(full.learner.policy_params)
  with pytest.raises(ValueError, match="target_kl must be >= 0, got -0.01"):
    jaxcrl.make_config("ppo_lag", target_kl=-0.01)


def test_init_accepts_legacy_key_and_traced_config_override(built):
  init, update, _, cfg = built("ppo_lag")
  state = init(jax.random.PRNGKey(0), dataclasses.replace(cfg, cost_limit=3.0))
  assert jnp.issubdtype(state.key.dtype, jax.dtypes.prng_key)
  np.testing.assert_allclose(state.config.cost_limit, 3.0)
  with pytest.raises(ValueError, match="static field"):
    init(jax.random.key(0), dataclasses.replace(cfg, num_envs=8))


@pytest.mark.parametrize("algo", jaxcrl.ALGOS)
def test_every_algorithm_trains_vmapped_over_seeds_and_cost_limits(algo):
  """jit(vmap(train)) over 2 seeds x 2 cost limits on the costly bandit, for every
  algorithm: shapes, finiteness, each member its own limit and seed; the Lagrangian ones
  raise lambda more under the tighter limit, the trust-region ones keep KL <= max_kl."""
  env = envs.make("ProbeCostlyBandit")
  own = {"lagrange_lr": 0.5} if algo in jaxcrl.algorithms.takers("lagrange_lr") else {}
  # The off-policy ones learn from the first update.
  warmup = {"warmup_steps": 0} if jaxcrl.algorithms.is_off_policy(algo) else {}
  cfg = small(algo, num_timesteps=4 * 8 * 4, **own, **warmup)
  chex.clear_trace_counter()
  train = jax.jit(jax.vmap(chex.assert_max_traces(jaxcrl.make_train(env, cfg), n=1)))
  limits, seeds = (0.1, 0.9), (0, 1)
  configs = [dataclasses.replace(cfg, cost_limit=d) for d in limits for _ in seeds]
  keys = jnp.stack([jax.random.key(s) for _ in limits for s in seeds])
  state, metrics = train(keys, jaxcrl.stack_configs(configs))
  train(keys, jaxcrl.stack_configs(configs[::-1]))   # other traced values: no new trace
  assert set(metrics) == set(jaxcrl.metric_keys(env, cfg))
  for name, value in metrics.items():
    chex.assert_shape(value, (4, cfg.num_updates), custom_message=name)
  # (The config is left out: NaN is a valid statewise_threshold, "derive w".)
  chex.assert_tree_all_finite((_keyless(state.replace(config=None)), metrics))
  np.testing.assert_allclose(state.config.cost_limit, [0.1, 0.1, 0.9, 0.9])
  assert not np.allclose(metrics["loss/policy"][0], metrics["loss/policy"][1])
  if own:
    assert metrics["lambda/mean"][0, -1] > metrics["lambda/mean"][2, -1]
  if algo in jaxcrl.algorithms.takers("max_kl"):
    assert np.all(np.asarray(metrics["policy/kl"]) <= cfg.learner.max_kl * (1 + 1e-6))
  # Acting and lambda of one member, on what its policy sees (Saute appends its budget).
  member = jax.tree.map(lambda x: x[0], state)
  obs = jnp.ones((3, jaxcrl.make_env(env, cfg).observation_size))
  act = jaxcrl.make_act(env, cfg)
  action = jax.jit(act, static_argnums=3)(member, obs, jax.random.key(1), False)
  chex.assert_shape(action, (3, 1))
  assert np.all(np.abs(action) <= 1.0)
  chex.assert_shape(act(member, obs, jax.random.key(1), True), (3, 1))
  lam = jaxcrl.make_lambda(env, cfg)(member, obs * jnp.arange(3.0)[:, None])
  chex.assert_shape(lam, (3,))
  assert np.all(lam >= 0)
  if not jaxcrl.algorithms.is_statewise(algo):
    np.testing.assert_allclose(lam, lam[0])          # scalar multipliers broadcast one value


def test_train_sweep_two_limits_by_two_seeds():
  sweep_two_limits_by_two_seeds(small("ppo_lag", lagrange_lr=0.5))


def sweep_two_limits_by_two_seeds(cfg: jaxcrl.TrainConfig):
  """jit(vmap(train)) of `cfg` on the costly bandit over 2 seeds x 2 cost limits: shapes,
  finiteness, each member its limit and seed, the tighter limit's larger multiplier, and
  member 3 equal to the same config trained on its own. -> the batched final TrainState."""
  env = envs.make("ProbeCostlyBandit")
  train = jaxcrl.make_train(env, cfg)
  limits, seeds = (0.1, 0.9), (0, 1)
  configs = [dataclasses.replace(cfg, cost_limit=d) for d in limits for _ in seeds]
  keys = jnp.stack([jax.random.key(s) for _ in limits for s in seeds])
  stacked = jaxcrl.stack_configs(configs)
  state, metrics = jax.jit(jax.vmap(train))(keys, stacked)
  u = cfg.num_updates
  for name, value in metrics.items():
    chex.assert_shape(value, (4, u), custom_message=name)
  chex.assert_tree_all_finite(metrics)
  np.testing.assert_allclose(state.config.cost_limit, [0.1, 0.1, 0.9, 0.9])
  # Seeds differ; and at one seed the tighter limit gives the larger multiplier.
  assert not np.allclose(metrics["loss/policy"][0], metrics["loss/policy"][1])
  assert metrics["lambda/mean"][0, -1] > metrics["lambda/mean"][2, -1]
  # One member of the sweep equals the same run trained on its own.
  single_state, single = jax.jit(train)(keys[3], configs[3])
  for name in metrics:
    np.testing.assert_allclose(metrics[name][3], single[name], rtol=1e-4, atol=1e-5,
                               err_msg=name)
  return state


def test_config_validation_messages():
  bad = {
      "unknown algo 'nope'; choose one of: ppo, ppo_lag": dict(algo="nope"),
      "not divisible by num_minibatches=3": dict(num_envs=4, unroll_length=8,
                                                 num_minibatches=3),
      "num_envs must be a positive integer, got 0": dict(num_envs=0),
      "cost_limit must be >= 0, got -1.0": dict(cost_limit=-1.0),
      "gamma must be in \\(0, 1\\]": dict(gamma=1.5),
      "less than one update": dict(num_timesteps=10),
      "unknown activation": dict(activation="gelu"),
  }
  for message, change in bad.items():
    with pytest.raises(ValueError, match=message):
      jaxcrl.make_init_update(_env(), dataclasses.replace(SMALL, **change))
  with pytest.raises(ValueError, match="static field"):
    jaxcrl.stack_configs([SMALL, dataclasses.replace(SMALL, num_epochs=3)])
  assert jaxcrl.ALGOS == tuple(jaxcrl.ALGORITHMS)


def test_family_settings_go_where_they_live_and_nowhere_else():
  """Each family setting is taken only by the algorithms whose learner or multiplier has
  it; anything else is a one-line error naming it and the algorithms that take it."""
  cfg = jaxcrl.make_config("ppo_pid", pid_kp=0.5, clip_eps=0.1, cost_limit=3.0)
  assert (cfg.multiplier.pid_kp, cfg.learner.clip_eps, cfg.cost_limit) == (0.5, 0.1, 3.0)
  assert not hasattr(cfg.multiplier, "lagrange_lr")
  with pytest.raises(ValueError, match=r"^lagrange_lr is a setting of ppo_lag(, \w+)*, "
                     r"not of ppo_pid$"):
    jaxcrl.make_config("ppo_pid", lagrange_lr=0.1)
  with pytest.raises(ValueError, match=r"^multiplier_hidden is a setting of ppo_statewise"):
    jaxcrl.make_config("ppo", multiplier_hidden=(8,))
  with pytest.raises(ValueError, match=r"unknown setting 'lagrange_rate' \(did you mean "
                                       r"'lagrange_lr'\?\); known: "):
    jaxcrl.make_config("ppo_lag", lagrange_rate=0.1)
  with pytest.raises(ValueError, match="pid_alpha_p must be in \\[0, 1\\), got 1.0"):
    jaxcrl.make_config("ppo_pid", pid_alpha_p=1.0)
  # A family config of another algorithm is refused, not silently ignored.
  pid = jaxcrl.make_config("ppo_pid").multiplier
  with pytest.raises(ValueError, match="PIDConfig does not belong to algo 'ppo_lag', "
                     "which takes LagrangeConfig"):
    jaxcrl.TrainConfig(algo="ppo_lag", multiplier=pid).validate()
  # None means the algorithm's defaults; so does a plain TrainConfig.
  assert jaxcrl.make_config("ppo_lag") == jaxcrl.algorithms.resolve(jaxcrl.TrainConfig())
  assert jaxcrl.TrainConfig().num_updates == 10_000_000 // (64 * 128)


def test_with_settings_routes_like_make_config_and_static_settings_are_named():
  from jaxcrl import algorithms
  cfg = jaxcrl.make_config("ppo_statewise", num_envs=8, statewise_lr=1e-3)
  moved = algorithms.with_settings(cfg, statewise_lr=1e-4, clip_eps=0.1, policy_lr=1e-5)
  assert moved == jaxcrl.make_config("ppo_statewise", num_envs=8, statewise_lr=1e-4,
                                     clip_eps=0.1, policy_lr=1e-5)
  with pytest.raises(ValueError, match="^max_kl is a setting of trpo"):
    algorithms.with_settings(cfg, max_kl=0.1)
  with pytest.raises(ValueError, match="statewise_lambda_init must be > 0, got 0.0"):
    algorithms.with_settings(cfg, statewise_lambda_init=0.0)
  with pytest.raises(ValueError, match="algo is fixed by the config"):
    algorithms.with_settings(cfg, algo="ppo")
  static, traced = algorithms.static_settings("ppo_pid"), algorithms.traced_settings("ppo_pid")
  assert {"num_envs", "policy_hidden", "pid_delay"} <= set(static)
  assert {"cost_limit", "policy_lr", "pid_kp", "clip_eps"} <= set(traced)
  assert not set(static) & set(traced)
  for algo in jaxcrl.ALGOS:   # together they are every setting the algorithm takes
    taken = set(algorithms.static_settings(algo)) | set(algorithms.traced_settings(algo))
    assert taken == {n for n in algorithms.SHARED_SETTINGS} | {
        n for n, (_, who) in algorithms.family_settings().items() if algo in who}, algo


def test_update_output_structure_via_eval_shape():
  cfg = small("ppo_statewise")
  init, update = jaxcrl.make_init_update(_env(), cfg)
  state = jax.eval_shape(init, jax.random.key(0))
  chex.assert_shape(state.env_state.obs, (cfg.num_envs, 2))
  chex.assert_shape(state.env_state.cost, (cfg.num_envs,))
  new_state, metrics = jax.eval_shape(update, state)
  assert jax.tree.structure(new_state) == jax.tree.structure(state)
