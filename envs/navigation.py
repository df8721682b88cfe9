"""The generic Safety-Gym navigation task: a robot, object groups, lidar, layout and costs.

Task logic lives here and in the task modules (goal, button, push, circle); physics lives
behind the World seam (`envs.world`): `backend='planar'` (default, `envs.planar`) or
`backend='mjx'` (the reference, `envs.mjx_world`). Tasks never read a backend's state: they
ask the World for poses, velocities, sensors and contact counts. Objects that do not collide
('site' groups: goal, hazards, circle) are not simulated: their positions live in
`state.info['objects']` and enter only the lidar, reward and costs. `state.pipeline_state`
holds the World's own state.

Timing follows MuJoCo's `mj_step` on both backends: observations, rewards and costs are
evaluated at the state before the last physics substep, contacts from that substep's
collision pass.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import Env

from envs import layout, lidar
from envs.base import State
from envs.groups import CostTerm, Group
from envs.robots import check_task
from envs.world import DEFAULT_BACKEND, Layout, check_backend

AGENT_KEEPOUT = 0.4
REWARD_CLIP = 10.0
# cost_vases_velocity ignores vases slower than this (m/s).
VELOCITY_THRESHOLD = 1e-4


def make_world(backend: str, robot: str, groups: tuple[Group, ...]) -> Any:
  """The World named `backend` ('planar' or 'mjx') for `robot` and `groups`."""
  if check_backend(backend) == "mjx":
    from envs.mjx_world import MjxWorld
    return MjxWorld(robot, groups)
  from envs.planar import PlanarWorld
  return PlanarWorld(robot, groups)


class NavigationEnv(Env):
  """A Safety-Gym navigation task on a World (returns `envs.base.State`).

  Subclasses define the task through the hooks at the end (`_task_reward` at least; see
  `envs.goal`). They see physics only through `self.world` and the helpers here.

  Observation [obs_size]: robot sensors, then one 16-bin lidar per group with `lidar=True`,
  in group order (Safety-Gym's insertion order). Action [2] in [-1, 1].
  state.metrics: `cost_<key>` per cost term (the 0/1 indicator, or the raw value when
  `cost_indicator=False`), `cost_sum` (raw sum) and the task's own entries, each [].
  state.info: 'objects' ({site group: [count, 2]}), 'key' and the task's entries.
  """

  def __init__(
      self,
      robot: str,
      groups: tuple[Group, ...],
      extents: float,
      costs: tuple[CostTerm, ...] = (),
      episode_length: int = 1000,
      cost_indicator: bool = True,
      backend: str = DEFAULT_BACKEND,
      agent_keepout: float = AGENT_KEEPOUT,
  ):
    names = [g.name for g in groups]
    for term in costs:
      if term.group not in names:
        raise ValueError(f"cost {term.key!r} names unknown group {term.group!r}: {names}")
    self.robot_name = robot
    self.groups = groups
    self.extents = extents
    self.costs = costs
    self.episode_length = episode_length
    self.cost_indicator = cost_indicator
    self.world = make_world(backend, robot, groups)
    self.dt = self.world.dt
    keepouts = [agent_keepout] + [g.keepout for g in groups for _ in range(g.count)]
    n = len(keepouts)
    self.keepouts = np.array(keepouts, np.float32)
    self._lo = np.full((n, 2), -extents, np.float32)
    self._hi = np.full((n, 2), extents, np.float32)
    offsets, start = {}, 1
    for group in groups:
      offsets[group.name] = (start, start + group.count)
      start += group.count
    self._layout_slices = offsets

  @property
  def backend(self) -> str:
    return self.world.backend

  @property
  def observation_size(self) -> int:
    return self.world.sensor_size + lidar.NUM_BINS * sum(g.lidar for g in self.groups)

  @property
  def action_size(self) -> int:
    return 2

  @property
  def robot_geoms(self):
    """The robot's 2-D collision shapes (`envs.world.Geom`) in its body frame."""
    from envs.planar import planar_robot
    return planar_robot(self.robot_name).geoms

  def group(self, name: str) -> Group:
    return next(g for g in self.groups if g.name == name)

  # --- what tasks, maps and replays read ------------------------------------------------------
  def agent_pose(self, state: State) -> tuple[jax.Array, jax.Array]:
    """(xy [2], yaw []) of the robot in `state`, on any backend."""
    return _planar_pose(*self.world.robot_pose(state.pipeline_state))

  def objects(self, ws: Any, info: dict) -> dict[str, jax.Array]:
    """{group: [count, 2]} positions of every group: sites from info, the rest from ws."""
    return {g.name: (self.world.object_xy(ws, g.name) if g.physical
                     else info["objects"][g.name]) for g in self.groups}

  def object_poses(self, state: State) -> dict[str, tuple[jax.Array, jax.Array]]:
    """{group: (xy [count, 2], yaw [count])} of every group in `state` (sites: yaw 0)."""
    ws = state.pipeline_state
    xy = self.objects(ws, state.info)
    return {g.name: (xy[g.name], self.world.object_yaw(ws, g.name) if g.physical
                     else jnp.zeros(g.count)) for g in self.groups}

  def agent_xy(self, ws: Any) -> jax.Array:
    """[2] the robot's planar position in World state ws."""
    return self.world.robot_pose(ws)[0][:2]

  def layout_xy(self, ws: Any, objects: dict[str, jax.Array]) -> jax.Array:
    """[N, 2] current positions of every placed object, agent first, in placement order."""
    return jnp.concatenate([self.agent_xy(ws)[None]] + [objects[g.name] for g in self.groups])

  def sample_layout(self, key: jax.Array) -> jax.Array:
    """[N, 2] initial positions: agent, then each group's objects in group order."""
    key_place, key_task = jax.random.split(key)
    xy, _ = layout.sample(key_place, *self._placement())
    return self._task_layout(key_task, xy)

  def sample_layouts(self, keys: jax.Array) -> jax.Array:
    """[B, N, 2] layouts for keys [B], with the restarts pooled over the batch.

    The same distribution as `sample_layout`, and the same layout for every key whose first
    attempt succeeds (`envs.layout.sample_batch`).
    """
    pairs = jax.vmap(jax.random.split)(keys)
    xy, _ = layout.sample_batch(pairs[:, 0], *self._placement())
    return jax.vmap(self._task_layout)(pairs[:, 1], xy)

  def _placement(self) -> tuple[jax.Array, jax.Array, jax.Array]:
    return jnp.asarray(self.keepouts), jnp.asarray(self._lo), jnp.asarray(self._hi)

  # --- env API --------------------------------------------------------------------------------
  def reset(self, rng: jax.Array) -> State:
    return self._start(rng, self.sample_layout(jax.random.split(rng, 3)[0]))

  def reset_batch(self, rngs: jax.Array) -> State:
    """State[B] for keys [B]: `reset` of each key, the layouts drawn by `sample_layouts`."""
    xy = self.sample_layouts(jax.vmap(lambda k: jax.random.split(k, 3)[0])(rngs))
    return jax.vmap(self._start)(rngs, xy)

  def _start(self, rng: jax.Array, xy: jax.Array) -> State:
    """The initial state on layout xy [N, 2] (rng as given to `reset`)."""
    _, key_yaw, key_next = jax.random.split(rng, 3)
    yaws = jax.random.uniform(key_yaw, (xy.shape[0],), maxval=2 * jnp.pi)
    slices = {name: slice(*ends) for name, ends in self._layout_slices.items()}
    ws = self.world.init(Layout(
        robot_xy=xy[0], robot_yaw=yaws[0], xy={n: xy[s] for n, s in slices.items()},
        yaw={n: yaws[s] for n, s in slices.items()}))
    info = {"objects": {g.name: xy[slices[g.name]] for g in self.groups if not g.physical},
            "key": key_next}
    info.update(self._task_reset(ws, self.objects(ws, info)))
    obs = self._obs(ws, info)
    zero = jnp.zeros(())
    metrics = {f"cost_{t.key}": zero for t in self.costs}
    metrics.update(cost_sum=zero, **self._task_metrics())
    return State(pipeline_state=ws, obs=obs, reward=zero, done=zero, metrics=metrics,
                 info=info, cost=zero)

  def step(self, state: State, action: jax.Array) -> State:
    ws = self.world.step(state.pipeline_state, jnp.clip(action, -1.0, 1.0))
    info = dict(state.info)
    raw = self._raw_costs(ws, info)
    key, key_task = jax.random.split(info["key"])
    reward, done, task_info, task_metrics = self._task_reward(key_task, ws, info)
    reward = jnp.clip(reward, -REWARD_CLIP, REWARD_CLIP)
    info.update(task_info, key=key)
    cost_sum = sum(raw.values(), jnp.zeros(()))
    if self.cost_indicator:
      per_key = {k: (v > 0).astype(jnp.float32) for k, v in raw.items()}
      cost = (cost_sum > 0).astype(jnp.float32)
    else:
      per_key, cost = raw, cost_sum
    metrics = {f"cost_{k}": v for k, v in per_key.items()}
    metrics.update(cost_sum=cost_sum, **task_metrics)
    return state.replace(pipeline_state=ws, obs=self._obs(ws, info), reward=reward, done=done,
                         metrics=metrics, info=info, cost=cost)

  def place_robot(self, state: State, xy: jax.Array, yaw: jax.Array,
                  vel: jax.Array | None = None) -> State:
    """`state` with the robot at `xy` [2], heading `yaw` [], planar velocity `vel` [2] (else
    at rest); the observation is not recomputed (the next step's is)."""
    return state.replace(pipeline_state=self.world.place_robot(state.pipeline_state, xy, yaw,
                                                               vel))

  def obs_at(self, state: State, xy: jax.Array, yaw: jax.Array) -> jax.Array:
    """The observation [obs_size] of the robot at rest at `xy` [2] with heading `yaw` [],
    in `state`'s layout (other bodies where `state` has them). For maps over the arena."""
    return self._obs(self.world.place_robot(state.pipeline_state, xy, yaw), state.info)

  def _obs(self, ws: Any, info: dict) -> jax.Array:
    parts = [self.world.sensors(ws)]
    pos, rot = self.world.robot_pose(ws)
    objects = self.objects(ws, info)
    for group in self.groups:
      if group.lidar:
        reading = lidar.lidar(pos, rot, objects[group.name], max_dist=group.lidar_max_dist)
        visible = self._lidar_visible(group.name, info)
        parts.append(reading if visible is None else jnp.where(visible, reading, 0.0))
    return jnp.concatenate(parts)

  def _raw_costs(self, ws: Any, info: dict) -> dict[str, jax.Array]:
    objects = self.objects(ws, info)
    xy = self.agent_xy(ws)
    raw = {}
    for term in self.costs:
      group = self.group(term.group)
      if term.kind == "hazard":
        d = jnp.linalg.norm(objects[term.group] - xy, axis=-1)
        raw[term.key] = jnp.sum(jnp.where(d <= group.size, group.size - d, 0.0))
      elif term.kind == "contact":
        raw[term.key] = jnp.sum(self.world.robot_contacts(ws, term.group))
      elif term.kind == "task":
        raw[term.key] = self._task_cost(term, ws, info)
      else:
        speed = jnp.linalg.norm(self.world.object_velocity(ws, term.group), axis=-1)
        raw[term.key] = jnp.sum(jnp.where(speed >= VELOCITY_THRESHOLD, speed, 0.0))
    return raw

  # --- task hooks -----------------------------------------------------------------------------
  def _task_layout(self, key: jax.Array, xy: jax.Array) -> jax.Array:
    """Adjusts the initial layout [N, 2] (e.g. re-draws the goal)."""
    del key
    return xy

  def _task_reset(self, ws: Any, objects: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Task entries added to state.info at reset; objects: {group: [count, 2]}."""
    del ws, objects
    return {}

  def _task_metrics(self) -> dict[str, jax.Array]:
    """Zero-valued task metrics, so reset and step metrics share one structure."""
    return {}

  def _task_cost(self, term: CostTerm, ws: Any, info: dict) -> jax.Array:
    """[] raw value of a 'task' cost term, from the state before this step's task update."""
    raise NotImplementedError(f"{type(self).__name__} has no task cost {term.key!r}")

  def _task_reward(self, key: jax.Array, ws: Any,
                   info: dict) -> tuple[jax.Array, jax.Array, dict, dict]:
    """(reward [], done [], info updates, task metrics) for the step reaching World state ws."""
    raise NotImplementedError

  def _lidar_visible(self, name: str, info: dict) -> jax.Array | None:
    """[] bool: whether group `name`'s lidar reads in this observation (None: always)."""
    del name, info
    return None


class TaskEnv(NavigationEnv):
  """A Safety-Gym task at one of its `LEVELS`: `Task(robot='Point', level=1, **env_kwargs)`.

  Subclasses give `LEVELS` and `task_config(robot, level)`: NavigationEnv's keyword arguments
  (extents, groups, costs, and any default such as episode_length), which env_kwargs override.
  """

  LEVELS: Any = ()

  def __init__(self, robot: str = "Point", level: int = 1, **kwargs):
    check_task(robot, level, self.LEVELS)
    self.level = level
    super().__init__(robot, **{**self.task_config(robot, level), **kwargs})

  @classmethod
  def task_config(cls, robot: str, level: int) -> dict:
    raise NotImplementedError


def _planar_pose(pos: jax.Array, rot: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(xy [2], yaw []) from a body origin [3] and rotation [3, 3]."""
  return pos[:2], jnp.arctan2(rot[1, 0], rot[0, 0])
