"""PPO loss pieces against hand-computed values."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxcrl import losses


def test_clipped_surrogate_hand_computed():
  old = jnp.zeros(2)
  new = jnp.log(jnp.array([1.5, 0.5]))
  adv = jnp.array([2.0, -1.0])
  # sample 0: min(1.5*2, 1.2*2) = 2.4; sample 1: min(0.5*-1, 0.8*-1) = -0.8.
  # loss = -(2.4 - 0.8) / 2 = -0.8.
  loss = losses.clipped_surrogate(new, old, adv, 0.2)
  chex.assert_shape(loss, ())
  np.testing.assert_allclose(loss, -0.8, rtol=1e-6)


def test_penalized_advantage_broadcasts_scalar_and_statewise_lambda():
  adv_r = jnp.array([3.0, 1.0])                  # centred [1, -1], std 1
  adv_c = jnp.array([1.0, 0.0])                  # centred [0.5, -0.5]
  # lam = 3: ([1, -1] - 3 [0.5, -0.5]) / (1 (1 + 3)) = [-0.125, 0.125]
  np.testing.assert_allclose(losses.penalized_advantage(adv_r, adv_c, 3.0), [-0.125, 0.125],
                             rtol=1e-6)
  # lam = [0, 1] (mean 0.5): ([1, -1] - [0, -0.5]) / 1.5 = [2/3, -1/3]
  out = losses.penalized_advantage(adv_r, adv_c, jnp.array([0.0, 1.0]))
  chex.assert_shape(out, (2,))
  np.testing.assert_allclose(out, [2.0 / 3.0, -1.0 / 3.0], rtol=1e-6)
  # The state-wise penalty is not capped at a cost weight of 1 per sample: with
  # lam = [99, 0] (mean 49.5) the violating sample gets (1 - 49.5) / 50.5, far below -1/2.
  out = losses.penalized_advantage(adv_r, adv_c, jnp.array([99.0, 0.0]))
  np.testing.assert_allclose(out, [-48.5 / 50.5, -1.0 / 50.5], rtol=1e-6)


def test_penalized_advantage_keeps_lagrangian_units():
  """One divisor, std(A_r): lam is reward per unit of cost, so rarer (smaller) costs are
  penalised less at the same lam, and common rescaling of both advantages cancels."""
  key_r, key_c = jax.random.split(jax.random.key(0))
  adv_r = jax.random.normal(key_r, (64,))
  adv_c = jnp.where(jax.random.uniform(key_c, (64,)) < 0.1, 1.0, 0.0)
  base = losses.penalized_advantage(adv_r, adv_c, 0.0)
  np.testing.assert_allclose(base, losses.standardize(adv_r), rtol=1e-5, atol=1e-6)
  full = losses.penalized_advantage(adv_r, adv_c, 2.0) * 3.0 - base   # undo 1 / (1 + 2)
  tenth = losses.penalized_advantage(adv_r, 0.1 * adv_c, 2.0) * 3.0 - base
  np.testing.assert_allclose(tenth, 0.1 * full, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(losses.penalized_advantage(5.0 * adv_r, 5.0 * adv_c, 2.0),
                             losses.penalized_advantage(adv_r, adv_c, 2.0), rtol=1e-5,
                             atol=1e-6)


def test_penalized_loss_reduces_to_reward_loss_at_zero_lambda():
  key_a, key_b, key_c = jax.random.split(jax.random.key(0), 3)
  new = 0.1 * jax.random.normal(key_a, (16,))
  adv_r = jax.random.normal(key_b, (16,))
  adv_c = jax.random.normal(key_c, (16,))
  a = losses.penalized_policy_loss(new, jnp.zeros(16), adv_r, adv_c, 0.0, 0.2)
  b = losses.reward_policy_loss(new, jnp.zeros(16), adv_r, adv_c, 5.0, 0.2)
  np.testing.assert_allclose(a, b, rtol=1e-6)
  # A large lambda turns the objective towards lowering cost: the sign of the loss flips
  # when reward and cost advantages are equal.
  c = losses.penalized_policy_loss(new, jnp.zeros(16), adv_r, adv_r, 10.0, 0.2)
  assert np.sign(c) == -np.sign(a) or abs(float(c)) < 1e-6


def test_value_loss_and_standardize():
  # 0.5 * mean([(1-0)^2, (3-1)^2]) = 0.5 * 2.5 = 1.25
  np.testing.assert_allclose(losses.value_loss(jnp.array([1.0, 3.0]), jnp.array([0.0, 1.0])),
                             1.25)
  np.testing.assert_allclose(losses.standardize(jnp.ones(4)), jnp.zeros(4))
  out = losses.standardize(jnp.array([1.0, 3.0]))
  np.testing.assert_allclose(out, [-1.0, 1.0], rtol=1e-6)


def test_gaussian_log_prob_and_entropy_match_scipy():
  x = jnp.array([[0.3, -1.0]])
  loc = jnp.array([[0.0, 0.5]])
  scale = jnp.array([[1.0, 2.0]])
  expected = jax.scipy.stats.norm.logpdf(x, loc, scale).sum(-1)
  np.testing.assert_allclose(losses.gaussian_log_prob(x, loc, scale), expected, rtol=1e-6)
  # Entropy of N(., s): 0.5 log(2 pi e s^2), summed over dims.
  expected_h = np.sum(0.5 * np.log(2 * np.pi * np.e * np.array([1.0, 4.0])))
  np.testing.assert_allclose(losses.gaussian_entropy(scale), [expected_h], rtol=1e-6)


def test_statewise_advantage_divides_each_sample_by_its_own_lambda():
  adv_r = jnp.array([1.0, -1.0, 3.0, -3.0])
  adv_c = jnp.array([2.0, 0.0, 0.0, -2.0])
  lam = jnp.array([0.0, 1.0, 3.0, 9.0])
  got = losses.statewise_advantage(adv_r, adv_c, lam)
  chex.assert_shape(got, (4,))
  std = np.asarray(adv_r).std() + 1e-8
  # means are 0: sample i is (A_r - lam A_c) / (1 + lam) / std(A_r).
  want = (np.array([1.0, -1.0, 3.0, -3.0]) - np.array([0.0, 0.0, 0.0, -18.0])) / (
      1.0 + np.asarray(lam)) / std
  np.testing.assert_allclose(got, want, rtol=1e-5)
  # A scalar lambda gives the batch-wide Lagrangian advantage.
  np.testing.assert_allclose(losses.statewise_advantage(adv_r, adv_c, jnp.asarray(0.7)),
                             losses.penalized_advantage(adv_r, adv_c, jnp.asarray(0.7)),
                             rtol=1e-6)
