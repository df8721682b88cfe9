"""The generic Safety-Gym navigation env: a robot, object groups, lidar, layout and costs.

Physics is a Brax pipeline over an MJCF built from the robot and the physical object groups.
Objects that do not collide in Safety-Gym (goal, hazards, ...) are not simulated: their
positions live in `state.info['objects']` and enter only the lidar, reward and costs.

Object groups (`Group.kind`):
  'site': not simulated; a position per object in `state.info['objects'][name]` ([count, 2]).
  'free': a movable obstacle (vases). Safety-Gym's vase is a free box resting on the floor;
    here it is planar (slide x, slide y, hinge z) with no floor contact. The floor's Coulomb
    friction (mu = 1: a knocked vase stops within about 0.1 s) becomes joint damping with time
    constant FLOOR_DRAG_TIME (mass / damping). Joint `frictionloss` would be Coulomb-exact but
    adds constraint rows to every substep and halved mjx throughput.
  'fixed': an immovable obstacle (pillars, buttons): a mocap body placed at reset, so its
    random position needs no DOF and no model change. Only mjx simulates mocap bodies.
  'mocap': an obstacle that moves on a prescribed path (gremlins): a mocap body moved before
    every substep to `_mocap_xy(name, anchor, t)`; info['anchors'][name] keeps its layout
    position and info['objects'][name] its position at the evaluated state.
'fixed' and 'mocap' groups give their MJCF in `Group.body_xml`; a 'free' group may too.

Timing follows MuJoCo's `mj_step`: observations, rewards and costs are evaluated at the state
before the last physics substep (see `envs.robots`), contacts from that substep's collision pass.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from brax import contact as brax_contact
from brax.envs.base import PipelineEnv
from brax.io import mjcf

from envs import layout, lidar
from envs.base import State
from envs.groups import (COST_KINDS, FLOOR_DRAG_TIME, KINDS, LIDAR_MAX_DIST, MOCAP_KINDS,
                         VASE_DENSITY, CostTerm, Group)
from envs.mjx_world import build_xml
from envs.robots import FLOOR_COLLISION, OBSTACLE_COLLISION, Robot

BACKENDS = ("mjx", "generalized", "positional")
DEFAULT_BACKEND = "mjx"
AGENT_KEEPOUT = 0.4
REWARD_CLIP = 10.0
# cost_vases_velocity ignores vases slower than this (m/s).
VELOCITY_THRESHOLD = 1e-4
VASE_DENSITY = 0.001
FLOOR_DRAG_TIME = 0.02
KINDS = ("site", "free", "fixed", "mocap")
MOCAP_KINDS = ("fixed", "mocap")
LIDAR_MAX_DIST = lidar.MAX_DIST  # `Group.lidar` shadows the module inside the class
COST_KINDS = ("hazard", "contact", "velocity", "task")
# Immovable obstacles touch the robot and free bodies, not each other or the floor.
STATIC_COLLISION = 'contype="2" conaffinity="1"'


class NavigationEnv(PipelineEnv):
  """A Safety-Gym navigation task on a Brax pipeline (returns `envs.base.State`).

  Subclasses define the task: `_task_reset` and `_task_reward` (see `envs.goal`).

  Observation [obs_size]: robot sensors, then one 16-bin lidar per group with `lidar=True`,
  in group order (Safety-Gym's insertion order). Action [2] in [-1, 1].
  state.metrics: `cost_<key>` per cost term (the 0/1 indicator, or the raw value when
  `cost_indicator=False`), `cost_sum` (raw sum) and the task's own entries, each [].
  """

  def __init__(
      self,
      robot: Robot,
      groups: tuple[Group, ...],
      extents: float,
      costs: tuple[CostTerm, ...] = (),
      episode_length: int = 1000,
      cost_indicator: bool = True,
      backend: str = DEFAULT_BACKEND,
  ):
    if backend not in BACKENDS:
      raise ValueError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend != "mjx" and any(g.kind in MOCAP_KINDS for g in groups):
      raise ValueError(f"backend {backend!r} has no mocap bodies (pillars, buttons, "
                       "gremlins); use 'mjx'")
    names = [g.name for g in groups]
    for term in costs:
      if term.group not in names:
        raise ValueError(f"cost {term.key!r} names unknown group {term.group!r}: {names}")
    self.robot = robot
    self.groups = groups
    self.extents = extents
    self.costs = costs
    self.episode_length = episode_length
    self.cost_indicator = cost_indicator
    self.xml = build_xml(robot, groups)
    self.mj_model = mujoco.MjModel.from_xml_string(self.xml)
    sys = mjcf.load_model(self.mj_model)
    super().__init__(sys, backend=backend, n_frames=robot.n_frames)
    self._index_model()

  # --- static bookkeeping ---------------------------------------------------------------------
  def _index_model(self):
    m = self.mj_model
    agent = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "agent")
    robot_geoms = np.array([m.body_rootid[m.geom_bodyid[g]] == agent for g in range(m.ngeom)])
    self._geom_group = np.full((m.ngeom,), -1, np.int32)  # -1: robot or floor
    self._geom_is_robot = robot_geoms
    self._geom_object = np.full((m.ngeom,), -1, np.int32)  # index within its group
    self._q_addr, self._qd_addr, self._mocap_ids = {}, {}, {}
    for gi, group in enumerate(self.groups):
      if group.kind == "site":
        continue
      if group.kind == "free":
        first = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f"{group.name}0_x")
        self._q_addr[group.name] = int(m.jnt_qposadr[first])
        self._qd_addr[group.name] = int(m.jnt_dofadr[first])
      bodies = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, f"{group.name}{i}")
                for i in range(group.count)]
      if group.kind in MOCAP_KINDS:
        self._mocap_ids[group.name] = np.array([m.body_mocapid[b] for b in bodies])
      for i, b in enumerate(bodies):
        self._geom_group[m.geom_bodyid == b] = gi
        self._geom_object[m.geom_bodyid == b] = i
    keepouts, lo, hi = [AGENT_KEEPOUT], [], []
    for group in self.groups:
      keepouts += [group.keepout] * group.count
    n = len(keepouts)
    self._keepouts = np.array(keepouts, np.float32)
    self._lo = np.full((n, 2), -self.extents, np.float32)
    self._hi = np.full((n, 2), self.extents, np.float32)
    offsets, start = {}, 1
    for group in self.groups:
      offsets[group.name] = (start, start + group.count)
      start += group.count
    self._layout_slices = offsets

  @property
  def _has_mocap(self) -> bool:
    return any(g.kind == "mocap" for g in self.groups)

  @property
  def observation_size(self) -> int:
    return self.robot.sensor_size + lidar.NUM_BINS * sum(g.lidar for g in self.groups)

  @property
  def action_size(self) -> int:
    return 2

  def group(self, name: str) -> Group:
    return next(g for g in self.groups if g.name == name)

  # --- state helpers --------------------------------------------------------------------------
  def object_xy(self, q: jax.Array, objects: dict[str, jax.Array], name: str) -> jax.Array:
    """[count, 2] positions of group `name` from joint positions q and info['objects']."""
    group = self.group(name)
    if group.kind != "free":
      return objects[name]
    a = self._q_addr[name]
    return q[a:a + 3 * group.count].reshape(group.count, 3)[:, :2]

  def layout_xy(self, q: jax.Array, objects: dict[str, jax.Array]) -> jax.Array:
    """[N, 2] current positions of every placed object, agent first, in placement order."""
    agent_pos, _ = self.robot.pose(q[:self.robot.q_size])
    return jnp.concatenate(
        [agent_pos[None, :2]] + [self.object_xy(q, objects, g.name) for g in self.groups])

  def contact_count(self, contact: Any, group: str) -> jax.Array:
    """[] number of active contacts between a robot geom and a geom of `group`."""
    if contact is None:
      return jnp.zeros(())
    gi = [g.name for g in self.groups].index(group)
    in_group = jnp.asarray(self._geom_group == gi)
    is_robot = jnp.asarray(self._geom_is_robot)
    g1, g2 = contact.geom1, contact.geom2
    pair = (is_robot[g1] & in_group[g2]) | (in_group[g1] & is_robot[g2])
    return jnp.sum(pair & (contact.dist < 0)).astype(jnp.float32)

  def contact_objects(self, contact: Any, group: str) -> jax.Array:
    """[count] active robot contacts per object of `group`."""
    group_ = self.group(group)
    if contact is None:
      return jnp.zeros((group_.count,))
    gi = self.groups.index(group_)
    in_group = jnp.asarray(self._geom_group == gi)
    obj = jnp.asarray(self._geom_object)
    is_robot = jnp.asarray(self._geom_is_robot)
    g1, g2 = contact.geom1, contact.geom2
    active = contact.dist < 0
    hit1 = is_robot[g2] & in_group[g1] & active  # robot touches object obj[g1]
    hit2 = is_robot[g1] & in_group[g2] & active
    ids = jnp.arange(group_.count)[:, None]
    return (jnp.sum((obj[g1][None] == ids) & hit1[None], 1)
            + jnp.sum((obj[g2][None] == ids) & hit2[None], 1)).astype(jnp.float32)

  # --- mocap bodies ---------------------------------------------------------------------------
  def _mocap_xy(self, name: str, anchor: jax.Array, t: jax.Array) -> jax.Array:
    """[count, 2] position at sim time t of 'mocap' group `name` placed at anchor [count, 2]."""
    return self.group(name).path(anchor, t)

  def _set_mocaps(self, ps: Any, objects: dict[str, jax.Array]) -> Any:
    """Writes the xy of every 'fixed'/'mocap' group in objects into ps.mocap_pos."""
    pos = ps.mocap_pos
    for name, ids in self._mocap_ids.items():
      pos = pos.at[ids, :2].set(objects[name])
    return ps.replace(mocap_pos=pos)

  def _moved_objects(self, info: dict, t: jax.Array) -> dict[str, jax.Array]:
    """info['objects'] with every 'mocap' group at its position at time t."""
    return {**info["objects"], **{name: self._mocap_xy(name, anchor, t)
                                  for name, anchor in info["anchors"].items()}}

  # --- physics --------------------------------------------------------------------------------
  def _physics(self, ps: Any, action: jax.Array, info: dict) -> tuple[Any, Any]:
    """Runs the substeps; returns (state before the last substep, state after it).

    Like Safety-Gym's gremlins, 'mocap' groups move before every substep. The scan carries
    (previous, current) so the substep is traced and compiled once, not twice.
    """

    def substep(carry, _):
      _, ps = carry
      if self._has_mocap:
        ps = self._set_mocaps(ps, self._moved_objects(info, ps.time))
      ctrl = self.robot.ctrl(action, ps.q[:self.robot.q_size], ps.qd[:self.robot.qd_size])
      return (ps, self._pipeline.step(self.sys, ps, ctrl, self._debug)), None

    (prev, ps), _ = jax.lax.scan(substep, (ps, ps), None, self._n_frames)
    return prev, ps

  # Tasks that read contacts (Button's success) set this.
  task_uses_contacts = False

  def _contacts(self, prev: Any, ps: Any) -> Any:
    if not (self.task_uses_contacts or any(t.kind == "contact" for t in self.costs)):
      return None
    if self.backend == "mjx":
      return ps.contact  # mjx collides at the start of its step, i.e. at `prev`
    return brax_contact.get(self.sys, prev.x)

  def sample_layout(self, key: jax.Array) -> jax.Array:
    """[N, 2] initial positions: agent, then each group's objects in group order."""
    key_place, key_task = jax.random.split(key)
    xy, _ = layout.sample(
        key_place, jnp.asarray(self._keepouts), jnp.asarray(self._lo), jnp.asarray(self._hi))
    return self._task_layout(key_task, xy)

  # --- env API --------------------------------------------------------------------------------
  def reset(self, rng: jax.Array) -> State:
    key_layout, key_yaw, key_next = jax.random.split(rng, 3)
    xy = self.sample_layout(key_layout)
    n = xy.shape[0]
    yaws = jax.random.uniform(key_yaw, (n,), maxval=2 * jnp.pi)
    q = [self.robot.init_q(xy[0], yaws[0])]
    objects, anchors = {}, {}
    for group in self.groups:
      start, stop = self._layout_slices[group.name]
      if group.kind == "mocap":
        anchors[group.name] = xy[start:stop]
        objects[group.name] = self._mocap_xy(group.name, xy[start:stop], jnp.zeros(()))
      elif group.kind != "free":
        objects[group.name] = xy[start:stop]
      else:
        q.append(jnp.concatenate([xy[start:stop], yaws[start:stop, None]], 1).reshape(-1))
    q = jnp.concatenate(q)
    qd = jnp.zeros(self.sys.qd_size())
    ps = self.pipeline_init(q, qd)
    if self._mocap_ids:
      ps = self._set_mocaps(ps, objects)
      quat = ps.mocap_quat
      for name, ids in self._mocap_ids.items():
        start, stop = self._layout_slices[name]
        half = yaws[start:stop] / 2
        quat = quat.at[ids].set(jnp.stack(
            [jnp.cos(half), jnp.zeros_like(half), jnp.zeros_like(half), jnp.sin(half)], 1))
      ps = ps.replace(mocap_quat=quat)
    info = {"objects": objects, "key": key_next}
    if anchors:
      info["anchors"] = anchors
    info.update(self._task_reset(q, objects))
    obs = self._obs(q, qd, qd, objects)
    zero = jnp.zeros(())
    metrics = {f"cost_{t.key}": zero for t in self.costs}
    metrics.update(cost_sum=zero, **self._task_metrics())
    return State(pipeline_state=ps, obs=obs, reward=zero, done=zero, metrics=metrics,
                 info=info, cost=zero)

  def step(self, state: State, action: jax.Array) -> State:
    action = jnp.clip(action, -1.0, 1.0)
    prev, ps = self._physics(state.pipeline_state, action, state.info)
    q, qd = prev.q, prev.qd
    info = dict(state.info)
    if self._has_mocap:
      # Where the last substep's forward pass (contacts, sensors) saw them.
      info["objects"] = self._moved_objects(info, prev.time)
    objects = info["objects"]
    contact = self._contacts(prev, ps)
    raw = self._raw_costs(q, qd, info, contact)
    key, key_task = jax.random.split(info["key"])
    reward, done, task_info, task_metrics = self._task_reward(key_task, q, qd, info, contact)
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
    obs = self._obs(q, qd, ps.qd, info["objects"])
    return state.replace(pipeline_state=ps, obs=obs, reward=reward, done=done,
                         metrics=metrics, info=info, cost=cost)

  def obs_at(self, state: State, xy: jax.Array, yaw: jax.Array) -> jax.Array:
    """The observation [obs_size] of the robot at rest at `xy` [2] with heading `yaw` [],
    in `state`'s layout (other bodies where `state` has them). For maps over the arena."""
    nq = self.robot.q_size
    q = state.pipeline_state.q.at[:nq].set(self.robot.init_q(xy, yaw))
    qd = jnp.zeros_like(state.pipeline_state.qd)
    return self._obs(q, qd, qd, state.info["objects"])

  def _obs(self, q, qd, qd_next, objects) -> jax.Array:
    r = self.robot
    parts = [r.sensors(q[:r.q_size], qd[:r.qd_size], qd_next[:r.qd_size], self.sys.opt.timestep)]
    pos, rot = r.pose(q[:r.q_size])
    for group in self.groups:
      if group.lidar:
        parts.append(lidar.lidar(pos, rot, self.object_xy(q, objects, group.name),
                                 max_dist=group.lidar_max_dist))
    return jnp.concatenate(parts)

  def _raw_costs(self, q, qd, info, contact) -> dict[str, jax.Array]:
    objects = info["objects"]
    pos, _ = self.robot.pose(q[:self.robot.q_size])
    raw = {}
    for term in self.costs:
      group = self.group(term.group)
      if term.kind == "hazard":
        d = jnp.linalg.norm(self.object_xy(q, objects, term.group) - pos[:2], axis=-1)
        raw[term.key] = jnp.sum(jnp.where(d <= group.size, group.size - d, 0.0))
      elif term.kind == "contact":
        raw[term.key] = self.contact_count(contact, term.group)
      elif term.kind == "task":
        raw[term.key] = self._task_cost(term, q, qd, info, contact)
      else:
        a = self._qd_addr[term.group]
        v = qd[a:a + 3 * group.count].reshape(group.count, 3)[:, :2]
        speed = jnp.linalg.norm(v, axis=-1)
        raw[term.key] = jnp.sum(jnp.where(speed >= VELOCITY_THRESHOLD, speed, 0.0))
    return raw

  # --- task hooks -----------------------------------------------------------------------------
  def _task_layout(self, key: jax.Array, xy: jax.Array) -> jax.Array:
    """Adjusts the initial layout [N, 2] (e.g. re-draws the goal)."""
    del key
    return xy

  def _task_reset(self, q: jax.Array, objects: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Task entries added to state.info at reset."""
    del q, objects
    return {}

  def _task_metrics(self) -> dict[str, jax.Array]:
    """Zero-valued task metrics, so reset and step metrics share one structure."""
    return {}

  def _task_cost(self, term, q, qd, info, contact) -> jax.Array:
    """[] raw value of a 'task' cost term, from the state before this step's task update."""
    raise NotImplementedError(f"{type(self).__name__} has no task cost {term.key!r}")

  def _task_reward(self, key, q, qd, info, contact) -> tuple[jax.Array, jax.Array, dict, dict]:
    """(reward [], done [], info updates, task metrics) for the step reaching (q, qd).

    contact: the last substep's contacts, or None unless `task_uses_contacts` or a contact
    cost asked for them.
    """
    raise NotImplementedError
