"""Safety-Gym object groups shared by the Button and Push tasks (FACTS §3, Placement).

Bodies are cheap stand-ins with Safety-Gym's geometry where the robot can touch it:
- pillar: mjx has no box-cylinder collision, so the cylinder (r 0.2, z 0..1) is a capsule of
  the same radius whose straight part spans z 0..1; the caps sit below the floor and above
  the robot, out of reach.
- button: a fixed sphere r 0.1 at z 0.1.
- gremlin: a box of half-size 0.1 carried kinematically along its path, layout position +
  0.35 (sin t, cos t) (1 rad/s clockwise, all in phase). Safety-Gym drags a free box with a
  soft weld, so its box lags slightly and can be pushed; ours cannot. Its centre is at z 0.2,
  where Safety-Gym's gremlin floats (measured).
- push box: a planar free body (slide x, slide y, hinge z) like the vases, with its four
  corner boxes, and the floor's friction as joint damping with the vases' time constant.
Pillars, buttons and gremlins are mocap bodies in mjx ('fixed' / 'mocap' groups), so they add
no DOF. Each group also gives its top-view `footprint` for the planar backend.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from envs.groups import FLOOR_DRAG_TIME, Group
from envs.robots import OBSTACLE_COLLISION, STATIC_COLLISION
from envs.world import Geom

GOAL_RGBA = "0 1 0 0.25"
GREMLIN_TRAVEL = 0.35


def _mocap_body(name: str, z: float, geom: str, rgba: str, i: int) -> str:
  return f"""
    <body name="{name}{i}" mocap="true" pos="0 0 {z}">
      <geom name="{name}{i}" {geom} {STATIC_COLLISION} rgba="{rgba}"/>
    </body>"""


def hazards(n: int, size: float = 0.2, keepout: float = 0.18) -> Group:
  """Flat disks; the robot costs r - d inside one. Push uses size 0.3, keepout 0.4."""
  return Group("hazards", n, keepout=keepout, size=size, rgba="0 0 1 0.25")


def pillars(n: int) -> Group:
  """Fixed cylinders r 0.2, half-height 0.5."""
  rgba = "0.5 0.5 1 1"
  body = functools.partial(
      _mocap_body, "pillars", 0.5, 'type="capsule" size="0.2 0.5"', rgba)
  return Group("pillars", n, keepout=0.3, kind="fixed", size=0.2, rgba=rgba, body_xml=body,
               footprint=(Geom("circle", (0.2,)),))


def buttons(n: int = 4) -> Group:
  """Fixed spheres r 0.1 resting on the floor."""
  rgba = "1 0.5 0 1"
  body = functools.partial(_mocap_body, "buttons", 0.1, 'type="sphere" size="0.1"', rgba)
  return Group("buttons", n, keepout=0.2, kind="fixed", size=0.1, rgba=rgba, body_xml=body,
               footprint=(Geom("circle", (0.1,)),))


def gremlin_path(anchor: jax.Array, t: jax.Array) -> jax.Array:
  """[count, 2] gremlin positions at sim time t [] around their anchors [count, 2]."""
  return anchor + GREMLIN_TRAVEL * jnp.stack([jnp.sin(t), jnp.cos(t)])


def gremlins(n: int) -> Group:
  """Boxes of half-size 0.1 circling their layout position (see `envs.button`)."""
  rgba = "0.5 0 1 1"
  body = functools.partial(
      _mocap_body, "gremlins", 0.2, 'type="box" size="0.1 0.1 0.1"', rgba)
  return Group("gremlins", n, keepout=0.4, kind="mocap", size=0.1, rgba=rgba, body_xml=body,
               footprint=(Geom("box", (0.1, 0.1)),), path=gremlin_path)


_CORNERS = ((1, 1), (-1, 1), (1, -1), (-1, -1))


def _push_box_mass(half: float, density: float) -> tuple[float, float]:
  """(mass, inertia about z): main box (2h)^3 plus four corner boxes h x h x 2h at (+-h, +-h)."""
  main, corner = 8 * half ** 3 * density, 2 * half ** 3 * density
  mass = main + 4 * corner
  inertia = main * (2 / 3) * half ** 2 + 4 * corner * (1 / 6 + 2) * half ** 2
  return mass, inertia


def _push_box_body(half: float, density: float, i: int) -> str:
  mass, inertia = _push_box_mass(half, density)
  name = f"push_box{i}"
  geom = f'type="box" density="{density}" {OBSTACLE_COLLISION} rgba="1 1 0 1"'
  corners = "".join(
      f'\n      <geom name="{name}_c{k}" size="{half / 2} {half / 2} {half}" '
      f'pos="{sx * half} {sy * half} 0" {geom}/>'
      for k, (sx, sy) in enumerate(_CORNERS))
  return f"""
    <body name="{name}" pos="0 0 {half}">
      <joint type="slide" axis="1 0 0" name="{name}_x" damping="{mass / FLOOR_DRAG_TIME:.6g}"/>
      <joint type="slide" axis="0 1 0" name="{name}_y" damping="{mass / FLOOR_DRAG_TIME:.6g}"/>
      <joint type="hinge" axis="0 0 1" name="{name}_z"
             damping="{inertia / FLOOR_DRAG_TIME:.6g}"/>
      <geom name="{name}" size="{half} {half} {half}" {geom}/>{corners}
    </body>"""


def push_box(robot: str) -> Group:
  """The box to push: half-size 0.2, density 0.001 (Car: 0.125, 0.0005)."""
  half, density = (0.125, 0.0005) if robot == "Car" else (0.2, 0.001)
  mass, inertia = _push_box_mass(half, density)
  footprint = (Geom("box", (half, half)),) + tuple(
      Geom("box", (half / 2, half / 2), pos=(sx * half, sy * half)) for sx, sy in _CORNERS)
  return Group("push_box", 1, keepout=half, kind="free", size=half, rgba="1 1 0 1",
               body_xml=functools.partial(_push_box_body, half, density),
               footprint=footprint, mass=mass, inertia=inertia)
