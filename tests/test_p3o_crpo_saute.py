"""P3O, CRPO and Saute: hand-computed objectives and switch, the Saute wrapper's budget
arithmetic and resets, vmapped training, and probes with known answers (slow)."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
import jaxcrl
from envs.base import State
from envs.probes import ProbeBase
from jaxcrl import algorithms, saute
from jaxcrl.learners import base, crpo, p3o, ppo
from tests.cost_envs import CountingCostEnv

ALGOS = ("p3o", "crpo", "ppo_saute")
TINY = dict(num_envs=4, unroll_length=8, num_minibatches=2, num_epochs=2,
            num_timesteps=4 * 8 * 3, policy_hidden=(8,), value_hidden=(8,))


def _keyless(tree):
  return jax.tree.map(
      lambda x: jax.random.key_data(x)
      if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x, tree)


# ---------------------------------------------------------------- P3O objective

# Two samples: A_r = [1, -1] (mean 0, population std 1, so sigma = 1 + 1e-8 ~ 1),
# A_c = [2, 0] (centred [1, -1], / sigma = [1, -1]); ratios r = [1.5, 0.5]; eps = 0.2.
#   reward: min(r A, clip(r) A) = [min(1.5, 1.2), min(-0.5, -0.8)] = [1.2, -0.8];
#           mean 0.2, so L^CLIP_R = -0.2.
#   cost:   max(r A, clip(r) A) = [max(1.5, 1.2), max(-0.5, -0.8)] = [1.5, -0.5]; mean 0.5.
ADV_R = jnp.array([1.0, -1.0])
ADV_C = jnp.array([2.0, 0.0])
OLD_LOG_PROB = jnp.array([-1.0, -2.0])
LOG_PROB = OLD_LOG_PROB + jnp.log(jnp.array([1.5, 0.5]))


@pytest.mark.parametrize("episode_cost, cost_limit, expected", [
    (1.0, 0.8, -0.2 + 2.0 * (0.5 + 0.2)),    # J_c > d: relu(0.7) = 0.7 -> 1.2
    (0.5, 0.8, -0.2 + 2.0 * (0.5 - 0.3)),    # J_c < d, but the step's predicted cost
                                             # exceeds d: relu(0.2) = 0.2 -> 0.2
    (0.0, 1.0, -0.2),                        # relu(0.5 - 1.0) = 0: PPO's loss
])
def test_p3o_loss_hand_computed(episode_cost, cost_limit, expected):
  loss = p3o.p3o_loss(LOG_PROB, OLD_LOG_PROB, ADV_R, ADV_C, jnp.float32(episode_cost),
                      cost_limit, kappa=2.0, clip_eps=0.2)
  np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_p3o_cost_surrogate_is_pessimistic():
  # max picks r A when the ratio moved the cost up and clip(r) A when it moved it down:
  # [max(1.5 * 1, 1.2 * 1), max(0.5 * -1, 0.8 * -1)] = [1.5, -0.5] -> mean 0.5.
  value = p3o.clipped_cost_surrogate(LOG_PROB, OLD_LOG_PROB, jnp.array([1.0, -1.0]), 0.2)
  np.testing.assert_allclose(value, 0.5, rtol=1e-6)


def test_p3o_units_are_reward_per_cost():
  # Scaling A_r, A_c and J_c - d by one factor leaves the loss unchanged (sigma absorbs it),
  # so kappa means reward per unit of cost whatever the task's scale.
  args = dict(kappa=3.0, clip_eps=0.2)
  one = p3o.p3o_loss(LOG_PROB, OLD_LOG_PROB, ADV_R, ADV_C, jnp.float32(1.0), 0.8, **args)
  ten = p3o.p3o_loss(LOG_PROB, OLD_LOG_PROB, 10 * ADV_R, 10 * ADV_C, jnp.float32(10.0), 8.0,
                     **args)
  np.testing.assert_allclose(one, ten, rtol=1e-5)


def test_p3o_penalty_at_unit_ratio_is_on_iff_over_the_limit():
  same = OLD_LOG_PROB
  reward_only = p3o.p3o_loss(same, same, ADV_R, ADV_C, jnp.float32(0.5), 0.5, 5.0, 0.2)
  over = p3o.p3o_loss(same, same, ADV_R, ADV_C, jnp.float32(0.6), 0.5, 5.0, 0.2)
  # r = 1: L^CLIP_R = -mean(A_r_hat) = 0 and the cost surrogate mean(A_c_tilde) = 0, so the
  # loss is kappa relu((J_c - d) / sigma): 0 at J_c = d, 5 * 0.1 = 0.5 at J_c = d + 0.1.
  np.testing.assert_allclose(reward_only, 0.0, atol=1e-6)
  np.testing.assert_allclose(over, 0.5, rtol=1e-5)


def _samples(adv_r, adv_c):
  n = adv_r.shape[0]
  zeros = jnp.zeros((n, 1))
  return base.Samples(obs=zeros, action=zeros, log_prob=OLD_LOG_PROB, loc=zeros,
                      scale=jnp.ones((n, 1)), adv_r=adv_r, adv_c=adv_c, target_r=adv_r,
                      target_c=adv_c)


def test_p3o_objective_reads_its_settings():
  config = jaxcrl.make_config("p3o", p3o_kappa=2.0, clip_eps=0.2, cost_limit=0.8)
  batch = base.LearnerBatch(samples=_samples(ADV_R, ADV_C), episode_cost=jnp.float32(1.0))
  context, metrics = p3o.prepare(batch, config)
  new = ppo.PolicyOutput(LOG_PROB, jnp.zeros((2, 1)), jnp.ones((2, 1)))
  loss = p3o.objective(new, batch.samples, jnp.zeros(2), context, config)
  np.testing.assert_allclose(loss, 1.2, rtol=1e-5)  # the first hand-computed case
  assert metrics == {}


# ---------------------------------------------------------------- CRPO switch

@pytest.mark.parametrize("episode_cost, expected", [
    (27.5, True),    # 27.5 > 25 + 2
    (27.0, False),   # J_c <= d + eta is a reward step (equality included)
    (26.9, False),
])
def test_crpo_switch(episode_cost, expected):
  config = jaxcrl.make_config("crpo", cost_limit=25.0, crpo_tolerance=2.0)
  batch = base.LearnerBatch(samples=_samples(ADV_R, ADV_C),
                            episode_cost=jnp.float32(episode_cost))
  switch, metrics = crpo.prepare(batch, config)
  assert bool(switch) is expected
  assert set(metrics) == set(crpo.METRIC_KEYS)
  np.testing.assert_allclose(metrics["crpo/cost_step"], float(expected))


def test_crpo_advantage_and_objective():
  adv_r = jnp.array([1.0, 3.0])    # standardised: [-1, 1]
  adv_c = jnp.array([0.0, 2.0])    # -A_c = [0, -2], standardised: [1, -1]
  np.testing.assert_allclose(crpo.crpo_advantage(adv_r, adv_c, jnp.bool_(False)),
                             [-1.0, 1.0], rtol=1e-6)
  np.testing.assert_allclose(crpo.crpo_advantage(adv_r, adv_c, jnp.bool_(True)),
                             [1.0, -1.0], rtol=1e-6)
  # Cost step with r = [1.5, 0.5], eps 0.2, A = [1, -1]: min terms [1.2, -0.8] -> loss -0.2.
  # Reward step, A = [-1, 1]: [min(-1.5, -1.2), min(0.5, 0.8)] = [-1.5, 0.5] -> loss 0.5.
  config = jaxcrl.make_config("crpo", clip_eps=0.2)
  new = ppo.PolicyOutput(LOG_PROB, jnp.zeros((2, 1)), jnp.ones((2, 1)))
  mb = _samples(adv_r, adv_c)
  np.testing.assert_allclose(crpo.objective(new, mb, None, jnp.bool_(True), config), -0.2,
                             rtol=1e-5)
  np.testing.assert_allclose(crpo.objective(new, mb, None, jnp.bool_(False), config), 0.5,
                             rtol=1e-5)


def test_crpo_switch_vmaps_over_cost_limits():
  configs = [jaxcrl.make_config("crpo", cost_limit=d, crpo_tolerance=0.5) for d in (1, 3)]
  batch = base.LearnerBatch(samples=_samples(ADV_R, ADV_C), episode_cost=jnp.float32(2.0))
  switch, metrics = jax.vmap(lambda c: crpo.prepare(batch, c))(jaxcrl.stack_configs(configs))
  # 2 > 1 + 0.5: cost step; 2 <= 3 + 0.5: reward step.
  np.testing.assert_array_equal(switch, [True, False])
  np.testing.assert_array_equal(metrics["crpo/cost_step"], [1.0, 0.0])


# ---------------------------------------------------------------- Saute wrapper

def test_discounted_budget():
  # d (1/T) sum_{t<T} gamma^t: 2 * (1 + 0.5) / 2 = 1.5; gamma = 1 keeps d.
  np.testing.assert_allclose(saute.discounted_budget(2.0, 0.5, 2), 1.5)
  np.testing.assert_allclose(saute.discounted_budget(25.0, 1.0, 1000), 25.0)


def test_saute_budget_arithmetic_and_unsafe_reward():
  # CountingCostEnv: reward = action, cost 1 when action > 0.5. d = 2.5, gamma_s = 1.
  env = saute.SauteWrapper(CountingCostEnv(), cost_limit=2.5, gamma=1.0, unsafe_reward=-0.2,
                           episode_length=1000)
  assert env.observation_size == CountingCostEnv().observation_size + 1 == 3
  chex.clear_trace_counter()
  reset = jax.jit(chex.assert_max_traces(env.reset, n=1))
  step = jax.jit(chex.assert_max_traces(env.step, n=1))
  state = reset(jax.random.key(0))
  chex.assert_shape(state.obs, (3,))
  assert float(state.obs[-1]) == 1.0 and float(state.info["saute_z"]) == 1.0
  x0 = float(state.obs[0])
  #            action  z after                     reward  task reward
  expected = [(1.0, 1.0 - 1 / 2.5,                 1.0,    1.0),    # 0.6
              (1.0, 0.6 - 0.4,                     1.0,    1.0),    # 0.2
              (0.25, 0.2,                          0.25,   0.25),   # no cost
              (1.0, 0.2 - 0.4,                     -0.2,   1.0),    # spent: unsafe
              (0.25, -0.2,                         -0.2,   0.25)]   # stays spent
  x = x0
  for t, (action, z, reward, task_reward) in enumerate(expected, 1):
    state = step(state, jnp.array([action]))
    x += action
    chex.assert_shape(state.obs, (3,))
    # The wrapped env saw its own observation: x accumulates, t counts steps.
    np.testing.assert_allclose(state.obs[:2], [x, t], rtol=1e-6)
    np.testing.assert_allclose(state.obs[-1], z, atol=1e-6)
    np.testing.assert_allclose(state.info["saute_z"], z, atol=1e-6)
    np.testing.assert_allclose(state.reward, reward, rtol=1e-6)
    np.testing.assert_allclose(state.info["task_reward"], task_reward, rtol=1e-6)
  chex.assert_tree_all_finite((state.obs, state.reward, state.cost, state.info))


def test_saute_discounted_budget_arithmetic():
  # d = 2, gamma_s = 0.5, T = 2: d' = 1.5. z <- (z - c / 1.5) / 0.5:
  #   cost 1: (1 - 2/3) / 0.5 = 2/3; cost 0: (2/3) / 0.5 = 4/3; cost 1: (4/3 - 2/3) / 0.5 = 4/3.
  # Check: z_3 d' gamma^3 = 4/3 * 1.5 / 8 = 0.25 = d' - (1 + 0 + 0.25), the discounted
  # budget left.
  env = saute.SauteWrapper(CountingCostEnv(), cost_limit=2.0, gamma=0.5, unsafe_reward=-1.0,
                           episode_length=2)
  state = env.reset(jax.random.key(0))
  for action, z in ((1.0, 2 / 3), (0.0, 4 / 3), (1.0, 4 / 3)):
    state = env.step(state, jnp.array([action]))
    np.testing.assert_allclose(state.obs[-1], z, rtol=1e-6)


def test_saute_exactly_spent_is_spent_and_limits_vmap():
  # One costly step against d = 1 leaves z = 0 (spent: unsafe reward), against d = 2 z = 0.5.
  def one_step(cost_limit):
    env = saute.SauteWrapper(CountingCostEnv(), cost_limit, 1.0, -0.2, 1000)
    return env.step(env.reset(jax.random.key(0)), jnp.array([1.0]))

  state = jax.jit(jax.vmap(one_step))(jnp.array([1.0, 2.0]))
  np.testing.assert_allclose(state.obs[:, -1], [0.0, 0.5], atol=1e-6)
  np.testing.assert_allclose(state.reward, [-0.2, 1.0], rtol=1e-6)


def test_saute_auto_reset_restores_budget():
  # envs.wrap: episodes of 3 steps; three costly steps against d = 2.5 end at z = -0.2.
  env = envs.wrap(saute.SauteWrapper(CountingCostEnv(), 2.5, 1.0, -0.2, 3), num_envs=2,
                  episode_length=3)
  assert env.observation_size == 3
  chex.clear_trace_counter()
  step = jax.jit(chex.assert_max_traces(env.step, n=1))
  state = env.reset(jax.random.key(0))
  chex.assert_shape(state.obs, (2, 3))
  np.testing.assert_array_equal(state.obs[:, -1], [1.0, 1.0])
  costly = jnp.ones((2, 1))
  for z in (0.6, 0.2):
    state = step(state, costly)
    np.testing.assert_allclose(state.obs[:, -1], [z, z], atol=1e-6)
    np.testing.assert_array_equal(state.done, [0.0, 0.0])
  state = step(state, costly)                   # the time limit: done, then auto-reset
  np.testing.assert_array_equal(state.done, [1.0, 1.0])
  np.testing.assert_allclose(state.info["final_obs"][:, -1], [-0.2, -0.2], atol=1e-6)
  np.testing.assert_allclose(state.reward, [-0.2, -0.2], rtol=1e-6)  # this step spent it
  np.testing.assert_array_equal(state.info["episode_cost"], [3.0, 3.0])
  # The logged return is the task's (1 + 1 + 1), not Saute's (1 + 1 - 0.2).
  np.testing.assert_allclose(state.info["episode_return"], [3.0, 3.0], rtol=1e-6)
  np.testing.assert_array_equal(state.obs[:, -1], [1.0, 1.0])         # fresh budget
  np.testing.assert_array_equal(state.obs[:, 1], [0.0, 0.0])          # fresh inner env
  state = step(state, costly)
  np.testing.assert_allclose(state.obs[:, -1], [0.6, 0.6], atol=1e-6)
  np.testing.assert_allclose(state.reward, [1.0, 1.0], rtol=1e-6)     # budget again


def test_saute_task_return_through_action_repeat():
  # Two agent steps of two env steps each, all costly, d = 2.5: z 0.6, 0.2 | -0.2, -0.6.
  # Saute's rewards 1 + 1 | -0.2 - 0.2 -> agent rewards [2, -0.4]; the task's return is 4.
  env = envs.wrap(saute.SauteWrapper(CountingCostEnv(), 2.5, 1.0, -0.2, 4), num_envs=1,
                  episode_length=4, action_repeat=2)
  state = env.reset(jax.random.key(0))
  rewards = []
  for _ in range(2):
    state = env.step(state, jnp.ones((1, 1)))
    rewards.append(float(state.reward[0]))
  np.testing.assert_allclose(rewards, [2.0, -0.4], rtol=1e-6)
  np.testing.assert_array_equal(state.done, [1.0])
  np.testing.assert_allclose(state.info["episode_return"], [4.0], rtol=1e-6)


def test_saute_wrap_env_reads_the_config():
  env = CountingCostEnv(episode_length=2)
  config = jaxcrl.make_config("ppo_saute", cost_limit=2.0, saute_gamma=0.5,
                              saute_unsafe_reward=-1.0)
  wrapped = saute.wrap_env(env, config, 2)     # T = 2: d' = 1.5
  np.testing.assert_allclose(wrapped.budget, 1.5)
  assert wrapped.unsafe_reward == -1.0
  longer = saute.wrap_env(env, config, 4)
  np.testing.assert_allclose(longer.budget, 2.0 * (1 + 0.5 + 0.25 + 0.125) / 4)
  assert jaxcrl.make_env(env, config).observation_size == env.observation_size + 1
  assert algorithms.get("ppo_saute").wrap_env is saute.wrap_env


# ---------------------------------------------------------------- registry

def test_settings_live_in_their_families():
  assert algorithms.takers("p3o_kappa") == ["p3o"]
  assert algorithms.takers("crpo_tolerance") == ["crpo"]
  assert algorithms.takers("saute_gamma") == ["ppo_saute"]
  assert algorithms.takers("saute_unsafe_reward") == ["ppo_saute"]
  assert jaxcrl.make_config("p3o").learner == p3o.P3OConfig(p3o_kappa=20.0)
  assert jaxcrl.make_config("crpo").learner.crpo_tolerance == 2.0
  saute_defaults = jaxcrl.make_config("ppo_saute").learner
  assert (saute_defaults.saute_gamma, saute_defaults.saute_unsafe_reward) == (0.9999, -0.2)
  with pytest.raises(ValueError, match="crpo_tolerance is a setting of crpo"):
    jaxcrl.make_config("p3o", crpo_tolerance=1.0)
  for bad in (dict(p3o_kappa=-1.0),):
    with pytest.raises(ValueError, match="p3o_kappa must be >= 0"):
      jaxcrl.make_config("p3o", **bad)
  with pytest.raises(ValueError, match="crpo_tolerance must be >= 0"):
    jaxcrl.make_config("crpo", crpo_tolerance=-1.0)
  with pytest.raises(ValueError, match=r"saute_gamma must be in \(0, 1\]"):
    jaxcrl.make_config("ppo_saute", saute_gamma=0.0)
  with pytest.raises(ValueError, match="saute_unsafe_reward must be <= 0"):
    jaxcrl.make_config("ppo_saute", saute_unsafe_reward=1.0)


# ---------------------------------------------------------------- training, fast

@pytest.fixture(scope="module")
def trained():
  """algo -> (metrics [4, U], final states) of jit(vmap(train)) over keys [k0, k1, k0, k1]
  and cost limits [0.5, 0.5, 100, 100] on ProbeTwoRegion (T = 5); ppo too, for reference."""
  env = envs.make("ProbeTwoRegion", episode_length=5)
  keys = jax.random.split(jax.random.key(0), 2)
  keys = jnp.concatenate([keys, keys])
  out = {}
  for algo in ALGOS + ("ppo",):
    settings = dict(crpo_tolerance=0.0) if algo == "crpo" else {}
    cfg = jaxcrl.make_config(algo, **TINY, **settings)
    cfgs = jaxcrl.stack_configs([dataclasses.replace(cfg, cost_limit=d)
                                 for d in (0.5, 0.5, 100.0, 100.0)])
    vmapped = jax.vmap(jaxcrl.make_train(env, cfg))

    def train_all(keys, configs):
      return vmapped(keys, configs)

    chex.clear_trace_counter()   # chex counts traces per code location, shared by algos
    train = jax.jit(chex.assert_max_traces(train_all, n=1))
    states, metrics = train(keys, cfgs)
    train(jax.random.split(jax.random.key(1), 4), cfgs)   # no second trace
    out[algo] = (metrics, states, cfg)
  return out


@pytest.mark.parametrize("algo", ALGOS)
def test_vmapped_train_shapes_finite(trained, algo):
  metrics, states, cfg = trained[algo]
  extra = set(crpo.METRIC_KEYS) if algo == "crpo" else set()
  assert set(metrics) == set(jaxcrl.METRIC_KEYS) | extra
  for name, value in metrics.items():
    chex.assert_shape(value, (4, cfg.num_updates), custom_message=name)
  chex.assert_tree_all_finite((_keyless(states), metrics))
  obs_size = envs.make("ProbeTwoRegion").observation_size + (algo == "ppo_saute")
  chex.assert_shape(states.env_state.obs, (4, cfg.num_envs, obs_size))
  chex.assert_shape(states.normalizer.mean, (4, obs_size))
  np.testing.assert_array_equal(states.config.cost_limit, [0.5, 0.5, 100.0, 100.0])
  np.testing.assert_array_equal(metrics["lambda/max"], 0.0)   # no multiplier


@pytest.mark.parametrize("algo", ("p3o", "crpo"))
def test_far_from_the_limit_is_ppo(trained, algo):
  # At d = 100 P3O's penalty is 0 and CRPO only takes reward steps: both are PPO, seed
  # for seed (runs 2, 3 share keys with ppo's runs 2, 3).
  ours, theirs = trained[algo][1], trained["ppo"][1]
  for a, b in zip(jax.tree.leaves(ours.learner.policy_params),
                  jax.tree.leaves(theirs.learner.policy_params)):
    np.testing.assert_allclose(a[2:], b[2:], rtol=1e-5, atol=1e-6)


def test_crpo_switch_follows_the_limit(trained):
  steps = np.asarray(trained["crpo"][0]["crpo/cost_step"])
  costs = np.asarray(trained["crpo"][0]["episode/cost"])
  assert not steps[2:].any()                        # d = 100: never a cost step
  # d = 0.5, tolerance 0: a cost step exactly when the batch's J_c exceeded 0.5 (every
  # update here completes episodes, so J_c is the logged episode/cost).
  assert np.all(np.asarray(trained["crpo"][0]["episode/count"]) > 0)
  np.testing.assert_array_equal(steps[:2], costs[:2] > 0.5)


def test_saute_budget_follows_each_runs_traced_limit(trained):
  # z = obs[-1] of the final env states. d = 100: at most 5 costs of 1 / d' per 5-step
  # episode, so z >= (1 - 5 / 99.99) > 0.94. d = 0.5: one cost (region 0) takes z from ~1
  # to (1 - 1 / 0.49998) / 0.9999 ~ -1.0, so z is ~1 (nothing spent yet) or <= -1.
  z = np.asarray(trained["ppo_saute"][1].env_state.obs[..., -1])   # [4, num_envs]
  assert np.all(z[2:] > 0.94), z
  assert np.all((z[:2] > 0.99) | (z[:2] < -0.99)), z


# ---------------------------------------------------------------- probes, slow

def _train_over_limits(env, algo, limits, seeds, **settings):
  """-> metrics with leading axes [limit, seed], one vmapped program."""
  cfg = jaxcrl.make_config(algo, **settings)
  cfgs = [dataclasses.replace(cfg, cost_limit=d) for d in limits for _ in range(seeds)]
  keys = jax.random.split(jax.random.key(0), len(cfgs))
  _, metrics = jax.jit(jax.vmap(jaxcrl.make_train(env, cfg)))(keys, jaxcrl.stack_configs(cfgs))
  return {k: np.asarray(v).reshape((len(limits), seeds, -1)) for k, v in metrics.items()}


BANDIT = dict(num_envs=64, unroll_length=8, num_minibatches=4, num_epochs=4,
              num_timesteps=64 * 8 * 300, policy_lr=1e-3, entropy_coef=0.01,
              policy_hidden=(16,), value_hidden=(16,))
BANDIT_LIMITS = (0.2, 0.5, 0.8)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ("p3o", "crpo"))
def test_costly_bandit_cost_rate_tracks_the_limit(algo):
  """One-step episodes, the rewarding action costs 1: the constrained optimum's cost rate
  is d (PPO's is 1, tests/test_probes.py). Limits below and above the initial policy's
  0.5 make the cost go down and up."""
  settings = dict(crpo_tolerance=0.0) if algo == "crpo" else {}
  metrics = _train_over_limits(envs.make("ProbeCostlyBandit"), algo, BANDIT_LIMITS, 4,
                               **BANDIT, **settings)
  rate = metrics["episode/cost_rate"]
  late = rate[..., rate.shape[-1] // 2:].mean(-1)               # [limit, seed]
  print(algo, "late cost rate per limit", late.round(3).tolist())
  # Measured (`pytest -m slow -s -k bandit`, 300 updates, means over the second half;
  # 4 seeds): p3o 0.168-0.175 / 0.465-0.469 / 0.765-0.769 for d = 0.2 / 0.5 / 0.8 (the
  # exact penalty sits just on the safe side); crpo 0.201-0.204 / 0.499-0.502 /
  # 0.797-0.802. PPO's is 1.
  assert np.all(np.abs(late - np.array(BANDIT_LIMITS)[:, None]) < 0.08), late
  if algo == "crpo":
    frac = metrics["crpo/cost_step"][..., rate.shape[-1] // 2:].mean(-1)
    assert np.all((frac > 0.1) & (frac < 0.9)), frac              # it alternates


class TimedCostlyBandit(ProbeBase):
  """Episodes of `episode_length` steps that terminate (no bootstrap); obs = [t / T].
  a > 0 earns reward 1 and costs 1, a <= 0 earns and costs 0."""

  def __init__(self, episode_length: int = 10):
    self.episode_length = episode_length

  def reset(self, key):
    del key
    zero = jnp.zeros((), jnp.float32)
    return State(pipeline_state=None, obs=jnp.zeros((1,), jnp.float32), reward=zero,
                 done=zero, metrics={}, info={}, cost=zero)

  def step(self, state, action):
    hit = jnp.where(action[0] > 0, 1.0, 0.0).astype(jnp.float32)
    t = state.obs + 1.0 / self.episode_length
    done = jnp.where(t[0] >= 1.0 - 1e-6, 1.0, 0.0).astype(jnp.float32)
    return state.replace(obs=t, reward=hit, cost=hit, done=done)


SAUTE_LIMITS = (2.5, 4.5, 6.5)


@pytest.mark.slow
def test_saute_spends_the_budget_and_never_more():
  """Saute's answer on a multi-step episode: with budget d per 10-step episode and every
  rewarding step costing 1, the augmented MDP pays for floor(d) rewarding steps and
  penalises the next one, so the optimal episode cost is floor(d) in EVERY episode: 2, 4
  and 6 for d = 2.5, 4.5, 6.5, where the expectation-constrained optimum (Lagrangian) is
  d on average by mixing floor(d) and floor(d) + 1 (and PPO's is 10).

  On ProbeCostlyBandit (one step, d = 0.5) the augmented state is always z = 1 and the
  rewarding step always overspends, so Saute's optimum there is cost 0: it cannot express
  "half the time". The episodes here terminate rather than truncate and the observation
  carries the time: with a bootstrapped truncation and a time-blind policy the agent
  sees an endless episode where spending now or later differs only by the discount
  (measured: some seeds then settle below floor(d)). The unsafe reward is OmniSafe's
  generic -1 rather than its Safety-Gym -0.2 (our default): against a task reward of 1 per
  step, overspending on the last step costs only 0.2 there, and 2 of 12 seeds at d = 6.5
  settled at 6.3-7.1 (-0.2, entropy 0.01); entropy 0.03 keeps every seed exploring.
  """
  metrics = _train_over_limits(
      TimedCostlyBandit(10), "ppo_saute", SAUTE_LIMITS, 4, num_envs=64, unroll_length=10,
      num_minibatches=4, num_epochs=4, num_timesteps=64 * 10 * 300, policy_lr=1e-3,
      entropy_coef=0.03, saute_unsafe_reward=-1.0, policy_hidden=(16,), value_hidden=(16,))
  cost = metrics["episode/cost"]
  half = cost.shape[-1] // 2
  late = cost[..., half:].mean(-1)
  print("late episode cost per limit", late.round(3).tolist())
  # Measured (`pytest -m slow -s -k saute`, 300 updates, means over the second half;
  # 4 seeds here, and 48 runs over keys 0-3): 1.996-2.017, 4.001-4.013, 5.997-6.010.
  assert np.all(np.abs(late - np.floor(SAUTE_LIMITS)[:, None]) < 0.05), late
