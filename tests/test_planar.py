"""The planar World (envs.planar): the Point against MuJoCo, 2-D contact geometry, contacts.

Each world's step is jitted once per module (`functools.cache`), traced once
(`chex.assert_max_traces`), and driven by `lax.scan`, so each test compiles in seconds.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

import envs
from envs import obstacles, planar_geometry as geometry, robots
from envs.groups import Group
from envs.mjx_world import build_xml
from envs.planar import PlanarWorld, planar_robot
from envs.planar_robots import POINT, POINT_COM, POINT_INERTIA, POINT_MASS
from envs.world import Layout
from experiments.bench_contacts import mujoco_probe, world_probe

DT = 0.002  # the Point's substep
VASES = Group("vases", 1, keepout=0.15, kind="free", size=0.1)


@functools.cache
def _world(groups: tuple[Group, ...] = ()):
  """(world, jitted init, jitted rollout); rollout(ws, actions [T, 2]) -> (ws, per-step
  readings), each reading stacked over T."""
  world = PlanarWorld("Point", groups)
  names = [g.name for g in world.groups]
  step = chex.assert_max_traces(world.step, n=1)

  def read(ws):
    pos, _ = world.robot_pose(ws)
    q = jnp.array([pos[0], pos[1], ws.last.q[2]])
    return dict(
        q=q, vel=world.robot_velocity(ws), sensors=world.sensors(ws), t=world.time(ws),
        xy={n: world.object_xy(ws, n) for n in names},
        yaw={n: world.object_yaw(ws, n) for n in names},
        obj_vel={n: world.object_velocity(ws, n) for n in names},
        contacts={n: world.robot_contacts(ws, n) for n in names},
        pairs={n: world.group_contacts(ws, n, n) for n in names})

  def rollout(ws, actions):
    def body(ws, action):
      ws = step(ws, action)
      return ws, read(ws)
    return jax.lax.scan(body, ws, actions)

  return world, jax.jit(chex.assert_max_traces(world.init, n=1)), jax.jit(rollout)


def _layout(robot_xy, robot_yaw, **groups):
  """A Layout; groups: name=(xy [count, 2], yaw [count])."""
  return Layout(jnp.array(robot_xy, jnp.float32), jnp.array(robot_yaw, jnp.float32),
                {k: jnp.array(v[0], jnp.float32) for k, v in groups.items()},
                {k: jnp.array(v[1], jnp.float32) for k, v in groups.items()})


# --- the Point without contacts: MuJoCo, exactly ------------------------------------------------
_POINT_MODEL = mujoco.MjModel.from_xml_string(build_xml(robots.POINT, ()))


def test_point_mass_matrix_com_and_bias_match_mujoco():
  m, d = _POINT_MODEL, mujoco.MjData(_POINT_MODEL)
  np.testing.assert_allclose(POINT_MASS, m.body_mass[1], rtol=1e-6)
  np.testing.assert_allclose(POINT_COM, m.body_ipos[1, 0], rtol=1e-6)
  rng = np.random.default_rng(0)
  step = jax.jit(POINT.velocity_step, static_argnums=4)
  for _ in range(5):
    d.qpos[:] = rng.uniform(-3, 3, 3)
    d.qvel[:] = [*rng.uniform(-2, 2, 2), rng.choice([-1, 1]) * rng.uniform(1, 3)]
    mujoco.mj_forward(m, d)
    full = np.zeros((3, 3))
    mujoco.mj_fullM(m, d, full)
    np.testing.assert_allclose(POINT.mass_matrix(jnp.asarray(d.qpos)), full, rtol=1e-5,
                               atol=1e-9)
    np.testing.assert_allclose(full[2, 2], POINT_INERTIA, rtol=1e-6)
    # One whole substep: actuators, damping and the centripetal bias through (M + dt D)^-1.
    action = rng.uniform(-1, 1, 2)
    d.ctrl[:] = robots._point_ctrl(jnp.asarray(action), jnp.asarray(d.qpos), d.qvel)
    qd_next = step(jnp.asarray(d.qpos, jnp.float32), jnp.asarray(d.qvel, jnp.float32), None,
                   jnp.asarray(action, jnp.float32), DT)
    assert np.abs(d.qfrc_bias[:2]).max() > 1e-5  # a real centripetal term is in play
    mujoco.mj_step(m, d)
    np.testing.assert_allclose(qd_next, d.qvel, rtol=1e-5, atol=1e-6)


# Thrust of both signs and partial; turns of |a1| <= 0.09 (the servo's +-0.476 rad/s two-cycle)
# and |a1| = 1 (saturated). Between, 0.1 < |a1| < 1, the servo is chaotic under Euler: in
# MuJoCo itself a 1e-9 rad/s nudge grows to 1e-3 rad of yaw within a second, so float32 cannot
# follow float64 there and no trajectory test can.
_SEGMENTS = [(1.0, 0.05), (-0.7, -1.0), (0.03, 0.0), (-1.0, 1.0), (0.5, -0.08),
             (0.0, 0.02), (1.0, -1.0), (-0.02, 0.09), (0.8, 0.0), (0.04, -0.06)]
_ACTIONS = np.repeat(np.array(_SEGMENTS, np.float32), 25, axis=0)  # 250 env steps


@functools.cache
def _mujoco_rollout():
  """MuJoCo C on the mjx Point's MJCF: per env step, (qpos, qvel) at the start of its last
  substep and qvel after it."""
  m, d = _POINT_MODEL, mujoco.MjData(_POINT_MODEL)
  d.qpos[:] = [0.3, -0.2, 0.7]
  start, start_vel, end_vel = [], [], []
  for action in _ACTIONS:
    for _ in range(robots.POINT.n_frames):
      q0, qd0 = d.qpos.copy(), d.qvel.copy()
      d.ctrl[:] = robots._point_ctrl(jnp.asarray(action), jnp.asarray(d.qpos), d.qvel)
      mujoco.mj_step(m, d)
    start.append(q0)
    start_vel.append(qd0)
    end_vel.append(d.qvel.copy())
  return np.array(start), np.array(start_vel), np.array(end_vel)


@functools.cache
def _planar_rollout():
  world, init, rollout = _world()
  _, out = rollout(init(_layout([0.3, -0.2], 0.7)), jnp.asarray(_ACTIONS))
  return jax.device_get(out)


def test_point_matches_mujoco_without_contacts():
  q_mj, qd_mj, qd_next_mj = _mujoco_rollout()
  out = _planar_rollout()
  # float32 against float64 over 2500 substeps: measured 8e-7 m and 1e-6 rad (exact to 1e-15
  # with jax_enable_x64); the bounds leave room for other CPUs' rounding only.
  assert np.abs(out["q"][:, :2] - q_mj[:, :2]).max() < 1e-3
  assert np.abs(out["q"][:, 2] - q_mj[:, 2]).max() < 1e-2
  assert np.abs(q_mj[-1, :2] - q_mj[0, :2]).max() > 0.5  # it went somewhere
  np.testing.assert_allclose(out["vel"], qd_mj[:, :2], atol=1e-4)
  np.testing.assert_allclose(out["t"], (np.arange(250) * 10 + 9) * DT, atol=1e-4)
  # Sensors at the same instant, from MuJoCo's states through the mjx Point's sensor function:
  # velocimeter, gyro, magnetometer to 1e-4 (measured 6e-7); the accelerometer is a velocity
  # difference over one substep (x 500), so 1e-3 m/s^2 (measured 4e-5).
  ref = jax.vmap(robots._point_sensors, in_axes=(0, 0, 0, None))(
      jnp.asarray(q_mj, jnp.float32), jnp.asarray(qd_mj, jnp.float32),
      jnp.asarray(qd_next_mj, jnp.float32), DT)
  np.testing.assert_allclose(out["sensors"][:, 3:], ref[:, 3:], atol=1e-4)
  np.testing.assert_allclose(out["sensors"][:, :3], ref[:, :3], atol=1e-3)


def test_yaw_servo_two_cycle():
  # Substep by substep: with |a1| small the servo torque saturates at +-0.015 N m both ways,
  # so the yaw rate flips sign every substep and settles at +-0.476 rad/s (FACTS 1).
  step = jax.jit(POINT.velocity_step, static_argnums=4)
  q, qd, rates = jnp.zeros(3), jnp.zeros(3), []
  for _ in range(40):
    qd = step(q, qd, None, jnp.array([0.0, 0.05]), DT)
    q = q + DT * qd
    rates.append(float(qd[2]))
  rates = np.array(rates[20:])
  np.testing.assert_allclose(np.abs(rates), 0.476, atol=2e-3)
  assert np.all(rates[1:] * rates[:-1] < 0)
  # The world's gyro (one reading per env step of 10 substeps, so always the same phase)
  # reads about |0.476| wherever the run holds |a1| < 0.1, after 5 steps of settling (measured
  # 0.464 to 0.494: thrust couples into yaw through the COM offset).
  gyro = _planar_rollout()["sensors"][:, 8]
  small = np.abs(_ACTIONS[:, 1]) < 0.1
  settled = small & np.concatenate([[False] * 5, small[:-5]])
  np.testing.assert_allclose(np.abs(gyro[settled]), 0.476, atol=0.03)


# --- geometry -----------------------------------------------------------------------------------
def _f(*x):
  return jnp.array(x, jnp.float32)


def _check(result, depth, normal, point):
  np.testing.assert_allclose(result[0], depth, atol=1e-6)
  np.testing.assert_allclose(result[1], normal, atol=1e-6)
  np.testing.assert_allclose(result[2], point, atol=1e-6)


def test_circle_circle():
  # Centres 0.15 apart, radii 0.1: depth 0.2 - 0.15 = 0.05 along +x; point at 0.1 - 0.05/2.
  _check(geometry.circle_circle(_f(0, 0), 0.1, _f(0.15, 0), 0.1), 0.05, (1, 0), (0.075, 0))
  # Apart: a negative depth (the gap).
  assert geometry.circle_circle(_f(0, 0), 0.1, _f(0, 0.3), 0.1)[0] == pytest.approx(-0.1)


def test_circle_box_face_corner_inside_and_rotated():
  h0 = geometry.heading(jnp.float32(0.0))
  # Face: circle r 0.1 at (0.25, 0.02), box half (0.2, 0.1) at 0: nearest box point (0.2,
  # 0.02), 0.05 away, so depth 0.1 - 0.05 = 0.05; the normal points from the circle to the
  # box (-x); the point is midway between (0.2, 0.02) and the circle's deepest (0.15, 0.02).
  _check(geometry.circle_box(_f(0.25, 0.02), 0.1, _f(0, 0), h0, _f(0.2, 0.1)),
         0.05, (-1, 0), (0.175, 0.02))
  # Corner: circle r 0.12 at (0.16, 0.18), box half 0.1: corner (0.1, 0.1) at (0.06, 0.08),
  # 0.1 away: depth 0.02, normal -(0.6, 0.8); deepest circle point (0.16, 0.18) - 0.12 (0.6,
  # 0.8) = (0.088, 0.084); midway to the corner: (0.094, 0.092).
  _check(geometry.circle_box(_f(0.16, 0.18), 0.12, _f(0, 0), h0, _f(0.1, 0.1)),
         0.02, (-0.6, -0.8), (0.094, 0.092))
  # Centre inside: circle r 0.05 at (0.15, 0) in box half (0.2, 0.1): nearest face x = 0.2,
  # 0.05 away, so depth 0.05 + 0.05 = 0.1; point midway between (0.2, 0) and (0.1, 0).
  _check(geometry.circle_box(_f(0.15, 0), 0.05, _f(0, 0), h0, _f(0.2, 0.1)),
         0.1, (-1, 0), (0.15, 0))
  # The face case with everything turned by 90 degrees about the origin.
  turn = lambda x, y: (-y, x)
  _check(geometry.circle_box(_f(*turn(0.25, 0.02)), 0.1, _f(0, 0),
                             geometry.heading(jnp.float32(np.pi / 2)), _f(0.2, 0.1)),
         0.05, turn(-1, 0), turn(0.175, 0.02))


def test_box_box_rotated_and_face_on():
  h0 = geometry.heading(jnp.float32(0.0))
  h45 = geometry.heading(jnp.float32(np.pi / 4))
  # Box 2 (half 0.1, turned 45 deg) at (0.23, 0) points a corner at box 1 (half 0.1 at 0):
  # the corner is at x = 0.23 - 0.1 sqrt(2) = 0.088579, 0.011421 behind box 1's face x = 0.1.
  # Separating axes: x: 0.1 + 0.1 sqrt(2) - 0.23 = 0.011421 (the least); y: 0.241421; box 2's
  # axes: 0.1 + 0.1 sqrt(2) - 0.23 / sqrt(2) = 0.078787. The point: the corner moved half
  # the depth back, (0.094289, 0).
  _check(geometry.box_box(_f(0, 0), h0, _f(0.1, 0.1), _f(0.23, 0), h45, _f(0.1, 0.1)),
         0.011421, (1, 0), (0.094289, 0))
  # Swapped, the normal turns round (it points from the first box to the second).
  _check(geometry.box_box(_f(0.23, 0), h45, _f(0.1, 0.1), _f(0, 0), h0, _f(0.1, 0.1)),
         0.011421, (-1, 0), (0.094289, 0))
  # Face on face: box 2 at (0.19, 0.05): x overlap 0.2 - 0.19 = 0.01; the faces share y in
  # [-0.05, 0.1], so the point is the middle of that, 0.005 inside box 1's face: (0.095, 0.025).
  _check(geometry.box_box(_f(0, 0), h0, _f(0.1, 0.1), _f(0.19, 0.05), h0, _f(0.1, 0.1)),
         0.01, (1, 0), (0.095, 0.025))
  # Apart along y by 0.05: depth -0.05.
  assert geometry.box_box(_f(0, 0), h0, _f(0.1, 0.1), _f(0, 0.25), h0, _f(0.1, 0.1))[0] == (
      pytest.approx(-0.05))


def test_geometry_broadcasts_over_pair_grids():
  # 3 circles against 4 boxes in one call: [3, 1] x [1, 4] -> [3, 4], each entry as alone.
  key_c, key_b, key_y = jax.random.split(jax.random.key(0), 3)
  c = jax.random.uniform(key_c, (3, 1, 2), minval=-0.3, maxval=0.3)
  b = jax.random.uniform(key_b, (1, 4, 2), minval=-0.3, maxval=0.3)
  rot = geometry.heading(jax.random.uniform(key_y, (1, 4), maxval=6.3))
  half = jnp.array([0.2, 0.1])
  grid = geometry.circle_box(c, 0.1, b, rot, half)
  chex.assert_shape(grid[0], (3, 4))
  for i in range(3):
    for j in range(4):
      alone = geometry.circle_box(c[i, 0], 0.1, b[0, j], rot[0, j], half)
      for x, y in zip(grid, alone):
        np.testing.assert_allclose(x[i, j], y, atol=1e-6)


# --- contacts -----------------------------------------------------------------------------------
def test_point_knocks_a_vase_away_then_it_stops():
  world, init, rollout = _world((VASES,))
  ws = init(_layout([-1.0, 0.0], 0.0, vases=([[0.0, 0.03]], [0.3])))
  ws = world.place_robot(ws, jnp.array([-0.6, 0.0]), jnp.array(0.0), jnp.array([1.4, 0.0]))
  # Full thrust into the vase for 25 steps (it sits in front of the robot and rides along),
  # then full reverse: the robot backs off and the floor stops the vase.
  actions = jnp.concatenate([jnp.tile(jnp.array([1.0, 0.0]), (25, 1)),
                             jnp.tile(jnp.array([-1.0, 0.0]), (40, 1))])
  ws, out = rollout(ws, actions)
  chex.assert_tree_all_finite((ws, out))
  touching = out["contacts"]["vases"][:, 0] > 0
  first = int(np.argmax(touching))
  assert touching.any() and first > 5  # it starts 0.35 m short of touching
  moved = out["xy"]["vases"][-1, 0] - out["xy"]["vases"][0, 0]
  assert moved[0] > 0.3 and abs(moved[1]) < 0.5 * moved[0]  # pushed along +x
  speed = np.linalg.norm(out["obj_vel"]["vases"][:, 0], axis=-1)
  assert speed[first + 2] > 1.0  # knocked to about the robot's speed
  last_touch = int(np.nonzero(touching)[0][-1])
  # Floor drag, time constant 0.02 s: from ~1 m/s below 1e-4 m/s (the velocity cost's floor)
  # in ln(1e4) / ln(1.1) = 97 substeps, 10 env steps; allow 15.
  assert last_touch < 50 and np.all(speed[last_touch + 15:] < 1e-4)


@functools.cache
def _mujoco_pillar(n_steps: int):
  """MuJoCo C: the Point at (-0.6, 0) heading +x at 1.4 m/s, full thrust into a pillar at the
  origin: the deepest contact at the start of each env step's last substep."""
  m = mujoco.MjModel.from_xml_string(build_xml(robots.POINT, (obstacles.pillars(1),)))
  d = mujoco.MjData(m)
  d.qpos[:], d.qvel[:] = [-0.6, 0.0, 0.0], [1.4, 0.0, 0.0]
  depth = []
  for _ in range(n_steps):
    for _ in range(robots.POINT.n_frames):
      d.ctrl[:] = robots._point_ctrl(jnp.array([1.0, 0.0]), jnp.asarray(d.qpos), d.qvel)
      mujoco.mj_step(m, d)
    depth.append(max([-d.contact[i].dist for i in range(d.ncon)], default=0.0))
  return np.array(depth)


def test_pillar_stops_the_point_as_softly_as_mujoco():
  pillar = obstacles.pillars(1)
  world, init, rollout = _world((pillar,))
  ws = init(_layout([-0.6, 0.0], 0.0, pillars=([[0.0, 0.0]], [0.0])))
  ws = world.place_robot(ws, jnp.array([-0.6, 0.0]), jnp.array(0.0), jnp.array([1.4, 0.0]))
  ws, out = rollout(ws, jnp.tile(jnp.array([1.0, 0.0]), (50, 1)))
  chex.assert_tree_all_finite((ws, out))
  # Heading +x on y = 0, the front box leads: its face x + 0.15 against the pillar's -0.2.
  depth = out["q"][:, 0] + 0.35
  ref = _mujoco_pillar(50)
  # solref 0.02 is soft: a critically damped spring stopping 1.4 m/s peaks near
  # v tc / e = 10 mm (sampled as here: MuJoCo 9.6 mm, planar 9.9 mm), then decays as MuJoCo's.
  assert 0.006 < depth.max() < 0.012
  assert abs(depth.max() - ref.max()) < 0.1 * ref.max()
  np.testing.assert_allclose(depth[8:14], ref[8:14], rtol=0.15, atol=2e-4)
  # Then it rests against the pillar: MuJoCo's impedance lets (1 - d) / d of the thrust through
  # its reference spring, a rest depth of 0.1 mm (MuJoCo 0.03 mm, planar 0.13 mm; a plain
  # velocity target would sink it 0.9 mm); no speed toward the pillar.
  assert np.all(depth[-10:] < 3e-4) and np.all(depth[-10:] > 0)
  assert np.abs(out["vel"][-10:, 0]).max() < 1e-3
  assert np.all(out["contacts"]["pillars"][-20:, 0] >= 1)


_button_world = functools.cache(lambda: PlanarWorld("Point", (obstacles.buttons(1),)))


@pytest.mark.parametrize("offset,turn", [(0.05, 0.0), (0.0, 0.3), (0.1, 0.3)])
def test_thrusting_point_rubs_on_a_button_as_long_as_in_mujoco(offset, turn):
  """Friction and the soft contact's rest depth decide how long a robot driving into a button
  keeps touching it (Button's cost): MuJoCo holds it 86 / 21 / 72 of 100 steps in these
  cases; planar's plain velocity target (before MuJoCo's impedance) held it 86 / 63 / 85, mjx
  at one Newton iteration 3 / 3 / 11 (`python -m experiments.bench contacts`)."""
  world = _button_world()
  steps, xy = world_probe(world, "buttons", offset, turn)
  ref_steps, ref_xy = mujoco_probe("buttons", offset, turn)
  assert abs(steps - ref_steps) <= max(12, 0.25 * ref_steps), (steps, ref_steps)
  assert np.linalg.norm(xy - ref_xy) < 0.12, (xy, ref_xy)


def test_push_box_moves_where_it_is_pushed():
  box = obstacles.push_box("Point")
  world, init, rollout = _world((box,))
  ws = init(_layout([-0.6, 0.0], 0.0, push_box=([[0.0, 0.0]], [0.0])))
  ws, out = rollout(ws, jnp.tile(jnp.array([1.0, 0.0]), (60, 1)))
  chex.assert_tree_all_finite((ws, out))
  moved = out["xy"]["push_box"][-1, 0] - out["xy"]["push_box"][0, 0]
  assert out["contacts"]["push_box"].sum() > 0
  # The box (0.128 g) goes where the robot (5.2 g) drives it: +x, about as far as the robot.
  robot_moved = out["q"][-1, 0] - out["q"][0, 0]
  assert moved[0] > 0.5 * robot_moved and abs(moved[1]) < 0.3 * moved[0]


def test_gremlin_follows_its_path_and_pushes_the_point():
  gremlin = obstacles.gremlins(1)
  world, init, rollout = _world((gremlin,))
  anchor = jnp.array([[0.0, 0.0]])
  # The robot sits 0.25 m ahead on the gremlin's circle (clockwise from (0, 0.35)).
  ahead = 0.35 * jnp.array([jnp.sin(0.9), jnp.cos(0.9)])
  ws = init(_layout(ahead, 0.0, gremlins=(anchor, [0.0])))
  ws, out = rollout(ws, jnp.zeros((60, 2)))
  chex.assert_tree_all_finite((ws, out))
  t = out["t"]
  np.testing.assert_allclose(out["xy"]["gremlins"][:, 0],
                             np.stack([0.35 * np.sin(t), 0.35 * np.cos(t)], -1), atol=1e-5)
  np.testing.assert_allclose(out["obj_vel"]["gremlins"][:, 0],
                             np.stack([0.35 * np.cos(t), -0.35 * np.sin(t)], -1), atol=1e-5)
  assert out["contacts"]["gremlins"].sum() > 0
  assert np.linalg.norm(out["q"][-1, :2] - ahead) > 0.1  # shoved out of the way


@functools.cache
def _packed():
  """10 vases packed 0.23 apart in front of the robot (some overlap at first)."""
  vases = Group("vases", 10, keepout=0.15, kind="free", size=0.1)
  world, init, rollout = _world((vases,))
  grid = np.stack(np.meshgrid(np.arange(5) * 0.23 - 0.46, [0.25, 0.48]), -1).reshape(-1, 2)

  def init_at(key):
    yaw = jax.random.uniform(key, (10,), maxval=2 * jnp.pi)
    return init(_layout([0.0, 0.0], np.pi / 2, vases=(grid, yaw)))

  return world, jax.jit(jax.vmap(init_at)), jax.jit(jax.vmap(rollout))


def test_many_vases_random_actions_finite_bounded_and_deterministic():
  world, init, rollout = _packed()
  key_init, key_act = jax.random.split(jax.random.key(1))
  actions = jax.random.uniform(key_act, (8, 150, 2), minval=-1, maxval=1)
  ws0 = init(jax.random.split(key_init, 8))
  ws, out = rollout(ws0, actions)
  chex.assert_tree_all_finite((ws, out))
  again = rollout(init(jax.random.split(key_init, 8)), actions)
  chex.assert_trees_all_equal((ws, out), again)
  # No explosion: nothing much faster than the robot's top speed (1.47 m/s).
  speed = np.linalg.norm(out["obj_vel"]["vases"], axis=-1)
  assert speed.max() < 3.0 and np.linalg.norm(out["vel"], axis=-1).max() < 2.0
  # Nor deep overlaps: a vase pushed at v against the floor drag (tau 0.02 s) needs depth
  # v / (tau k) with k = 1 / 0.02^2, 3 cm at 1.5 m/s (MuJoCo's solref gives the same).
  xy, rot = ws.now.xy["vases"], geometry.heading(ws.now.yaw["vases"])
  half = jnp.array([0.1, 0.1])
  depth = geometry.box_box(xy[:, :, None], rot[:, :, None], half,
                           xy[:, None], rot[:, None], half)[0]
  depth = np.where(np.eye(10, dtype=bool), -1.0, depth)
  assert depth.max() < 0.03
  assert out["contacts"]["vases"].sum() > 0 and out["pairs"]["vases"].sum() > 0


def test_blocks_of_more_than_four_body_pairs_simulate_their_two_deepest():
  """Geom pairs simulated per substep (`num_pairs`): PointGoal2's 10 vases (10 robot-vase
  pairs for each of the Point's circle and box, 45 vase-vase) count CANDIDATES = 2 pairs per
  block; PointButton1's 4 buttons and 4 gremlins stay dense (4 body pairs per block, 4
  blocks); PointButton2 culls its 6 gremlins only; CarGoal2's 7 Car boxes x 2 candidate
  vases."""
  pairs = {name: envs.make(name).world.num_pairs
           for name in ("PointGoal2", "PointButton1", "PointButton2", "CarGoal2")}
  assert pairs == {"PointGoal2": 2 + 2 + 2, "PointButton1": 4 * 4,
                   "PointButton2": 4 + 4 + 2 + 2, "CarGoal2": 2 + 2 * 7 + 2}, pairs


# --- the World API ------------------------------------------------------------------------------
def test_world_api_shapes_timing_and_placement():
  world, init, rollout = _world((VASES, obstacles.pillars(1)))
  assert world.backend == "planar" and world.dt == pytest.approx(0.02)
  assert world.sensor_size == 12 and world.robot_geoms == POINT.geoms
  ws = init(_layout([0.5, 0.5], 1.0, vases=([[-0.5, 0.5]], [0.0]),
                    pillars=([[0.5, -0.5]], [0.0])))
  ws, out = rollout(ws, jnp.zeros((3, 2)))
  pos, rot = world.robot_pose(ws)
  chex.assert_shape((pos, rot, world.sensors(ws), world.robot_velocity(ws)),
                    ((3,), (3, 3), (12,), (2,)))
  assert pos[2] == pytest.approx(0.1)
  assert float(world.time(ws)) == pytest.approx(29 * DT)  # the last substep's start
  chex.assert_shape(world.robot_contacts(ws, "vases"), (1,))
  chex.assert_shape(world.group_contacts(ws, "robot", "pillars"), ())
  ws = world.place_robot(ws, jnp.array([1.0, -1.0]), jnp.array(0.5), jnp.array([0.2, 0.0]))
  np.testing.assert_allclose(world.robot_pose(ws)[0][:2], [1.0, -1.0])
  np.testing.assert_allclose(world.robot_velocity(ws), [0.2, 0.0])
  ws = world.place_objects(ws, "vases", jnp.array([[1.5, 1.5]]))
  ws = world.place_objects(ws, "pillars", jnp.array([[-1.5, 1.5]]))
  np.testing.assert_allclose(world.object_xy(ws, "vases"), [[1.5, 1.5]])
  np.testing.assert_allclose(world.object_xy(ws, "pillars"), [[-1.5, 1.5]])
  np.testing.assert_allclose(world.object_velocity(ws, "pillars"), [[0.0, 0.0]])
  with pytest.raises(ValueError, match="not a physical group"):
    world.object_xy(ws, "hazards")


def test_unknown_robot():
  with pytest.raises(ValueError, match="robot 'Nope' is not one of Point, Car"):
    planar_robot("Nope")
  with pytest.raises(ValueError, match="robot 'Nope'"):
    PlanarWorld("Nope", ())
