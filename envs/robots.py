"""Safety-Gym robots (Point, Car): MJCF fragments, actuation and sensor observations.

A `Robot` is static configuration: the MJCF of its body subtree and actuators, its physics
timestep and substeps per env step, and pure functions that map (action, joint state) to the
controls of one substep, a layout (xy, yaw) to its joint positions, and the joint state to the
sensor observation.

Sensors follow MuJoCo's timing: after `mj_step`, sensor values and body positions describe the
state at the START of the last substep (MuJoCo evaluates them in the forward pass that precedes
the last integration). The navigation env therefore passes the state before the last substep
(`q`, `qd`) plus the last substep's velocity change (`qd_next`) to `sensors`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
from brax import math

GRAVITY = 9.81
# Safety-Gym's magnetometer reads the MuJoCo default magnetic field (0, -0.5, 0) in the body frame.
MAGNETIC_FIELD = jnp.array([0.0, -0.5, 0.0])

# contype/conaffinity bits: robot geoms collide with the floor and with movable/fixed obstacles
# but not with each other; obstacles collide with each other but not with the floor.
ROBOT_COLLISION = 'contype="1" conaffinity="0"'
FLOOR_COLLISION = 'contype="0" conaffinity="5"'
# mjx has no cylinder-box collision, so the Car's wheels touch only the floor.
WHEEL_COLLISION = 'contype="4" conaffinity="0"'
OBSTACLE_COLLISION = 'contype="2" conaffinity="3"'
# Immovable obstacles touch the robot and free bodies, not each other or the floor.
STATIC_COLLISION = 'contype="2" conaffinity="1"'


@dataclasses.dataclass(frozen=True)
class Robot:
  """A Safety-Gym robot.

  Attributes:
    name: 'Point' or 'Car'.
    body_xml: MJCF of the robot's top-level body (named 'agent'), placed first in worldbody.
    actuator_xml: MJCF inside <actuator>.
    timestep: physics timestep in seconds.
    n_frames: physics substeps per env step.
    solver: MJCF <option> attributes for the constraint solver.
    needs_floor: whether the robot rests on a floor plane (the Point is planar and does not).
    q_size, qd_size: the robot's share of qpos / qvel (it comes first in both).
    sensor_size: length of the sensor observation.
    ctrl: (action [2], q [q_size], qd [qd_size]) -> ctrl [act_size] for one substep.
    init_q: (xy [2], yaw []) -> q [q_size] at rest.
    pose: q [q_size] -> (pos [3], rot [3, 3]) of the robot body origin.
    sensors: (q, qd, qd_next, dt) -> [sensor_size]; q, qd before the last substep and
      qd_next after it.
  """

  name: str
  body_xml: str
  actuator_xml: str
  timestep: float
  n_frames: int
  solver: str
  needs_floor: bool
  q_size: int
  qd_size: int
  sensor_size: int
  ctrl: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
  init_q: Callable[[jax.Array, jax.Array], jax.Array]
  pose: Callable[[jax.Array], tuple[jax.Array, jax.Array]]
  sensors: Callable[[jax.Array, jax.Array, jax.Array, float], jax.Array]


# The sensor observation's layout per robot, one name per entry in order; each robot's
# sensor_size is its length.
_SITE_LABELS = tuple(f"{sensor} {axis}" for sensor in
                     ("accelerometer", "velocimeter", "gyro", "magnetometer") for axis in "xyz")
SENSOR_LABELS = {
    "Point": _SITE_LABELS,
    "Car": _SITE_LABELS + tuple(f"ballangvel_rear {axis}" for axis in "xyz")
           + tuple(f"ballquat_rear r{i}{j}" for i in range(3) for j in range(3)),
}


def _site_sensors(rot, vel, ang_body, acc):
  """accelerometer, velocimeter, gyro, magnetometer at the body origin: [12]."""
  accelerometer = rot.T @ (acc + jnp.array([0.0, 0.0, GRAVITY]))
  return jnp.concatenate(
      [accelerometer, rot.T @ vel, ang_body, rot.T @ MAGNETIC_FIELD])


def _yaw_rot(yaw):
  c, s = jnp.cos(yaw), jnp.sin(yaw)
  z, o = jnp.zeros_like(yaw), jnp.ones_like(yaw)
  return jnp.array([[c, -s, z], [s, c, z], [z, z, o]])


# --- Point ------------------------------------------------------------------------------------
# Planar by construction: slide x, slide y, hinge z. The sphere touches the floor in Safety-Gym
# but with no z DOF that contact carries no force, so the Point has no floor at all here.
_POINT_BODY = f"""
    <body name="agent" pos="0 0 0.1">
      <joint type="slide" axis="1 0 0" name="x" damping="0.01"/>
      <joint type="slide" axis="0 1 0" name="y" damping="0.01"/>
      <joint type="hinge" axis="0 0 1" name="z" damping="0.005"/>
      <geom name="agent" type="sphere" size="0.1" friction="1 0.01 0.01" condim="6"
            density="1" {ROBOT_COLLISION} rgba="0.7412 0.0431 0.1843 1"/>
      <geom name="pointarrow" type="box" pos="0.1 0 0" size="0.05 0.05 0.05" condim="6"
            density="1" {ROBOT_COLLISION} rgba="0.0039 0.1529 0.3961 1"/>
    </body>"""
# Safety-Gym's a0 is a site motor along body +x (gear 0.3, forcerange +-0.05 applied before the
# gear). Brax pipelines only drive joints, so a0 becomes two world-axis joint motors whose
# controls `_point_ctrl` sets each substep from the current yaw. a1 is the same velocity servo.
_POINT_ACTUATORS = """
    <motor joint="x" name="fx" gear="1" ctrllimited="true" ctrlrange="-1 1"/>
    <motor joint="y" name="fy" gear="1" ctrllimited="true" ctrlrange="-1 1"/>
    <velocity joint="z" name="z" gear="0.3" kv="1" ctrllimited="true" ctrlrange="-1 1"
              forcelimited="true" forcerange="-0.05 0.05"/>"""


def _point_ctrl(action, q, qd):
  del qd
  thrust = 0.3 * jnp.clip(action[0], -0.05, 0.05)
  return jnp.stack([thrust * jnp.cos(q[2]), thrust * jnp.sin(q[2]), action[1]])


def _point_init_q(xy, yaw):
  return jnp.array([xy[0], xy[1], yaw])


def _point_pose(q):
  return jnp.array([q[0], q[1], 0.1]), _yaw_rot(q[2])


def _point_sensors(q, qd, qd_next, dt):
  """[12]. The yaw servo is unstable under Euler integration (FACTS §1): its +-0.476 rad/s
  two-cycle comes out of the same integrator here, though its amplitude depends on how each
  Brax backend integrates joint damping (mjx: implicitly, like MuJoCo)."""
  _, rot = _point_pose(q)
  vel = jnp.array([qd[0], qd[1], 0.0])
  acc = jnp.array([qd_next[0] - qd[0], qd_next[1] - qd[1], 0.0]) / dt
  return _site_sensors(rot, vel, jnp.array([0.0, 0.0, qd[2]]), acc)


POINT = Robot(
    name="Point",
    body_xml=_POINT_BODY,
    actuator_xml=_POINT_ACTUATORS,
    timestep=0.002,
    n_frames=10,
    # MuJoCo's default 100 iterations / 50 line-search steps cost 3x on mjx (PointGoal1); 4 / 8
    # give the default's trajectories in every probe of docs/planar.md ("Contact fidelity"),
    # where 1 / 4 (used before) slid a thrusting Point off buttons that MuJoCo holds it against.
    solver='iterations="4" ls_iterations="8"',
    needs_floor=False,
    q_size=3,
    qd_size=3,
    sensor_size=len(SENSOR_LABELS["Point"]),
    ctrl=_point_ctrl,
    init_q=_point_init_q,
    pose=_point_pose,
    sensors=_point_sensors,
)


# --- Car --------------------------------------------------------------------------------------
# Full 3-D: free-joint chassis on two hinged wheels and a ball-jointed caster (FACTS §1).
_CAR_GEOM = f'condim="6" density="5" {ROBOT_COLLISION}'
_WHEEL_GEOM = f'condim="6" density="5" {WHEEL_COLLISION}'
_CAR_BODY = f"""
    <body name="agent" pos="0 0 0.1">
      <joint type="free" name="agent"/>
      <geom name="agent" type="box" size="0.1 0.1 0.05" {_CAR_GEOM} rgba="0.7412 0.0431 0.1843 1"/>
      <geom name="back_bumper" type="box" pos="0 0.15 0" size="0.1 0.01 0.05" {_CAR_GEOM}
            rgba="0.0039 0.1529 0.3961 1"/>
      <geom name="back_connector" type="box" pos="0 0.125 0" size="0.01 0.025 0.03" {_CAR_GEOM}
            rgba="0.0039 0.1529 0.3961 1"/>
      <geom name="front_bumper" type="box" pos="0 -0.165 0" size="0.05 0.01 0.05" {_CAR_GEOM}
            rgba="0.0039 0.1529 0.3961 1"/>
      <geom name="front_connector" type="box" pos="0 -0.13 0.04" size="0.05 0.03 0.01"
            {_CAR_GEOM} rgba="0.0039 0.1529 0.3961 1"/>
      <body name="left" pos="-0.1 0.1 -0.05">
        <joint type="hinge" name="left" axis="1 0 0" damping="0.001"/>
        <geom name="left" type="cylinder" size="0.05" fromto="-0.055 0 0 -0.005 0 0"
              {_WHEEL_GEOM} rgba="0.7412 0.0431 0.1843 1"/>
      </body>
      <body name="right" pos="0.1 0.1 -0.05">
        <joint type="hinge" name="right" axis="1 0 0" damping="0.001"/>
        <geom name="right" type="cylinder" size="0.05" fromto="0.005 0 0 0.055 0 0"
              {_WHEEL_GEOM} rgba="0.7412 0.0431 0.1843 1"/>
      </body>
      <body name="rear" pos="0 -0.1 -0.05">
        <joint type="ball" name="rear" damping="0.001"/>
        <geom name="rear" type="sphere" size="0.05" {_CAR_GEOM} rgba="0.7412 0.0431 0.1843 1"/>
      </body>
    </body>"""
_CAR_ACTUATORS = """
    <motor joint="left" name="left" gear="1" ctrllimited="true" ctrlrange="-1 1"
           forcelimited="true" forcerange="-0.02 0.02"/>
    <motor joint="right" name="right" gear="1" ctrllimited="true" ctrlrange="-1 1"
           forcelimited="true" forcerange="-0.02 0.02"/>"""


def _car_ctrl(action, q, qd):
  del q, qd
  return action


def _car_init_q(xy, yaw):
  quat = jnp.array([jnp.cos(yaw / 2), 0.0, 0.0, jnp.sin(yaw / 2)])
  return jnp.concatenate([
      jnp.array([xy[0], xy[1], 0.1]), quat,
      jnp.zeros(2),  # wheel angles
      jnp.array([1.0, 0.0, 0.0, 0.0]),  # caster ball joint
  ])


def _car_pose(q):
  return q[:3], math.quat_to_3x3(q[3:7])


def _car_sensors(q, qd, qd_next, dt):
  """[24]: the 12 site sensors, ballangvel_rear [3], ballquat_rear as a row-major 3x3 [9]."""
  _, rot = _car_pose(q)
  # MuJoCo free joint: qvel = (world-frame linear velocity, body-frame angular velocity).
  acc = (qd_next[:3] - qd[:3]) / dt
  site = _site_sensors(rot, qd[:3], qd[3:6], acc)
  ball = math.quat_to_3x3(q[9:13]).reshape(9)
  return jnp.concatenate([site, qd[8:11], ball])


CAR = Robot(
    name="Car",
    body_xml=_CAR_BODY,
    actuator_xml=_CAR_ACTUATORS,
    timestep=0.004,
    n_frames=10,
    # The Car's floor contacts blow up (NaN) with one Newton iteration; 4 reproduce the
    # default solver's top speed (0.75 vs 0.77 m/s at (1, 1); Safety-Gym ~0.8).
    solver='iterations="4" ls_iterations="8"',
    needs_floor=True,
    q_size=13,
    qd_size=11,
    sensor_size=len(SENSOR_LABELS["Car"]),
    ctrl=_car_ctrl,
    init_q=_car_init_q,
    pose=_car_pose,
    sensors=_car_sensors,
)

ROBOTS = {"Point": POINT, "Car": CAR}


def check_task(robot: str, level: int, levels) -> None:
  """Checks `robot` is a known robot and `level` one of the task's `levels`.

  Raises:
    ValueError: naming the bad robot or level and the accepted ones.
  """
  if robot not in ROBOTS:
    raise ValueError(f"robot {robot!r} is not one of {', '.join(ROBOTS)}")
  if level not in levels:
    raise ValueError(f"level {level!r} is not one of {', '.join(map(str, levels))}")
