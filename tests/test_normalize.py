"""The observation normaliser: running statistics, standardisation, constant features."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxcrl import normalize


def test_running_statistics_match_the_pooled_batch_and_standardise_it():
  key = jax.random.key(0)
  obs = jax.random.normal(key, (2, 500, 3)) * jnp.array([1.0, 5.0, 0.1]) + jnp.array(
      [0.0, 3.0, -2.0])
  state = normalize.update(normalize.update(normalize.init(3), obs[0]), obs[1])
  pooled = obs.reshape(-1, 3)
  np.testing.assert_allclose(state.mean, pooled.mean(0), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(state.var, pooled.var(0), rtol=1e-3)
  out = normalize.apply(state, pooled)
  chex.assert_shape(out, (1000, 3))
  chex.assert_tree_all_finite(out)
  np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-4)
  np.testing.assert_allclose(out.std(0), 1.0, rtol=1e-3)


def test_a_feature_constant_in_training_stays_zero_wherever_it_moves():
  # Column 1 is the planar Car's accelerometer z: gravity, exactly, in every training step.
  # The prior leaves it a variance of 1e-4 (1 + 9.81^2) / N: 2.4e-6 after one batch of
  # 4096, under CONSTANT_VAR from the third.
  varying = jax.random.normal(jax.random.key(1), (3, 4096))
  state = normalize.init(2)
  for batch in varying:
    state = normalize.update(state, jnp.stack([batch, jnp.full_like(batch, 9.81)], axis=-1))
  assert state.var[1] <= normalize.CONSTANT_VAR < state.var[0]
  probe = jnp.array([[0.5, 9.81], [0.5, 15.0], [0.5, -3.0], [0.5, 9.8101]])
  out = normalize.apply(state, probe)
  np.testing.assert_array_equal(out[:, 1], 0.0)
  np.testing.assert_allclose(out[:, 0], out[0, 0])  # the varying feature is untouched
  assert abs(float(out[0, 0])) > 0.3
  # Standardised, the moved constant would sit at the clip: what the rule removes.
  raw = (probe[:, 1] - state.mean[1]) / jnp.sqrt(state.var[1] + 1e-8)
  assert float(jnp.abs(raw[1:3]).min()) > 10.0


def test_before_any_data_and_when_disabled_nothing_is_masked():
  obs = jnp.array([[0.5, -20.0, 3.0]])
  np.testing.assert_allclose(normalize.apply(normalize.init(3), obs), [[0.5, -10.0, 3.0]],
                             rtol=1e-6)
  state = normalize.update(normalize.init(3), jnp.zeros((128, 3)))
  np.testing.assert_array_equal(normalize.apply(state, obs), 0.0)
  np.testing.assert_array_equal(normalize.apply(state, obs, enabled=False), obs)
