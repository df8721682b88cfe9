"""Safety-Gymnasium's velocity tasks (v1) on Brax's locomotion environments.

  env = envs.make("HalfCheetahVelocity")      # or "SafetyHalfCheetahVelocity-v1"
  env = envs.make("AntVelocity", backend="generalized")   # any Brax env kwarg passes through

Each task is Brax's env (reward, termination, observation, reset noise) plus a cost:
`cost = 1.0` when the step's velocity is strictly above the v1 threshold, else 0.0. The
velocity is measured over one env step (`env.dt`), as in Safety-Gymnasium:

  HalfCheetah, Hopper, Walker2d, Swimmer: signed x velocity of qpos[0] (the root slide joint);
    running backwards never costs.
  Ant: norm of the torso's xy velocity. Humanoid: norm of the mass centre's xy velocity.

`state.metrics['velocity']` is that velocity and `state.metrics['cost_velocity']` the cost.
Episodes are 1000 steps (`env.episode_length`; the time limit is applied by `envs.wrap`).

Where Brax differs from gymnasium v4 (which Safety-Gymnasium wraps): the physics (Brax's
pipelines, not MuJoCo C; the 'positional' pipeline also changes gears and timesteps at the same
`dt`; 'mjx' runs a one-iteration Newton solver for Ant and Humanoid); Humanoid observes 244
numbers, not 376 (no external contact forces), and takes actions in [-1, 1] rescaled to the
[-0.4, 0.4] control range, so its control cost matches gymnasium's; Hopper and Walker2d
observe the torso height in place of the rootz joint (equal in these models); Swimmer runs only
on the 'generalized' pipeline. Rewards, reward weights, healthy ranges and `dt` equal v4's.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
from brax import envs as brax_envs
from brax.envs.base import Env, Wrapper

from envs.base import State, with_cost
from envs.registry import register

# Safety-Gymnasium 1.0.0 v1 thresholds (m/s).
THRESHOLDS = {
    "AntVelocity": 2.6222,
    "HalfCheetahVelocity": 3.2096,
    "HopperVelocity": 0.7402,
    "HumanoidVelocity": 1.4149,
    "SwimmerVelocity": 0.2282,
    "Walker2dVelocity": 2.3415,
}

# Default pipelines. Brax marks its own pipelines unmaintained and 'positional' changes the
# models (gears, timesteps), so 'mjx' (MuJoCo's semantics) wherever Brax supports it; Swimmer
# only runs on 'generalized'. Measured with `python -m experiments.bench envs --batch 2048
# --steps 20 --backend B` on a shared, overloaded 2-core CPU (noisy), env steps/s for
# mjx / generalized / positional: HalfCheetah 1.8k / 1.3k / 2.2k, Hopper 3.7k / 9.5k / 26k,
# Ant 6.9k / 3.0k / 5.5k; compile 70-160 s each. Hopper is faster on
# backend='generalized' if MuJoCo fidelity matters less than speed.
DEFAULT_BACKENDS = {
    "AntVelocity": "mjx",
    "HalfCheetahVelocity": "mjx",
    "HopperVelocity": "mjx",
    "HumanoidVelocity": "mjx",
    "SwimmerVelocity": "generalized",
    "Walker2dVelocity": "mjx",
}

_BRAX_NAMES = {
    "AntVelocity": "ant",
    "HalfCheetahVelocity": "halfcheetah",
    "HopperVelocity": "hopper",
    "HumanoidVelocity": "humanoid",
    "SwimmerVelocity": "swimmer",
    "Walker2dVelocity": "walker2d",
}


def _x_velocity(env: Env, before, after) -> jax.Array:
  return (after.q[0] - before.q[0]) / env.dt


def _torso_xy_speed(env: Env, before, after) -> jax.Array:
  delta = after.x.pos[0, :2] - before.x.pos[0, :2]
  return jnp.sqrt(jnp.sum(jnp.square(delta))) / env.dt


def _mass_centre_xy_speed(env: Env, before, after) -> jax.Array:
  # Brax's Humanoid `_com` is gymnasium's `mass_center`: mass-weighted link inertial frames.
  delta = env._com(after)[0][:2] - env._com(before)[0][:2]  # pylint: disable=protected-access
  return jnp.sqrt(jnp.sum(jnp.square(delta))) / env.dt


_VELOCITIES: dict[str, Callable[..., jax.Array]] = {
    "AntVelocity": _torso_xy_speed,
    "HalfCheetahVelocity": _x_velocity,
    "HopperVelocity": _x_velocity,
    "HumanoidVelocity": _mass_centre_xy_speed,
    "SwimmerVelocity": _x_velocity,
    "Walker2dVelocity": _x_velocity,
}


class VelocityEnv(Wrapper):
  """A Brax locomotion env whose steps cost 1.0 above a velocity threshold.

  reset(key) -> State, obs [obs_size]; key: one typed or legacy uint32 key.
  step(state, action [action_size]) -> State with cost [] in {0, 1}.
  """

  episode_length = 1000

  def __init__(self, name: str, **kwargs: Any):
    if name not in _BRAX_NAMES:
      raise ValueError(f"unknown velocity task {name!r}; known: {', '.join(sorted(_BRAX_NAMES))}")
    kwargs.setdefault("backend", DEFAULT_BACKENDS[name])
    super().__init__(brax_envs.get_environment(_BRAX_NAMES[name], **kwargs))
    self.name = name
    self.threshold = THRESHOLDS[name]
    self._velocity = _VELOCITIES[name]

  def reset(self, key: jax.Array) -> State:
    state = self.env.reset(key)
    zero = jnp.zeros((), jnp.float32)
    state = state.replace(metrics={**state.metrics, "velocity": zero, "cost_velocity": zero})
    return with_cost(state, zero)

  def step(self, state: State, action: jax.Array) -> State:
    # Brax's step updates `metrics` in place; a copy leaves the caller's state untouched.
    nstate = self.env.step(state.replace(metrics=dict(state.metrics)), action)
    velocity, cost = self.velocity_cost(state.pipeline_state, nstate.pipeline_state)
    metrics = {**nstate.metrics, "velocity": velocity, "cost_velocity": cost}
    return with_cost(nstate.replace(metrics=metrics), cost)

  def velocity_cost(self, before, after) -> tuple[jax.Array, jax.Array]:
    """(velocity [], cost []) of one env step between pipeline states `before` and `after`."""
    velocity = self._velocity(self.env, before, after).astype(jnp.float32)
    return velocity, jnp.where(velocity > self.threshold, 1.0, 0.0).astype(jnp.float32)


for _name in _BRAX_NAMES:
  register(_name, functools.partial(VelocityEnv, _name))
