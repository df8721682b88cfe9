"""The World seam: the one interface between navigation task logic and a physics backend.

Task logic (layout, lidar, rewards, costs, rendering, the lambda(s) map) sees physics only
through a `World`. Two implementations exist, picked by name in `BACKENDS`:
  'planar': `envs.planar.PlanarWorld`, 2-D rigid bodies in plain jax.numpy (the default);
  'mjx':    `envs.mjx_world.MjxWorld`, MuJoCo MJX through a Brax pipeline (the reference).

What a World is built from: a robot name ('Point', 'Car') and the task's object groups
(`Group`s; only the physical kinds 'free', 'fixed' and 'mocap' are simulated, 'site' groups
live in the task's `state.info['objects']`).

Timing (both backends, as MuJoCo's `mj_step`): after `step`, every accessor describes the state
at the START of the last physics substep; contacts are those of that substep's collision pass.

World methods (ws is the backend's own pytree, stored in `State.pipeline_state`):
  init(layout: Layout) -> ws
  step(ws, action [2] in [-1, 1]) -> ws                  one env step (all substeps)
  robot_pose(ws) -> (pos [3], rot [3, 3])                 body origin and body-to-world rotation
  robot_velocity(ws) -> [2]                               world-frame planar velocity of the origin
  sensors(ws) -> [robot sensor_size]                      accelerometer, velocimeter, gyro, ...
  object_xy(ws, name) -> [count, 2]                       a physical group's positions
  object_yaw(ws, name) -> [count]                         ... and headings
  object_velocity(ws, name) -> [count, 2]                 ... and planar velocities
  robot_contacts(ws, name) -> [count]                     active robot-geom contacts per object
  group_contacts(ws, a, b) -> []                          active contacts between groups a and b
  place_robot(ws, xy [2], yaw [], vel [2]) -> ws          robot at a pose with a planar velocity
  place_objects(ws, name, xy [count, 2]) -> ws            move a physical group ('mocap': its
                                                          path anchors)
  time(ws) -> []                                          sim time of the accessors' instant
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Protocol

import jax
from flax import struct

BACKENDS = ("planar", "mjx")
DEFAULT_BACKEND = "planar"


def check_backend(backend: str) -> str:
  """Returns `backend` if it names a World; else raises ValueError naming the accepted ones."""
  if backend not in BACKENDS:
    from envs.registry import did_you_mean
    raise ValueError(f"backend {backend!r}{did_you_mean(backend, BACKENDS)} is not one of "
                     f"{', '.join(BACKENDS)}")
  return backend


@dataclasses.dataclass(frozen=True)
class Geom:
  """A 2-D collision shape of a body, in the body frame (for the planar backend and replays).

  kind: 'circle' (size = (radius,)) or 'box' (size = (half_x, half_y)).
  pos: (x, y) of its centre in the body frame; yaw: its rotation in the body frame.
  """

  kind: str
  size: tuple[float, ...]
  pos: tuple[float, float] = (0.0, 0.0)
  yaw: float = 0.0

  def __post_init__(self):
    if self.kind not in ("circle", "box"):
      raise ValueError(f"Geom kind {self.kind!r} is not one of circle, box")
    if len(self.size) != (1 if self.kind == "circle" else 2):
      raise ValueError(f"Geom {self.kind} needs {1 if self.kind == 'circle' else 2} sizes, "
                       f"got {self.size}")


@struct.dataclass
class Layout:
  """A reset's placement, the same for every backend.

  robot_xy [2], robot_yaw []; xy and yaw: {group name: [count, 2] / [count]} for every group
  (the World uses the physical ones; 'mocap' positions are path anchors).
  """

  robot_xy: jax.Array
  robot_yaw: jax.Array
  xy: dict[str, jax.Array]
  yaw: dict[str, jax.Array]


class World(Protocol):
  """See the module docstring for each method's shapes."""

  backend: str
  dt: float  # seconds per env step (timestep * substeps)

  def init(self, layout: Layout) -> Any: ...
  def step(self, ws: Any, action: jax.Array) -> Any: ...
  def robot_pose(self, ws: Any) -> tuple[jax.Array, jax.Array]: ...
  def robot_velocity(self, ws: Any) -> jax.Array: ...
  def sensors(self, ws: Any) -> jax.Array: ...
  def object_xy(self, ws: Any, name: str) -> jax.Array: ...
  def object_yaw(self, ws: Any, name: str) -> jax.Array: ...
  def object_velocity(self, ws: Any, name: str) -> jax.Array: ...
  def robot_contacts(self, ws: Any, name: str) -> jax.Array: ...
  def group_contacts(self, ws: Any, a: str, b: str) -> jax.Array: ...
  def place_robot(self, ws: Any, xy: jax.Array, yaw: jax.Array,
                  vel: jax.Array | None = None) -> Any: ...
  def place_objects(self, ws: Any, name: str, xy: jax.Array) -> Any: ...
  def time(self, ws: Any) -> jax.Array: ...


Path = Callable[[jax.Array, jax.Array], jax.Array]
"""(anchor [count, 2], t []) -> [count, 2]: where a 'mocap' group is at sim time t."""
