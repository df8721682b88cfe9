"""Brax-API constrained environments: Safety-Gym navigation and velocity tasks.

  import envs
  env = envs.make("PointGoal1")          # or envs.make("SafetyPointGoal1-v0")
  state = env.reset(jax.random.key(0))   # envs.base.State, with state.cost
"""

from envs import quiet_imports  # first: mujoco.mjx without its Warp start-up lines
from envs.base import State, with_cost
from envs.registry import canonical_name, make, names, register
from envs.wrappers import wrap
from envs import probes  # registers ProbeCostlyBandit, ProbeTwoRegion
from envs import velocity  # registers the velocity tasks
from envs import goal  # registers PointGoal0..2, CarGoal0..2
from envs import button, circle, push  # registers {Point,Car}{Button,Push,Circle}0..2


__all__ = ["State", "with_cost", "make", "names", "register", "canonical_name", "wrap"]
