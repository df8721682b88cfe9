"""Command-line plumbing shared by run / eval / plot: flags generated from a config
dataclass, one-line usage errors with exit status 2.

Every field of the config dataclass becomes `--field-name` with the field's type and its
default shown in `--help`, so a new TrainConfig field is a new flag with no edit here.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import textwrap
from typing import Any, Callable, Mapping, Sequence

EXIT_USAGE = 2


class UsageError(Exception):
  """Bad command-line input; `main` prints `error: <message>` and exits with status 2."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
  """argparse's help with defaults, wrapped at spaces only: names such as PPO-clip or
  J_c-d stay whole on one line."""

  def _split_lines(self, text, width):
    return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


class Parser(argparse.ArgumentParser):
  """argparse with one-line errors raised as `UsageError` (no usage dump, no sys.exit)."""

  def __init__(self, *args, **kwargs):
    kwargs.setdefault("formatter_class", HelpFormatter)
    kwargs.setdefault("allow_abbrev", False)  # --cost-limit must not pass for --cost-limits
    super().__init__(*args, **kwargs)

  def error(self, message: str):
    if message.startswith("unrecognized arguments:"):
      flags = [a.split("=")[0] for a in message.split(":", 1)[1].split() if a.startswith("--")]
      if flags:
        from envs.registry import did_you_mean
        message += did_you_mean(flags[0], self._option_string_actions)
    raise UsageError(message)


@contextlib.contextmanager
def usage_errors():
  """Inside, a ValueError (the library's bad-value error) is bad input: a UsageError.

  Only input checking runs inside; a ValueError while training is a bug and must surface.
  """
  try:
    yield
  except ValueError as err:
    raise UsageError(str(err)) from err


def run_main(body: Callable[[list[str]], int], argv: Sequence[str] | None) -> int:
  """Calls `body(argv)`, turning `UsageError` into a one-line `error: ...` and status 2."""
  argv = list(sys.argv[1:] if argv is None else argv)
  try:
    return body(argv)
  except UsageError as err:
    msg = " ".join(str(err).split()) or type(err).__name__
    print(f"error: {msg}", file=sys.stderr)
    return EXIT_USAGE
  except SystemExit as exit_:  # --help
    return int(exit_.code or 0)


def parse_int(text: str) -> int:
  """An integer, also written like 5e6 or 1_000_000."""
  try:
    value = float(text.replace("_", ""))
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
  if not value.is_integer():
    raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
  return int(value)


def parse_floats(text: str) -> tuple[float, ...]:
  """Comma-separated floats: '10,25,50'."""
  try:
    return tuple(float(t) for t in text.split(",") if t.strip())
  except ValueError:
    raise argparse.ArgumentTypeError(
        f"expected comma-separated numbers, got {text!r}") from None


def parse_ints(text: str) -> tuple[int, ...]:
  """Comma-separated integers: '64,64'."""
  return tuple(parse_int(t) for t in text.split(",") if t.strip())


def parse_bool(text: str) -> bool:
  lowered = text.lower()
  if lowered in ("1", "true", "yes", "on"):
    return True
  if lowered in ("0", "false", "no", "off"):
    return False
  raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def field_docs(cls: type) -> dict[str, str]:
  """Field help from a Google-style class docstring: lines `name[, name2]: text` (plus
  deeper-indented continuation lines) under any section."""
  import re
  docs: dict[str, str] = {}
  current: list[str] = []
  indent = None
  for line in (cls.__doc__ or "").splitlines():
    match = re.match(r"^(\s+)([a-z_][a-z0-9_]*(?:, [a-z_][a-z0-9_]*)*): (.*)$", line)
    if match:
      indent, current = len(match[1]), match[2].split(", ")
      for name in current:
        docs[name] = match[3].strip()
    elif current and line.strip() and len(line) - len(line.lstrip()) > indent:
      for name in current:
        docs[name] += " " + line.strip()
    else:
      current = []
  # "one of ALGOS" -> "one of ppo, ppo_lag, ..." when the module defines that tuple.
  module = sys.modules.get(cls.__module__)
  for name, text in docs.items():
    for const in re.findall(r"one of ([A-Z_]+)", text):
      values = getattr(module, const, None)
      if isinstance(values, tuple):
        docs[name] = text.replace(const, ", ".join(map(str, values)))
  return docs


def given(argv: Sequence[str], flag: str) -> bool:
  """Whether `flag` appears in argv (as `--flag value` or `--flag=value`)."""
  return any(a == flag or a.startswith(flag + "=") for a in argv)


def flag_name(field: str) -> str:
  return "--" + field.replace("_", "-")


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
  def parse_optional(text: str) -> Any:
    return None if text.lower() == "none" else parse(text)
  return parse_optional


def _parser_for(value: Any, annotation: Any) -> tuple[Callable[[str], Any], str]:
  if value is None:
    # `from __future__ import annotations` leaves the type as a string like "int | None".
    text = str(annotation)
    inner = (parse_int, "INT|none") if "int" in text else (
        (float, "FLOAT|none") if "float" in text else (str, "STR|none"))
    return _optional(inner[0]), inner[1]
  if isinstance(value, bool):
    return parse_bool, "BOOL"
  if isinstance(value, int):
    return parse_int, "INT"
  if isinstance(value, float):
    return float, "FLOAT"
  if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
    return parse_ints, "INT,INT,.."
  if isinstance(value, tuple):
    return parse_floats, "X,Y,.."
  return str, "STR"


def add_dataclass_flags(parser: argparse.ArgumentParser, instance: Any,
                        title: str, help_for: Mapping[str, str] | None = None,
                        exclude: Sequence[str] = ()) -> list[str]:
  """Adds `--field-name` for every field of the dataclass `instance` (its values as defaults).

  Values parse by the default's type (bool, int such as 5e6, float, comma-separated
  tuple, str). Returns the field names in declaration order; parsed values land in
  `args.<field>` and equal the default when the flag is absent. Fields in `exclude`
  get no flag.
  """
  group = parser.add_argument_group(title)
  names = []
  for field in dataclasses.fields(instance):
    if field.name in exclude:
      continue
    value = getattr(instance, field.name)
    parse, metavar = _parser_for(value, field.type)
    kind = "static" if field.metadata.get("pytree_node", True) is False else "traced"
    doc = (help_for if help_for is not None else field_docs(type(instance))).get(
        field.name, "")
    group.add_argument(flag_name(field.name), dest=field.name, type=parse,
                       default=value, metavar=metavar,
                       help=f"{doc} [{kind}]".strip())
    names.append(field.name)
  return names


def dataclass_from_dict(cls: type, values: Mapping[str, Any]) -> Any:
  """`cls(**values)` with JSON lists turned back into the tuples the defaults use."""
  defaults = cls()
  known = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(values) - known)
  if unknown:
    raise UsageError(f"unknown config fields {unknown}; known: {sorted(known)}")
  fixed = {}
  for k, v in values.items():
    if isinstance(getattr(defaults, k), tuple) and isinstance(v, list):
      v = tuple(v)
    fixed[k] = v
  return dataclasses.replace(defaults, **fixed)


def dataclass_to_dict(instance: Any) -> dict[str, Any]:
  """Field name -> plain Python value (JSON-ready; arrays of size 1 become floats; a
  dataclass-valued field becomes a nested dict)."""
  out = {}
  for field in dataclasses.fields(instance):
    v = getattr(instance, field.name)
    if dataclasses.is_dataclass(v):
      out[field.name] = dataclass_to_dict(v)
      continue
    if hasattr(v, "tolist"):
      v = v.tolist()
    out[field.name] = list(v) if isinstance(v, tuple) else v
  return out
