"""compute_gae against hand-computed values, including the truncation bootstrap."""

import chex
import jax.numpy as jnp
import numpy as np

from jaxcrl.returns import compute_gae


def test_gae_hand_computed_truncation_and_termination():
  # gamma = lam = 0.5, so gamma * lam = 0.25. Column 0 is TRUNCATED at t=1, column 1
  # TERMINATED at t=1; both restart at t=2.
  reward = jnp.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
  value = jnp.array([[0.5, 0.5], [1.0, 1.0], [1.5, 1.5]])
  # next_value[t] = V(final_obs_t): at t=1 it is the value where the episode ended (4.0),
  # not the value of the reset observation (0.5 at t=2).
  next_value = jnp.array([[1.0, 1.0], [4.0, 4.0], [2.0, 2.0]])
  done = jnp.array([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
  truncation = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
  adv, target = compute_gae(reward, value, next_value, done, truncation, 0.5, 0.5)
  chex.assert_shape((adv, target), (3, 2))
  # Column 0 (truncated): delta = [1 + .5*1 - .5, 2 + .5*4 - 1, 3 + .5*2 - 1.5] = [1, 3, 2.5]
  #   A2 = 2.5; A1 = 3 (recursion stops at the episode end); A0 = 1 + .25*3 = 1.75.
  # Column 1 (terminated): delta1 = 2 + 0 - 1 = 1 (no bootstrap); A1 = 1; A0 = 1 + .25 = 1.25.
  np.testing.assert_allclose(adv, [[1.75, 1.25], [3.0, 1.0], [2.5, 2.5]], rtol=1e-6)
  np.testing.assert_allclose(target, [[2.25, 1.75], [4.0, 2.0], [4.0, 4.0]], rtol=1e-6)


def test_gae_lambda_one_is_discounted_return_minus_value():
  # No episode end: with lam = 1 the target is the Monte Carlo return bootstrapped at T.
  reward = jnp.array([[1.0], [0.0], [2.0]])
  value = jnp.zeros((3, 1))
  next_value = jnp.array([[0.0], [0.0], [10.0]])
  zeros = jnp.zeros((3, 1))
  _, target = compute_gae(reward, value, next_value, zeros, zeros, 0.9, 1.0)
  # G2 = 2 + .9*10 = 11; G1 = 0 + .9*11 = 9.9; G0 = 1 + .9*9.9 = 9.91.
  np.testing.assert_allclose(target[:, 0], [9.91, 9.9, 11.0], rtol=1e-6)
