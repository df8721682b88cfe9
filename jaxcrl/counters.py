"""Running totals that stay exact where float32 and int32 stop: pytrees, jit- and
vmap-safe, with no need for 64-bit types (jax_enable_x64 stays off).

  count = Count.zeros().add(1)            # updates done: exact past 2**31
  total = RunningSum.zeros().add(cost)    # a float32 sum exact past 2**24
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

LOW_BITS = 30
_BASE = 1 << LOW_BITS


@struct.dataclass
class Count:
  """A non-negative integer count in two int32 words: value = high * 2**30 + low.

  int32 wraps at 2**31 and float32 stops counting every integer at 2**24; this count is
  exact to 2**61. high, low: [] int32 (leaves [M] under vmap), 0 <= low < 2**30.
  """

  high: jax.Array
  low: jax.Array

  @classmethod
  def zeros(cls) -> "Count":
    return cls(high=jnp.zeros((), jnp.int32), low=jnp.zeros((), jnp.int32))

  @classmethod
  def of(cls, value: int) -> "Count":
    """The count `value` (a Python int, 0 <= value < 2**61)."""
    if not 0 <= value < (1 << 61):
      raise ValueError(f"count {value} is out of range [0, 2**61)")
    return cls(high=jnp.asarray(value >> LOW_BITS, jnp.int32),
               low=jnp.asarray(value & (_BASE - 1), jnp.int32))

  def add(self, n: int) -> "Count":
    """The count plus n, a Python int in [0, 2**30) (so low + n never overflows)."""
    if not 0 <= n < _BASE:
      raise ValueError(f"increment {n} is out of range [0, 2**30)")
    low = self.low + n
    carry = (low >= _BASE).astype(jnp.int32)
    return Count(high=self.high + carry, low=low - carry * _BASE)

  def as_float(self) -> jax.Array:
    """[] float32: the count, rounded to float32 past 2**24."""
    return self.high.astype(jnp.float32) * float(_BASE) + self.low.astype(jnp.float32)

  def value(self):
    """The exact count on the host: a Python int, or an int64 numpy array for batched
    leaves."""
    value = np.asarray(self.high, np.int64) * _BASE + np.asarray(self.low, np.int64)
    return int(value) if value.ndim == 0 else value


@struct.dataclass
class RunningSum:
  """A float32 running sum that stays exact past 2**24: the sum is high + low.

  A plain float32 total stops counting unit costs at 2**24 (1.7e7, a few long runs'
  worth); here `low` keeps the exact rounding error of every addition into `high`
  (Knuth's TwoSum), so the total drifts by no more than float32 rounding of `low`
  itself. high, low: [] float32.
  """

  high: jax.Array
  low: jax.Array

  @classmethod
  def zeros(cls) -> "RunningSum":
    return cls(high=jnp.zeros((), jnp.float32), low=jnp.zeros((), jnp.float32))

  def add(self, x: jax.Array) -> "RunningSum":
    """The sum plus x ([] float32)."""
    high = self.high + x
    x_part = high - self.high
    error = (self.high - (high - x_part)) + (x - x_part)  # exactly (self.high + x) - high
    return RunningSum(high=high, low=self.low + error)

  @property
  def total(self) -> jax.Array:
    return self.high + self.low
