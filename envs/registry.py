"""Name -> environment factory. Task modules call `register`; users call `make`."""

from __future__ import annotations

import re
from typing import Any, Callable

from brax.envs.base import Env

_FACTORIES: dict[str, Callable[..., Env]] = {}
# Safety-Gymnasium ids: SafetyPointGoal1-v0, SafetyAntVelocity-v1, ...
_SAFETY_GYM_ID = re.compile(r"^Safety(?P<name>[A-Za-z]+\d?)-v\d+$")


def register(name: str, factory: Callable[..., Env]) -> None:
  """Registers `factory(**kwargs) -> Env` under `name` (e.g. 'PointGoal1')."""
  if name in _FACTORIES:
    raise ValueError(f"environment {name!r} is already registered")
  _FACTORIES[name] = factory


def names() -> list[str]:
  """The registered environment names, sorted."""
  return sorted(_FACTORIES)


def canonical_name(name: str) -> str:
  """Maps a jaxcrl name or a Safety-Gymnasium id to the registered name.

  Raises:
    ValueError: naming `name` and listing the known names.
  """
  if name in _FACTORIES:
    return name
  match = _SAFETY_GYM_ID.match(name)
  if match and match["name"] in _FACTORIES:
    return match["name"]
  raise ValueError(
      f"unknown environment {name!r}; known: {', '.join(names())} "
      "(Safety-Gymnasium ids such as 'SafetyPointGoal1-v0' are accepted too)"
  )


def make(name: str, **kwargs: Any) -> Env:
  """Builds the environment `name` (a jaxcrl name or a Safety-Gymnasium id)."""
  return _FACTORIES[canonical_name(name)](**kwargs)
