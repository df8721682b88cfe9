"""Safety-Gym's pseudo-lidar: per-group 16-bin proximity readings in the robot's ego frame.

Not ray-cast: every object is a point at its body centre; size and occlusion are ignored
(FACTS §2). The reading of an object at ego-frame distance d is s = max(0, D - d) / D; it goes
to the bin k = floor(theta / w) of its ego angle theta (counter-clockwise from body +x), and
with aliasing f = (theta - k w) / w also f s to bin k + 1 and (1 - f) s to bin k - 1 (mod
bins). Objects combine by max.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

NUM_BINS = 16
MAX_DIST = 3.0


def ego_xy(agent_pos: jax.Array, agent_rot: jax.Array, xy: jax.Array) -> jax.Array:
  """Object positions in the robot frame, as Safety-Gym's `ego_xy`.

  Args:
    agent_pos: [3] robot body origin.
    agent_rot: [3, 3] robot body rotation (body to world).
    xy: [M, 2] object positions; their z is taken as 0.

  Returns:
    [M, 2] = (R^T (p - p_agent))[:2] with p = (x, y, 0).
  """
  p = jnp.concatenate([xy, jnp.zeros_like(xy[:, :1])], axis=-1) - agent_pos
  return (p @ agent_rot)[:, :2]


def lidar(
    agent_pos: jax.Array,
    agent_rot: jax.Array,
    xy: jax.Array,
    num_bins: int = NUM_BINS,
    max_dist: float = MAX_DIST,
    mask: jax.Array | None = None,
) -> jax.Array:
  """One group's lidar: [num_bins] in [0, 1].

  Args:
    agent_pos, agent_rot, xy: as `ego_xy`.
    mask: optional [M] bool; objects where it is False are not seen.
  """
  v = ego_xy(agent_pos, agent_rot, xy)
  dist = jnp.hypot(v[:, 0], v[:, 1])
  bin_size = 2 * jnp.pi / num_bins
  angle = jnp.mod(jnp.arctan2(v[:, 1], v[:, 0]), 2 * jnp.pi)
  k = jnp.floor(angle / bin_size)
  alias = angle / bin_size - k
  k = k.astype(jnp.int32) % num_bins
  sensor = jnp.maximum(0.0, max_dist - dist) / max_dist
  if mask is not None:
    sensor = jnp.where(mask, sensor, 0.0)
  bins = jnp.arange(num_bins)[None, :]
  k = k[:, None]
  sensor, alias = sensor[:, None], alias[:, None]
  reading = jnp.where(bins == k, sensor, 0.0)
  reading = jnp.maximum(reading, jnp.where(bins == (k + 1) % num_bins, alias * sensor, 0.0))
  reading = jnp.maximum(
      reading, jnp.where(bins == (k - 1) % num_bins, (1.0 - alias) * sensor, 0.0))
  return reading.max(axis=0)
