"""Object groups and cost terms of the Safety-Gym navigation tasks, shared by every backend.

Object groups (`Group.kind`):
  'site': not simulated (goal, hazards, circle); a position per object in the task's
    `state.info['objects'][name]` ([count, 2]).
  'free': a movable obstacle (vases, the push box). Safety-Gym's vase is a free box resting on
    the floor; both backends make it planar (x, y, yaw) with the floor's Coulomb friction
    (mu = 1: a knocked vase stops within about 0.1 s) as a linear drag of time constant
    FLOOR_DRAG_TIME (mass / damping).
  'fixed': an immovable obstacle (pillars, buttons), placed at reset.
  'mocap': an obstacle moved along a prescribed `path` (gremlins) before every substep.

Each physical group gives its 2-D collision `footprint` (`envs.world.Geom`s in the body frame)
for the planar backend and replays; mjx reads the MJCF of `body_xml` (a 'free' group without
one gets a box of half-size `size`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from envs import lidar
from envs.world import Geom, Path

VASE_DENSITY = 0.001
FLOOR_DRAG_TIME = 0.02
KINDS = ("site", "free", "fixed", "mocap")
PHYSICAL_KINDS = ("free", "fixed", "mocap")
MOCAP_KINDS = ("fixed", "mocap")
COST_KINDS = ("hazard", "contact", "velocity", "task")
LIDAR_MAX_DIST = lidar.MAX_DIST  # `Group.lidar` shadows the module inside the class


@dataclasses.dataclass(frozen=True)
class Group:
  """A group of identical objects, placed and observed together.

  Attributes:
    name: 'goal', 'hazards', 'vases', ... (lidar key `<name>_lidar`, metrics `cost_<name>...`).
    count: objects in the group.
    keepout: placement keep-out radius.
    kind: 'site', 'free', 'fixed' or 'mocap' (see the module docstring).
    size: radius of a 'site' disk (hazard, goal) or of a round obstacle, half-size of a box.
    lidar: whether the observation has this group's lidar.
    rgba: colour for rendering.
    half_height: half-height of a 'site' disk when rendered (its centre sits at this z).
    lidar_max_dist: the lidar's range D for this group.
    body_xml: (index) -> MJCF of body `<name><index>` (joints `<name><index>_x/_y/_z` for a
      'free' body); required for 'fixed' and 'mocap' groups.
    footprint: 2-D collision shapes of one object (body frame); default for a 'free' group: a
      box of half-size `size`.
    mass, inertia: of one 'free' object (kg, kg m^2 about z); default a box of density
      VASE_DENSITY and half-size `size`.
    path: where a 'mocap' group is at sim time t, from its layout anchors (`envs.world.Path`).
  """

  name: str
  count: int
  keepout: float
  kind: str = "site"
  size: float = 0.0
  lidar: bool = True
  rgba: str = "0.5 0.5 0.5 1"
  half_height: float = 0.01
  lidar_max_dist: float = LIDAR_MAX_DIST
  body_xml: Callable[[int], str] | None = None
  footprint: tuple[Geom, ...] = ()
  mass: float = 0.0
  inertia: float = 0.0
  path: Path | None = None

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"Group kind {self.kind!r} is not one of {', '.join(KINDS)}")
    if self.kind in MOCAP_KINDS and self.body_xml is None:
      raise ValueError(f"Group {self.name!r} of kind {self.kind!r} needs body_xml")
    if self.kind == "mocap" and self.path is None:
      raise ValueError(f"Group {self.name!r} of kind 'mocap' needs a path")
    if self.kind == "free":
      half = self.size
      if not self.footprint:
        object.__setattr__(self, "footprint", (Geom("box", (half, half)),))
      if self.mass == 0.0:
        mass = VASE_DENSITY * (2 * half) ** 3
        object.__setattr__(self, "mass", mass)
        object.__setattr__(self, "inertia", mass * (2 * half) ** 2 / 6)
    if self.kind in PHYSICAL_KINDS and not self.footprint:
      raise ValueError(f"Group {self.name!r} of kind {self.kind!r} needs a footprint")

  @property
  def physical(self) -> bool:
    """Whether a World simulates this group."""
    return self.kind in PHYSICAL_KINDS


@dataclasses.dataclass(frozen=True)
class CostTerm:
  """One Safety-Gym cost key: `cost_<key>` in metrics.

  kind: 'hazard' (sum of r - d inside the group's disks), 'contact' (robot contacts with the
  group's geoms), 'velocity' (sum of the group's body speeds above 1e-4 m/s) or 'task'
  (the task's `_task_cost`, e.g. Button's wrong-button contacts or Circle's boundary).
  """

  key: str
  kind: str
  group: str

  def __post_init__(self):
    if self.kind not in COST_KINDS:
      raise ValueError(f"CostTerm kind {self.kind!r} is not one of {', '.join(COST_KINDS)}")
