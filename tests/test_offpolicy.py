"""The off-policy (SAC-family) driver end to end on probe envs: shapes, traces, warm-up,
determinism, resume with the replay buffer, the ring buffer, the target update and the
tanh-Gaussian density by hand, FAC's stabilisers, the memory refusal; probes (slow) with
known answers."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
import jaxcrl
from jaxcrl import multipliers
from jaxcrl.offpolicy import driver, replay, sac
from tests.test_probes import p_costly_per_region
# test_train's small configs (an off-policy one: 4 envs x 8 steps per update into a
# 64-transition buffer, minibatches of 16, a 16-transition warm-up), env and compiled updates.
from tests.test_train import (_assert_trees_equal, _env, _keyless, built,  # noqa: F401
                              small, sweep_two_limits_by_two_seeds)


@pytest.mark.parametrize("algo", ["sac_lag", "fac"])
def test_init_and_update_shapes_finite_single_trace(built, algo):
  init, update, _, cfg = built(algo)
  state = init(jax.random.key(0))
  buffer = state.learner.replay
  chex.assert_shape((buffer.data.obs, buffer.data.next_obs), (64, 2))
  chex.assert_shape(buffer.data.action, (64, 1))
  chex.assert_shape((buffer.data.reward, buffer.data.cost, buffer.data.terminated), (64,))
  chex.assert_shape((buffer.position, buffer.size), ())
  assert set(state.learner.critic_params) == {"reward", "cost"}
  steps = []
  for _ in range(3):
    state, metrics = update(state)
    steps.append(float(metrics["policy/sgd_steps"]))
  assert set(metrics) == set(jaxcrl.metric_keys(_env(), cfg))
  assert set(jaxcrl.METRIC_KEYS) <= set(metrics)
  for name, value in metrics.items():
    chex.assert_shape(value, (), custom_message=name)
  chex.assert_tree_all_finite((_keyless(state.replace(config=None)), metrics))
  assert state.update_step.value() == 3
  assert float(metrics["train/env_steps"]) == 3 * cfg.batch_size
  # 32 transitions per update: the first update warms up (empty buffer < warmup_steps = 16),
  # then each takes utd_ratio x unroll_length = 8 gradient steps; the third update's 32
  # transitions wrap around the 64 slots.
  assert steps == [0.0, 8.0, 8.0]
  assert int(state.learner.replay.size) == 64 and int(state.learner.replay.position) == 32


def test_warmup_acts_uniformly_and_changes_nothing():
  """While the buffer holds fewer than warmup_steps transitions the actions are uniform in
  [-1, 1] (mean |a| = 1/2, the policy's would sit near 0) and the learner and multiplier
  keep their initial state."""
  cfg = small("sac_lag", warmup_steps=1000, buffer_size=256, num_envs=16,
              num_timesteps=16 * 8 * 2, lagrange_lr=1.0, cost_limit=0.0)
  init, update = jaxcrl.make_init_update(_env(), cfg)
  start = init(jax.random.key(1))
  state, metrics = jax.jit(update)(start)
  state, metrics = jax.jit(update)(state)
  _assert_trees_equal(state.learner.replace(replay=None), start.learner.replace(replay=None))
  _assert_trees_equal(state.multiplier, start.multiplier)
  assert float(metrics["policy/sgd_steps"]) == 0
  actions = np.asarray(state.learner.replay.data.action[:int(state.learner.replay.size)])
  assert actions.shape == (256, 1) and np.all(np.abs(actions) <= 1)
  assert abs(np.abs(actions).mean() - 0.5) < 0.06 and actions.min() < -0.9 < 0.9 < actions.max()


def test_multiplier_delay_holds_the_multiplier_after_the_warmup():
  """multiplier_delay 2, a 16-transition warm-up, 32 transitions per update: update 0 warms
  up, updates 1 and 2 take their gradient steps and discard the multiplier's, update 3
  keeps it (lagrange_lr 1 at limit 0 lifts lambda by the episode cost, about 1 here)."""
  cfg = small("sac_lag", multiplier_delay=2, lagrange_lr=1.0, cost_limit=0.0)
  init, update = jaxcrl.make_init_update(_env(), cfg)
  update = jax.jit(update)
  state = init(jax.random.key(0))
  lams, sgd = [], []
  for _ in range(4):
    state, metrics = update(state)
    lams.append(float(metrics["lambda/mean"]))
    sgd.append(float(metrics["policy/sgd_steps"]))
  assert sgd == [0.0, 8.0, 8.0, 8.0]
  assert lams[:3] == [0.0, 0.0, 0.0] and lams[3] > 0.3, lams


def test_same_key_same_result_different_keys_differ(built):
  init, update, _, _ = built("fac")
  run = lambda seed: update(update(init(jax.random.key(seed)))[0])
  _assert_trees_equal(run(7), run(7))
  a, _ = run(7)
  c, _ = run(8)
  assert not np.allclose(a.learner.policy_params["params"]["dense_0"]["kernel"],
                         c.learner.policy_params["params"]["dense_0"]["kernel"])


def test_resume_through_checkpoint_store_is_bit_identical(built, tmp_path):
  """4 updates straight equal 2 updates, a save and restore of the whole TrainState (the
  replay buffer, targets and optimizer states included) through CheckpointStore, and 2
  more: bit for bit."""
  from experiments.checkpoint import CheckpointStore
  init, update, _, _ = built("sac_lag")
  state = init(jax.random.key(4))
  straight = state
  for _ in range(4):
    straight, last = update(straight)
  half = update(update(state)[0])[0]
  store = CheckpointStore(tmp_path / "checkpoints")
  store.save(2, half)
  restored = store.restore(2, template=jax.eval_shape(init, jax.random.key(4)))
  store.close()
  _assert_trees_equal(restored, half)
  assert int(restored.learner.replay.size) == 64
  resumed, resumed_last = update(update(restored)[0])
  _assert_trees_equal((resumed, resumed_last), (straight, last))


def test_no_checkpoint_buffer_saves_no_buffer_and_resumes_from_an_empty_one(tmp_path):
  """--no-checkpoint-buffer: the checkpoints hold no `learner.replay` leaf, so the arrays
  they save are the buffer's bytes (4096 transitions, its slot counters) fewer than the same
  run's with the buffer; the run resumes from an empty buffer, warms up again (no gradient
  step while it refills) and trains on; eval reads its checkpoint."""
  from experiments import eval as eval_cli
  from experiments import rundir, run
  from experiments.checkpoint import CheckpointStore
  from experiments.logs import read_csv
  # 4 updates of 4 envs x 256 steps fill a 4096-transition buffer, a 2048-transition
  # warm-up. The sizes are the saved arrays' (shapes and dtypes from the checkpoint's
  # metadata), not the files': Orbax's compressed files for the same state vary by tens of
  # KB from run to run, as much as this buffer.
  argv = ["--env", "ProbeCostlyBandit", "--algo", "sac_lag", "--steps", "4096",
          "--num-envs", "4", "--unroll-length", "256", "--buffer-size", "4096",
          "--batch-size", "16", "--warmup-steps", "2048", "--policy-hidden", "8",
          "--value-hidden", "8", "--log-every", "1", "--checkpoint-every", "4",
          "--no-progress", "--no-plots"]
  sizes = {}
  for name, extra in (("with", []), ("without", ["--no-checkpoint-buffer"])):
    out = tmp_path / name
    assert run.main(argv + extra + ["--out", str(out)]) == 0
    store = CheckpointStore(out / rundir.CHECKPOINT_DIR)
    metadata = store._manager.item_metadata(4)
    store.close()
    nbytes = {n: int(np.prod(m.shape)) * np.dtype(m.dtype).itemsize
              for n, m in metadata.items()}
    replay_leaves = {n for n in nbytes if "learner_replay" in n}
    assert (len(replay_leaves) > 0) == (name == "with"), sorted(nbytes)
    sizes[name] = sum(nbytes.values())
    if name == "with":
      data = sum(nbytes[n] for n in replay_leaves if "learner_replay_data" in n)
      env = envs.make("ProbeCostlyBandit")
      example = sac.experience_example(env.observation_size, env.action_size)
      assert data == 4096 * replay.item_bytes(example), data
      buffer_bytes = sum(nbytes[n] for n in replay_leaves)
  assert sizes["with"] - sizes["without"] == buffer_bytes, sizes
  out = tmp_path / "without"
  assert rundir.read_spec(out)["checkpoint_buffer"] is False
  assert rundir.read_spec(tmp_path / "with")["checkpoint_buffer"] is True
  assert run.main(["--resume", str(out), "--steps", "8192"]) == 0
  columns = read_csv(out / "metrics" / "seed0_limit25.csv")
  buffer, sgd = columns["sac/buffer_size"].tolist(), columns["policy/sgd_steps"].tolist()
  # Updates 1-4 hold 1024-4096 transitions and take gradient steps (utd 1 x 256 steps)
  # from update 3 on, once the buffer held 2048 before the update; resumed from an empty
  # buffer, updates 5-6 warm up again.
  assert buffer == [1024, 2048, 3072, 4096] * 2, buffer
  assert sgd == [0, 0, 256, 256] * 2, sgd
  assert eval_cli.main([str(out), "--episodes", "2"]) == 0


def test_ring_buffer_wraps_around():
  """Capacity 5: items 0-2 fill slots 0-2; items 3-6 go to slots 3, 4, 0, 1 (the oldest,
  0 and 1, are overwritten); the next slot is 2 and the buffer is full."""
  example = {"x": jnp.zeros(()), "v": jnp.zeros((2,))}
  buffer = replay.init(example, 5)
  items = lambda lo, hi: {"x": jnp.arange(lo, hi, dtype=jnp.float32),
                          "v": jnp.stack([jnp.arange(lo, hi), -jnp.arange(lo, hi)], 1)}
  buffer = jax.jit(replay.insert)(buffer, items(0, 3))
  assert (int(buffer.position), int(buffer.size)) == (3, 3)
  drawn = replay.sample(buffer, jax.random.key(0), 200)["x"]
  assert set(np.asarray(drawn).tolist()) == {0.0, 1.0, 2.0}   # only filled slots
  buffer = jax.jit(replay.insert)(buffer, items(3, 7))
  np.testing.assert_array_equal(buffer.data["x"], [5, 6, 2, 3, 4])
  np.testing.assert_array_equal(buffer.data["v"][:, 1], [-5, -6, -2, -3, -4])
  assert (int(buffer.position), int(buffer.size)) == (2, 5)
  assert replay.item_bytes(example) == 12
  with pytest.raises(ValueError, match="cannot insert 6 items into a replay buffer of 5"):
    replay.insert(buffer, items(0, 6))


def test_target_critics_move_by_polyak_averaging():
  """One gradient step: target' = (1 - tau) target + tau critic', critic' the updated
  critic, every leaf. By hand: (1 - 0.25) 4 + 0.25 0 = 3."""
  np.testing.assert_allclose(sac.polyak({"w": jnp.full((2,), 4.0)}, {"w": jnp.zeros((2,))},
                                        0.25)["w"], [3.0, 3.0])
  cfg = small("sac_lag", tau=0.3)
  parts, static = jaxcrl.train.make_parts(_env(), cfg)
  cfg32 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), static)
  lstate = parts.learner.init(jax.random.key(0), cfg32).replace(replay=None)
  # Targets that differ from the critics, so the average is visible.
  lstate = lstate.replace(target_critic_params=jax.tree.map(
      lambda x: x + 1.0, lstate.target_critic_params))
  mb = sac.Experience(obs=jnp.eye(2)[jnp.arange(16) % 2], action=jnp.zeros((16, 1)),
                      reward=jnp.ones(16), cost=jnp.ones(16), terminated=jnp.zeros(16),
                      next_obs=jnp.eye(2)[jnp.arange(16) % 2])
  new, metrics, q_c = jax.jit(parts.learner.update)(lstate, mb, jnp.zeros(16),
                                                    jax.random.key(1), cfg32)
  chex.assert_shape(q_c, (16,))
  for old_t, new_c, new_t in zip(jax.tree.leaves(lstate.target_critic_params),
                                 jax.tree.leaves(new.critic_params),
                                 jax.tree.leaves(new.target_critic_params)):
    np.testing.assert_allclose(new_t, 0.7 * old_t + 0.3 * new_c, rtol=1e-6, atol=1e-6)
  assert not np.allclose(jax.tree.leaves(new.critic_params)[0],
                         jax.tree.leaves(lstate.critic_params)[0])
  assert set(metrics) == {"loss/policy", "loss/value_reward", "loss/value_cost",
                          "sac/q_reward", "sac/q_reward_replay", "sac/q_cost",
                          "sac/q_cost_replay", "sac/log_prob"}


def _one_learner_step(cost_critics: int, cost_params=None):
  """One gradient step of sac_lag's learner (lam 1) from a fresh state, its cost critic
  (and target) replaced by `cost_params` if given: -> (start lstate, new lstate, q_c [16],
  metrics)."""
  cfg = small("sac_lag", cost_critics=cost_critics)
  parts, static = jaxcrl.train.make_parts(_env(), cfg)
  cfg32 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), static)
  lstate = parts.learner.init(jax.random.key(0), cfg32).replace(replay=None)
  if cost_params is not None:
    critic_opt = jaxcrl.learners.base.make_optimizer(cfg32.value_lr, cfg32.max_grad_norm)
    lstate = lstate.replace(
        critic_params={**lstate.critic_params, "cost": cost_params},
        target_critic_params={**lstate.target_critic_params, "cost": cost_params},
        critic_opt_state={**lstate.critic_opt_state, "cost": critic_opt.init(cost_params)})
  mb = sac.Experience(obs=jnp.eye(2)[jnp.arange(16) % 2], action=jnp.zeros((16, 1)),
                      reward=jnp.ones(16), cost=jnp.ones(16), terminated=jnp.zeros(16),
                      next_obs=jnp.eye(2)[jnp.arange(16) % 2])
  new, metrics, q_c = jax.jit(parts.learner.update)(lstate, mb, jnp.ones(16),
                                                    jax.random.key(1), cfg32)
  return lstate, new, q_c, metrics


def test_pessimistic_cost_critic_acts_through_its_highest_head():
  """cost_critics = 2: two Q_c heads, each on its own target, the actor on their maximum.
  Head 1 is head 0 with its output raised by 5, so it is the maximum everywhere: one step of the
  two-headed learner matches, to Adam's first-step scale invariance, one step of a
  one-headed learner holding head 1 alone (its update, the actor's and the returned q_c),
  and head 0 changes nothing but itself."""
  base = _one_learner_step(1)[0].critic_params["cost"]   # [1, ...] leaves
  out_bias = lambda path, x: "bias" in jax.tree_util.keystr(path) and x.shape[-1] == 1
  raised = jax.tree_util.tree_map_with_path(
      lambda path, x: x + 5.0 if out_bias(path, x) else x, base)
  twin = jax.tree.map(lambda x, y: jnp.concatenate([x, y]), base, raised)
  old2, new2, q_c2, metrics2 = _one_learner_step(2, twin)
  _, new1, q_c1, metrics1 = _one_learner_step(1, raised)
  first = jax.tree.leaves(old2.critic_params["cost"])[0]
  chex.assert_shape(first, (2,) + first.shape[1:])
  chex.assert_shape(q_c2, (16,))
  np.testing.assert_allclose(q_c2, q_c1, rtol=1e-4, atol=1e-5)
  for a, b in zip(jax.tree.leaves(new2.policy_params), jax.tree.leaves(new1.policy_params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  for a, b in zip(jax.tree.leaves(new2.critic_params["cost"]),
                  jax.tree.leaves(new1.critic_params["cost"])):
    np.testing.assert_allclose(a[1:], b, rtol=1e-4, atol=1e-6)
  # Head 0 learns on its own target, not on the maximum: the cost loss is the mean of the
  # two one-headed learners' (head 0's target is 5 gamma_c lower than head 1's).
  _, _, _, metrics0 = _one_learner_step(1, base)
  np.testing.assert_allclose(
      metrics2["loss/value_cost"],
      0.5 * (metrics0["loss/value_cost"] + metrics1["loss/value_cost"]), rtol=1e-5)
  assert float(q_c2.min()) > 4.0   # the raised head's values, not head 0's (about 0)
  with pytest.raises(ValueError, match=r"cost_critics must be a positive integer, got 0"):
    small("sac_lag", cost_critics=0)


def test_tanh_log_prob_and_objectives_by_hand():
  """log pi(tanh(u)) = log N(u; loc, scale) - log(1 - tanh(u)^2), finite where tanh
  saturates; the actor objectives on numbers."""
  raw, loc, scale = jnp.array([[0.3, -1.2]]), jnp.array([[0.1, -1.0]]), jnp.array([[0.5, 2.0]])
  direct = (jaxcrl.losses.gaussian_log_prob(raw, loc, scale)
            - jnp.log(1.0 - jnp.tanh(raw) ** 2).sum(-1))
  np.testing.assert_allclose(sac.tanh_log_prob(raw, loc, scale), direct, rtol=1e-5)
  assert np.isfinite(sac.tanh_log_prob(jnp.full((1, 2), 30.0), loc, scale)).all()
  alpha_log_prob, q_r, q_c = jnp.array([0.1, -0.3]), jnp.array([1.0, 2.0]), jnp.array([0.5, 1.5])
  # Batch divisor: mean(0.1 - 1 + 1 * 0.5, -0.3 - 2 + 3 * 1.5) / (1 + 2) = mean(-0.4, 2.2) / 3 = 0.3
  np.testing.assert_allclose(sac.lagrangian_objective(alpha_log_prob, q_r, q_c,
                                                      jnp.array([1.0, 3.0])), 0.3, rtol=1e-6)
  # Per-sample divisor: mean(-0.4 / 2, 2.2 / 4) = mean(-0.2, 0.55) = 0.175
  np.testing.assert_allclose(sac.statewise_objective(alpha_log_prob, q_r, q_c,
                                                     jnp.array([1.0, 3.0])), 0.175, rtol=1e-6)
  # lam = 0: SAC's own actor loss, mean(alpha log pi - Q_r) = mean(-0.9, -2.3) = -1.6
  np.testing.assert_allclose(sac.lagrangian_objective(alpha_log_prob, q_r, q_c, 0.0), -1.6,
                             rtol=1e-6)


def test_fac_stabilisers():
  """Negative output bias: lambda(s) = softplus(-3) everywhere at first. Delayed ascent with
  fac_interval 3: calls 1, 2, 4 and 5 leave phi untouched, 0 and 3 step. Decaying rate:
  Adam's step on the output bias is the learning rate itself while the gradient keeps its
  sign, 0.1 at the first ascent and 0.01 once fac_decay_steps = 1 ascent has passed."""
  cfg = small("fac", fac_output_bias=-3.0, fac_interval=3, fac_lr=0.1,
              fac_lr_end=0.01, fac_decay_steps=1.0, statewise_threshold=0.5)
  cfg32 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), cfg)
  m = multipliers.make_fac(2, cfg, 5)
  mstate = m.init(jax.random.key(0), cfg32)
  obs = jnp.eye(2)[jnp.arange(8) % 2]
  np.testing.assert_allclose(m.value(mstate, obs, cfg32), jax.nn.softplus(-3.0), rtol=1e-5)
  batch = multipliers.MultiplierBatch(episode_cost=jnp.float32(1.0), obs=obs,
                                      cost_target=jnp.full((8,), 2.0))   # over w everywhere
  bias = lambda s: float(s.params["params"]["dense_1"]["bias"][0])
  update = jax.jit(m.update)
  biases = [bias(mstate)]
  for _ in range(6):
    mstate, _ = update(mstate, batch, jax.random.key(0), cfg32)
    biases.append(bias(mstate))
  steps = np.diff(biases)
  np.testing.assert_array_equal(steps[[1, 2, 4, 5]], 0.0)
  np.testing.assert_allclose(steps[[0, 3]], [0.1, 0.01], rtol=0.05)
  assert int(mstate.calls) == 6
  np.testing.assert_allclose(m.threshold(mstate, cfg32), 0.5)


def test_buffer_that_does_not_fit_is_refused_before_allocation(tmp_path):
  """buffer_size x (2 obs + action + 3) x 4 bytes x members, held twice, against the memory
  available: refused with the bytes and the flag, before anything is allocated (an
  allocation of this size would fail outright); the command line exits 2 and writes
  nothing."""
  from experiments import run
  env = envs.make("PointGoal1")
  huge = small("sac_lag", buffer_size=2**31 - 1)   # 2**31 x 500 bytes: 1 TiB
  with pytest.raises(ValueError, match=r"500 bytes x 1 member.*GiB.*--buffer-size"):
    jaxcrl.make_init_update(env, huge)
  fits = small("sac_lag", buffer_size=1000)
  driver.check_memory(env, fits)                        # 1 MB: fine
  with pytest.raises(ValueError, match=r"x 10000000 member\(s\)"):
    driver.check_memory(env, fits, members=10_000_000)  # 10 TB
  assert driver.replay_bytes(60, 2, 1000) == 1000 * (2 * 60 + 2 + 3) * 4
  out = tmp_path / "big"
  assert run.main(["--env", "PointGoal1", "--algo", "sac_lag", "--buffer-size", "2e9",
                   "--out", str(out), "--no-plots", "--no-progress"]) == 2
  assert not out.exists()
  with pytest.raises(ValueError, match="buffer_size=8 is less than one update's transitions"):
    jaxcrl.make_init_update(_env(), small("sac", buffer_size=8))
  with pytest.raises(ValueError, match=r"buffer_size must be an integer in \[1, 2\*\*31\)"):
    jaxcrl.make_config("sac", buffer_size=2**31)


def test_each_driver_checks_its_own_settings():
  """TrainConfig.validate asks the algorithm's driver: the on-policy one needs the batch to
  split into num_minibatches, the off-policy one (which samples its own batch_size from
  the buffer) does not, and needs a buffer that holds one update."""
  assert jaxcrl.ALGORITHMS["ppo"].driver is jaxcrl.train.ON_POLICY
  assert jaxcrl.ALGORITHMS["fac"].driver is driver.DRIVER
  odd = dict(num_envs=4, unroll_length=8, num_minibatches=3)
  with pytest.raises(ValueError, match="not divisible by num_minibatches=3"):
    jaxcrl.make_config("ppo_lag", **odd)
  assert jaxcrl.make_config("sac_lag", **odd).batch_size == 32
  with pytest.raises(ValueError, match="buffer_size=16 is less than one update"):
    jaxcrl.make_config("sac_lag", buffer_size=16, **odd)
  assert jaxcrl.algorithms.is_off_policy("fac") and not jaxcrl.algorithms.is_off_policy("cup")


def test_vmapped_over_two_seeds_and_two_limits_one_member_equals_its_own_run():
  """test_train's sweep check on sac_lag: jit(vmap(train)) over 2 seeds x 2 cost limits on
  the costly bandit, each member its own limit and seed (and replay buffer), the tighter
  limit raises lambda more, member 3 equals the same config trained on its own."""
  state = sweep_two_limits_by_two_seeds(
      small("sac_lag", lagrange_lr=0.5, warmup_steps=0, num_timesteps=4 * 8 * 4))
  chex.assert_shape(state.learner.replay.data.obs, (4, 64, 1))


def _bandit(algo: str, updates: int, **settings):
  """2 seeds of `algo` on ProbeCostlyBandit, d = 0.5, 16 envs x 4 steps per update ->
  cost rate and lambda [2, U]."""
  cfg = jaxcrl.make_config(
      algo, num_envs=16, unroll_length=4, num_timesteps=16 * 4 * updates, cost_limit=0.5,
      policy_hidden=(16,), value_hidden=(16,), buffer_size=4096, batch_size=64,
      warmup_steps=256, policy_lr=1e-3, value_lr=1e-3, **settings)
  train = jaxcrl.make_train(envs.make("ProbeCostlyBandit"), cfg)
  _, metrics = jax.jit(jax.vmap(train))(jax.random.split(jax.random.key(0), 2))
  return np.asarray(metrics["episode/cost_rate"]), np.asarray(metrics["lambda/mean"])


@pytest.mark.slow
def test_costly_bandit_sac_lag_and_fac_hold_the_cost_rate_at_the_limit():
  """The rewarding action costs 1, d = 0.5 per one-step episode. Known answer: the
  constrained optimum takes it half the time (cost rate 0.5) with lambda = 1, one unit of
  reward per unit of cost (above 1 the policy would give the action up, below take it
  always). FAC's w is derived from d: one-step episodes, w = d, and Q_c(s, pi(s)) is the
  probability of the costly action. The observation is constant, so the normaliser feeds
  0 and lambda_phi is its output bias alone (zero input, zero-initialised hidden biases:
  every hidden unit sits at 0 with no gradient), which Adam moves by at most fac_lr per
  step: from -2 it must climb 2.5 to reach lambda = 1, hence fac_lr 0.02 (0.005 reached
  only 0.36-0.38 in 400 updates). Measured (2 seeds, last quarter of 400 updates): sac_lag
  cost 0.52 and 0.52, lambda 1.03 and 0.97; fac 0.52 and 0.51, lambda 1.03 and 1.02; sac
  (unconstrained) 0.75 and 0.74 and rising (its temperature holds entropy up)."""
  late = {}
  for algo, own in {
      "sac": {},
      "sac_lag": dict(lagrange_lr=0.05),
      "fac": dict(multiplier_hidden=(16,), fac_lr=0.02, fac_lr_end=0.005,
                  fac_decay_steps=400.0, fac_output_bias=-2.0, multiplier_delay=20)}.items():
    cost, lam = _bandit(algo, 400, **own)
    late[algo] = cost[:, 300:].mean(1), lam[:, 300:].mean(1)
  print({k: (v[0].round(3).tolist(), v[1].round(3).tolist()) for k, v in late.items()})
  assert np.all(late["sac"][0] > 0.65), late["sac"]
  for algo in ("sac_lag", "fac"):
    cost, lam = late[algo]
    assert np.all(np.abs(cost - 0.5) < 0.05), (algo, cost)
    assert np.all(np.abs(lam - 1.0) < 0.25), (algo, lam)


@pytest.mark.slow
def test_two_region_fac_lambda_rises_only_where_violating():
  """ProbeTwoRegion: only region 0 makes the rewarding action costly. With cost_gamma 0.9
  and the critic bootstrapping through the time limit (the observation has no clock),
  Q_c(s, pi(s)) = P(a > 0 | s) / (1 - 0.9) in region 0 and 0 in region 1, so with w = 1
  the known answer is P(a > 0) = 0.1 in region 0, lambda(s) up there, and lambda(s) at ~0
  in region 1 (from its initial softplus(-2) = 0.13), whose P(a > 0) stays high (SAC's
  entropy keeps it off 1). Measured (2 seeds, last tenth of 600 updates): lambda 2.77 and
  2.97 in region 0 against 0.001 and 0.001 in region 1; final P(a > 0) 0.09 and 0.09 in
  region 0, 0.78 and 0.80 in region 1."""
  env = envs.make("ProbeTwoRegion")
  cfg = jaxcrl.make_config(
      "fac", num_envs=16, unroll_length=4, num_timesteps=16 * 4 * 600, cost_limit=3.0,
      cost_gamma=0.9, policy_hidden=(16,), value_hidden=(16,), multiplier_hidden=(16,),
      buffer_size=8192, batch_size=64, warmup_steps=256, policy_lr=1e-3, value_lr=1e-3,
      statewise_threshold=1.0, fac_lr=0.005, fac_lr_end=0.001, fac_decay_steps=400.0,
      fac_output_bias=-2.0, multiplier_delay=20)
  init, update = jaxcrl.make_init_update(env, cfg)
  lam_fn, act = jaxcrl.make_lambda(env, cfg), jaxcrl.make_act(env, cfg)
  regions = jnp.eye(2)

  def train(key):
    def step(state, _):
      state, _ = update(state)
      return state, lam_fn(state, regions)
    return jax.lax.scan(step, init(key), None, length=cfg.num_updates)

  states, lam = jax.jit(jax.vmap(train))(jax.random.split(jax.random.key(0), 2))
  late = np.asarray(lam[:, -cfg.num_updates // 10:]).mean(1)
  p_costly = p_costly_per_region(act, states)
  print("late lambda per region", late.round(3).tolist(), "P(a>0) per region",
        np.round(p_costly, 3).tolist())
  assert np.all(late[:, 0] > 1.0) and np.all(late[:, 1] < 0.05), late
  for p in p_costly:
    assert abs(p[0] - 0.1) < 0.06 and p[1] > 0.6, p
