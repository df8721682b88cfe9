"""Robots of the planar backend: each a body on the floor plane with pose q = (x, y, yaw) and
world-frame velocity qd = (vx, vy, yaw rate), plus whatever else its sensors need (`extra`).

A `PlanarRobot` is static configuration plus pure functions; `envs.planar.PlanarWorld` runs
them and resolves contacts. One substep of dt seconds (MuJoCo's semi-implicit Euler order):
  1. qd_free = velocity_step(q, qd, extra, action, dt)    actuation, damping, bias forces
  2. contacts change qd_free by impulses through `mass_matrix(q)` -> qd_next
  3. q_next = q + dt * qd_next (yaw included)
  4. extra_next = extra_step(q, qd_next, extra, dt)
Sensors read the state at the start of the last substep (q, qd, extra) and the velocity it
reached (qd_next), as MuJoCo's do.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

from envs import robots
from envs.world import Geom


@dataclasses.dataclass(frozen=True)
class PlanarRobot:
  """A robot of the planar backend.

  Attributes:
    name: 'Point' or 'Car' (the same names as `envs.robots.ROBOTS`).
    timestep: physics substep in seconds; n_frames: substeps per env step.
    z: height of the body origin (constant: the robot lives on the plane).
    geoms: collision shapes in the body frame (`envs.world.Geom`).
    sensor_size: length of the sensor observation (same layout as the mjx robot's).
    init_extra: () -> extra pytree at rest (the Point's is an empty array).
    mass_matrix: q [3] -> [3, 3] generalised mass over (x, y, yaw), for contact impulses.
    velocity_step: (q [3], qd [3], extra, action [2], dt) -> qd_free [3].
    extra_step: (q [3], qd_next [3], extra, dt) -> extra.
    sensors: (q [3], qd [3], qd_next [3], extra, dt) -> [sensor_size].
  """

  name: str
  timestep: float
  n_frames: int
  z: float
  geoms: tuple[Geom, ...]
  sensor_size: int
  init_extra: Callable[[], Any]
  mass_matrix: Callable[[jax.Array], jax.Array]
  velocity_step: Callable[[jax.Array, jax.Array, Any, jax.Array, float], jax.Array]
  extra_step: Callable[[jax.Array, jax.Array, Any, float], Any]
  sensors: Callable[[jax.Array, jax.Array, jax.Array, Any, float], jax.Array]


# --- Point ------------------------------------------------------------------------------------
# MuJoCo's Point (`envs.robots.POINT`): slide x, slide y, hinge z at the body origin; a sphere
# r 0.1 and a box of half-size 0.05 at body (0.1, 0), both density 1. The box puts the COM
# 0.0193 m ahead of the origin, so the mass matrix couples translation and yaw.
_POINT_SPHERE_MASS = 4.0 / 3.0 * math.pi * 0.1 ** 3
_POINT_BOX_MASS = 0.1 ** 3
POINT_MASS = _POINT_SPHERE_MASS + _POINT_BOX_MASS  # 0.0051888 kg
POINT_COM = _POINT_BOX_MASS * 0.1 / POINT_MASS  # 0.019272 m along body +x
# About the origin's z axis: sphere 2/5 m r^2; box m (2h)^2 / 6 about its centre + m 0.1^2.
POINT_INERTIA = (0.4 * _POINT_SPHERE_MASS * 0.1 ** 2 + _POINT_BOX_MASS * 0.1 ** 2 / 6
                 + _POINT_BOX_MASS * 0.1 ** 2)  # 2.8422e-5 kg m^2
POINT_DAMPING = (0.01, 0.01, 0.005)  # joint damping of x, y (equal: the solve relies on it), z


def _point_mass_matrix(q: jax.Array) -> jax.Array:
  """[3, 3] M over (x, y, yaw) as MuJoCo's `mj_fullM`: [[m, 0, -m c sin], [0, m, m c cos],
  [-m c sin, m c cos, I]] for the COM offset c along the heading."""
  mc = POINT_MASS * POINT_COM
  a, b = -mc * jnp.sin(q[2]), mc * jnp.cos(q[2])
  return jnp.array([[POINT_MASS, 0.0, a], [0.0, POINT_MASS, b], [a, b, POINT_INERTIA]])


def _point_velocity_step(q: jax.Array, qd: jax.Array, extra: Any, action: jax.Array,
                         dt: float) -> jax.Array:
  """qd_free [3]: MuJoCo's Euler step, damping implicit: (M + dt D) qacc = f - D qd - bias.

  f: thrust 0.3 clip(a0, +-0.05) along the heading at the origin; yaw servo torque
  0.3 clip(a1 - 0.3 w, +-0.05) from the current w (explicit: its +-0.476 rad/s two-cycle).
  bias: the COM's centripetal force -m w^2 c (cos, sin); none on yaw.
  """
  del extra
  cos, sin = jnp.cos(q[2]), jnp.sin(q[2])
  w = qd[2]
  thrust = 0.3 * jnp.clip(action[0], -0.05, 0.05)
  torque = 0.3 * jnp.clip(jnp.clip(action[1], -1.0, 1.0) - 0.3 * w, -0.05, 0.05)
  mc = POINT_MASS * POINT_COM
  dx, dy, dz = POINT_DAMPING
  f0 = thrust * cos + mc * w * w * cos - dx * qd[0]
  f1 = thrust * sin + mc * w * w * sin - dy * qd[1]
  f2 = torque - dz * w
  # (M + dt D) = [[a, 0, p], [0, a, r], [p, r, J]]: eliminate x and y (Schur complement).
  a = POINT_MASS + dt * dx
  p, r = -mc * sin, mc * cos
  j = POINT_INERTIA + dt * dz
  acc_w = (f2 - (p * f0 + r * f1) / a) / (j - mc * mc / a)
  qacc = jnp.stack([(f0 - p * acc_w) / a, (f1 - r * acc_w) / a, acc_w])
  return qd + dt * qacc


def _point_extra_step(q: jax.Array, qd_next: jax.Array, extra: Any, dt: float) -> Any:
  del q, qd_next, dt
  return extra


def _point_sensors(q: jax.Array, qd: jax.Array, qd_next: jax.Array, extra: Any,
                   dt: float) -> jax.Array:
  """[12] as the mjx Point's: accelerometer, velocimeter, gyro, magnetometer."""
  del extra
  return robots._point_sensors(q, qd, qd_next, dt)


POINT = PlanarRobot(
    name="Point",
    timestep=robots.POINT.timestep,
    n_frames=robots.POINT.n_frames,
    z=0.1,
    geoms=(Geom("circle", (0.1,)), Geom("box", (0.05, 0.05), pos=(0.1, 0.0))),
    sensor_size=robots.POINT.sensor_size,
    init_extra=lambda: jnp.zeros((0,)),
    mass_matrix=_point_mass_matrix,
    velocity_step=_point_velocity_step,
    extra_step=_point_extra_step,
    sensors=_point_sensors,
)
