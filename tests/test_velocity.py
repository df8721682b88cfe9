"""Velocity tasks: shapes, the cost threshold in real physics, finiteness, registry."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import velocity

NAMES = sorted(velocity.THRESHOLDS)
# (obs, action) sizes of Brax's envs; Humanoid drops gymnasium's 132 contact-force numbers.
SIZES = {
    "AntVelocity": (27, 8),
    "HalfCheetahVelocity": (17, 6),
    "HopperVelocity": (11, 3),
    "HumanoidVelocity": (244, 17),
    "SwimmerVelocity": (8, 2),
    "Walker2dVelocity": (17, 6),
}
PLANAR_SPEED = {"AntVelocity", "HumanoidVelocity"}
ROLLOUT_STEPS = 8
# The fast tier's budget: the slowest traces run under `pytest -m slow` only.
SLOW_SHAPES = {"AntVelocity", "HumanoidVelocity", "Walker2dVelocity"}  # Ant is probed below
SLOW_THRESHOLDS = {"HumanoidVelocity", "Walker2dVelocity"}


def _tiered(names, slow):
  return [pytest.param(n, marks=pytest.mark.slow) if n in slow else n for n in names]


def test_all_six_tasks_are_registered():
  assert set(NAMES) <= set(envs.names())
  assert len(NAMES) == 6


@pytest.mark.parametrize("name", _tiered(NAMES, SLOW_SHAPES))
def test_batched_shapes_and_dtypes(name):
  env = envs.make(name)
  assert env.episode_length == 1000
  obs_size, act_size = SIZES[name]
  # Not env.observation_size: Brax computes it with an eager reset (hundreds of tiny compiles).
  assert env.action_size == act_size
  # Plain vmap, not envs.wrap: tracing the wrapper's auto-reset doubles the (slow) trace.
  keys = jax.random.split(jax.random.key(0), 4)
  state = jax.eval_shape(jax.vmap(env.reset), keys)
  action = jax.ShapeDtypeStruct((4, act_size), jnp.float32)
  state = jax.eval_shape(jax.vmap(env.step), state, action)
  assert isinstance(state, envs.State)
  chex.assert_shape(state.obs, (4, obs_size))
  for leaf in (state.reward, state.cost, state.done, state.metrics["velocity"],
               state.metrics["cost_velocity"]):
    chex.assert_shape(leaf, (4,))
    assert leaf.dtype == jnp.float32


def _root_speeds(name, threshold):
  """Root velocities [cases, 2] (x, y) and whether each must cost, for the definition test."""
  if name in PLANAR_SPEED:
    # Each axis alone is below the threshold; only the xy norm (1.13x) exceeds it.
    cases = [((0.0, 0.0), 0.0), ((0.99, 0.0), 0.0), ((1.01, 0.0), 1.0), ((0.0, -1.01), 1.0),
             ((0.8, 0.8), 1.0), ((-0.8, -0.8), 1.0)]
  else:
    # Signed x velocity: running backwards never costs.
    cases = [((0.0, 0.0), 0.0), ((0.99, 0.0), 0.0), ((1.01, 0.0), 1.0), ((-2.0, 0.0), 0.0)]
  speeds = threshold * jnp.array([c[0] for c in cases])
  return speeds, np.array([c[1] for c in cases])


@pytest.mark.parametrize("name", _tiered(NAMES, SLOW_THRESHOLDS))
def test_cost_threshold_on_displaced_poses(name):
  """Velocity and cost between two poses whose root moved by speed * dt (no physics step)."""
  env = envs.make(name)
  speeds, expected = _root_speeds(name, env.threshold)
  ndim = 2 if name in PLANAR_SPEED else 1  # free joints: qpos[0:2] = xy; planar: rootx

  @jax.jit
  def measure(speed):
    q0 = env.sys.init_q
    q1 = q0.at[:ndim].add(speed[:ndim] * env.dt)
    zero = jnp.zeros(env.sys.qd_size())
    return env.velocity_cost(env.pipeline_init(q0, zero), env.pipeline_init(q1, zero))

  velocity_, cost = jax.vmap(measure)(speeds)
  norms = np.linalg.norm(speeds, axis=1) if name in PLANAR_SPEED else speeds[:, 0]
  np.testing.assert_allclose(velocity_, norms, rtol=1e-3, atol=1e-3)
  np.testing.assert_array_equal(cost, expected)


# Physics probes compile a full env step (tens of seconds on CPU), so two envs: one
# signed-x task and one xy-norm task.
PROBED = ["HopperVelocity", "AntVelocity"]


@pytest.fixture(scope="module")
def probes():
  """name -> ((velocity, cost, cost_velocity) [3, T], obs [3, obs], reward [3]).

  One compiled function per env: reset without noise, set the root velocity, then a short
  scan of env steps, vmapped over three starts: at rest with zero actions, kicked above
  the threshold with zero actions, at rest with random actions.
  """
  out = {}
  for name in PROBED:
    env = envs.make(name, reset_noise_scale=0.0)
    ndim = 2 if name in PLANAR_SPEED else 1
    # Ant: 1x the threshold on x and y, so only the xy norm (1.41x) is above it.
    kick = (1.0 if name in PLANAR_SPEED else 2.0) * env.threshold * jnp.ones(ndim)

    def probe(key, speed_scale, random_scale, env=env, kick=kick, name=name):
      state = env.reset(key)
      qd = jnp.zeros(env.sys.qd_size()).at[: kick.shape[0]].set(speed_scale * kick)
      q = state.pipeline_state.q
      if name in PLANAR_SPEED:
        # Lifted clear of the floor while kicked: foot friction would halve Ant's speed.
        q = q.at[2].add(0.5 * speed_scale)
      state = state.replace(pipeline_state=env.pipeline_init(q, qd))
      actions = random_scale * jax.random.uniform(
          key, (ROLLOUT_STEPS, env.action_size), minval=-1.0, maxval=1.0)

      def one(state, action):
        state = env.step(state, action)
        return state, (state.metrics["velocity"], state.cost, state.metrics["cost_velocity"])

      state, per_step = jax.lax.scan(one, state, actions)
      return per_step, state.obs, state.reward

    run = jax.jit(jax.vmap(probe))
    keys = jax.random.split(jax.random.key(1), 3)
    out[name] = jax.device_get(run(keys, jnp.array([0.0, 1.0, 0.0]), jnp.array([0.0, 0.0, 1.0])))
  return out


@pytest.mark.parametrize("name", PROBED)
def test_physics_cost_zero_at_rest_one_when_kicked(probes, name):
  (speed, cost, cost_metric), _, _ = probes[name]
  threshold = velocity.THRESHOLDS[name]
  assert speed[0, 0] < 0.1 * threshold
  assert cost[0, 0] == 0.0 and cost_metric[0, 0] == 0.0
  expected = threshold * (np.sqrt(2.0) if name in PLANAR_SPEED else 2.0)
  # One env step of physics (contacts, gravity) changes the speed only a little.
  assert 0.8 * expected < speed[1, 0] < 1.05 * expected
  assert cost[1, 0] == 1.0 and cost_metric[1, 0] == 1.0
  np.testing.assert_array_equal(cost, np.where(speed > threshold, 1.0, 0.0))
  np.testing.assert_array_equal(cost, cost_metric)


@pytest.mark.parametrize("name", PROBED)
def test_random_rollout_is_finite(probes, name):
  per_step, obs, reward = probes[name]
  chex.assert_tree_all_finite((per_step, obs, reward))
  assert set(np.unique(per_step[1])) <= {0.0, 1.0}


def test_registry_aliases_and_kwargs():
  env = envs.make("SafetyHopperVelocity-v1", backend="generalized")
  assert isinstance(env, velocity.VelocityEnv)
  assert (env.name, env.backend, env.threshold) == ("HopperVelocity", "generalized", 0.7402)
  assert envs.canonical_name("SafetyAntVelocity-v1") == "AntVelocity"
  assert envs.make("SwimmerVelocity").backend == "generalized"


def test_unknown_name_lists_the_known_ones():
  with pytest.raises(ValueError, match=r"unknown environment 'AntVelocityy'.*HopperVelocity"):
    envs.make("AntVelocityy")
  with pytest.raises(ValueError, match=r"unknown velocity task 'Ant'.*AntVelocity"):
    velocity.VelocityEnv("Ant")
