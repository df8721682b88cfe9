"""Brax's own PPO trains unchanged on a jaxcrl velocity env (legacy keys, Brax wrappers)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs import training as brax_training
from brax.training.agents.ppo import networks as ppo_networks
from brax.training.agents.ppo import train as ppo

import envs


def test_brax_wrappers_keep_cost_with_legacy_keys():
  env = envs.make("HopperVelocity")
  benv = brax_training.wrap(env, episode_length=20)
  # Brax's VmapWrapper reads the batch size off a stack of legacy uint32 keys [4, 2].
  keys = jax.random.split(jax.random.PRNGKey(0), 4)
  state = jax.eval_shape(benv.reset, keys)
  state = jax.eval_shape(benv.step, state, jax.ShapeDtypeStruct((4, 3), jnp.float32))
  assert isinstance(state, envs.State)
  assert state.cost.shape == (4,) and state.metrics["cost_velocity"].shape == (4,)


def test_brax_ppo_runs_on_a_velocity_env():
  env = envs.make("HopperVelocity")
  progress = []
  make_policy, params, metrics = ppo.train(
      environment=env,
      num_timesteps=80,
      episode_length=20,
      num_envs=4,
      batch_size=4,
      num_minibatches=2,
      unroll_length=5,
      num_updates_per_batch=1,
      num_evals=2,
      # Brax's evaluator would compile a second env unroll; the training step is the test.
      run_evals=False,
      network_factory=functools.partial(
          ppo_networks.make_ppo_networks, policy_hidden_layer_sizes=(8,),
          value_hidden_layer_sizes=(8,)),
      progress_fn=lambda step, m: progress.append((step, m)),
      seed=0,
  )
  assert progress and progress[-1][0] >= 80
  losses = {k: float(np.asarray(v)) for k, v in metrics.items() if k.endswith("loss")}
  assert "training/total_loss" in losses, sorted(metrics)
  assert all(np.isfinite(v) for v in losses.values()), losses
  assert make_policy is not None
  for leaf in jax.tree.leaves(params):
    assert np.all(np.isfinite(leaf))
