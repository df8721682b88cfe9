"""Network factories: make_* -> Network(init, apply). The only module that imports Flax.

  policy = make_policy(obs_size=O, action_size=A, hidden=(64, 64))
  params = policy.init(key)
  loc, scale = policy.apply(params, obs)        # obs [..., O] -> [..., A] each
  q = make_q(obs_size=O, action_size=A, heads=3)
  values = q.apply(q.init(key), obs, action)    # [..., O], [..., A] -> [..., 3]
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "swish": jax.nn.swish,
    "elu": jax.nn.elu,
}
# Brax's Gaussian-policy floor on the scale, so log-probs stay finite.
MIN_SCALE = 1e-3


class Network(NamedTuple):
  init: Callable[..., Any]
  apply: Callable[..., Any]


class _MLP(nn.Module):
  sizes: Sequence[int]
  activation: str
  final_kernel_init: Callable[..., Any] = nn.initializers.lecun_uniform()

  @nn.compact
  def __call__(self, x):
    act = ACTIVATIONS[self.activation]
    for i, size in enumerate(self.sizes):
      last = i == len(self.sizes) - 1
      x = nn.Dense(size, kernel_init=self.final_kernel_init if last
                   else nn.initializers.lecun_uniform(), name=f"dense_{i}")(x)
      if not last:
        x = act(x)
    return x


def make_policy(obs_size: int, action_size: int, hidden: Sequence[int] = (64, 64),
                activation: str = "tanh") -> Network:
  """Diagonal Gaussian over pre-tanh actions; the env receives tanh(sample).

  apply(params, obs[..., O]) -> (loc[..., A], scale[..., A]), scale = softplus + 1e-3.
  """
  module = _MLP(tuple(hidden) + (2 * action_size,), activation)

  def init(key):
    return module.init(key, jnp.zeros((1, obs_size)))

  def apply(params, obs):
    out = module.apply(params, obs)
    loc, raw_scale = jnp.split(out, 2, axis=-1)
    return loc, jax.nn.softplus(raw_scale) + MIN_SCALE

  return Network(init, apply)


def make_value(obs_size: int, hidden: Sequence[int] = (64, 64),
               activation: str = "tanh") -> Network:
  """apply(params, obs[..., O]) -> value[...]."""
  module = _MLP(tuple(hidden) + (1,), activation)

  def init(key):
    return module.init(key, jnp.zeros((1, obs_size)))

  def apply(params, obs):
    return module.apply(params, obs)[..., 0]

  return Network(init, apply)


class _Ensemble(nn.Module):
  """`heads` independent MLPs of the same sizes on one input, as one batched computation:
  x [..., I] -> [..., heads] (each MLP ends in one unit)."""

  sizes: Sequence[int]
  activation: str
  heads: int

  @nn.compact
  def __call__(self, x):
    mlps = nn.vmap(_MLP, variable_axes={"params": 0}, split_rngs={"params": True},
                   in_axes=None, out_axes=-1, axis_size=self.heads)
    return mlps(tuple(self.sizes) + (1,), self.activation)(x)[..., 0, :]


def make_q(obs_size: int, action_size: int, hidden: Sequence[int] = (64, 64),
           activation: str = "tanh", heads: int = 1) -> Network:
  """`heads` independent action-value MLPs Q_k(s, a) on [obs, action] (e.g. SAC's twin
  critics) as one module: their parameters carry a leading [heads] axis, and one batched
  matmul per layer evaluates them all.

  apply(params, obs[..., O], action[..., A]) -> [..., heads].
  """
  module = _Ensemble(tuple(hidden), activation, heads)

  def init(key):
    return module.init(key, jnp.zeros((1, obs_size + action_size)))

  def apply(params, obs, action):
    return module.apply(params, jnp.concatenate([obs, action], axis=-1))

  return Network(init, apply)


def make_multiplier(obs_size: int, hidden: Sequence[int] = (64, 64),
                    activation: str = "tanh", link: str = "softplus") -> Network:
  """State-wise Lagrange multiplier lambda_phi(s), its head chosen by `link`:

    "softplus": apply -> lambda[...] = softplus(head) >= 0 (upper bound applied by the
      caller);
    "log": apply -> log lambda[...] = head, unbounded (the caller exponentiates and clips).
  init(key, init_value) -> params whose output is exactly `init_value` (> 0) in every
    state (its log for "log"): the head's kernel starts at zero and its bias at
    softplus^-1(init_value) or log(init_value). `init_value` may be traced (it comes from
    the config). apply(params, obs[..., O]) -> [...].
  """
  if link not in ("softplus", "log"):
    raise ValueError(f"unknown multiplier link {link!r}; choose softplus or log")
  module = _MLP(tuple(hidden) + (1,), activation,
                final_kernel_init=nn.initializers.zeros)
  head = f"dense_{len(tuple(hidden))}"

  def init(key, init_value):
    params = module.init(key, jnp.zeros((1, obs_size)))
    init_value = jnp.maximum(jnp.asarray(init_value, jnp.float32), 1e-6)
    if link == "log":
      bias = jnp.log(init_value)
    else:  # softplus^-1(y) = y + log(-expm1(-y)), stable for small and large y.
      bias = init_value + jnp.log(-jnp.expm1(-init_value))
    inner = dict(params["params"])
    inner[head] = {**inner[head], "bias": jnp.full((1,), bias, jnp.float32)}
    return {"params": inner}

  def apply(params, obs):
    out = module.apply(params, obs)[..., 0]
    return out if link == "log" else jax.nn.softplus(out)

  return Network(init, apply)
