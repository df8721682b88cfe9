"""Safety-Gym navigation envs: shapes, tracing, determinism, costs, reward, layout, lidar."""

import base64
import json
import re
import zlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import layout, lidar
from envs.render import render_html

def _numeric(tree):
  """The tree with PRNG keys turned into their raw data, for chex comparisons."""
  return jax.tree.map(
      lambda x: jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x,
      tree)


NAV = ["PointGoal0", "PointGoal1", "PointGoal2", "CarGoal0", "CarGoal1", "CarGoal2"]
OBS_SIZE = {"PointGoal0": 28, "PointGoal1": 60, "PointGoal2": 60,
            "CarGoal0": 40, "CarGoal1": 72, "CarGoal2": 72}


# mjx shapes cost 8-33 s of tracing each on 2 cores: PointGoal1's in the fast tier, the
# rest in the slow one.
@pytest.mark.parametrize("name,backend", [(n, "planar") for n in NAV] + [
    (n, "mjx") if n == "PointGoal1" else pytest.param(n, "mjx", marks=pytest.mark.slow)
    for n in NAV])
def test_shapes_and_dtypes(name, backend):
  env = envs.make(name, backend=backend)
  assert env.backend == backend
  assert env.episode_length == 1000 and env.observation_size == OBS_SIZE[name]
  batched = envs.wrap(env, num_envs=4)
  state = jax.eval_shape(batched.reset, jax.random.key(0))
  state = jax.eval_shape(batched.step, state, jnp.zeros((4, 2)))
  chex.assert_shape(state.obs, (4, OBS_SIZE[name]))
  for x in (state.reward, state.cost, state.done):
    chex.assert_shape(x, (4,))
    assert x.dtype == jnp.float32
  for value in state.metrics.values():
    chex.assert_shape(value, (4,))


def test_bad_arguments():
  with pytest.raises(ValueError, match="backend 'nope' is not one of planar, mjx"):
    envs.make("PointGoal1", backend="nope")
  with pytest.raises(ValueError, match="level"):
    envs.goal.GoalEnv("Point", 3)


@pytest.fixture(scope="module")
def point1():
  env = envs.make("PointGoal1")
  reset = jax.jit(chex.assert_max_traces(env.reset, n=1))
  step = jax.jit(chex.assert_max_traces(env.step, n=1))
  return env, reset, step


def test_same_key_same_result_and_one_trace(point1):
  env, reset, step = point1
  a, b = reset(jax.random.key(3)), reset(jax.random.key(3))
  c = reset(jax.random.key(4))
  legacy = jax.eval_shape(env.reset, jax.random.PRNGKey(4))  # Brax's ppo passes uint32 keys
  chex.assert_shape(legacy.obs, a.obs.shape)
  chex.assert_trees_all_equal(_numeric(a), _numeric(b))
  assert not np.allclose(a.obs, c.obs)
  action = jnp.array([1.0, -0.3])
  chex.assert_trees_all_equal(_numeric(step(a, action)), _numeric(step(b, action)))
  chex.assert_tree_all_finite(_numeric(step(a, action)))


def _agent_xy(env, state):
  return env.agent_pose(state)[0]


def test_hazard_cost(point1):
  env, reset, step = point1
  state = reset(jax.random.key(0))
  xy = _agent_xy(env, state)
  far = jnp.full((8, 2), 50.0, dtype=jnp.float32)
  objects = state.info["objects"]
  inside = {**objects, "hazards": far.at[0].set(xy + jnp.array([0.05, 0.0], jnp.float32))}
  outside = {**objects, "hazards": far}
  hit = step(state.replace(info={**state.info, "objects": inside}), jnp.zeros(2))
  miss = step(state.replace(info={**state.info, "objects": outside}), jnp.zeros(2))
  assert hit.cost == 1.0 and hit.metrics["cost_hazards"] == 1.0
  # raw cost r - d = 0.2 - 0.05 shows up in cost_sum
  np.testing.assert_allclose(hit.metrics["cost_sum"], 0.15, atol=1e-4)
  assert miss.cost == 0.0 and miss.metrics["cost_hazards"] == 0.0


def test_reward_is_distance_decrease_and_goal_redrawn(point1):
  env, reset, step = point1
  state = reset(jax.random.key(1))
  xy = _agent_xy(env, state)
  # No success: reward is last_dist - dist (the robot starts at rest and barely moves).
  moved = step(state, jnp.array([1.0, 0.0]))
  np.testing.assert_allclose(
      moved.reward, state.info["last_dist"] - moved.info["last_dist"], atol=1e-6)
  assert moved.metrics["goal_met"] == 0.0
  # Success: goal 0.1 from the robot, previous distance 0.5 -> 0.5 - 0.1 + 1.
  near = {**state.info["objects"], "goal": (xy + jnp.array([0.0, 0.1], jnp.float32))[None]}
  state = state.replace(info={**state.info, "objects": near, "last_dist": jnp.array(0.5, jnp.float32)})
  hit = step(state, jnp.zeros(2))
  np.testing.assert_allclose(hit.reward, 1.4, atol=1e-4)
  assert hit.metrics["goal_met"] == 1.0 and hit.done == 0.0
  goal = hit.info["objects"]["goal"]
  new_xy = _agent_xy(env, hit)
  assert jnp.linalg.norm(goal[0] - xy) >= 0.305 + 0.4
  np.testing.assert_allclose(hit.info["last_dist"], jnp.linalg.norm(goal[0] - xy), atol=1e-3)
  # The observation of the success step already shows the new goal.
  pos, rot = env.world.robot_pose(hit.pipeline_state)
  np.testing.assert_allclose(hit.obs[12:28], lidar.lidar(pos, rot, goal), atol=2e-3)
  del new_xy


def test_lidar_hand_computed():
  w = 2 * np.pi / 16
  pos = jnp.array([1.0, 1.0, 0.1])
  yaw = np.pi / 2
  rot = jnp.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
  # ego (1.5, 0): bin 0, s = 0.5, f = 0 -> bin 15 gets 0.5, bin 1 gets 0.
  # ego angle 2.25 w at distance 0.6: bin 2 gets 0.8, bin 3 0.25 * 0.8, bin 1 0.75 * 0.8.
  # distance 4 > 3: nothing.
  ego = np.array([[1.5, 0.0], [0.6 * np.cos(2.25 * w), 0.6 * np.sin(2.25 * w)], [0.0, 4.0]])
  world = ego @ np.array(rot)[:2, :2].T + np.array(pos[:2])
  expected = np.zeros(16)
  expected[[0, 15, 2, 3, 1]] = [0.5, 0.5, 0.8, 0.2, 0.6]
  np.testing.assert_allclose(lidar.lidar(pos, rot, jnp.asarray(world)), expected, atol=1e-5)


def test_layouts_never_overlap():
  env = envs.make("PointGoal2")
  xy = jax.jit(jax.vmap(env.sample_layout))(jax.random.split(jax.random.key(0), 4096))
  keep = np.asarray(env.keepouts)
  d = np.linalg.norm(np.asarray(xy)[:, :, None] - np.asarray(xy)[:, None], axis=-1)
  limit = keep[:, None] + keep[None, :]
  off_diag = ~np.eye(len(keep), dtype=bool)
  assert np.all(d[:, off_diag] >= limit[off_diag] - 1e-6)
  bound = env.extents - keep
  assert np.all(np.abs(np.asarray(xy)) <= bound[None, :, None] + 1e-6)
  assert len(np.unique(np.asarray(xy)[:, 0, 0])) > 4000


@pytest.mark.parametrize("name,backend", [
    ("PointGoal1", "planar"), ("PointGoal2", "planar"), ("CarGoal1", "planar"),
    # One mjx compile each, 1-3 min on a busy 2-core CPU: kept out of the default run.
    pytest.param("PointGoal1", "mjx", marks=pytest.mark.slow),
    pytest.param("PointGoal2", "mjx", marks=pytest.mark.slow),
    pytest.param("CarGoal1", "mjx", marks=pytest.mark.slow),
])
def test_random_rollout_finite_and_truncated(name, backend):
  env = envs.wrap(envs.make(name, backend=backend), num_envs=2)

  @jax.jit
  def rollout(key):
    def one(state, key):
      action = jax.random.uniform(key, (2, 2), minval=-1.0, maxval=1.0)
      state = env.step(state, action)
      return state, (state.obs, state.info["final_obs"], state.done, state.info["truncation"],
                     state.reward, state.cost)
    key_reset, key_run = jax.random.split(key)
    return jax.lax.scan(one, env.reset(key_reset), jax.random.split(key_run, 1001))

  state, (obs, final_obs, done, trunc, reward, cost) = rollout(jax.random.key(0))
  chex.assert_tree_all_finite(_numeric((state, obs, final_obs, reward, cost)))
  assert np.all(done[:999] == 0) and np.all(done[999] == 1) and np.all(trunc[999] == 1)
  assert np.all(done[1000] == 0)
  # Before the reset final_obs is the obs; at the time limit it keeps the pre-reset one.
  np.testing.assert_array_equal(final_obs[:999], obs[:999])
  assert not np.allclose(final_obs[999], obs[999])
  assert set(np.unique(np.asarray(cost))) <= {0.0, 1.0}
  assert np.all(np.abs(reward) <= 10.0)


@pytest.fixture(scope="module")
def point1_mjx():
  env = envs.make("PointGoal1", backend="mjx")
  reset = jax.jit(chex.assert_max_traces(env.reset, n=1))
  step = jax.jit(chex.assert_max_traces(env.step, n=1))
  return env, reset, step


def test_mjx_one_trace_and_agent_pose(point1_mjx):
  env, reset, step = point1_mjx
  state = reset(jax.random.key(3))
  moved = step(step(state, jnp.array([1.0, 0.0])), jnp.array([1.0, 0.0]))
  xy, yaw = env.agent_pose(moved)
  chex.assert_shape((xy, yaw), ((2,), ()))
  chex.assert_tree_all_finite(_numeric(moved))
  # Full thrust moves the robot along its heading.
  heading = jnp.array([jnp.cos(yaw), jnp.sin(yaw)])
  assert jnp.dot(xy - env.agent_pose(state)[0], heading) > 0


def test_render_html_shows_hazards_goal_and_vases(point1_mjx, point1):
  env, reset, step = point1_mjx
  with pytest.raises(ValueError, match="mjx"):
    render_html(point1[0], [point1[1](jax.random.key(5))])
  states = [reset(jax.random.key(5))]
  for _ in range(3):
    states.append(step(states[-1], jnp.array([1.0, 0.5])))
  page = render_html(env, states)
  assert "<html>" in page and "brax-viewer" in page
  blob = re.search(r'"(eJ[A-Za-z0-9+/=]+)"', page).group(1)  # zlib + base64 system json
  system = json.loads(zlib.decompress(base64.b64decode(blob)))
  for name in ["agent", "goal0", "hazards7", "vases0"]:
    assert name in system["geoms"]
  assert len(system["states"]["x"]) == 4


def _two_on_a_line():
  """Two objects of keepout 0.4 on a line: x in [-0.6, 0.6], |x1 - x2| >= 0.8 needed.

  The second fits only when |x1| >= 0.2, so restarts must leave x1 out of (-0.2, 0.2), and
  x1 has the density of the restart law, proportional to 1 - (1 - q(x1))^100 with
  q = (|x1| - 0.2) / 1.2 the second object's clear share of its 100 draws.
  """
  keepouts = jnp.array([0.4, 0.4])
  lo = jnp.array([[-1.0, -0.4], [-1.0, -0.4]])
  hi = jnp.array([[1.0, 0.4], [1.0, 0.4]])
  grid = np.linspace(0.2, 0.6, 40001)
  density = 1.0 - (1.0 - (grid - 0.2) / 1.2) ** 100
  return (keepouts, lo, hi), float(np.sum(grid * density) / np.sum(density))


def test_layout_restarts_draw_the_restart_law_pooled_or_not():
  placement, mean_abs_x1 = _two_on_a_line()
  keys = jax.random.split(jax.random.key(0), 4096)
  alone, ok_alone = jax.jit(jax.vmap(lambda k: layout.sample(k, *placement)))(keys)
  pooled, ok_pooled = jax.jit(lambda k: layout.sample_batch(k, *placement))(keys)
  for xy, ok in ((alone, ok_alone), (pooled, ok_pooled)):
    chex.assert_shape(xy, (4096, 2, 2))
    assert np.all(ok)
    x1 = np.abs(np.asarray(xy[:, 0, 0]))
    assert x1.min() >= 0.2 and np.all(np.abs(np.asarray(xy[:, 0] - xy[:, 1])[:, 0]) >= 0.8 - 1e-6)
    np.testing.assert_allclose(x1.mean(), mean_abs_x1, atol=0.01)  # 5 standard errors
  # Where an env's first attempt succeeds, the pooled layout is that env's own.
  first = np.abs(np.asarray(alone[:, 0, 0] - pooled[:, 0, 0])) == 0
  assert 0.4 < first.mean() < 0.9
  np.testing.assert_array_equal(np.asarray(alone)[first], np.asarray(pooled)[first])


def test_button_layouts_are_all_clear_and_batch_reset_matches_single_resets():
  # A Button level 1 attempt succeeds 2% of the time: every env restarts, most many times.
  env = envs.make("PointButton1")
  keys = jax.random.split(jax.random.key(1), 64)
  layout_keys = jax.vmap(lambda k: jax.random.split(k, 3)[0])(keys)  # as reset splits them
  xy = np.asarray(jax.jit(env.sample_layouts)(layout_keys))
  keep = np.asarray(env.keepouts)
  d = np.linalg.norm(xy[:, :, None] - xy[:, None], axis=-1)
  # The goal marker is placed clear too, then moved onto the goal button.
  goal = env._layout_slices["goal"][0]
  pairs = ~np.eye(len(keep), dtype=bool)
  pairs[goal, :] = pairs[:, goal] = False
  assert np.all(d[:, pairs] >= (keep[:, None] + keep[None, :])[pairs] - 1e-6)
  assert np.all(np.min(d[:, goal, slice(*env._layout_slices["buttons"])], axis=1) == 0)
  assert len(np.unique(xy[:, 0, 0])) == 64
  # reset_batch is reset on the pooled layouts.
  batch = jax.jit(env.reset_batch)(keys)
  one = jax.jit(env._start)(keys[5], jnp.asarray(xy[5]))
  chex.assert_trees_all_equal(jax.tree.map(lambda x: x[5], batch), one)


def test_vmapped_members_reset_button_layouts_as_they_do_alone():
  # Pooled restarts stay within one member's env batch: a member's resets and auto-resets do
  # not depend on which other members are vmapped beside it.
  # Level 0: a first attempt fails 71% of the time, and it compiles faster than level 1.
  benv = envs.wrap(envs.make("PointButton0"), num_envs=4, episode_length=2)
  keys = jax.random.split(jax.random.key(2), 3)
  actions = jnp.full((3, 2, 4, 2), 0.5)  # [T, members, B, A]; episodes end at steps 2

  def roll(key, actions):
    return jax.lax.scan(lambda s, a: (benv.step(s, a),) * 2, benv.reset(key), actions)[1]

  together = jax.jit(jax.vmap(roll, in_axes=(0, 1)))
  first = together(keys[:2], actions)
  other = together(keys[jnp.array([2, 1])], actions)  # member 1 beside another neighbour
  chex.assert_trees_all_equal(jax.tree.map(lambda x: x[1], first),  # [members, T, B, ...]
                              jax.tree.map(lambda x: x[1], other))
  assert not np.allclose(first.obs[0], other.obs[0])
