"""Brax 3-D HTML viewer pages of mjx navigation rollouts, with the non-simulated objects drawn in.

The page loads its viewer scripts from public CDNs, so it needs a network to open; the
self-contained top-down replay of any backend is `envs.replay`. Hazards and the goal are not in the physics model; a render-only System adds them as
joint-less, non-colliding bodies whose per-frame positions come from `state.info['objects']`,
so a goal that is re-drawn after a success moves in the viewer too.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from brax import base as brax_base
from brax.io import html, mjcf

from envs.base import State
from envs.mjx_world import build_xml
from envs.navigation import NavigationEnv


class _Frame:
  """What brax.io.json reads from a state: the link transforms `x`."""

  def __init__(self, x: brax_base.Transform):
    self.x = x


def render_system(env: NavigationEnv) -> brax_base.System:
  """The env's System plus one visual body per 'site' object, appended after the others."""
  xml = build_xml(env.world.robot, env.groups, render=True)
  return mjcf.load_model(mujoco.MjModel.from_xml_string(xml))


def _site_transforms(env: NavigationEnv, objects) -> brax_base.Transform:
  pos = []
  for group in env.groups:
    if group.kind == "site":
      xy = jnp.asarray(objects[group.name])
      z = jnp.full((group.count, 1), group.half_height)
      pos.append(jnp.concatenate([xy, z], axis=1))
  pos = jnp.concatenate(pos) if pos else jnp.zeros((0, 3))
  rot = jnp.tile(jnp.array([1.0, 0.0, 0.0, 0.0]), (pos.shape[0], 1))
  return brax_base.Transform(pos=pos, rot=rot)


def render_html(env: NavigationEnv, states: Sequence[State] | State, height: int = 480) -> str:
  """A Brax viewer page (HTML string) of a rollout of ONE env.

  Args:
    env: the unwrapped navigation env that produced the states.
    states: a list of unbatched States, or one State with a leading time axis [T, ...].
    height: viewer height in pixels.
  """
  if env.backend != "mjx":
    raise ValueError(f"the Brax 3-D page draws backend 'mjx' only, not {env.backend!r}")
  if isinstance(states, State):
    count = states.obs.shape[0]
    states = [jax.tree.map(lambda x, i=i: x[i], states) for i in range(count)]
  sys = render_system(env)
  frames = []
  for state in states:
    x = state.pipeline_state.ps.x
    sites = _site_transforms(env, state.info["objects"])
    x = brax_base.Transform(pos=jnp.concatenate([x.pos, sites.pos]),
                            rot=jnp.concatenate([x.rot, sites.rot]))
    frames.append(_Frame(jax.tree.map(np.asarray, x)))
  return html.render(sys, frames, height=height)
