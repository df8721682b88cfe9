"""The Car of the planar backend: a planar model of Safety-Gym's differential-drive Car.

MuJoCo's Car (`envs.robots.CAR`) is a free-joint chassis on two hinged wheels (torque-driven,
joint damping 0.001) and a ball-jointed caster (damping 0.001), all with soft frictional floor
contacts. Here only the chassis pose q = (x, y, yaw) and the world-frame velocity
qd = (vx, vy, yaw rate) of its origin are simulated; the wheels and the caster ball are
quasi-static (their spin time constants, I / d ~ 2.5 ms, are below one 4 ms substep).

Dynamics (body frame, nu = (R^T (vx, vy), w); the Car drives toward body -y; one substep dt):
  tau_i = clip(a_i, +-0.02)                     wheel torques (gear 1, forcerange 0.02)
  u0_i  = tau_i r / d_w                         rim speed of a wheel turning freely under tau_i
  each wheel i at body (-+0.13, 0.1), chassis velocity there v_i = J_i nu:
    longitudinal  F_y = -k_y (v_iy + u0_i),  k_y = g(c_w, v_iy + u0_i, F_wheel, p_wheel) + c_slip
                  (c_w = d_w / r^2 = 0.4: the wheel's damping seen at the rim; the capped
                  term is traction up to the friction limit, c_slip a residual linear part)
    lateral       F_x = -k_x v_ix,           k_x = g(k_lat, v_ix, F_lat, 2)
  caster at body (0, -0.1): F_c = -k_c v_c,  k_c = g(c_caster, |v_c|, F_caster, p_caster)
                  + c_caster_slide
  yaw scrub       -c_yaw w
  g(c, x, F, p) = c / (1 + (c |x| / F)^p)^(1/p): a linear law c x capped smoothly at F.
  Every force is -k (J nu + offset) with k evaluated at the current nu, and the update is
  linearly implicit, (M + dt sum J^T k J) nu' = M nu - dt sum J^T k offset, so stiff lateral
  friction stays stable at dt = 0.004. M is the rigid Car's mass matrix (`mass_matrix`).

Fitted constants (`CarParams`): least squares (scipy) of the planar speed and yaw rate,
averaged over env steps [25, 300), against MuJoCo C (`mujoco.mj_step` on
`envs.mjx_world.build_xml(envs.robots.CAR, ())`: Euler, 4 iterations, pyramidal cone), for
actions (1, 1), (-1, -1), (0.01, 0.01), (0.005, 0.005), (1, -1), (0.01, -0.01), (0.005, 0.02),
(0, 0.02), (0.01, 0.02), plus (weight 0.3) the straight-line speed after 1, 2, 5, 10 env steps
(mean of forward and reverse) and the (1, -1) yaw rate after 1, 2, 5, 10 steps. Each reference
is the mean over initial headings 0, pi/8, pi/4, 3pi/8: MuJoCo's pyramidal friction cone is
anisotropic in the world frame, e.g. (1, 1) settles at 0.73 m/s heading along a world axis and
0.79 m/s at 45 degrees; (0.01, 0.01) at 0.336 and 0.375 m/s. The saturated Car also hops and
rocks (wheels or caster leave the floor), so its speed wanders by +-4% from step to step.
MuJoCo's floor forces (mj_contactForce) agree with the fitted scales: each wheel's traction
saturates near 0.06 N, the caster's drag near 0.12 N.

Reference (MuJoCo C, heading mean) vs this model, speed of the origin [m/s] / yaw rate [rad/s],
mean over env steps [25, 300) (tests/test_planar_car.py recomputes them):
  action          MuJoCo C          planar
  (1, 1)          0.782 / -0.004    0.784 / 0      (= (0.5, 1) = (0.02, 0.02): saturated)
  (-1, -1)        0.771 / 0.000     0.784 / 0
  (1, -1)         0.0723 / 1.325    0.0722 / 1.321
  (0.01, 0.01)    0.362 / 0         0.362 / 0
  (0.005, 0.005)  0.168 / 0         0.162 / 0
  (0.01, -0.01)   0.0607 / 0.873    0.0614 / 0.866
  (0.005, 0.02)   0.272 / -0.466    0.278 / -0.477
  (0, 0.02)       0.162 / -0.688    0.157 / -0.710
  (0.01, 0.02)    0.438 / -0.336    0.455 / -0.325
Transient, speed after 1, 2, 5, 10 env steps (heading mean): MuJoCo (1, 1) 0.28 0.39 0.57 0.73,
(-1, -1) 0.07 0.20 0.30 0.48 (the saturated Car lifts its caster going forward and its wheels in
reverse), planar 0.19 0.29 0.48 0.65 either way; MuJoCo (0.01, 0.01) 0.20 0.27 0.34 0.35,
(-0.01, -0.01) 0.09 0.15 0.26 0.33, planar 0.14 0.20 0.29 0.35. The model is symmetric:
forward and reverse are the same, and a turn in place has no drift along body y (MuJoCo's
drifts backward at 0.03 m/s; the origin's speed matches, its direction differs by ~30 deg).

mjx vs MuJoCo C (`mujoco.mjx`, same MJCF, float32, mean over the same 4 headings and steps
[25, 300)): (1, 1) 0.777 vs 0.782 m/s; (1, -1) 0.0725 vs 0.0723 m/s and 1.333 vs 1.325 rad/s;
single runs agree to 3 decimals for the first 5-10 env steps, then the hopping makes them
diverge (e.g. heading 0, (1, 1): 0.758 vs 0.754 m/s).

Caster sensors. The ball rolls quasi-statically: its joint damping d_b balances the floor force
on it, d_b w_rel = r_c x F_ball (r_c = (0, 0, -r)), so its angular velocity relative to the
chassis, in the chassis frame, is w_rel = (r F_y, -r F_x, 0) / d_b - (0, 0, alpha w), with the
ball's floor force F_ball = -g(c_ball, |v_c|, F_ball, p_ball) v_c (MuJoCo's relation holds to
the digit in steady rolling: 0.121 N <-> 6.06 rad/s). The ball law is fitted so that the planar
Car's mean w_rel matches MuJoCo's (Q qvel, heading mean, steps [25, 100)) over 10 actions: it
rolls at 96% of v_c / r until it slides at 0.10 N (5.2 rad/s); alpha = 0.113 (pivot friction
makes the ball turn 89% with the chassis). ballangvel_rear is MuJoCo's ball qvel, w_rel in
the ball's own frame, Q^T w_rel; the joint quaternion Q integrates it (Q <- Q exp(qvel dt / 2)).
Mean w_rel [rad/s] planar vs MuJoCo: (0.01, 0.01) 4.28 vs 4.96 about x; (1, 1) 4.96 vs 4.74;
(1, -1) (0.08, 3.23, -0.15) vs (-0.49, 2.88, -0.14); (0.01, -0.01) (0.05, 2.56, -0.10) vs
(-0.28, 2.65, -0.12); (0.005, 0.02) (3.74, -1.17, 0.05) vs (3.92, -1.25, 0.04); (0, 0.02)
(2.38, -2.00, 0.08) vs (2.43, -1.94, 0.08). What differs: the x spin in turns in place
(MuJoCo's backward drift), MuJoCo's step-to-step scatter (rms 1-3 rad/s while hopping) and its
vertical spin's wander, which the pivot friction decides; Q drifts from MuJoCo's as the
integrated spin does (after 0.4 s at (0.01, 0.01): 1.43 vs 1.72 rad turned), so ballquat_rear
agrees only in kind (the axis, the sense) beyond the first env steps.

Collision geoms: the top view of every MJCF geom, wheels included as Safety-Gym has them; in
our mjx Car the wheels touch only the floor (mjx has no cylinder-box collision).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from brax import math

from envs import robots
from envs.planar_robots import PlanarRobot
from envs.world import Geom

TORQUE_LIMIT = 0.02  # forcerange of the wheel motors (gear 1)
WHEEL_RADIUS = 0.05
WHEEL_DAMPING = 0.001
BALL_RADIUS = 0.05
BALL_DAMPING = 0.001
AXLE_Y = 0.1  # wheels' contact line, body y
WHEEL_X = 0.13  # wheel contact (middle of the cylinder, x from 0.105 to 0.155), +-body x
CASTER_Y = -0.1
# Rigid Car (wheels and ball locked) over (x, y, yaw), as MuJoCo's mj_fullM at yaw 0: total
# mass, COM along body y (the wheels sit behind, the ball ahead) and yaw inertia about the
# origin.
MASS = 0.030445
COM_Y = 0.0074035
INERTIA = 3.664e-4
Z = 0.1  # chassis origin height at rest (MuJoCo settles at 0.0999: 0.1 mm contact penetration)


class CarParams(NamedTuple):
  """Fitted constants of the planar Car (forces in N, velocities in m/s)."""

  wheel_cap: float = 0.05222  # F_wheel: traction limit per wheel
  wheel_sharpness: float = 15.05  # p_wheel
  wheel_slip: float = 0.05478  # c_slip [N s/m]
  lateral_gain: float = 2.163  # k_lat [N s/m]: sideways scrub per wheel
  lateral_cap: float = 0.05105  # F_lat
  caster_gain: float = 0.5080  # c_caster [N s/m]
  caster_cap: float = 0.1153  # F_caster
  caster_sharpness: float = 3.998  # p_caster
  caster_slide: float = 0.01651  # c_caster_slide [N s/m]
  yaw_damping: float = 0.004840  # c_yaw [N m s]
  ball_gain: float = 0.3852  # c_ball [N s/m]: the ball's floor force (sensors only)
  ball_cap: float = 0.1031  # F_ball
  ball_sharpness: float = 2.230  # p_ball
  ball_pivot: float = 0.1131  # alpha


class CasterState(NamedTuple):
  """The caster ball joint: quat [4] (w, x, y, z) and qvel [3] (in the ball's frame)."""

  quat: jax.Array
  angvel: jax.Array


def capped_gain(c, x, cap, p):
  """c / (1 + (c |x| / cap)^p)^(1/p): the secant gain of the law c x capped at cap. Shapes of
  x; overflow-free for any p."""
  z = c * jnp.abs(x) / cap
  big = jnp.maximum(z, 1.0)
  norm = big * ((1.0 / big) ** p + (z / big) ** p) ** (1.0 / p)
  return c / norm


def _rot2(yaw):
  c, s = jnp.cos(yaw), jnp.sin(yaw)
  return jnp.array([[c, -s], [s, c]])


def _body_mass():
  """[3, 3] M over body-frame (vx, vy, yaw rate) at the origin."""
  mc = MASS * COM_Y
  return jnp.array([[MASS, 0.0, -mc], [0.0, MASS, 0.0], [-mc, 0.0, INERTIA]])


def _point_jacobian(px, py):
  """[2, 3]: body-frame velocity of body point (px, py) from nu."""
  return jnp.array([[1.0, 0.0, -py], [0.0, 1.0, px]])


def mass_matrix(q: jax.Array) -> jax.Array:
  """[3, 3] generalised mass over world (x, y, yaw) at pose q [3] (rigid Car, COM offset
  included); equals MuJoCo's mj_fullM over (x, y, yaw rate) of the free joint."""
  t = jnp.zeros((3, 3)).at[:2, :2].set(_rot2(q[2])).at[2, 2].set(1.0)
  return t @ _body_mass() @ t.T


def _body_velocity(q, qd):
  """nu [3]: body-frame (vx, vy) and yaw rate from world qd [3]."""
  return jnp.concatenate([_rot2(q[2]).T @ qd[:2], qd[2:]])


def _world_velocity(q, nu):
  return jnp.concatenate([_rot2(q[2]) @ nu[:2], nu[2:]])


def velocity_step(params: CarParams, q: jax.Array, qd: jax.Array, extra: CasterState,
                  action: jax.Array, dt: float) -> jax.Array:
  """qd_free [3] after one substep of wheel drive, floor friction and caster drag (no
  contacts with obstacles); q [3], qd [3] world frame, action [2] (left, right)."""
  del extra
  p = params
  nu = _body_velocity(q, qd)
  tau = jnp.clip(action, -TORQUE_LIMIT, TORQUE_LIMIT)
  u0 = tau * WHEEL_RADIUS / WHEEL_DAMPING  # [2]
  c_w = WHEEL_DAMPING / WHEEL_RADIUS ** 2
  jw = jnp.stack([_point_jacobian(-WHEEL_X, AXLE_Y), _point_jacobian(WHEEL_X, AXLE_Y)])
  vw = jw @ nu  # [2 wheels, (lateral, longitudinal)]
  k_y = capped_gain(c_w, vw[:, 1] + u0, p.wheel_cap, p.wheel_sharpness) + p.wheel_slip
  k_x = capped_gain(p.lateral_gain, vw[:, 0], p.lateral_cap, 2.0)
  jc = _point_jacobian(0.0, CASTER_Y)
  vc = jc @ nu
  k_c = (capped_gain(p.caster_gain, jnp.linalg.norm(vc), p.caster_cap, p.caster_sharpness)
         + p.caster_slide)
  m = _body_mass()
  a = (m + dt * (jnp.einsum("wi,w,wj->ij", jw[:, 0], k_x, jw[:, 0])
                 + jnp.einsum("wi,w,wj->ij", jw[:, 1], k_y, jw[:, 1])
                 + k_c * jc.T @ jc)
       + dt * p.yaw_damping * jnp.diag(jnp.array([0.0, 0.0, 1.0])))
  b = m @ nu - dt * jnp.einsum("wi,w->i", jw[:, 1], k_y * u0)
  return _world_velocity(q, jnp.linalg.solve(a, b))


def caster_spin(params: CarParams, q: jax.Array, qd: jax.Array) -> jax.Array:
  """[3] the ball's angular velocity relative to the chassis, in the chassis frame, for the
  chassis at q [3] moving at qd [3] (quasi-static rolling: d_b w_rel = r_c x F_ball)."""
  p = params
  nu = _body_velocity(q, qd)
  vc = _point_jacobian(0.0, CASTER_Y) @ nu
  k = capped_gain(p.ball_gain, jnp.linalg.norm(vc), p.ball_cap, p.ball_sharpness)
  force = -k * vc
  roll = BALL_RADIUS / BALL_DAMPING * jnp.array([force[1], -force[0]])
  return jnp.concatenate([roll, -p.ball_pivot * nu[2:]])


def _quat_integrate(quat, angvel, dt):
  """quat [4] turned by the body-frame angular velocity angvel [3] for dt (mju_quatIntegrate)."""
  speed = jnp.linalg.norm(angvel)
  axis = angvel / jnp.where(speed > 0.0, speed, 1.0)
  axis = jnp.where(speed > 0.0, axis, jnp.array([1.0, 0.0, 0.0]))
  turned = math.quat_mul(quat, math.quat_rot_axis(axis, speed * dt))
  return turned / jnp.linalg.norm(turned)


def extra_step(params: CarParams, q: jax.Array, qd_next: jax.Array, extra: CasterState,
               dt: float) -> CasterState:
  """The caster ball after the substep that reached qd_next [3] (its qvel in its own frame,
  then the joint quaternion advanced with it, as MuJoCo's Euler integrator)."""
  rot = math.quat_to_3x3(extra.quat)
  angvel = rot.T @ caster_spin(params, q, qd_next)
  return CasterState(quat=_quat_integrate(extra.quat, angvel, dt), angvel=angvel)


def init_extra() -> CasterState:
  """The ball joint at rest: identity quaternion, no spin."""
  return CasterState(quat=jnp.array([1.0, 0.0, 0.0, 0.0]), angvel=jnp.zeros(3))


def sensors(q: jax.Array, qd: jax.Array, qd_next: jax.Array, extra: CasterState,
            dt: float) -> jax.Array:
  """[24] as the mjx Car's: accelerometer, velocimeter, gyro, magnetometer (body frame),
  ballangvel_rear [3], ballquat_rear as a row-major 3x3 rotation [9]; q, qd, extra at the start
  of the last substep, qd_next the velocity it reached."""
  # pylint: disable=protected-access
  rot = robots._yaw_rot(q[2])
  vel = jnp.array([qd[0], qd[1], 0.0])
  acc = jnp.array([qd_next[0] - qd[0], qd_next[1] - qd[1], 0.0]) / dt
  site = robots._site_sensors(rot, vel, jnp.array([0.0, 0.0, qd[2]]), acc)
  return jnp.concatenate([site, extra.angvel, math.quat_to_3x3(extra.quat).reshape(9)])


# Top view of the MJCF's geoms (`envs.robots._CAR_BODY`), body frame.
GEOMS = (
    Geom("box", (0.1, 0.1)),  # chassis
    Geom("box", (0.1, 0.01), pos=(0.0, 0.15)),  # back bumper
    Geom("box", (0.01, 0.025), pos=(0.0, 0.125)),  # back connector
    Geom("box", (0.05, 0.01), pos=(0.0, -0.165)),  # front bumper
    Geom("box", (0.05, 0.03), pos=(0.0, -0.13)),  # front connector
    Geom("box", (0.025, 0.05), pos=(-0.13, 0.1)),  # left wheel (cylinder r 0.05 about x)
    Geom("box", (0.025, 0.05), pos=(0.13, 0.1)),  # right wheel
    Geom("circle", (0.05,), pos=(0.0, -0.1)),  # caster ball
)


def make_car(params: CarParams = CarParams()) -> PlanarRobot:
  """The planar Car with constants `params`."""
  return PlanarRobot(
      name="Car",
      timestep=robots.CAR.timestep,
      n_frames=robots.CAR.n_frames,
      z=Z,
      geoms=GEOMS,
      sensor_size=robots.CAR.sensor_size,
      init_extra=init_extra,
      mass_matrix=mass_matrix,
      velocity_step=functools.partial(velocity_step, params),
      extra_step=functools.partial(extra_step, params),
      sensors=sensors,
  )


CAR = make_car()
