"""Final numbers of several runs side by side, against a baseline run:

  python -m experiments.compare runs/ppo runs/ppo_lag runs/ppo_statewise [--at 8e6]

Prints one markdown row per (run, cost limit): env steps, episode return and cost (mean +-
std over seeds of each seed's mean over the last 10% of updates, as in summary.json and
the plots), mean lambda, the state-wise budget w and the fraction of visited states over it,
whether the cost is under the limit, and the return as a fraction of the baseline's (the
first run given, or --baseline). --at STEPS ends every run's curve at that many env steps
per member, so runs trained for different budgets are compared at an equal one.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Sequence

import numpy as np

from experiments.cli import Parser, UsageError, parse_int, run_main
from experiments.logs import final_value
from experiments.plot import load_groups
from experiments.rundir import read_spec

COLUMNS = ("run", "algo", "limit", "seeds", "env steps", "return", "cost", "lambda mean", "w",
           "states over w", "cost < limit", "return / baseline")


def _truncate(group: dict, at: int | None) -> dict:
  """The group with its updates after `at` env steps dropped; UsageError if none is left."""
  if at is None:
    return group
  keep = group["x"] <= at
  if not keep.any():
    raise UsageError(f"--at {at} is before the first logged update of {group['run']!r} "
                     f"({int(group['x'][0])} env steps)")
  return {**group, "x": group["x"][keep],
          "data": {k: v[:, keep] for k, v in group["data"].items()}}


def final_stats(group: dict) -> dict[str, tuple[float, float]]:
  """Metric -> (mean, std) over seeds of each seed's final value (last 10% of updates)."""
  return {k: (float(v.mean()), float(v.std()))
          for k, v in ((k, final_value(s)) for k, s in group["data"].items())}


def compare(run_dirs: Sequence[pathlib.Path], baseline: pathlib.Path | None = None,
            at: int | None = None) -> list[dict]:
  """One dict per (run, cost limit) with the COLUMNS' values (numbers, not text).

  The baseline return is the mean over the baseline's cost limits of its final return.
  """
  baseline = baseline or run_dirs[0]
  base_groups = [_truncate(g, at) for g in load_groups(baseline)]
  if not base_groups:
    raise UsageError(f"baseline {str(baseline)!r} has not logged an update yet")
  base_return = np.mean([final_stats(g)["episode/return"][0] for g in base_groups])
  nan = (float("nan"), float("nan"))
  rows = []
  for run in run_dirs:
    algo = read_spec(run)["config"].get("algo", "")
    for g in load_groups(run):
      g = _truncate(g, at)
      stats = final_stats(g)
      ret, cost = stats.get("episode/return", nan), stats.get("episode/cost", nan)
      rows.append({
          "run": f"{run} {g.get('cell', '')}".strip(), "algo": algo, "limit": g["limit"],
          "seeds": int(g["data"]["episode/cost"].shape[0]), "env steps": int(g["x"][-1]),
          "return": ret, "cost": cost, "lambda mean": stats.get("lambda/mean", nan),
          "w": stats.get("constraint/threshold", nan)[0],
          "states over w": stats.get("constraint/violation_frac", nan),
          "cost < limit": bool(cost[0] < g["limit"]),
          "return / baseline": ret[0] / base_return if base_return else float("nan"),
      })
  return rows


def format_table(rows: Sequence[dict]) -> str:
  """The rows as a markdown table."""
  def cell(value) -> str:
    if isinstance(value, tuple) and np.isnan(value[0]):
      return "n/a"
    if isinstance(value, tuple):
      digits = 2 if abs(value[0]) < 1 else 1
      return f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"
    if isinstance(value, bool):
      return "yes" if value else "no"
    if isinstance(value, float):
      return "n/a" if np.isnan(value) else f"{value:.3g}"
    if isinstance(value, int):
      return f"{value:,}"
    return str(value)
  lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
  lines += ["| " + " | ".join(cell(r[c]) for c in COLUMNS[:-1])
            + f" | {r[COLUMNS[-1]]:.1%} |" for r in rows]
  return "\n".join(lines)


def _main(argv: list[str]) -> int:
  parser = Parser(prog="python -m experiments.compare", description=__doc__.split("\n")[0])
  parser.add_argument("runs", nargs="+", type=pathlib.Path, help="run folders")
  parser.add_argument("--baseline", type=pathlib.Path, default=None,
                      help="run whose final return the others are divided by "
                           "(default: the first run)")
  parser.add_argument("--at", type=parse_int, default=None, metavar="STEPS",
                      help="compare at this many env steps per member (default: each "
                           "run's last update)")
  args = parser.parse_args(argv)
  for r in [*args.runs, *([args.baseline] if args.baseline else [])]:
    read_spec(r)
  if args.at is not None and args.at < 1:
    raise UsageError(f"--at must be a positive number of env steps, got {args.at}")
  print(format_table(compare(args.runs, args.baseline, args.at)))
  return 0


def main(argv: Sequence[str] | None = None) -> int:
  return run_main(_main, argv)


if __name__ == "__main__":
  sys.exit(main())
