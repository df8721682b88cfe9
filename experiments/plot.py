"""Plots of one or more runs: `python -m experiments.plot runs/A runs/B ... [--out DIR]`.

Writes PNGs (matplotlib, Agg) into DIR (default: `plots/` inside the single run given, or
`plots/` in the working directory for several runs):
  return.png     episode return vs env steps: mean over seeds, min/max band, per cost limit
  cost.png       episode cost vs env steps, each cost limit as a dashed horizontal line
  lambda.png     mean Lagrange multiplier vs env steps
  tradeoff.png   final return vs final cost per cost limit (runs with several limits)
  lambda_map_limit{d}.png   lambda(s) over the arena with hazards, for state-wise runs
                 on navigation envs (seed 0, latest checkpoint; see experiments/lambda_map.py)
Final numbers average the last 10% of updates; the tradeoff error bars are the std over seeds.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Sequence

import numpy as np

from experiments.cli import Parser, UsageError, run_main
from experiments.logs import final_value, read_csv
from experiments.rundir import read_spec, run_members

CURVES = (
    ("return.png", "episode/return", "episode return"),
    ("cost.png", "episode/cost", "episode cost"),
    ("lambda.png", "lambda/mean", "mean Lagrange multiplier"),
)


def pyplot():
  """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def load_groups(run_dir: pathlib.Path) -> list[dict]:
  """Per cost limit of a run (per cost limit and grid cell of a sweep): label, limit,
  cell ('' or 'setting=value ...'), x [T] and each metric as [seeds, T]."""
  spec = read_spec(run_dir)
  by_limit: dict[tuple, list[dict[str, np.ndarray]]] = {}
  labels = {}
  for m in run_members(spec):
    path = run_dir / "metrics" / f"{m.name}.csv"
    if path.exists():
      data = read_csv(path)
      if len(data.get("update", ())):
        by_limit.setdefault((m.cost_limit, m.cell), []).append(data)
        labels[(m.cost_limit, m.cell)] = m.cell_label
  groups = []
  for (limit, cell), datas in by_limit.items():
    length = min(len(d["update"]) for d in datas)
    names = set.intersection(*(set(d) for d in datas))
    stacked = {n: np.stack([d[n][:length] for d in datas]) for n in names}
    x = stacked["train/env_steps"][0] if "train/env_steps" in stacked else stacked["update"][0]
    cell_label = labels[(limit, cell)]
    label = f"{run_dir.name} {spec['config'].get('algo', '')} limit={limit:g}"
    groups.append({
        "label": f"{label} {cell_label}".strip().replace("  ", " "),
        "run": run_dir.name, "limit": limit, "cell": cell_label, "x": x, "data": stacked,
    })
  return groups


def plot_runs(run_dirs: Sequence[pathlib.Path], out_dir: pathlib.Path) -> list[pathlib.Path]:
  """Writes the PNGs for `run_dirs` into `out_dir`; returns the paths written."""
  plt = pyplot()
  groups = [g for r in run_dirs for g in load_groups(pathlib.Path(r))]
  if not groups:
    raise UsageError(f"no metrics to plot in {[str(r) for r in run_dirs]}; "
                     "the runs have not logged an update yet")
  out_dir.mkdir(parents=True, exist_ok=True)
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  written = []
  for filename, metric, ylabel in CURVES:
    present = [g for g in groups if metric in g["data"]]
    if not present:
      continue
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, g in enumerate(present):
      c = colors[i % len(colors)]
      x, y = g["x"], g["data"][metric]
      count = g["data"].get("episode/count")
      if metric.startswith("episode/") and count is not None:
        # Updates where no episode ended repeat the last value; plot only fresh ones.
        fresh = (count > 0).all(0)
        if fresh.sum() >= 2:
          x, y = x[fresh], y[:, fresh]
      ax.plot(x, y.mean(0), color=c, label=f"{g['label']} (n={y.shape[0]})")
      if y.shape[0] > 1:
        ax.fill_between(x, y.min(0), y.max(0), color=c, alpha=0.2, linewidth=0)
      if metric == "episode/cost":
        ax.axhline(g["limit"], color=c, linestyle="--", linewidth=1)
    ax.set_xlabel("env steps" if "train/env_steps" in present[0]["data"] else "update")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / filename
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)

  sweeps = {}
  for g in groups:
    if "episode/return" in g["data"] and "episode/cost" in g["data"]:
      sweeps.setdefault(g["run"], []).append(g)
  if any(len(v) > 1 for v in sweeps.values()):
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for i, (run, gs) in enumerate(sweeps.items()):
      gs = sorted(gs, key=lambda g: g["limit"])
      ret = [final_value(g["data"]["episode/return"]) for g in gs]
      cost = [final_value(g["data"]["episode/cost"]) for g in gs]
      c = colors[i % len(colors)]
      ax.errorbar([v.mean() for v in cost], [v.mean() for v in ret],
                  xerr=[v.std() for v in cost], yerr=[v.std() for v in ret],
                  color=c, marker="o", capsize=3, label=run)
      for g, cv, rv in zip(gs, cost, ret):
        ax.annotate(f"d={g['limit']:g} {g['cell']}".strip(), (cv.mean(), rv.mean()),
                    fontsize=7,
                    textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("final episode cost")
    ax.set_ylabel("final episode return")
    ax.set_title("return / cost trade-off over cost limits d")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / "tradeoff.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
  from experiments import lambda_map
  for r in run_dirs:
    written += lambda_map.plot_run(pathlib.Path(r), out_dir)
  return written


def _main(argv: list[str]) -> int:
  parser = Parser(prog="python -m experiments.plot", description=__doc__.split("\n")[0])
  parser.add_argument("runs", nargs="+", type=pathlib.Path, help="run folders")
  parser.add_argument("--out", type=pathlib.Path, default=None,
                      help="output folder (default: RUN/plots for one run, ./plots for several)")
  args = parser.parse_args(argv)
  for r in args.runs:
    read_spec(r)  # fails on a non-run before anything is written
  out = args.out or (args.runs[0] / "plots" if len(args.runs) == 1 else pathlib.Path("plots"))
  for path in plot_runs(args.runs, out):
    print(path)
  return 0


def main(argv: Sequence[str] | None = None) -> int:
  return run_main(_main, argv)


if __name__ == "__main__":
  sys.exit(main())
