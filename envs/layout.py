"""Random Safety-Gym layouts drawn inside jit (FACTS §3, Placement).

Objects are placed in order (agent first, then each group index by index). Object i is drawn
uniformly from its extents shrunk by its own keepout k_i and rejected if it lies closer than
k_i + k_j to any already placed object j. Safety-Gym tries 100 draws per object and restarts the
whole layout when one object fails; here the 100 draws of an object are one vectorised call and
restarts are a bounded `lax.while_loop`, so a vmapped reset is a single compiled computation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

TRIES = 100
# Safety-Gym allows 10,000 restarts; layouts used here succeed on the first or second.
MAX_RESTARTS = 100


def _clear(cand, xy, keepout_i, keepouts, mask):
  """[T] True where a candidate [T, 2] keeps out of every masked object of xy [N, 2]."""
  d = jnp.linalg.norm(cand[:, None, :] - xy[None, :, :], axis=-1)
  return jnp.all((d >= keepout_i + keepouts[None, :]) | ~mask[None, :], axis=1)


def _draw(key, keepout, lo, hi, tries):
  return jax.random.uniform(key, (tries, 2), minval=lo + keepout, maxval=hi - keepout)


def _attempt(key, keepouts, lo, hi, fixed, fixed_xy, tries):
  n = keepouts.shape[0]
  keys = jax.random.split(key, n)

  def place(i, carry):
    xy, ok = carry
    cand = _draw(keys[i], keepouts[i], lo[i], hi[i], tries)
    clear = _clear(cand, xy, keepouts[i], keepouts, jnp.arange(n) < i)
    j = jnp.argmax(clear)
    new = jnp.where(fixed[i], fixed_xy[i], cand[j])
    return xy.at[i].set(new), ok & (clear[j] | fixed[i])

  return jax.lax.fori_loop(0, n, place, (jnp.zeros((n, 2)), jnp.array(True)))


def sample(
    key: jax.Array,
    keepouts: jax.Array,
    lo: jax.Array,
    hi: jax.Array,
    fixed: jax.Array | None = None,
    fixed_xy: jax.Array | None = None,
    tries: int = TRIES,
    max_restarts: int = MAX_RESTARTS,
) -> tuple[jax.Array, jax.Array]:
  """Places N objects in order with keep-outs.

  Args:
    key: PRNG key.
    keepouts: [N] keep-out radii.
    lo, hi: [N, 2] per-object extents (x_min, y_min), (x_max, y_max).
    fixed: optional [N] bool, objects placed at `fixed_xy` [N, 2] without a draw.
    tries: candidate draws per object per attempt.
    max_restarts: attempts after the first before giving up.

  Returns:
    xy: [N, 2] positions; ok: [] bool, False if every attempt failed.
  """
  n = keepouts.shape[0]
  if fixed is None:
    fixed = jnp.zeros((n,), bool)
    fixed_xy = jnp.zeros((n, 2))
  key, key_first = jax.random.split(key)
  xy, ok = _attempt(key_first, keepouts, lo, hi, fixed, fixed_xy, tries)

  def again(carry):
    key, _, _, count = carry
    key, key_attempt = jax.random.split(key)
    xy, ok = _attempt(key_attempt, keepouts, lo, hi, fixed, fixed_xy, tries)
    return key, xy, ok, count + 1

  _, xy, ok, _ = jax.lax.while_loop(
      lambda c: ~c[2] & (c[3] < max_restarts), again, (key, xy, ok, 0))
  return xy, ok


def redraw(
    key: jax.Array,
    keepout: jax.Array,
    lo: jax.Array,
    hi: jax.Array,
    xy: jax.Array,
    keepouts: jax.Array,
    mask: jax.Array,
    tries: int = TRIES,
    max_rounds: int = MAX_RESTARTS,
) -> tuple[jax.Array, jax.Array]:
  """Draws one object (e.g. a new goal) against the masked objects of a layout.

  Args:
    key: PRNG key.
    keepout: [] the object's keep-out; lo, hi: [2] its extents.
    xy: [N, 2] other objects, keepouts: [N], mask: [N] bool (which of them count).
    tries: draws per round; max_rounds: rounds (Safety-Gym allows 10,000 draws in all).

  Returns:
    new_xy: [2]; ok: [] bool, False if no draw was clear.
  """

  def round_(key):
    cand = _draw(key, keepout, lo, hi, tries)
    clear = _clear(cand, xy, keepout, keepouts, mask)
    j = jnp.argmax(clear)
    return cand[j], clear[j]

  key, key_first = jax.random.split(key)
  new, ok = round_(key_first)

  def again(carry):
    key, _, _, count = carry
    key, key_round = jax.random.split(key)
    return (key, *round_(key_round), count + 1)

  _, new, ok, _ = jax.lax.while_loop(
      lambda c: ~c[2] & (c[3] < max_rounds), again, (key, new, ok, 1))
  return new, ok
