"""Random Safety-Gym layouts drawn inside jit (FACTS §3, Placement).

Objects are placed in order (agent first, then each group index by index). Object i is drawn
uniformly from its extents shrunk by its own keepout k_i and rejected if it lies closer than
k_i + k_j to any already placed object j. Safety-Gym tries 100 draws per object and restarts the
whole layout when one object fails, up to 10,000 times; here the 100 draws of an object are one
vectorised call and restarts are a bounded `lax.while_loop`, so a vmapped reset is a single
compiled computation.

Restarts are common: a Button level 1 attempt succeeds 2.1% of the time (its four gremlins need
0.8 between each other, the agent and the goal), so one layout takes 48 attempts on average.
Vmapped over B envs, `sample`'s loop runs until the unluckiest env succeeds (about 400 attempts
for every env at B = 2048). `sample_batch` draws the same distribution for a whole batch at the
cost of the mean: every attempt is independent, so the successes of all the batch's attempts,
taken in a fixed order, are independent layouts of the conditional law, whichever env's keys
drew them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

TRIES = 100
# Safety-Gym allows 10,000 restarts (and 10,000 draws for a goal re-draw).
MAX_RESTARTS = 10_000
# Attempts per env in each pooled round of `sample_batch`, after each env's own first attempt.
POOL = 16


def _clear(cand, xy, keepout_i, keepouts, mask):
  """[T] True where a candidate [T, 2] keeps out of every masked object of xy [N, 2]."""
  d2 = jnp.sum(jnp.square(cand[:, None, :] - xy[None, :, :]), axis=-1)
  return jnp.all((d2 >= jnp.square(keepout_i + keepouts[None, :])) | ~mask[None, :], axis=1)


def _draw(key, keepout, lo, hi, tries):
  return jax.random.uniform(key, (tries, 2), minval=lo + keepout, maxval=hi - keepout)


def _attempter(keepouts, lo, hi, fixed, fixed_xy, tries):
  """key -> (xy [N, 2], ok []): one attempt at the whole layout (no restart)."""
  n = keepouts.shape[0]
  if fixed is None:
    fixed = jnp.zeros((n,), bool)
    fixed_xy = jnp.zeros((n, 2))
  return lambda key: _attempt(key, keepouts, lo, hi, fixed, fixed_xy, tries)


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
  attempt = _attempter(keepouts, lo, hi, fixed, fixed_xy, tries)
  key, key_first = jax.random.split(key)
  xy, ok = attempt(key_first)

  def again(carry):
    key, _, _, count = carry
    key, key_attempt = jax.random.split(key)
    return key, *attempt(key_attempt), count + 1

  _, xy, ok, _ = jax.lax.while_loop(
      lambda c: ~c[2] & (c[3] < max_restarts), again, (key, xy, ok, 0))
  return xy, ok


def sample_batch(
    keys: jax.Array,
    keepouts: jax.Array,
    lo: jax.Array,
    hi: jax.Array,
    fixed: jax.Array | None = None,
    fixed_xy: jax.Array | None = None,
    tries: int = TRIES,
    max_restarts: int = MAX_RESTARTS,
    pool: int = POOL,
) -> tuple[jax.Array, jax.Array]:
  """B layouts with `sample`'s distribution, restarts pooled over the batch.

  Env b first makes `sample`'s first attempt with keys[b]; where that succeeds (every env of
  a task whose layouts rarely fail) the layout is `sample(keys[b])`'s. Each following round
  makes B * pool attempts from one key derived from keys[0] and hands its successes, in
  attempt order, to the envs still without a layout, in env order. Rounds stop when every
  env has one or after max_restarts / pool rounds.

  Args:
    keys: [B] PRNG keys; the rest as `sample`.

  Returns:
    xy: [B, N, 2]; ok: [B] bool, False for an env left without a clear layout.
  """
  b = keys.shape[0]
  attempt = jax.vmap(_attempter(keepouts, lo, hi, fixed, fixed_xy, tries))
  pairs = jax.vmap(jax.random.split)(keys)  # as `sample`: (key, key_first)
  xy, ok = attempt(pairs[:, 1])
  key = jax.random.fold_in(pairs[0, 0], b)

  def round_(carry):
    key, xy, ok, count = carry
    key, key_round = jax.random.split(key)
    cand_xy, cand_ok = attempt(jax.random.split(key_round, b * pool))
    # The k-th env still without a layout takes the k-th success of this round.
    need = ~ok
    rank = jnp.cumsum(need) - 1
    found = jnp.nonzero(cand_ok, size=b, fill_value=0)[0]
    take = need & (rank < jnp.sum(cand_ok))
    xy = jnp.where(take[:, None, None], cand_xy[found[rank]], xy)
    return key, xy, ok | take, count + 1

  _, xy, ok, _ = jax.lax.while_loop(
      lambda c: ~jnp.all(c[2]) & (c[3] < max(1, max_restarts // pool)), round_,
      (key, xy, ok, 0))
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
    max_rounds: int = MAX_RESTARTS // TRIES,
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
