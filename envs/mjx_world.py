"""The mjx World: MuJoCo MJX through a Brax pipeline, the reference backend.

The MJCF holds the robot first, then the physical groups' bodies: 'free' groups as planar
bodies (slide x, slide y, hinge z, floor drag as joint damping), 'fixed' and 'mocap' groups as
mocap bodies (placed at reset, or moved along their path before every substep).
"""

from __future__ import annotations

from envs.groups import FLOOR_DRAG_TIME, Group
from envs.robots import FLOOR_COLLISION, OBSTACLE_COLLISION, Robot


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
