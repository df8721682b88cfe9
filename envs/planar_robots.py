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
from typing import Any, Callable

import jax

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
