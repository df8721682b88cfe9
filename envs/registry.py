"""Name -> environment factory. Task modules call `register`; users call `make`."""

from __future__ import annotations

import difflib
import re
from typing import Any, Callable, Iterable

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
      f"unknown environment {name!r}{did_you_mean(name, names())}; known: "
      f"{', '.join(names())} (Safety-Gymnasium ids such as 'SafetyPointGoal1-v0' are "
      "accepted too)"
  )


def did_you_mean(name: str, known: Iterable[str]) -> str:
  """' (did you mean 'X'?)' for the known name closest to `name` (difflib's ratio, case
  ignored), or '' when none is close: for every "unknown name" error."""
  known = list(known)
  match = difflib.get_close_matches(name.lower(), [k.lower() for k in known], n=1, cutoff=0.6)
  if not match:
    return ""
  return f" (did you mean {next(k for k in known if k.lower() == match[0])!r}?)"


def make(name: str, **kwargs: Any) -> Env:
  """Builds the environment `name` (a jaxcrl name or a Safety-Gymnasium id)."""
  return _FACTORIES[canonical_name(name)](**kwargs)
