"""The mjx World: MuJoCo MJX through a Brax pipeline, the reference backend.

The MJCF holds the robot first, then the physical groups' bodies: 'free' groups as planar
bodies (slide x, slide y, hinge z, floor drag as joint damping), 'fixed' and 'mocap' groups as
mocap bodies (placed at reset, or moved along their path before every substep).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from brax.io import mjcf
from brax.mjx import pipeline as mjx_pipeline
from flax import struct

from envs.groups import FLOOR_DRAG_TIME, MOCAP_KINDS, Group
from envs.robots import FLOOR_COLLISION, OBSTACLE_COLLISION, ROBOTS, Robot
from envs.world import Layout


def _free_body_xml(group: Group, i: int) -> str:
  half = group.size
  mass, inertia = group.mass, group.inertia
  name = f"{group.name}{i}"
  return f"""
    <body name="{name}" pos="0 0 {half}">
      <joint type="slide" axis="1 0 0" name="{name}_x" damping="{mass / FLOOR_DRAG_TIME:.6g}"/>
      <joint type="slide" axis="0 1 0" name="{name}_y" damping="{mass / FLOOR_DRAG_TIME:.6g}"/>
      <joint type="hinge" axis="0 0 1" name="{name}_z" damping="{inertia / FLOOR_DRAG_TIME:.6g}"/>
      <geom name="{name}" type="box" size="{half} {half} {half}" mass="{mass:.6g}"
            {OBSTACLE_COLLISION} rgba="{group.rgba}"/>
    </body>"""


def build_xml(robot: Robot, groups: tuple[Group, ...], render: bool = False) -> str:
  """The MJCF of the simulated world: robot first, then 'free' groups.

  With `render=True`, 'site' objects follow as joint-less, non-colliding bodies (so they come
  last among the links) and there is always a floor.
  """
  bodies = [robot.body_xml]
  for group in groups:
    if group.body_xml is not None:
      bodies += [group.body_xml(i) for i in range(group.count)]
    elif group.kind == "free":
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


@struct.dataclass
class MjxState:
  """The mjx World's state.

  ps: the Brax/MJX pipeline state after the last substep (`ps.contact`: that substep's
    collision pass, taken at its start). q [nq], qd [nv]: joint state at the start of the last
    substep, which the accessors report. time []: sim time of that instant.
    anchors: {mocap group: [count, 2]} path anchors.
  """

  ps: Any
  q: jax.Array
  qd: jax.Array
  time: jax.Array
  anchors: dict[str, jax.Array]


class MjxWorld:
  """The World protocol (`envs.world`) on MuJoCo MJX. See the module docstring."""

  backend = "mjx"

  def __init__(self, robot: str, groups: tuple[Group, ...]):
    self.robot = ROBOTS[robot]
    self.groups = {g.name: g for g in groups if g.physical}
    self.xml = build_xml(self.robot, groups)
    self.mj_model = mujoco.MjModel.from_xml_string(self.xml)
    self.sys = mjcf.load_model(self.mj_model)
    self.dt = self.robot.timestep * self.robot.n_frames
    self.sensor_size = self.robot.sensor_size
    self._index_model()

  def _index_model(self):
    m = self.mj_model
    agent = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "agent")
    self._geom_is_robot = np.array(
        [m.body_rootid[m.geom_bodyid[g]] == agent for g in range(m.ngeom)])
    self._geom_group = np.full((m.ngeom,), -1, np.int32)  # -1: robot or floor
    self._geom_object = np.full((m.ngeom,), -1, np.int32)  # index within its group
    self._names = list(self.groups)
    self._q_addr, self._qd_addr, self._mocap_ids = {}, {}, {}
    for gi, group in enumerate(self.groups.values()):
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
    self._moving = [g.name for g in self.groups.values() if g.kind == "mocap"]

  # --- World API ------------------------------------------------------------------------------
  def init(self, layout: Layout) -> MjxState:
    q = [self.robot.init_q(layout.robot_xy, layout.robot_yaw)]
    for name, group in self.groups.items():
      if group.kind == "free":
        q.append(jnp.concatenate([layout.xy[name], layout.yaw[name][:, None]], 1).reshape(-1))
    q = jnp.concatenate(q)
    qd = jnp.zeros(self.sys.qd_size())
    ps = mjx_pipeline.init(self.sys, q, qd)
    anchors = {name: layout.xy[name] for name in self._moving}
    if self._mocap_ids:
      pos, quat = ps.mocap_pos, ps.mocap_quat
      for name, ids in self._mocap_ids.items():
        pos = pos.at[ids, :2].set(layout.xy[name])
        half = layout.yaw[name] / 2
        zero = jnp.zeros_like(half)
        quat = quat.at[ids].set(jnp.stack([jnp.cos(half), zero, zero, jnp.sin(half)], 1))
      ps = ps.replace(mocap_pos=pos, mocap_quat=quat)
      ps = self._move_mocaps(ps, anchors, ps.time)
    return MjxState(ps=ps, q=q, qd=qd, time=ps.time, anchors=anchors)

  def _move_mocaps(self, ps: Any, anchors: dict[str, jax.Array], t: jax.Array) -> Any:
    if not self._moving:
      return ps
    pos = ps.mocap_pos
    for name in self._moving:
      pos = pos.at[self._mocap_ids[name], :2].set(self.groups[name].path(anchors[name], t))
    return ps.replace(mocap_pos=pos)

  def step(self, ws: MjxState, action: jax.Array) -> MjxState:
    """Runs the substeps. Like Safety-Gym's gremlins, 'mocap' groups move before each one.
    The scan carries (previous, current) so the substep is traced and compiled once."""
    nq, nv = self.robot.q_size, self.robot.qd_size

    def substep(carry, _):
      _, ps = carry
      ps = self._move_mocaps(ps, ws.anchors, ps.time)
      ctrl = self.robot.ctrl(action, ps.q[:nq], ps.qd[:nv])
      return (ps, mjx_pipeline.step(self.sys, ps, ctrl)), None

    (prev, ps), _ = jax.lax.scan(substep, (ws.ps, ws.ps), None, self.robot.n_frames)
    return ws.replace(ps=ps, q=prev.q, qd=prev.qd, time=prev.time)

  def robot_pose(self, ws: MjxState) -> tuple[jax.Array, jax.Array]:
    return self.robot.pose(ws.q[:self.robot.q_size])

  def robot_velocity(self, ws: MjxState) -> jax.Array:
    # Both robots' first two DOFs are the world-frame x, y velocity (slides / free joint).
    return ws.qd[:2]

  def sensors(self, ws: MjxState) -> jax.Array:
    r = self.robot
    return r.sensors(ws.q[:r.q_size], ws.qd[:r.qd_size], ws.ps.qd[:r.qd_size], r.timestep)

  def _free(self, x: jax.Array, addr: dict[str, int], name: str) -> jax.Array:
    a = addr[name]
    return x[a:a + 3 * self.groups[name].count].reshape(-1, 3)

  def object_xy(self, ws: MjxState, name: str) -> jax.Array:
    group = self.groups[name]
    if group.kind == "free":
      return self._free(ws.q, self._q_addr, name)[:, :2]
    if group.kind == "mocap":
      return group.path(ws.anchors[name], ws.time)
    return ws.ps.mocap_pos[self._mocap_ids[name], :2]

  def object_yaw(self, ws: MjxState, name: str) -> jax.Array:
    if self.groups[name].kind == "free":
      return self._free(ws.q, self._q_addr, name)[:, 2]
    quat = ws.ps.mocap_quat[self._mocap_ids[name]]
    return 2 * jnp.arctan2(quat[:, 3], quat[:, 0])

  def object_velocity(self, ws: MjxState, name: str) -> jax.Array:
    if self.groups[name].kind == "free":
      return self._free(ws.qd, self._qd_addr, name)[:, :2]
    return jnp.zeros((self.groups[name].count, 2))

  def _active(self, ws: MjxState):
    c = ws.ps.contact
    return c.geom1, c.geom2, c.dist < 0

  def robot_contacts(self, ws: MjxState, name: str) -> jax.Array:
    count = self.groups[name].count
    in_group = jnp.asarray(self._geom_group == self._names.index(name))
    obj = jnp.asarray(self._geom_object)
    is_robot = jnp.asarray(self._geom_is_robot)
    g1, g2, active = self._active(ws)
    hit1 = is_robot[g2] & in_group[g1] & active  # robot touches object obj[g1]
    hit2 = is_robot[g1] & in_group[g2] & active
    ids = jnp.arange(count)[:, None]
    return (jnp.sum((obj[g1][None] == ids) & hit1[None], 1)
            + jnp.sum((obj[g2][None] == ids) & hit2[None], 1)).astype(jnp.float32)

  def group_contacts(self, ws: MjxState, a: str, b: str) -> jax.Array:
    group = jnp.asarray(self._geom_group)
    ia, ib = self._names.index(a), self._names.index(b)
    g1, g2, active = self._active(ws)
    pair = ((group[g1] == ia) & (group[g2] == ib)) | ((group[g1] == ib) & (group[g2] == ia))
    return jnp.sum(pair & active).astype(jnp.float32)

  def place_robot(self, ws: MjxState, xy: jax.Array, yaw: jax.Array,
                  vel: jax.Array | None = None) -> MjxState:
    nq = self.robot.q_size
    q = ws.q.at[:nq].set(self.robot.init_q(xy, yaw))
    qd = jnp.zeros_like(ws.qd)
    if vel is not None:
      qd = qd.at[:2].set(vel)
    ps = ws.ps.replace(q=q, qpos=q, qd=qd, qvel=qd)
    return ws.replace(ps=ps, q=q, qd=qd)

  def place_objects(self, ws: MjxState, name: str, xy: jax.Array) -> MjxState:
    group = self.groups[name]
    if group.kind == "mocap":
      return ws.replace(anchors={**ws.anchors, name: xy})
    if group.kind == "fixed":
      pos = ws.ps.mocap_pos.at[self._mocap_ids[name], :2].set(xy)
      return ws.replace(ps=ws.ps.replace(mocap_pos=pos))
    a = self._q_addr[name]
    idx = a + 3 * jnp.arange(group.count)[:, None] + jnp.arange(2)[None]
    q = ws.q.at[idx].set(xy)
    return ws.replace(ps=ws.ps.replace(q=q, qpos=q), q=q)

  def time(self, ws: MjxState) -> jax.Array:
    return ws.time
