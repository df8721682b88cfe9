"""Safety-Gym Goal tasks (levels 0/1/2) for the Point and Car robots.

Reward r = (d_prev - d) + 1 [d <= 0.3], d the planar distance from the robot to the goal
centre. On success a new goal is drawn against every object (robot included) and d_prev is set
to the distance to the new goal, so the step's reward has no jump term; the observation of that
step already shows the new goal. A failed draw (never seen in practice) terminates.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from envs import layout
from envs.groups import CostTerm, Group
from envs.navigation import TaskEnv
from envs.registry import register
from envs.robots import ROBOTS

GOAL_SIZE = 0.3

GOAL = Group("goal", 1, keepout=0.305, size=GOAL_SIZE, rgba="0 1 0 0.25",
             half_height=GOAL_SIZE / 2 + 0.01)


def _hazards(n):
  return Group("hazards", n, keepout=0.18, size=0.2, rgba="0 0 1 0.25")


def _vases(n):
  return Group("vases", n, keepout=0.15, kind="free", size=0.1, rgba="0 1 1 1")


LEVELS = {
    0: dict(extents=1.0, groups=(GOAL,), costs=()),
    1: dict(extents=1.5, groups=(GOAL, _hazards(8), _vases(1)),
            costs=(CostTerm("hazards", "hazard", "hazards"),)),
    2: dict(extents=2.0, groups=(GOAL, _hazards(10), _vases(10)),
            costs=(CostTerm("hazards", "hazard", "hazards"),
                   CostTerm("vases_contact", "contact", "vases"),
                   CostTerm("vases_velocity", "velocity", "vases"))),
}


class GoalEnv(TaskEnv):
  """Go to the goal, avoiding hazards (and vases at level 2).

  state.info: 'objects' (goal [1, 2], hazards [H, 2]), 'last_dist' [], 'key'.
  state.metrics adds 'goal_met' [] (1.0 on a success step).
  """

  LEVELS = tuple(LEVELS)

  @classmethod
  def task_config(cls, robot: str, level: int) -> dict:
    del robot
    return LEVELS[level]

  def _goal_index(self) -> int:
    return self._layout_slices["goal"][0]

  def _redraw_goal(self, key, xy):
    """A goal drawn against every object of the layout xy [N, 2] but the goal itself."""
    i = self._goal_index()
    mask = jnp.arange(xy.shape[0]) != i
    return layout.redraw(key, self.keepouts[i], self._lo[i], self._hi[i], xy,
                         jnp.asarray(self.keepouts), mask)

  def _task_layout(self, key, xy):
    goal, _ = self._redraw_goal(key, xy)
    return xy.at[self._goal_index()].set(goal)

  def _goal_dist(self, ws, goal):
    return jnp.linalg.norm(self.agent_xy(ws) - goal[0])

  def _task_reset(self, ws, objects):
    return {"last_dist": self._goal_dist(ws, objects["goal"])}

  def _task_metrics(self):
    return {"goal_met": jnp.zeros(())}

  def _task_reward(self, key, ws, info):
    goal = info["objects"]["goal"]
    dist = self._goal_dist(ws, goal)
    met = dist <= GOAL_SIZE
    reward = info["last_dist"] - dist + met.astype(jnp.float32)
    new_goal, ok = self._redraw_goal(key, self.layout_xy(ws, self.objects(ws, info)))
    goal = jnp.where(met, new_goal[None], goal)
    last = jnp.where(met, self._goal_dist(ws, goal), dist)
    done = (met & ~ok).astype(jnp.float32)
    objects = {**info["objects"], "goal": goal}
    return reward, done, {"objects": objects, "last_dist": last}, {
        "goal_met": met.astype(jnp.float32)}


for _robot in ROBOTS:
  for _level in LEVELS:
    register(f"{_robot}Goal{_level}", functools.partial(GoalEnv, _robot, _level))
