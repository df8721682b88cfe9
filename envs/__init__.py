"""Brax-API constrained environments: Safety-Gym navigation and velocity tasks.

  import envs
  env = envs.make("PointGoal1")          # or envs.make("SafetyPointGoal1-v0")
  state = env.reset(jax.random.key(0))   # envs.base.State, with state.cost
"""

from envs.base import State, with_cost
from envs.registry import canonical_name, make, names, register
from envs.wrappers import wrap
from envs import probes  # registers ProbeCostlyBandit, ProbeTwoRegion


__all__ = ["State", "with_cost", "make", "names", "register", "canonical_name", "wrap"]

from envs import goal  # noqa: E402,F401  (registers PointGoal0..2, CarGoal0..2)
