"""The planar World: rigid bodies on the floor plane in plain jax.numpy (the default backend).

Bodies, each with a pose (x, y, yaw) and 2-D collision geoms (`envs.world.Geom`), in classes
simulated alike: the robot (a `PlanarRobot`: its own dynamics and sensors, pose q, velocity
qd) and one class per physical group:
  'free': planar bodies of mass `Group.mass` and inertia `Group.inertia`, slowed by the floor
    as an implicit linear drag of time constant FLOOR_DRAG_TIME (v <- v / (1 + dt / tau));
  'fixed': immovable, where the layout puts them;
  'mocap': at `Group.path(anchor, t)` at the start of every substep; immovable by contacts,
    which see it at rest, as MuJoCo sees a mocap body (a gremlin shoves what it runs into by
    its penetration alone, and friction does not drag the robot along with it).
'site' groups are not simulated.

Collisions: the robot touches every free, fixed and mocap geom; free geoms touch other free
bodies' geoms and fixed and mocap geoms; fixed and mocap geoms touch nothing else. The pairs
come in static blocks, built once: one class's circles or boxes against another's (or its
own, distinct bodies, each pair once). A block is one broadcast call of a routine of
`envs.planar_geometry` over a [bodies_a, geoms_a, bodies_b, geoms_b] grid, or, when it pairs
more than DENSE_PAIRS bodies, over [CANDIDATES, geoms_a, 1, geoms_b]: the CANDIDATES deepest
(or least apart) body pairs, chosen by one depth-only pass over all of them at the start of
each env step (a broad phase of static size; bodies move at most a few cm per step, so a
contact is missed only while more than CANDIDATES pairs of one block touch at once, the
deepest first). The candidates' bodies are gathered onto the grid (CANDIDATES per side); no
op scatters: a body's share of a block is a sum over the other axes (and over its one-hot
candidate slots).

Contact response, each substep, after the robot's and the free bodies' unconstrained velocity
update (`envs.planar_robots`): a velocity-level impulse per overlapping pair, through the pair's
effective mass 1 / (J_a M_a^-1 J_a^T + J_b M_b^-1 J_b^T) (rotation included; fixed and mocap
bodies have M^-1 = 0), drives its velocities to where MuJoCo's soft constraint takes a lone
contact. MuJoCo's constrained acceleration along a constraint row is a1 = (1 - d) a0 + d a_ref,
with a0 the unconstrained acceleration, a_ref = -B v0 + K d depth the reference (v0: the
velocity at the substep's start; solref (CONTACT_TIME, 1): B = 2 / (d_max tc), K = 1 / (d_max
tc)^2) and d = d(depth) the impedance (solimp IMPEDANCE: d0 at first touch, rising to d_max at
IMPEDANCE_WIDTH of penetration). With v_pre = v0 + h a0 after the unconstrained update, the
targets are therefore v_n <- (1 - d) v_pre + d ((1 - h B) v0 + h K d depth) for the separating
velocity, so a robot held against an obstacle rests about 0.1 mm deep as in MuJoCo (a plain
velocity target (1 - h B) v_pre + h K depth, as before, sinks it about 1 mm and holds contacts
on longer). The sliding velocity's target is v_t <- (1 - d) (v_pre - v0): a stuck contact lets
(1 - d) of the substep's tangential acceleration through, as MuJoCo's soft friction does, and
removes earlier slip, as MuJoCo's default pyramidal cone does (its edges carry the normal's
position term; a lone-row soft friction, (1 - d) v_pre + d (1 - h B) v0, slides a Point off a
button that MuJoCo holds it against); the tangential impulse is clipped by Coulomb friction
FRICTION times the normal one. All pairs update from the same velocities (Jacobi) for ITERATIONS
passes, with accumulated, clamped impulses; each pair's update is divided by the number of
overlapping pairs on the busier of its two bodies (mass splitting, an under-relaxation), so
pairs sharing a body never overshoot: one pass is exact for a lone contact and leaves the rest
of a shared one to the next substeps (a second pass costs 40% more with 10 vases). A pair is an
active contact where depth > 0.

Timing (`envs.world`): the state keeps the bodies now and at the start of the last substep
(`last`); every accessor reads `last` (the sensors also the velocity reached since), and
contacts are those of the last substep's collision pass.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs import planar_geometry as geometry
from envs.groups import FLOOR_DRAG_TIME, Group
from envs.planar_robots import POINT, PlanarRobot
from envs.world import Layout

CONTACT_TIME = 0.02  # MuJoCo's default solref (0.02, 1)
IMPEDANCE = (0.9, 0.95)  # MuJoCo's default solimp (d0, d_max, width 0.001, midpoint 0.5, power 2)
IMPEDANCE_WIDTH = 0.001
FRICTION = 1.0
ITERATIONS = 1  # Jacobi passes per substep
# A block of more than DENSE_PAIRS body pairs (10 vases, 6 gremlins) simulates its CANDIDATES
# deepest in each env step: 2 rather than 4 ran PointGoal2 1.5-1.7x faster and gave the same
# cost and return to 4 digits over 256 episodes of the random and wandering policies on the
# four tasks it touches (docs/planar.md). Blocks of 3-4 pairs stay dense: culling
# PointButton1's to 2 was no faster.
DENSE_PAIRS = 4
CANDIDATES = 2
ROBOT_NAMES = ("Point", "Car")
ROBOT = "robot"  # the robot's class name in `group_contacts`


def planar_robots() -> dict[str, PlanarRobot]:
  """{name: PlanarRobot}: the Point, and the Car once `envs.planar_car` exists."""
  robots = {"Point": POINT}
  try:
    from envs.planar_car import CAR  # pylint: disable=import-outside-toplevel
  except ModuleNotFoundError as err:
    if err.name != "envs.planar_car":
      raise
  else:
    robots["Car"] = CAR
  return robots


def planar_robot(name: str) -> PlanarRobot:
  """The PlanarRobot named `name`; ValueError for an unknown or not yet available robot."""
  if name not in ROBOT_NAMES:
    raise ValueError(f"robot {name!r} is not one of {', '.join(ROBOT_NAMES)}")
  robots = planar_robots()
  if name not in robots:
    raise ValueError(f"the planar {name} is not available yet: envs/planar_car.py is missing")
  return robots[name]


@struct.dataclass
class PlanarBodies:
  """The movable bodies at one instant.

  q [3], qd [3]: robot pose (x, y, yaw) and world-frame velocity (vx, vy, yaw rate);
  extra: the robot's own state; xy {free group: [count, 2]}, yaw {: [count]},
  vel {: [count, 3]} (vx, vy, yaw rate); t []: sim time.
  """

  q: jax.Array
  qd: jax.Array
  extra: Any
  xy: dict[str, jax.Array]
  yaw: dict[str, jax.Array]
  vel: dict[str, jax.Array]
  t: jax.Array


@struct.dataclass
class PlanarState:
  """The planar World's state (`State.pipeline_state`).

  now: the bodies after the last substep (the next step starts here);
  last: the bodies at the start of the last substep (what the accessors report);
  placed_xy, placed_yaw {fixed or mocap group: [count, 2] / [count]}: positions of fixed
    groups, path anchors of mocap groups, and their (constant) headings;
  contacts: per pair block, 1.0 where a pair overlapped in the last substep's collision pass
    ([bodies_a, geoms_a, bodies_b, geoms_b], or [CANDIDATES, geoms_a, 1, geoms_b]);
  candidates: per pair block, the indices [CANDIDATES] of its body pairs simulated in the last
    step (empty where the block simulates all of them).
  """

  now: PlanarBodies
  last: PlanarBodies
  placed_xy: dict[str, jax.Array]
  placed_yaw: dict[str, jax.Array]
  contacts: tuple[jax.Array, ...]
  candidates: tuple[jax.Array, ...]


@dataclasses.dataclass(frozen=True)
class _Class:
  """Bodies simulated alike (the robot, or one physical group) and their geoms (body frame).

  circle_pos [gc, 2], circle_radius [gc]; box_pos [gb, 2], box_rot [gb, 2] (heading of the
  box's yaw), box_half [gb, 2]; inv_mass, inv_inertia of one 'free' body.
  """

  name: str
  kind: str  # 'robot', 'free', 'fixed' or 'mocap'
  count: int
  circle_pos: np.ndarray
  circle_radius: np.ndarray
  box_pos: np.ndarray
  box_rot: np.ndarray
  box_half: np.ndarray
  inv_mass: float = 0.0
  inv_inertia: float = 0.0

  @property
  def movable(self) -> bool:
    return self.kind in ("robot", "free")


@dataclasses.dataclass(frozen=True)
class _Block:
  """Pairs of class a's geoms with class b's: shapes 'cc' (circles, circles), 'cb' (a's
  circles, b's boxes) or 'bb'; geoms_a, geoms_b per body.

  Dense: every body pair, on a [count_a, geoms_a, count_b, geoms_b] grid; mask (same shape,
  None: all) keeps a self-block's distinct bodies. Culled: body pairs (pairs_a[i], pairs_b[i])
  [N], of which the CANDIDATES deepest are simulated, on a [CANDIDATES, geoms_a, 1, geoms_b]
  grid.
  """

  a: int
  b: int
  shapes: str
  geoms_a: int
  geoms_b: int
  mask: np.ndarray | None = None
  pairs_a: np.ndarray | None = None
  pairs_b: np.ndarray | None = None

  @property
  def culled(self) -> bool:
    return self.pairs_a is not None


def _make_class(name: str, kind: str, count: int, geoms, mass: float = 0.0,
                inertia: float = 0.0) -> _Class:
  circles = [g for g in geoms if g.kind == "circle"]
  boxes = [g for g in geoms if g.kind == "box"]
  f32 = lambda x, shape: np.array(x, np.float32).reshape(shape)
  return _Class(
      name=name, kind=kind, count=count,
      circle_pos=f32([g.pos for g in circles], (-1, 2)),
      circle_radius=f32([g.size[0] for g in circles], (-1,)),
      box_pos=f32([g.pos for g in boxes], (-1, 2)),
      box_rot=f32([(np.cos(g.yaw), np.sin(g.yaw)) for g in boxes], (-1, 2)),
      box_half=f32([g.size for g in boxes], (-1, 2)),
      inv_mass=1.0 / mass if mass else 0.0, inv_inertia=1.0 / inertia if inertia else 0.0)


def _make_blocks(classes: list[_Class]) -> list[_Block]:
  """The collision rules as pair blocks (see the module docstring)."""
  blocks = []
  for a, ca in enumerate(classes):
    for b in range(a, len(classes)):
      cb = classes[b]
      if a == b and ca.kind != "free" or not (ca.movable or cb.movable):
        continue
      nca, ncb = len(ca.circle_radius), len(cb.circle_radius)
      nba, nbb = len(ca.box_half), len(cb.box_half)
      candidates = [(a, b, "cc", nca, ncb), (a, b, "cb", nca, nbb), (a, b, "bb", nba, nbb)]
      if a != b:
        candidates.append((b, a, "cb", ncb, nba))
      for i, j, shapes, gi, gj in candidates:
        if not gi * gj:
          continue
        ci, cj = classes[i].count, classes[j].count
        oi, oj = np.meshgrid(np.arange(ci), np.arange(cj), indexing="ij")
        keep = np.ones_like(oi, bool)
        if a == b:  # distinct bodies, each unordered pair once where the shapes match
          keep = oi != oj if shapes == "cb" else oi < oj
        if not keep.any():
          continue
        if keep.sum() > DENSE_PAIRS:
          blocks.append(_Block(i, j, shapes, gi, gj, pairs_a=oi[keep].astype(np.int32),
                               pairs_b=oj[keep].astype(np.int32)))
        else:
          mask = None if keep.all() else np.broadcast_to(
              keep[:, None, :, None], (ci, gi, cj, gj))
          blocks.append(_Block(i, j, shapes, gi, gj, mask=mask))
  return blocks


class _Side:
  """One side (a or b) of a block in one env step: where its bodies and geoms sit in the
  block's 4-D pair grid, and how per-body values get there and back.

  Dense: the class's own bodies on axis 0 (a) or 2 (b). Culled: the candidates' bodies on
  axis 0, index [CANDIDATES] of the class's `count` bodies (None: a class of one body).

  Culled values go to the grid by a gather, x[index], and come back by a one-hot sum over the
  candidates: on PointGoal2 the gather ran the world step 1.19x faster than a one-hot sum
  there too, and a scatter-add back was 5% slower than the one-hot sum (docs/planar.md).
  """

  def __init__(self, side: str, culled: bool, index: jax.Array | None = None,
               count: int = 1):
    self.side, self.culled, self.index = side, culled, index
    # [CANDIDATES, count]: where `total` sums each candidate's share back to.
    self.sel = None if index is None else jax.nn.one_hot(index, count)

  def _take(self, x):  # [count, ...] -> [CANDIDATES, ...]
    if self.index is None:
      return jnp.broadcast_to(x, (CANDIDATES,) + x.shape[1:])
    return x[self.index]

  def body(self, x: jax.Array) -> jax.Array:
    """[count, ...] per body -> on the grid (4 axes, then x's trailing ones)."""
    if self.culled:
      return self._take(x)[:, None, None, None]
    return x[:, None, None, None] if self.side == "a" else x[None, None, :, None]

  def geom(self, x: jax.Array, per_body: bool = True) -> jax.Array:
    """[count, geoms, ...] per geom (per_body=False: [1, geoms, ...], the same for all
    bodies) -> on the grid."""
    if self.culled and per_body:
      x = self._take(x)
    if self.side == "a":
      return x[:, :, None, None]
    return x[:, None, None, :] if self.culled else x[None, None]

  def total(self, y: jax.Array) -> jax.Array:
    """[grid..., ...] per pair -> [count, ...] summed per body."""
    if not self.culled:
      return y.sum(axis=(1, 2, 3) if self.side == "a" else (0, 1, 3))
    y = y.sum(axis=(1, 2, 3))
    if self.index is None:
      return y.sum(axis=0, keepdims=True)
    # The fence keeps XLA from recomputing y for every term of the one-hot sum (5x the
    # whole step with 10 vases).
    sel = self.sel.reshape(self.sel.shape + (1,) * (y.ndim - 1))
    return (sel * geometry.fence(y)[:, None]).sum(axis=0)


def _inv3_sym(m: jax.Array) -> jax.Array:
  """[3, 3] inverse of a symmetric positive-definite m [3, 3] by its adjugate."""
  a, b, c = m[0, 0], m[0, 1], m[0, 2]
  d, e, f = m[1, 1], m[1, 2], m[2, 2]
  c00, c01, c02 = d * f - e * e, c * e - b * f, b * e - c * d
  c11, c12, c22 = a * f - c * c, b * c - a * e, a * d - b * b
  det = a * c00 + b * c01 + c * c02
  return jnp.array([[c00, c01, c02], [c01, c11, c12], [c02, c12, c22]]) / det


def _impedance(depth: jax.Array) -> jax.Array:
  """MuJoCo's constraint impedance d [...] at penetration depth [...] (solimp IMPEDANCE,
  IMPEDANCE_WIDTH, midpoint 0.5, power 2)."""
  d0, d_max = IMPEDANCE
  x = jnp.clip(depth / IMPEDANCE_WIDTH, 0.0, 1.0)
  y = jnp.where(x <= 0.5, 2.0 * x ** 2, 1.0 - 2.0 * (1.0 - x) ** 2)
  return d0 + y * (d_max - d0)


def _cross(r: jax.Array, u: jax.Array) -> jax.Array:
  """[...]: z of r x u for r, u [..., 2]."""
  return r[..., 0] * u[..., 1] - r[..., 1] * u[..., 0]


def _perp(r: jax.Array) -> jax.Array:
  """[..., 2]: z x r, the velocity of lever arm r at unit yaw rate."""
  return jnp.stack([-r[..., 1], r[..., 0]], axis=-1)


def _top(x: jax.Array, k: int) -> jax.Array:
  """[k] indices of the k largest of x [n], largest first (k argmaxes: XLA:CPU runs top_k as a
  sort per env)."""
  slots = jnp.arange(x.shape[0])
  out = []
  for _ in range(k):
    i = jnp.argmax(x)
    out.append(i)
    x = jnp.where(slots == i, -jnp.inf, x)
  return jnp.stack(out).astype(jnp.int32)


def _turn(rot: jax.Array, angle: jax.Array) -> jax.Array:
  """[..., 2]: headings rot [..., 2] turned by small angles [...] (one substep's worth: the
  Taylor series to 5th order, exact to 1e-9 below 0.1 rad)."""
  a2 = angle * angle
  cos = 1.0 - a2 / 2 * (1.0 - a2 / 12)
  sin = angle * (1.0 - a2 / 6 * (1.0 - a2 / 20))
  return geometry.rotate(jnp.stack([cos, sin], axis=-1), rot)


def _path_state(group: Group, anchor: jax.Array, t: jax.Array):
  """(xy [count, 2], velocity [count, 2]) of a mocap group at sim time t []."""
  return jax.jvp(lambda s: group.path(anchor, s), (t,), (jnp.ones_like(t),))


class PlanarWorld:
  """The planar World (see the module docstring and `envs.world` for the methods' shapes).

  Attributes beyond the World protocol: robot (the `PlanarRobot`), robot_geoms, sensor_size,
  num_pairs (geom pairs simulated per substep).
  """

  backend = "planar"

  def __init__(self, robot: str, groups: tuple[Group, ...]):
    self.robot = planar_robot(robot)
    self.groups = tuple(g for g in groups if g.physical)
    self.free = tuple(g for g in self.groups if g.kind == "free")
    self.placed = tuple(g for g in self.groups if g.kind != "free")
    self.dt = self.robot.timestep * self.robot.n_frames
    self.robot_geoms = self.robot.geoms
    self.sensor_size = self.robot.sensor_size
    self._classes = [_make_class(ROBOT, "robot", 1, self.robot.geoms)] + [
        _make_class(g.name, g.kind, g.count, g.footprint, g.mass, g.inertia)
        for g in self.groups]
    self._index = {c.name: i for i, c in enumerate(self._classes)}
    self._blocks = _make_blocks(self._classes)
    self.num_pairs = sum(
        CANDIDATES * blk.geoms_a * blk.geoms_b if blk.culled
        else int(np.prod(self._grid(blk))) if blk.mask is None else int(blk.mask.sum())
        for blk in self._blocks)

  # --- World API ----------------------------------------------------------------------------
  def init(self, layout: Layout) -> PlanarState:
    """The state at rest in `layout` at sim time 0, with its contacts."""
    q = jnp.stack([layout.robot_xy[0], layout.robot_xy[1], layout.robot_yaw]).astype(float)
    bodies = PlanarBodies(
        q=q, qd=jnp.zeros(3), extra=self.robot.init_extra(),
        xy={g.name: jnp.asarray(layout.xy[g.name], float) for g in self.free},
        yaw={g.name: jnp.asarray(layout.yaw[g.name], float) for g in self.free},
        vel={g.name: jnp.zeros((g.count, 3)) for g in self.free},
        t=jnp.zeros(()))
    ws = PlanarState(
        now=bodies, last=bodies,
        placed_xy={g.name: jnp.asarray(layout.xy[g.name], float) for g in self.placed},
        placed_yaw={g.name: jnp.asarray(layout.yaw[g.name], float) for g in self.placed},
        contacts=(), candidates=())
    placed_rot = self._placed_rot(ws)
    xy, rot = self._poses(ws, bodies, placed_rot)
    candidates = self._choose(xy, rot)
    pairs = self._collide(self._sides(candidates), xy, rot)
    return ws.replace(contacts=tuple(p[3] for p in pairs), candidates=candidates)

  def step(self, ws: PlanarState, action: jax.Array) -> PlanarState:
    """One env step: `n_frames` substeps under `action` [2]."""
    placed_rot = self._placed_rot(ws)
    # Free bodies' headings: from their yaws once per step, then turned with them each
    # substep (sin and cos of every body at every substep cost a tenth of PointGoal2's step).
    free_rot = {g.name: geometry.heading(ws.now.yaw[g.name]) for g in self.free}
    candidates = self._choose(*self._poses(ws, ws.now, placed_rot, free_rot))
    sides = self._sides(candidates)

    def substep(carry, _):
      now, _, _, rot = carry
      nxt, contacts, rot = self._substep(ws, placed_rot, sides, now, rot, action)
      return (nxt, now, contacts, rot), None

    (now, last, contacts, _), _ = jax.lax.scan(
        substep, (ws.now, ws.now, ws.contacts, free_rot), None, length=self.robot.n_frames)
    return ws.replace(now=now, last=last, contacts=contacts, candidates=candidates)

  def robot_pose(self, ws: PlanarState) -> tuple[jax.Array, jax.Array]:
    q = ws.last.q
    c, s = jnp.cos(q[2]), jnp.sin(q[2])
    rot = jnp.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return jnp.array([q[0], q[1], self.robot.z]), rot

  def robot_velocity(self, ws: PlanarState) -> jax.Array:
    return ws.last.qd[:2]

  def sensors(self, ws: PlanarState) -> jax.Array:
    last = ws.last
    return self.robot.sensors(last.q, last.qd, ws.now.qd, last.extra, self.robot.timestep)

  def object_xy(self, ws: PlanarState, name: str) -> jax.Array:
    group = self._group(name)
    if group.kind == "free":
      return ws.last.xy[name]
    if group.kind == "mocap":
      return group.path(ws.placed_xy[name], ws.last.t)
    return ws.placed_xy[name]

  def object_yaw(self, ws: PlanarState, name: str) -> jax.Array:
    group = self._group(name)
    return ws.last.yaw[name] if group.kind == "free" else ws.placed_yaw[name]

  def object_velocity(self, ws: PlanarState, name: str) -> jax.Array:
    group = self._group(name)
    if group.kind == "free":
      return ws.last.vel[name][:, :2]
    if group.kind == "mocap":
      return _path_state(group, ws.placed_xy[name], ws.last.t)[1]
    return jnp.zeros((group.count, 2))

  def robot_contacts(self, ws: PlanarState, name: str) -> jax.Array:
    k = self._index[self._group(name).name]
    count = self._classes[k].count
    total = jnp.zeros(count)
    for blk, active, chosen in zip(self._blocks, ws.contacts, ws.candidates):
      if {blk.a, blk.b} != {0, k}:
        continue
      if not blk.culled:
        total = total + active.sum(axis=(0, 1, 3) if blk.b == k else (1, 2, 3))
      else:
        objects = jnp.asarray(blk.pairs_b if blk.b == k else blk.pairs_a)[chosen]
        per_pair = active.sum(axis=(1, 2, 3))
        total = total + (jax.nn.one_hot(objects, count) * per_pair[:, None]).sum(axis=0)
    return total

  def group_contacts(self, ws: PlanarState, a: str, b: str) -> jax.Array:
    """Overlapping pairs between groups a and b (a == b: within the group; `ROBOT` = 'robot'
    names the robot)."""
    ends = {self._index[n if n == ROBOT else self._group(n).name] for n in (a, b)}
    return sum((active.sum() for blk, active in zip(self._blocks, ws.contacts)
                if {blk.a, blk.b} == ends), jnp.zeros(()))

  def place_robot(self, ws: PlanarState, xy: jax.Array, yaw: jax.Array,
                  vel: jax.Array | None = None) -> PlanarState:
    """The robot at `xy` [2], heading `yaw` [], planar velocity `vel` [2] (else at rest), now and
    at the accessors' instant; contacts are those of the next step."""
    q = jnp.stack([xy[0], xy[1], yaw]).astype(float)
    vel = jnp.zeros(2) if vel is None else vel
    qd = jnp.stack([vel[0], vel[1], jnp.zeros_like(vel[0])]).astype(float)
    return ws.replace(now=ws.now.replace(q=q, qd=qd), last=ws.last.replace(q=q, qd=qd))

  def place_objects(self, ws: PlanarState, name: str, xy: jax.Array) -> PlanarState:
    """Group `name` at `xy` [count, 2] (free bodies at rest; mocap: its path anchors)."""
    group = self._group(name)
    xy = jnp.asarray(xy, float)
    if group.kind != "free":
      return ws.replace(placed_xy={**ws.placed_xy, name: xy})

    def move(bodies):
      return bodies.replace(xy={**bodies.xy, name: xy},
                            vel={**bodies.vel, name: jnp.zeros((group.count, 3))})

    return ws.replace(now=move(ws.now), last=move(ws.last))

  def time(self, ws: PlanarState) -> jax.Array:
    return ws.last.t

  # --- one substep ----------------------------------------------------------------------------
  def _substep(self, ws: PlanarState, placed_rot: dict, sides: list, now: PlanarBodies,
               free_rot: dict, action: jax.Array):
    """(the bodies after one substep from `now`, the contacts of its collision pass, the free
    bodies' headings [count, 2] after it); free_rot: their headings at `now`."""
    robot, h = self.robot, self.robot.timestep
    qd = robot.velocity_step(now.q, now.qd, now.extra, action, h)
    drag = 1.0 / (1.0 + h / FLOOR_DRAG_TIME)
    free_vel = {g.name: now.vel[g.name] * drag for g in self.free}
    contacts = ()
    if self._blocks:
      xy, rot = self._poses(ws, now, placed_rot, free_rot)
      pairs = self._collide(sides, xy, rot)
      minv = _inv3_sym(robot.mass_matrix(now.q))
      vel = self._respond(sides, pairs, xy, self._velocities(now.qd, now.vel),
                          self._velocities(qd, free_vel), minv)
      qd = vel[0][0]
      free_vel = {g.name: vel[self._index[g.name]] for g in self.free}
      contacts = tuple(p[3] for p in pairs)
    nxt = PlanarBodies(
        q=now.q + h * qd, qd=qd, extra=robot.extra_step(now.q, qd, now.extra, h),
        xy={n: now.xy[n] + h * v[:, :2] for n, v in free_vel.items()},
        yaw={n: now.yaw[n] + h * v[:, 2] for n, v in free_vel.items()},
        vel=free_vel, t=now.t + h)
    free_rot = {n: _turn(free_rot[n], h * v[:, 2]) for n, v in free_vel.items()}
    return nxt, contacts, free_rot

  def _poses(self, ws: PlanarState, bodies: PlanarBodies, placed_rot: dict,
             free_rot: dict | None = None):
    """Per class: origins xy [count, 2] and headings rot [count, 2] at time bodies.t (free
    bodies with headings free_rot, else those of their yaws)."""
    q = bodies.q
    xy, rot = [q[None, :2]], [geometry.heading(q[2])[None]]
    for c in self._classes[1:]:
      if c.kind == "free":
        xy.append(bodies.xy[c.name])
        rot.append(geometry.heading(bodies.yaw[c.name]) if free_rot is None
                   else free_rot[c.name])
        continue
      pos = ws.placed_xy[c.name]
      if c.kind == "mocap":
        pos = self._group(c.name).path(pos, bodies.t)
      xy.append(pos)
      rot.append(placed_rot[c.name])
    return xy, rot

  def _velocities(self, robot_qd: jax.Array, free_vel: dict) -> list[jax.Array]:
    """Per class velocities [count, 3]: the robot's robot_qd, free bodies' free_vel; fixed and
    mocap bodies at rest (contacts see a mocap body at rest, as MuJoCo's do)."""
    return [robot_qd[None]] + [free_vel[c.name] if c.kind == "free" else jnp.zeros((c.count, 3))
                               for c in self._classes[1:]]

  def _choose(self, xy: list, rot: list) -> tuple[jax.Array, ...]:
    """Per block: the indices [CANDIDATES] of its deepest body pairs (culled blocks; else
    empty) at poses xy, rot: one collision pass over all of the block's pairs, depth only."""
    dense = [(_Side("a", False), _Side("b", False))] * len(self._blocks)
    culled = [blk if blk.culled else None for blk in self._blocks]
    chosen = []
    for blk, depth in zip(self._blocks, self._geometry(dense, xy, rot, culled, depth_only=True)):
      if not blk.culled:
        chosen.append(jnp.zeros((0,), jnp.int32))
        continue
      deepest = depth.max(axis=(1, 3))[blk.pairs_a, blk.pairs_b]  # per body pair
      chosen.append(_top(deepest, CANDIDATES))
    return tuple(chosen)

  def _sides(self, candidates: tuple[jax.Array, ...]) -> list[tuple[_Side, _Side]]:
    """Per block: its (a, b) `_Side`s in a step that simulates `candidates`."""
    sides = []
    for blk, chosen in zip(self._blocks, candidates):
      if not blk.culled:
        sides.append((_Side("a", False), _Side("b", False)))
        continue
      sides.append(tuple(
          _Side(name, True, None if count == 1 else jnp.asarray(pairs)[chosen], count)
          for name, count, pairs in (("a", self._classes[blk.a].count, blk.pairs_a),
                                     ("b", self._classes[blk.b].count, blk.pairs_b))))
    return sides

  def _collide(self, sides: list, xy: list, rot: list) -> list:
    """Per block: (depth, normal [..., 2], contact point [..., 2], active) on its pair grid;
    active is 1.0 where depth > 0 (for pairs of distinct bodies)."""
    out = []
    for blk, (depth, normal, point) in zip(self._blocks, self._geometry(sides, xy, rot)):
      depth = jnp.broadcast_to(depth, self._grid(blk))
      touching = depth > 0
      if blk.mask is not None:
        touching = touching & blk.mask
      out.append((depth, normal, point, touching.astype(depth.dtype)))
    return out

  def _geometry(self, sides: list, xy: list, rot: list, only: list | None = None,
                depth_only: bool = False) -> list:
    """Per block (those not None in `only`): the routine's (depth, normal, point) on the pair
    grid of `sides`, or its depth alone."""
    circles, boxes = {}, {}

    def geoms(k):  # per class: circles (centres, radii), boxes (centres, headings, halves)
      if k not in circles:
        c = self._classes[k]

        def at(local):  # [count, geoms, 2] centres of the geoms at body-frame `local`
          if not local.any():
            return jnp.broadcast_to(xy[k][:, None], (c.count, len(local), 2))
          return xy[k][:, None] + geometry.rotate(rot[k][:, None], local[None])

        box_rot = jnp.broadcast_to(rot[k][:, None], (c.count, len(c.box_rot), 2))
        if (c.box_rot != (1.0, 0.0)).any():
          box_rot = geometry.rotate(box_rot, c.box_rot[None])
        circles[k] = (at(c.circle_pos), c.circle_radius[None])
        boxes[k] = (at(c.box_pos), box_rot, c.box_half[None])
      return circles[k], boxes[k]

    out = []
    for i, (blk, (sa, sb)) in enumerate(zip(self._blocks, sides)):
      if only is not None and only[i] is None:
        out.append(None)
        continue
      (ca, ra), (ba, ua, ha) = geoms(blk.a)
      (cb, rb), (bb, ub, hb) = geoms(blk.b)
      if blk.shapes == "cc":
        result = geometry.circle_circle(
            sa.geom(ca), sa.geom(ra, False), sb.geom(cb), sb.geom(rb, False))
      elif blk.shapes == "cb":
        result = geometry.circle_box(
            sa.geom(ca), sa.geom(ra, False), sb.geom(bb), sb.geom(ub), sb.geom(hb, False))
      else:
        result = geometry.box_box(
            sa.geom(ba), sa.geom(ua), sa.geom(ha, False),
            sb.geom(bb), sb.geom(ub), sb.geom(hb, False))
      out.append(result[0] if depth_only else result)
    return out

  def _respond(self, sides: list, pairs: list, xy: list, vel0: list, vel: list,
               robot_minv: jax.Array) -> list:
    """Per class velocities [count, 3] after the contact impulses (module docstring).

    pairs: `_collide`'s; xy: per class origins; vel0, vel: per class velocities at the
    substep's start and after its unconstrained update; robot_minv: [3, 3] the robot's
    inverse mass matrix.
    """
    h = self.robot.timestep
    classes = self._classes
    busy = [jnp.zeros(c.count) for c in classes]
    for blk, (sa, sb), (_, _, _, active) in zip(self._blocks, sides, pairs):
      for k, side in ((blk.a, sa), (blk.b, sb)):
        if classes[k].movable:
          busy[k] = busy[k] + side.total(active)
    busy = [jnp.maximum(b, 1.0) for b in busy]  # immovable bodies count 1

    def inv_mass(k, r, u):  # J M^-1 J^T for the row J = (u_x, u_y, r x u) of class k
      c = classes[k]
      if c.kind == "robot":
        m = robot_minv
        j0, j1, j2 = u[..., 0], u[..., 1], _cross(r, u)
        return (m[0, 0] * j0 * j0 + m[1, 1] * j1 * j1 + m[2, 2] * j2 * j2
                + 2 * (m[0, 1] * j0 * j1 + m[0, 2] * j0 * j2 + m[1, 2] * j1 * j2))
      if c.kind == "free":
        return c.inv_mass + c.inv_inertia * _cross(r, u) ** 2
      return 0.0

    def relative(vel, blk, sa, sb, ra, rb, n, t):  # (v_n, v_t) of b's contact point vs a's
      rel = 0.0
      for k, side, r, sign in ((blk.b, sb, rb, 1.0), (blk.a, sa, ra, -1.0)):
        if classes[k].kind != "fixed":
          v = side.body(vel[k])
          rel = rel + sign * (v[..., :2] + v[..., 2:] * _perp(r))
      return jnp.sum(rel * n, -1), jnp.sum(rel * t, -1)

    d_max = IMPEDANCE[1]
    b_ref, k_ref = 2.0 / (d_max * CONTACT_TIME), 1.0 / (d_max * CONTACT_TIME) ** 2
    solve = []  # per block: (lever arms a, b, normal, tangent, effective masses, targets)
    for blk, (sa, sb), (depth, n, point, active) in zip(self._blocks, sides, pairs):
      ra, rb = point - sa.body(xy[blk.a]), point - sb.body(xy[blk.b])
      t = _perp(n)
      relax = active / jnp.maximum(sa.body(busy[blk.a]), sb.body(busy[blk.b]))
      v_n, v_t = relative(vel, blk, sa, sb, ra, rb, n, t)
      v0_n, v0_t = relative(vel0, blk, sa, sb, ra, rb, n, t)
      d = _impedance(depth)
      target_n = (1.0 - d) * v_n + d * ((1.0 - h * b_ref) * v0_n + h * k_ref * d * depth)
      target_t = (1.0 - d) * (v_t - v0_t)
      solve.append((ra, rb, n, t,
                    relax / (inv_mass(blk.a, ra, n) + inv_mass(blk.b, rb, n)),
                    relax / (inv_mass(blk.a, ra, t) + inv_mass(blk.b, rb, t)),
                    *geometry.fence(target_n, target_t)))

    def iteration(_, carry):
      vel, lam = carry
      impulse = [jnp.zeros((c.count, 3)) for c in classes]
      new_lam = []
      for blk, (sa, sb), (ra, rb, n, t, mass_n, mass_t, target_n, target_t), (lam_n, lam_t) in (
          zip(self._blocks, sides, solve, lam)):
        v_n, v_t = relative(vel, blk, sa, sb, ra, rb, n, t)
        new_n = jnp.maximum(lam_n + mass_n * (target_n - v_n), 0.0)
        new_t = jnp.clip(lam_t + mass_t * (target_t - v_t), -FRICTION * new_n, FRICTION * new_n)
        new_n, new_t = geometry.fence(new_n, new_t)
        force = (new_n - lam_n)[..., None] * n + (new_t - lam_t)[..., None] * t
        new_lam.append((new_n, new_t))
        for k, side, r, sign in ((blk.b, sb, rb, 1.0), (blk.a, sa, ra, -1.0)):
          if classes[k].movable:
            gen = jnp.concatenate([force, _cross(r, force)[..., None]], axis=-1)
            impulse[k] = impulse[k] + sign * side.total(gen)
      vel = list(vel)
      for k, c in enumerate(classes):
        if c.kind == "robot":
          # Elementwise: XLA:CPU runs a vmapped 3x3 matmul as thousands of tiny ones.
          vel[k] = vel[k] + jnp.sum(robot_minv * impulse[k], axis=-1)[None]
        elif c.kind == "free":
          scale = np.array([c.inv_mass, c.inv_mass, c.inv_inertia], np.float32)
          vel[k] = vel[k] + impulse[k] * scale
      return vel, new_lam

    lam = [(jnp.zeros_like(s[-1]), jnp.zeros_like(s[-1])) for s in solve]
    vel, _ = jax.lax.fori_loop(0, ITERATIONS, iteration, (list(vel), lam))
    return vel

  # --- helpers --------------------------------------------------------------------------------
  def _group(self, name: str) -> Group:
    for group in self.groups:
      if group.name == name:
        return group
    raise ValueError(f"{name!r} is not a physical group of this World: "
                     f"{', '.join(g.name for g in self.groups)}")

  def _grid(self, blk: _Block) -> tuple[int, int, int, int]:
    """The block's pair grid shape."""
    if blk.culled:
      return CANDIDATES, blk.geoms_a, 1, blk.geoms_b
    return self._classes[blk.a].count, blk.geoms_a, self._classes[blk.b].count, blk.geoms_b

  def _placed_rot(self, ws: PlanarState) -> dict[str, jax.Array]:
    """{fixed or mocap group: headings [count, 2]} (constant over a step)."""
    return {g.name: geometry.heading(ws.placed_yaw[g.name]) for g in self.placed}
