"""A fixed-size ring buffer of transitions: a pytree that lives in the train state, so it is
jitted, vmapped over members, checkpointed and resumed with everything else.

  replay = init(example, capacity)          # example: one item, leaves [...]; data [C, ...]
  replay = insert(replay, items)            # items: leaves [N, ...], N <= C
  batch = sample(replay, key, batch_size)   # leaves [batch_size, ...]: uniform, filled slots

Insertion writes slots (position + i) mod C, so once full the oldest items are overwritten
first; nothing is moved (a FIFO queue that shifts its contents, as Brax's
UniformSamplingQueue does once full, copies the whole buffer on every insert).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class ReplayState:
  """data: the items, leaves [C, ...]; position: [] int32, the slot the next item goes to;
  size: [] int32, the slots filled (at most C)."""

  data: Any
  position: jax.Array
  size: jax.Array


def init(example: Any, capacity: int) -> ReplayState:
  """An empty buffer of `capacity` items shaped and typed like `example`."""
  data = jax.tree.map(lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype),
                      example)
  zero = jnp.zeros((), jnp.int32)
  return ReplayState(data=data, position=zero, size=zero)


def item_bytes(example: Any) -> int:
  """Bytes one item of `example`'s shapes and dtypes takes in the buffer."""
  return sum(int(np.prod(np.shape(x))) * np.dtype(jnp.asarray(x).dtype).itemsize
             for x in jax.tree.leaves(example))


def capacity(replay: ReplayState) -> int:
  return jax.tree.leaves(replay.data)[0].shape[0]


def insert(replay: ReplayState, items: Any) -> ReplayState:
  """`replay` with `items` (leaves [N, ...], N <= capacity) written at the next N slots,
  wrapping around."""
  n = jax.tree.leaves(items)[0].shape[0]
  size = capacity(replay)
  if n > size:
    raise ValueError(f"cannot insert {n} items into a replay buffer of {size}")
  slots = (replay.position + jnp.arange(n, dtype=jnp.int32)) % size
  data = jax.tree.map(lambda d, x: d.at[slots].set(x.astype(d.dtype)), replay.data, items)
  return ReplayState(data=data, position=(replay.position + n) % size,
                     size=jnp.minimum(replay.size + n, size))


def sample(replay: ReplayState, key: jax.Array, batch_size: int) -> Any:
  """`batch_size` items drawn uniformly, with replacement, from the filled slots (slot 0's
  zeros from an empty buffer)."""
  slots = jax.random.randint(key, (batch_size,), 0, jnp.maximum(replay.size, 1))
  return jax.tree.map(lambda d: d[slots], replay.data)
