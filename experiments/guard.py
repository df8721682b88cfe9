"""The non-finite guard: at every chunk boundary, which members of a run went non-finite,
at which update, and in which quantity first.

A run trains M members (seeds x cost limits [x grid cells]) in one compiled chunk of K
updates. `make_check` builds a function that runs inside that chunk's program, so the
check costs no extra host round-trip: it looks at the chunk's losses and multiplier values
per update, and at every float leaf of the learner, multiplier and normaliser states
(parameters and optimizer moments) at the chunk's end. A NaN is therefore caught at most
one chunk after it appears, and the checkpoint kept is the state at the last boundary
that passed.

  names, check = guard.make_check(state, metric_names)
  first_quantity, first_update = check(state, metrics)   # [M] int32 each
  # first_quantity[m] = -1 if member m is finite, else an index into `names`;
  # first_update[m]: the chunk offset of the first update whose metrics were not finite
  # (K - 1 when only the end state is).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

MODES = ("stop", "continue")   # --on-nonfinite
EXIT_NONFINITE = 3
CHECKED_METRIC_PREFIXES = ("loss/", "lambda/", "policy/")
CHECKED_STATE_FIELDS = ("learner", "multiplier", "normalizer")


def checked_metrics(metric_names: Sequence[str]) -> list[str]:
  """The metrics the guard checks: the losses, the policy step's KL and entropy, and
  the multiplier's values."""
  return sorted(n for n in metric_names if n.startswith(CHECKED_METRIC_PREFIXES))


def _float_leaves(state: Any) -> list[tuple[str, Any]]:
  """(name, leaf) of the float leaves of the state's trained parts, in tree order."""
  out = []
  for field in CHECKED_STATE_FIELDS:
    leaves, _ = jax.tree_util.tree_flatten_with_path(getattr(state, field))
    for path, leaf in leaves:
      if jnp.issubdtype(leaf.dtype, jnp.floating):
        out.append((field + jax.tree_util.keystr(path), leaf))
  return out


def make_check(state: Any, metric_names: Sequence[str]
               ) -> tuple[list[str], Callable[[Any, dict], tuple[jax.Array, jax.Array]]]:
  """-> (names, check) for a batched TrainState like `state` (leaves [M, ...]; concrete
  or jax.eval_shape) and chunk metrics with `metric_names` ([K, M] each).

  names: the checked metrics, then the checked state leaves by path.
  check(state, metrics) -> (first_quantity [M] int32, first_update [M] int32), traceable.
  """
  metrics_checked = checked_metrics(metric_names)
  names = metrics_checked + [name for name, _ in _float_leaves(state)]

  def check(state, metrics):
    # [K, M, Q_metrics]: per update and member, which checked metrics are not finite.
    bad_metrics = jnp.stack([~jnp.isfinite(metrics[n]) for n in metrics_checked], -1)
    num_updates, num_members = bad_metrics.shape[:2]
    bad_leaves = [~jnp.isfinite(leaf).reshape(num_members, -1).all(-1)
                  for _, leaf in _float_leaves(state)]
    # Per member: the first quantity (metrics of the earliest bad update first, then
    # the state leaves), and the first bad update.
    bad_update = bad_metrics.any(-1)                                    # [K, M]
    metrics_bad = bad_update.any(0)                                     # [M]
    first_update = jnp.where(metrics_bad, jnp.argmax(bad_update, 0), num_updates - 1)
    first_row = jnp.take_along_axis(bad_metrics, first_update[None, :, None], 0)[0]
    row = jnp.concatenate(
        [first_row, jnp.stack(bad_leaves, -1) & ~metrics_bad[:, None]], -1)  # [M, Q]
    first_quantity = jnp.where(row.any(-1), jnp.argmax(row, -1), -1)
    return first_quantity.astype(jnp.int32), first_update.astype(jnp.int32)

  return names, check


def select_members(keep_old: np.ndarray, old: Any, new: Any) -> Any:
  """The batched tree `new` with members where keep_old ([M] bool) taken from `old`
  (typed PRNG keys included)."""
  mask = jnp.asarray(keep_old)

  def pick(o, n):
    is_key = jnp.issubdtype(n.dtype, jax.dtypes.prng_key)
    o_, n_ = (jax.random.key_data(o), jax.random.key_data(n)) if is_key else (o, n)
    out = jnp.where(mask.reshape(mask.shape + (1,) * (n_.ndim - 1)), o_, n_)
    return jax.random.wrap_key_data(out, impl=jax.random.key_impl(n)) if is_key else out

  return jax.tree.map(pick, old, new)
