"""Button, Push and Circle (Point and Car, levels 0-2): shapes, rollouts and every cost source.

Each compiled env gets ONE function, `run(state, actions[T, 2])`, a scan of T steps that
returns the final state and each step's outputs; cost triggers start it from hand-set states
and read step 0. They run on the default 'planar' backend; the same triggers on 'mjx' (tens of
seconds of compile each) are in the slow tier. Shapes of all 24 envs on both backends come from
`jax.eval_shape`, which traces but does not compile.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs

ROBOTS = ("Point", "Car")
# FACTS §2: Point sizes; the Car adds 12.
POINT_OBS = {"Button0": 44, "Button1": 76, "Button2": 76, "Push0": 44, "Push1": 76, "Push2": 76,
             "Circle0": 28, "Circle1": 28, "Circle2": 28}
OBS = {f"{r}{t}": n + 12 * (r == "Car") for t, n in POINT_OBS.items() for r in ROBOTS}
COST_KEYS = {
    "Button0": set(), "Button1": {"buttons", "hazards", "gremlins"},
    "Button2": {"buttons", "hazards", "gremlins"},
    "Push0": set(), "Push1": {"hazards"}, "Push2": {"hazards", "pillars"},
    "Circle0": set(), "Circle1": {"out_of_boundary"}, "Circle2": {"out_of_boundary"},
}
T = 20  # steps per `run` call
FAR = 10.0  # a spot far outside every arena


def f32(x):
  # Strongly typed, so hand-set states never retrace the compiled `run`.
  return jnp.asarray(x, dtype=jnp.float32)


def _cost_keys(name):
  return {f"cost_{k}" for k in COST_KEYS[name.removeprefix("Point").removeprefix("Car")]}


BACKENDS = ["planar", pytest.param("mjx", marks=pytest.mark.slow)]


@functools.cache
def _compiled(name, backend="planar"):
  env = envs.make(name, backend=backend)

  def run(state, actions):
    def one(state, action):
      state = env.step(state, action)
      return state, (state.reward, state.cost, state.metrics, state.obs, state.info)
    return jax.lax.scan(one, state, actions)

  return env, jax.jit(env.reset), jax.jit(run)


def _place(state, env, xy, yaw=0.0, vel=(0.0, 0.0)):
  """The state with the robot at xy (yaw, planar velocity vel)."""
  return env.place_robot(state, f32(xy), f32(yaw), f32(vel))


def _place_objects(state, env, name, xy):
  """The state with physical group `name` at xy ('mocap' groups: their path anchors)."""
  ws = env.world.place_objects(state.pipeline_state, name, f32(xy))
  return state.replace(pipeline_state=ws)


def _objects(env, state):
  return env.objects(state.pipeline_state, state.info)


def _with_objects(state, **objects):
  info = dict(state.info)
  info["objects"] = {**info["objects"], **objects}
  return state.replace(info=info)


def _step0(name, state, backend="planar"):
  """Step 0's (reward, cost, metrics, obs, info) from `state` with zero actions."""
  run = _compiled(name, backend)[2]
  _, out = run(state, jnp.zeros((T, 2)))
  return jax.tree.map(lambda x: x[0], out)


def _check_shapes(name, state, batch=()):
  for x in (state.reward, state.cost, state.done):
    assert x.shape == batch and x.dtype == jnp.float32
  assert state.obs.shape == batch + (OBS[name],) and state.obs.dtype == jnp.float32
  assert {k for k in state.metrics if k.startswith("cost_")} == _cost_keys(name) | {"cost_sum"}


@pytest.mark.parametrize("name,backend", [
    (f"{r}{t}", b) if b == "planar" or r == "Point"
    else pytest.param(f"{r}{t}", b, marks=pytest.mark.slow)  # Car on mjx: 8-10 s each
    for t in POINT_OBS for r in ROBOTS for b in ("planar", "mjx")])
def test_shapes(name, backend):
  # Traced, not compiled. The batch axis is checked once below: tracing a vmapped mjx step
  # costs several times more.
  env = envs.make(name, backend=backend)
  assert env.backend == backend
  assert env.observation_size == OBS[name] and env.action_size == 2
  assert envs.canonical_name(f"Safety{name}-v0") == name
  assert env.episode_length == (500 if "Circle" in name else 1000)
  state = jax.eval_shape(env.reset, jax.random.key(0))
  nstate = jax.eval_shape(env.step, state, jax.ShapeDtypeStruct((2,), jnp.float32))
  _check_shapes(name, state)
  chex.assert_trees_all_equal_shapes_and_dtypes(state, nstate)


def test_shapes_at_batch_4():
  env = envs.wrap(envs.make("CarButton2"), num_envs=4)
  state = jax.eval_shape(env.reset, jax.random.key(0))
  nstate = jax.eval_shape(env.step, state, jax.ShapeDtypeStruct((4, 2), jnp.float32))
  _check_shapes("CarButton2", state, (4,))
  chex.assert_trees_all_equal_shapes_and_dtypes(state, nstate)


def test_bad_level_and_robot():
  with pytest.raises(ValueError, match="level 3"):
    envs.button.ButtonEnv("Point", 3)
  with pytest.raises(ValueError, match="'Doggo'"):
    envs.push.PushEnv("Doggo", 1)
  with pytest.raises(ValueError, match="'generalized' is not one of planar, mjx"):
    envs.button.ButtonEnv("Point", 1, backend="generalized")


# CarPush1 (100 s of compile here) is left out: CarGoal1 in test_navigation covers the Car.
@pytest.mark.parametrize("name", ["PointButton1", "PointPush2", "PointCircle2"])
def test_random_rollout_deterministic_and_finite(name):
  env, reset, run = _compiled(name)
  actions = jax.random.uniform(jax.random.key(1), (1000 // T, T, 2), minval=-1, maxval=1)

  def rollout(seed):
    state = reset(jax.random.key(seed))
    outs = []
    for chunk in actions:
      state, out = run(state, chunk)
      outs.append(out[:3])
    return state, jax.tree.map(lambda *x: jnp.concatenate(x), *outs)

  state, (reward, cost, metrics) = rollout(0)
  state2, (reward2, cost2, metrics2) = rollout(0)
  chex.assert_trees_all_equal((reward, cost, metrics, state.obs), (reward2, cost2, metrics2,
                                                                     state2.obs))
  chex.assert_tree_all_finite((state.obs, state.pipeline_state, reward, metrics))
  assert reward.shape == (1000,)
  # The returned cost is the OR of the per-source indicators.
  keys = sorted(_cost_keys(name))
  flags = jnp.stack([metrics[k] for k in keys]).max(0) if keys else jnp.zeros(1000)
  np.testing.assert_array_equal(cost, flags)
  np.testing.assert_array_equal(cost, (metrics["cost_sum"] > 0).astype(jnp.float32))
  assert set(np.unique(cost)) <= {0.0, 1.0}
  assert not jnp.array_equal(state.obs, reset(jax.random.key(0)).obs)
  assert run._cache_size() == 1  # hand-set states elsewhere reuse this compile too


# --- Button ----------------------------------------------------------------------------------
def _button_start(seed=0, backend="planar"):
  """PointButton1 with hazards and gremlins moved far away."""
  env, reset, _ = _compiled("PointButton1", backend)
  state = _place_objects(reset(jax.random.key(seed)), env, "gremlins", jnp.full((4, 2), FAR))
  return env, _with_objects(state, hazards=f32(jnp.full((4, 2), FAR)))


GAP = 0.205  # robot centre to button centre: 5 mm clear of contact


def _touch(state, env, target):
  """Robot just clear of the button at `target`, moving into it at 1 m/s, arrow away."""
  return _place(state, env, target + f32([GAP, 0.0]), yaw=0.0, vel=(-1.0, 0.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_button_wrong_button_costs_and_goal_button_succeeds(backend):
  env, state = _button_start(backend=backend)
  step0 = functools.partial(_step0, "PointButton1", backend=backend)
  buttons = _objects(env, state)["buttons"]
  goal = int(state.info["goal_button"])
  np.testing.assert_allclose(state.info["objects"]["goal"][0], buttons[goal])

  wrong = (goal + 1) % 4
  reward, cost, metrics, obs, info = step0(_touch(state, env, buttons[wrong]))
  assert metrics["cost_buttons"] == 1.0 and cost == 1.0 and metrics["goal_met"] == 0.0
  assert metrics["cost_hazards"] == 0.0 and metrics["cost_gremlins"] == 0.0
  assert int(info["goal_button"]) == goal and int(info["timer"]) == 0
  assert jnp.any(obs[12:28] > 0.0)

  # While the timer of a recent success runs, wrong buttons are free and buttons_lidar
  # (right after the 12 sensor values) reads zero.
  timed = _touch(state, env, buttons[wrong])
  timed = timed.replace(info={**timed.info, "timer": jnp.array(5, jnp.int32)})
  reward, cost, metrics, obs, info = step0(timed)
  assert metrics["cost_buttons"] == 0.0 and cost == 0.0 and int(info["timer"]) == 4
  assert jnp.all(obs[12:28] == 0.0)

  start = _touch(state, env, buttons[goal])
  start = start.replace(info={**start.info, "last_dist": f32(GAP)})
  reward, cost, metrics, obs, info = step0(start)
  assert metrics["goal_met"] == 1.0 and cost == 0.0 and metrics["cost_buttons"] == 0.0
  # +1 for the press plus the small approach (d_prev - d).
  assert 1.0 < reward < 1.05
  assert int(info["timer"]) == 10
  new = int(info["goal_button"])
  np.testing.assert_allclose(info["objects"]["goal"][0], buttons[new])
  np.testing.assert_allclose(
      info["last_dist"], jnp.linalg.norm(buttons[new] - buttons[goal] - f32([GAP, 0.0])),
      atol=0.03)
  assert jnp.all(obs[12:28] == 0.0)


def test_button_new_goal_is_drawn_among_all_four():
  env, state = _button_start()
  buttons = _objects(env, state)["buttons"]
  goal = int(state.info["goal_button"])
  start = _touch(state, env, buttons[goal])
  news = []
  for seed in range(16):
    s = start.replace(info={**start.info, "key": jax.random.key(seed)})
    info = _step0("PointButton1", s)[4]
    news.append(int(info["goal_button"]))
  # Uniform among the four, the old goal included: 16 draws miss one with p ~ 4 (3/4)^16.
  assert set(news) == {0, 1, 2, 3}, news


@pytest.mark.parametrize("backend", BACKENDS)
def test_button_gremlin_contact_costs(backend):
  env, state = _button_start(backend=backend)
  run = _compiled("PointButton1", backend)[2]
  t = env.world.time(state.pipeline_state)
  agent = f32([FAR / 2, FAR / 2])
  # The gremlin circles its anchor: put it 0.205 ahead of the robot at the coming substeps.
  anchor = agent + f32([0.205, 0.0]) - 0.35 * jnp.stack([jnp.sin(t), jnp.cos(t)])
  state = _place_objects(state, env, "gremlins", jnp.stack([anchor] + [jnp.full(2, FAR)] * 3))
  state = _place(state, env, agent, yaw=jnp.pi, vel=(1.0, 0.0))
  end, (_, cost, metrics, _, _) = run(state, jnp.zeros((T, 2)))
  assert metrics["cost_gremlins"][0] == 1.0 and cost[0] == 1.0
  assert metrics["cost_buttons"][0] == 0.0 and metrics["cost_hazards"][0] == 0.0
  # The lidar sees the moving gremlin where the physics has it.
  gremlin = _objects(env, end)["gremlins"][0]
  np.testing.assert_allclose(gremlin, anchor + 0.35 * jnp.stack(
      [jnp.sin(env.world.time(end.pipeline_state)), jnp.cos(env.world.time(end.pipeline_state))]),
      atol=1e-5)

  # Same place, no gremlin: silent.
  state = _place_objects(state, env, "gremlins", jnp.full((4, 2), FAR))
  _, cost, metrics, _, _ = _step0("PointButton1", state, backend)
  assert cost == 0.0 and metrics["cost_sum"] == 0.0


def test_button_hazard_costs():
  env, state = _button_start()
  agent = f32([FAR / 2, FAR / 2])
  state = _with_objects(_place(state, env, agent), hazards=f32(jnp.stack(
      [agent + 0.05] + [jnp.full(2, FAR)] * 3)))
  _, cost, metrics, _, _ = _step0("PointButton1", state)
  assert metrics["cost_hazards"] == 1.0 and cost == 1.0
  assert metrics["cost_gremlins"] == 0.0 and metrics["cost_buttons"] == 0.0


# --- Push ------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_push_pillar_contact_costs(backend):
  env, reset, _ = _compiled("PointPush2", backend)
  state = _with_objects(reset(jax.random.key(0)), hazards=f32(jnp.full((4, 2), FAR)))
  objects = _objects(env, state)
  pillar, box = objects["pillars"][0], objects["push_box"][0]
  away = (pillar - box) / jnp.linalg.norm(pillar - box)
  yaw = jnp.arctan2(away[1], away[0])
  hit = _place(state, env, pillar + 0.305 * away, yaw=yaw, vel=-1.0 * away)
  _, cost, metrics, _, _ = _step0("PointPush2", hit, backend)
  assert metrics["cost_pillars"] == 1.0 and cost == 1.0 and metrics["cost_hazards"] == 0.0

  clear = _place(state, env, f32([FAR / 2, FAR / 2]), yaw=yaw, vel=-1.0 * away)
  _, cost, metrics, _, _ = _step0("PointPush2", clear, backend)
  assert cost == 0.0 and metrics["cost_sum"] == 0.0


def test_push_reward_follows_box_and_goal():
  env, reset, _ = _compiled("PointPush2")
  state = _with_objects(reset(jax.random.key(3)), hazards=f32(jnp.full((4, 2), FAR)))
  box = _objects(env, state)["push_box"][0]
  # Goal 0.25 from the box centre in 3-D (0.2 vs 0.16 in z): a success on the first step.
  goal = box + f32([np.sqrt(0.25 ** 2 - 0.04 ** 2), 0.0])
  state = _with_objects(state, goal=goal[None])
  state = state.replace(info={**state.info, "last_dist": f32(0.25)})
  reward, _, metrics, _, info = _step0("PointPush2", state)
  assert metrics["goal_met"] == 1.0
  assert 0.9 < reward < 1.1
  new_goal = info["objects"]["goal"][0]
  assert not jnp.allclose(new_goal, goal)
  np.testing.assert_allclose(
      info["last_dist"], jnp.linalg.norm(jnp.append(box - new_goal, 0.2 - 0.16)), atol=1e-3)


# --- Circle ----------------------------------------------------------------------------------
@pytest.mark.parametrize("xy,flag", [((1.2, 0.0), 1.0), ((0.0, -1.2), 1.0), ((0.5, 0.5), 0.0),
                                     ((-1.1, 1.1), 0.0)])
def test_circle_sigwalls(xy, flag):
  env, reset, _ = _compiled("PointCircle2")
  state = _place(reset(jax.random.key(0)), env, xy)
  _, cost, metrics, _, _ = _step0("PointCircle2", state)
  assert metrics["cost_out_of_boundary"] == flag and cost == flag


def test_circle_reward_and_lidar():
  env, reset, _ = _compiled("PointCircle2")
  state = reset(jax.random.key(0))
  assert jnp.all(jnp.abs(env.agent_pose(state)[0]) <= 0.8)
  np.testing.assert_array_equal(state.info["objects"]["circle"], jnp.zeros((1, 2)))
  # On the circle, moving counter-clockwise at 1 m/s: r = 0.1 (less the damping's slow-down).
  on = _place(state, env, (0.0, -1.5), vel=(1.0, 0.0))
  reward, _, _, obs, _ = _step0("PointCircle2", on)
  assert 0.09 < reward < 0.1
  # Circle lidar range is 6 m: the origin, 1.5 m away at 90 degrees, reads 0.75.
  assert jnp.isclose(obs[12:].max(), 0.75, atol=0.01)
  back = _place(state, env, (0.0, -1.5), vel=(-1.0, 0.0))
  assert _step0("PointCircle2", back)[0] < -0.09


# --- every task, compiled -------------------------------------------------------------------
@pytest.mark.slow  # 24 compiles, 3-25 s each on 2 cores
@pytest.mark.parametrize("name", [f"{r}{t}{lvl}" for t in ("Goal", "Button", "Push", "Circle")
                                  for r in ROBOTS for lvl in (0, 1, 2)])
def test_every_planar_task_traces_once_and_stays_finite(name):
  # chex counts traces per source footprint, which every parametrization shares.
  chex.clear_trace_counter()
  env = envs.make(name)
  reset = jax.jit(chex.assert_max_traces(env.reset, n=1))
  step = jax.jit(chex.assert_max_traces(env.step, n=1))
  state = reset(jax.random.key(0))
  for i in range(3):
    state = step(state, jax.random.uniform(jax.random.key(i), (2,), minval=-1, maxval=1))
  chex.assert_shape(state.obs, (env.observation_size,))
  chex.assert_shape((state.reward, state.cost, state.done), ((), (), ()))
  chex.assert_tree_all_finite((state.obs, state.reward, state.cost, state.metrics,
                               state.pipeline_state))
  assert env.backend == "planar"
