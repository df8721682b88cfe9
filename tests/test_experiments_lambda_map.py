"""lambda(s) over the PointGoal1 arena from an initialised ppo_statewise state."""


import jax
import numpy as np
import pytest

import envs
import jaxcrl
from experiments import lambda_map

pytestmark = pytest.mark.skipif("PointGoal1" not in envs.names(),
                                reason="PointGoal1 is not registered on this branch")


def test_lambda_map_on_point_goal(tmp_path):
  env = envs.make("PointGoal1")
  assert lambda_map.supports(env)
  config = jaxcrl.make_config("ppo_statewise", num_envs=2, unroll_length=4,
                              num_minibatches=1, num_timesteps=8, statewise_lambda_init=0.3)
  init, _ = jaxcrl.make_init_update(env, config)
  state = jax.jit(init)(jax.random.key(0))
  compute = lambda_map.make_compute(env, config, resolution=8, headings=2)
  data = compute(state, jax.random.key(1))
  assert data["lam"].shape == (8, 8) and np.isfinite(data["lam"]).all()
  # An untrained lambda(s) net starts near statewise_lambda_init everywhere.
  np.testing.assert_allclose(data["lam"], 0.3, rtol=0.2)
  assert data["hazards"].shape == (8, 2) and data["hazard_radius"] > 0
  assert np.all(np.abs(data["hazards"]) <= env.extents) and np.isfinite(data["goal"]).all()
  again = compute(state, jax.random.key(1))
  np.testing.assert_array_equal(again["lam"], data["lam"])
  path = lambda_map.plot(data, tmp_path / "map.png", "test")
  assert path.read_bytes()[:4] == b"\x89PNG"
