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
New kinds (fixed pillars/buttons, mocap gremlins) belong here; their positions must come out of
`object_xy` and their contacts out of `contact_count` like the 'free' kind's.

Timing follows MuJoCo's `mj_step`: observations, rewards and costs are evaluated at the state
before the last physics substep (see `envs.robots`), contacts from that substep's collision pass.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from brax import contact as brax_contact
from brax.envs.base import PipelineEnv
from brax.io import mjcf

from envs import layout, lidar
from envs.base import State
from envs.robots import FLOOR_COLLISION, OBSTACLE_COLLISION, Robot

BACKENDS = ("mjx", "generalized", "positional")
DEFAULT_BACKEND = "mjx"
AGENT_KEEPOUT = 0.4
REWARD_CLIP = 10.0
# cost_vases_velocity ignores vases slower than this (m/s).
VELOCITY_THRESHOLD = 1e-4
VASE_DENSITY = 0.001
FLOOR_DRAG_TIME = 0.02


@dataclasses.dataclass(frozen=True)
class Group:
  """A group of identical objects, placed and observed together.

  Attributes:
    name: 'goal', 'hazards', 'vases', ... (lidar key `<name>_lidar`, metrics `cost_<name>...`).
    count: objects in the group.
    keepout: placement keep-out radius.
    kind: 'site' or 'free' (see the module docstring).
    size: radius of a 'site' disk (hazard, goal) or half-size of a 'free' box.
    lidar: whether the observation has this group's lidar.
    rgba: colour for rendering.
    half_height: half-height of a 'site' disk when rendered (its centre sits at this z).
  """

  name: str
  count: int
  keepout: float
  kind: str = "site"
  size: float = 0.0
  lidar: bool = True
  rgba: str = "0.5 0.5 0.5 1"
  half_height: float = 0.01

  def __post_init__(self):
    if self.kind not in ("site", "free"):
      raise ValueError(f"Group kind {self.kind!r} is not one of 'site', 'free'")


@dataclasses.dataclass(frozen=True)
class CostTerm:
  """One Safety-Gym cost key: `cost_<key>` in metrics.

  kind: 'hazard' (sum of r - d inside the group's disks), 'contact' (robot contacts with the
  group's geoms) or 'velocity' (sum of the group's body speeds above 1e-4 m/s).
  """

  key: str
  kind: str
  group: str

  def __post_init__(self):
    if self.kind not in ("hazard", "contact", "velocity"):
      raise ValueError(
          f"CostTerm kind {self.kind!r} is not one of 'hazard', 'contact', 'velocity'")


def _free_body_xml(group: Group, i: int) -> str:
  half = group.size
  mass = VASE_DENSITY * (2 * half) ** 3
  inertia = mass * (2 * half) ** 2 / 6
  name = f"{group.name}{i}"
  return f"""
    <body name="{name}" pos="0 0 {half}">
      <joint type="slide" axis="1 0 0" name="{name}_x" damping="{mass / FLOOR_DRAG_TIME:.6g}"/>
      <joint type="slide" axis="0 1 0" name="{name}_y" damping="{mass / FLOOR_DRAG_TIME:.6g}"/>
      <joint type="hinge" axis="0 0 1" name="{name}_z" damping="{inertia / FLOOR_DRAG_TIME:.6g}"/>
      <geom name="{name}" type="box" size="{half} {half} {half}" density="{VASE_DENSITY}"
            {OBSTACLE_COLLISION} rgba="{group.rgba}"/>
    </body>"""


def build_xml(robot: Robot, groups: tuple[Group, ...], render: bool = False) -> str:
  """The MJCF of the simulated world: robot first, then 'free' groups.

  With `render=True`, 'site' objects follow as joint-less, non-colliding bodies (so they come
  last among the links) and there is always a floor.
  """
  bodies = [robot.body_xml]
  for group in groups:
    if group.kind == "free":
      bodies += [_free_body_xml(group, i) for i in range(group.count)]
  if render:
    for group in groups:
      if group.kind == "site":
        bodies += [
            f'<body name="{group.name}{i}"><geom type="cylinder" contype="0" conaffinity="0"'
            f' size="{group.size} {group.half_height}" rgba="{group.rgba}"/></body>'
            for i in range(group.count)]
  floor = ""
  if robot.needs_floor or render:
    floor = f'<geom name="floor" type="plane" size="5 5 0.1" condim="6" {FLOOR_COLLISION}/>'
  return f"""<mujoco model="{robot.name.lower()}_navigation">
  <option timestep="{robot.timestep}" integrator="Euler" {robot.solver}/>
  <worldbody>
    {floor}
    {''.join(bodies)}
  </worldbody>
  <actuator>{robot.actuator_xml}
  </actuator>
</mujoco>"""


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
    self._q_addr, self._qd_addr = {}, {}
    for gi, group in enumerate(self.groups):
      if group.kind != "free":
        continue
      first = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f"{group.name}0_x")
      self._q_addr[group.name] = int(m.jnt_qposadr[first])
      self._qd_addr[group.name] = int(m.jnt_dofadr[first])
      for i in range(group.count):
        g = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"{group.name}{i}")
        self._geom_group[g] = gi
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
    if group.kind == "site":
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

  # --- physics --------------------------------------------------------------------------------
  def _physics(self, ps: Any, action: jax.Array) -> tuple[Any, Any]:
    """Runs the substeps; returns (state before the last substep, state after it)."""

    def substep(ps, _):
      ctrl = self.robot.ctrl(action, ps.q[:self.robot.q_size], ps.qd[:self.robot.qd_size])
      return self._pipeline.step(self.sys, ps, ctrl, self._debug), None

    prev, _ = jax.lax.scan(substep, ps, None, self._n_frames - 1)
    return prev, substep(prev, None)[0]

  def _contacts(self, prev: Any, ps: Any) -> Any:
    if not any(t.kind == "contact" for t in self.costs):
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
    objects = {}
    for group in self.groups:
      start, stop = self._layout_slices[group.name]
      if group.kind == "site":
        objects[group.name] = xy[start:stop]
      else:
        q.append(jnp.concatenate([xy[start:stop], yaws[start:stop, None]], 1).reshape(-1))
    q = jnp.concatenate(q)
    qd = jnp.zeros(self.sys.qd_size())
    ps = self.pipeline_init(q, qd)
    info = {"objects": objects, "key": key_next}
    info.update(self._task_reset(q, objects))
    obs = self._obs(q, qd, qd, objects)
    zero = jnp.zeros(())
    metrics = {f"cost_{t.key}": zero for t in self.costs}
    metrics.update(cost_sum=zero, **self._task_metrics())
    return State(pipeline_state=ps, obs=obs, reward=zero, done=zero, metrics=metrics,
                 info=info, cost=zero)

  def step(self, state: State, action: jax.Array) -> State:
    action = jnp.clip(action, -1.0, 1.0)
    prev, ps = self._physics(state.pipeline_state, action)
    q, qd = prev.q, prev.qd
    info = dict(state.info)
    objects = info["objects"]
    raw = self._raw_costs(q, qd, objects, self._contacts(prev, ps))
    key, key_task = jax.random.split(info["key"])
    reward, done, task_info, task_metrics = self._task_reward(key_task, q, info)
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

  def _obs(self, q, qd, qd_next, objects) -> jax.Array:
    r = self.robot
    parts = [r.sensors(q[:r.q_size], qd[:r.qd_size], qd_next[:r.qd_size], self.sys.opt.timestep)]
    pos, rot = r.pose(q[:r.q_size])
    for group in self.groups:
      if group.lidar:
        parts.append(lidar.lidar(pos, rot, self.object_xy(q, objects, group.name)))
    return jnp.concatenate(parts)

  def _raw_costs(self, q, qd, objects, contact) -> dict[str, jax.Array]:
    pos, _ = self.robot.pose(q[:self.robot.q_size])
    raw = {}
    for term in self.costs:
      group = self.group(term.group)
      if term.kind == "hazard":
        d = jnp.linalg.norm(self.object_xy(q, objects, term.group) - pos[:2], axis=-1)
        raw[term.key] = jnp.sum(jnp.where(d <= group.size, group.size - d, 0.0))
      elif term.kind == "contact":
        raw[term.key] = self.contact_count(contact, term.group)
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

  def _task_reward(self, key, q, info) -> tuple[jax.Array, jax.Array, dict, dict]:
    """(reward [], done [], info updates, task metrics) for the step reaching q."""
    raise NotImplementedError
