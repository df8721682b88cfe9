"""Scalar, PID and state-wise multipliers against hand-computed updates."""


import chex
import jax
import jax.numpy as jnp
import numpy as np

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
