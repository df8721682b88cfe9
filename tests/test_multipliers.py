"""Scalar, PID and state-wise multipliers against hand-computed updates."""


import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcrl import multipliers
from jaxcrl.algorithms import make_config


def _batch(cost, obs=None, target=None):
  obs = jnp.zeros((4, 2)) if obs is None else obs
  target = jnp.zeros(obs.shape[:1]) if target is None else target
  return multipliers.MultiplierBatch(jnp.asarray(cost, jnp.float32), obs, target)


def test_lagrange_update_hand_computed_and_clipped():
  cfg = make_config("ppo_lag", cost_limit=25.0, lagrange_lr=0.1, lambda_init=0.5,
                    lambda_max=2.0)
  m = multipliers.make_lagrange(2, cfg, 1000)
  key = jax.random.key(0)
  s = m.init(key, cfg)
  chex.assert_shape(m.value(s, jnp.zeros((4, 2)), cfg), ())
  s, metrics = m.update(s, _batch(30.0), key, cfg)   # 0.5 + 0.1 * (30 - 25) = 1.0
  np.testing.assert_allclose(s.lam, 1.0)
  np.testing.assert_allclose(metrics["loss/multiplier"], -0.5 * 5.0)
  s, _ = m.update(s, _batch(100.0), key, cfg)        # 1 + 7.5 -> clipped to lambda_max 2
  np.testing.assert_allclose(s.lam, 2.0)
  s, _ = m.update(s, _batch(0.0), key, cfg)          # 2 - 2.5 -> clipped to 0
  np.testing.assert_allclose(s.lam, 0.0)


def test_pid_update_hand_computed():
  cfg = make_config("ppo_pid", cost_limit=1.0, pid_kp=1.0, pid_ki=0.5, pid_kd=2.0,
                    pid_alpha_p=0.5, pid_alpha_d=0.5, pid_delay=2, lambda_max=100.0)
  m = multipliers.make_pid(2, cfg, 1000)
  key = jax.random.key(0)
  s = m.init(key, cfg)
  lams = []
  for jc in (3.0, 0.0, 0.0):
    s, _ = m.update(s, _batch(jc), key, cfg)
    lams.append(float(s.lam))
  # 1: delta=2: I=1, P=.5*2=1, C=.5*3=1.5, D=1.5-0=1.5 -> lam = 1 + 1 + 2*1.5 = 5
  # 2: delta=-1: I=.5, P=.5*1-.5=0, C=.75, D=.75-0 (2 updates ago) -> lam = 0 + .5 + 1.5 = 2
  # 3: delta=-1: I=0, P=-.5, C=.375, D=max(0, .375-1.5)=0 -> lam = clip(-.5, 0) = 0
  np.testing.assert_allclose(lams, [5.0, 2.0, 0.0], atol=1e-6)
  chex.assert_shape(s.d_history, (2,))


def test_statewise_threshold_derivation():
  # Algorithms without the setting use the derived w = d / T / (1 - cost_gamma).
  cfg = make_config("ppo_lag", cost_limit=25.0, cost_gamma=0.99)
  np.testing.assert_allclose(multipliers.statewise_threshold(cfg, 1000), 2.5, rtol=1e-5)
  for given, w in ((float("nan"), 2.5), (-1.0, 2.5), (0.7, 0.7)):
    cfg = make_config("ppo_statewise", cost_limit=25.0, cost_gamma=0.99,
                      statewise_threshold=given)
    np.testing.assert_allclose(multipliers.statewise_threshold(cfg, 1000), w, rtol=1e-5)


def test_episode_threshold_is_the_budget_of_a_finite_episode():
  # (d / T)(1 - g^T) / (1 - g): 2.4999 for Safety-Gym's T = 1000, 2.72 for d = 3 over T = 20.
  for d, steps in ((25.0, 1000), (3.0, 20)):
    cfg = make_config("ppo_statewise_auto", cost_limit=d, cost_gamma=0.99)
    np.testing.assert_allclose(multipliers.episode_threshold(cfg, steps),
                               d / steps * (1 - 0.99**steps) / 0.01, rtol=1e-5)
  cfg = make_config("ppo_statewise_auto", cost_limit=3.0, statewise_threshold=0.7)
  np.testing.assert_allclose(multipliers.episode_threshold(cfg, 20), 0.7, rtol=1e-6)


def test_statewise_rises_only_where_violating():
  cfg = make_config("ppo_statewise", statewise_threshold=1.0, statewise_lr=0.05,
                    statewise_lambda_init=0.5, num_minibatches=2, multiplier_hidden=(8,))
  m = multipliers.make_statewise(2, cfg, 10)
  key = jax.random.key(0)
  s = m.init(key, cfg)
  probe = jnp.eye(2)
  lam0 = m.value(s, probe, cfg)
  chex.assert_shape(lam0, (2,))
  np.testing.assert_allclose(lam0, [0.5, 0.5], rtol=1e-5)   # exact initial value
  # State 0 has cost-to-go 5 > w = 1 (violates); state 1 has 0 (satisfied).
  obs = jnp.tile(probe, (8, 1))
  target = jnp.tile(jnp.array([5.0, 0.0]), 8)
  update = jax.jit(m.update)
  for i in range(30):
    s, metrics = update(s, _batch(0.0, obs, target), jax.random.key(i), cfg)
  lam = m.value(s, probe, cfg)
  assert lam[0] > 1.0 and lam[1] < 0.25, lam
  assert np.isfinite(metrics["loss/multiplier"])


def _auto(**settings):
  cfg = make_config("ppo_statewise_auto", multiplier_hidden=(8,), **settings)
  return cfg, multipliers.make_statewise_auto(2, cfg, 10)


def test_statewise_auto_initial_value_and_threshold():
  # cost_limit 1 over T = 10 steps at cost_gamma 0.9: derived w = 0.1 (1 - 0.9^10) / 0.1.
  cfg, m = _auto(statewise_lambda_init=0.3, cost_limit=1.0, cost_gamma=0.9)
  s = m.init(jax.random.key(0), cfg)
  lam = m.value(s, jnp.eye(2), cfg)
  chex.assert_shape(lam, (2,))
  np.testing.assert_allclose(lam, [0.3, 0.3], rtol=1e-5)
  np.testing.assert_allclose(m.threshold(s, cfg), 1 - 0.9**10, rtol=1e-5)
  cfg, m = _auto(statewise_threshold=0.7)
  np.testing.assert_allclose(m.threshold(m.init(jax.random.key(0), cfg), cfg), 0.7, rtol=1e-5)


def _auto_run(init, episode_cost, target=(5.0, 0.0), updates=20, **settings):
  """lambda(s) [updates + 1, 2] of two states with cost-to-go `target` against w = 1 and
  d = 10; no proportional term unless `statewise_kp` is given, and the shape's full span
  unless `statewise_shape_max` is."""
  obs = jnp.tile(jnp.eye(2), (8, 1))
  target = jnp.tile(jnp.asarray(target), 8)
  cfg, m = _auto(statewise_threshold=1.0, cost_limit=10.0, statewise_lambda_init=init,
                 **{"statewise_step": 0.1, "statewise_lr": 0.05, "regression_steps": 20,
                    "statewise_kp": 0.0, "statewise_shape_max": float("nan"), **settings})
  s = m.init(jax.random.key(0), cfg)
  update = jax.jit(m.update)
  lams = [np.asarray(m.value(s, jnp.eye(2), cfg))]
  for i in range(updates):
    s, metrics = update(s, _batch(episode_cost, obs, target), jax.random.key(i), cfg)
    lams.append(np.asarray(m.value(s, jnp.eye(2), cfg)))
    assert np.isfinite(metrics["loss/multiplier"])
  return np.stack(lams)


def test_statewise_auto_level_follows_the_episode_excess_exactly():
  """Both states equally over w (no shape step): log lambda moves by statewise_step x E per
  update, E = clip((J_c - d) / d, -1, 1), from any initial scale; it holds at J_c = d."""
  for init in (0.01, 1.0):
    for cost, excess in ((30.0, 1.0), (15.0, 0.5), (10.0, 0.0), (5.0, -0.5)):
      lams = _auto_run(init, cost, target=(5.0, 5.0), updates=5)
      want = init * np.exp(0.1 * excess * np.arange(6))
      np.testing.assert_allclose(lams, want[:, None].repeat(2, 1), rtol=1e-4)


def test_statewise_auto_shape_moves_penalty_to_the_violating_state():
  """At J_c = d the level holds and the shape moves lambda towards state 0 (V_c 5 > w 1)
  and away from state 1 (V_c 0) by about statewise_step per update each, the same from
  any initial lambda (the net regresses onto its target: within 50% per update)."""
  ratios = []
  for init in (0.01, 1.0):
    lams = _auto_run(init, 10.0)
    step = np.diff(np.log(lams), axis=0)
    assert np.all((step[:, 0] > 0.05) & (step[:, 0] < 0.15)), step[:, 0]
    assert np.all((step[:, 1] < -0.05) & (step[:, 1] > -0.15)), step[:, 1]
    ratios.append(lams[-1] / lams[0])
  np.testing.assert_allclose(ratios[0], ratios[1], rtol=1e-3)   # f does not see the scale


def test_statewise_auto_clips_to_floor_and_max():
  lams = _auto_run(1.0, 30.0, updates=30, statewise_step=1.0, statewise_lr=0.1, lambda_max=3.0)
  np.testing.assert_allclose(lams[-1], [3.0, multipliers.LAMBDA_FLOOR], rtol=0.05)


def test_statewise_auto_shape_bound():
  """statewise_shape_max F bounds log(lambda(s) / level) to [-F, F]: at J_c = d the level
  holds at 1 and the shape's pull (state 0 over w, state 1 under) stops at exp(+-F); F = 0
  keeps lambda equal in every state; NaN leaves only the floor and lambda_max."""
  for bound in (0.5, 1.0):
    lams = _auto_run(1.0, 10.0, updates=30, statewise_step=0.3, statewise_shape_max=bound)
    np.testing.assert_allclose(lams[-1], [np.exp(bound), np.exp(-bound)], rtol=0.03)
  lams = _auto_run(1.0, 10.0, updates=10, statewise_step=0.3, statewise_shape_max=0.0)
  np.testing.assert_allclose(lams, np.ones_like(lams), rtol=1e-6)
  lams = _auto_run(1.0, 10.0, updates=30, statewise_step=0.3)   # NaN: the full span
  assert lams[-1, 0] == pytest.approx(10.0) and lams[-1, 1] < np.exp(-3.0), lams[-1]  # lambda_max
  with pytest.raises(ValueError, match=r"statewise_shape_max must be >= 0 or NaN, got -1"):
    make_config("ppo_statewise_auto", statewise_shape_max=-1.0)


def test_statewise_auto_proportional_term_follows_the_smoothed_episode_excess():
  """With k_p = 1 and no integral step, every lambda(s) is multiplied by exp(E_bar), E_bar
  the EMA (factor EXCESS_EMA) of the clipped relative episode excess."""
  a = multipliers.EXCESS_EMA
  for cost, excess in ((30.0, 1.0), (5.0, -0.5)):
    lams = _auto_run(0.5, cost, updates=3, statewise_step=0.0, statewise_kp=1.0)
    ema = np.array([0.0] + [excess * (1 - a**k) for k in range(1, 4)])
    np.testing.assert_allclose(lams, 0.5 * np.exp(ema)[:, None].repeat(2, 1), rtol=1e-3)
