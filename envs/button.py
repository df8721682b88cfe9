"""Safety-Gym Button tasks (levels 0/1/2) for the Point and Car robots.

Four fixed buttons, one of them the goal. Reward r = (d_prev - d) + 1 [a robot geom touches the
goal button], d the planar distance to the goal button's centre. A success draws a new goal
button uniformly among the four (it may repeat) and starts a 10-step timer: wrong-button
contacts cost nothing for the next 10 steps and `buttons_lidar` reads zero in the observations
of this step and the next 9. Wrong-button contacts cost at levels 1-2, as do hazards and
gremlins (boxes circling their layout position at 1 rad/s, all in phase).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from envs import obstacles
from envs.groups import CostTerm, Group
from envs.navigation import TaskEnv
from envs.registry import register
from envs.robots import ROBOTS

GOAL = Group("goal", 1, keepout=0.4, size=0.2, rgba=obstacles.GOAL_RGBA)
NUM_BUTTONS = 4
TIMER_STEPS = 10

_COSTS = (CostTerm("buttons", "task", "buttons"),
          CostTerm("hazards", "hazard", "hazards"),
          CostTerm("gremlins", "contact", "gremlins"))
LEVELS = {
    0: dict(extents=1.0, groups=(obstacles.buttons(NUM_BUTTONS), GOAL), costs=()),
    1: dict(extents=1.5, groups=(obstacles.buttons(NUM_BUTTONS), GOAL, obstacles.hazards(4),
                                 obstacles.gremlins(4)), costs=_COSTS),
    2: dict(extents=1.8, groups=(obstacles.buttons(NUM_BUTTONS), GOAL, obstacles.hazards(8),
                                 obstacles.gremlins(6)), costs=_COSTS),
}


class ButtonEnv(TaskEnv):
  """Press the goal button, avoiding the others, hazards and gremlins.

  Observation: sensors, buttons_lidar, goal_lidar (the goal button), then at levels 1-2
  hazards_lidar and gremlins_lidar.
  state.info: 'objects' (goal [1, 2] on the goal button, hazards), 'goal_button' [] int32,
  'timer' [] int32, 'last_dist' [], 'key'. Buttons and gremlins are physical (the World's).
  state.metrics adds 'goal_met' [] (1.0 on a success step).
  """

  LEVELS = tuple(LEVELS)

  @classmethod
  def task_config(cls, robot: str, level: int) -> dict:
    del robot
    return LEVELS[level]

  def _task_layout(self, key, xy):
    # Safety-Gym places the goal marker with its own keep-out, then moves it onto the button.
    start, _ = self._layout_slices["buttons"]
    goal_button = jax.random.randint(key, (), 0, NUM_BUTTONS)
    return xy.at[self._layout_slices["goal"][0]].set(xy[start + goal_button])

  def _goal_dist(self, ws, goal_button):
    return jnp.linalg.norm(self.agent_xy(ws) - self.world.object_xy(ws, "buttons")[goal_button])

  def _task_reset(self, ws, objects):
    # The goal marker sits exactly on the chosen button.
    goal_button = jnp.argmin(
        jnp.linalg.norm(objects["buttons"] - objects["goal"], axis=-1)).astype(jnp.int32)
    return {"goal_button": goal_button, "timer": jnp.zeros((), jnp.int32),
            "last_dist": self._goal_dist(ws, goal_button)}

  def _task_metrics(self):
    return {"goal_met": jnp.zeros(())}

  def _task_cost(self, term, ws, info):
    del term
    touches = self.world.robot_contacts(ws, "buttons")
    wrong = jnp.sum(jnp.where(jnp.arange(NUM_BUTTONS) == info["goal_button"], 0.0, touches))
    return jnp.where(info["timer"] == 0, wrong, 0.0)

  def _task_reward(self, key, ws, info):
    dist = self._goal_dist(ws, info["goal_button"])
    met = self.world.robot_contacts(ws, "buttons")[info["goal_button"]] > 0
    reward = info["last_dist"] - dist + met.astype(jnp.float32)
    timer = jnp.maximum(info["timer"] - 1, 0)
    goal_button = jnp.where(
        met, jax.random.randint(key, (), 0, NUM_BUTTONS), info["goal_button"])
    goal = self.world.object_xy(ws, "buttons")[goal_button][None]
    update = {
        "objects": {**info["objects"], "goal": goal},
        "goal_button": goal_button.astype(jnp.int32),
        "timer": jnp.where(met, TIMER_STEPS, timer).astype(jnp.int32),
        "last_dist": jnp.where(met, self._goal_dist(ws, goal_button), dist),
    }
    return reward, jnp.zeros(()), update, {"goal_met": met.astype(jnp.float32)}

  def _lidar_visible(self, name, info):
    # After a success the buttons are hidden from the lidar while the timer runs.
    return info["timer"] == 0 if name == "buttons" else None


for _robot in ROBOTS:
  for _level in LEVELS:
    register(f"{_robot}Button{_level}", functools.partial(ButtonEnv, _robot, _level))
