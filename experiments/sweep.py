"""Sweep traced settings in one compiled program: `python -m experiments.sweep [flags]`.

  python -m experiments.sweep --env PointGoal1 --algo ppo_statewise \
      --grid statewise_lambda_init=0.001,0.01,0.1,1 --grid statewise_lr=3e-5,1e-4,3e-4,1e-3 \
      --seeds 2 --steps 2e6 --out runs/lambda_sweep     # 4 x 4 cells x 2 seeds = 32 members
  python -m experiments.sweep --resume runs/lambda_sweep  # continue; cells.csv, heatmap again

A sweep is a run (experiments/run.py: all of its flags, its folder, checkpoints, --resume
and --steps, Ctrl-C / SIGTERM handling) whose batch axis is M = seeds x cost limits x grid
cells. Each `--grid SETTING=V1,V2,..` is one axis; the cells are the axes' product (first
axis major), and a member trains with the run's config plus its cell's values, each routed
where it lives as `jaxcrl.make_config` routes settings (a shared TrainConfig field, or the
algorithm's learner or multiplier family: `statewise_lr` lands in config.multiplier).
config.json records the axes under "grid". Members of one seed index share their PRNG key
across cells and limits (common random numbers), so a cell's member s trains exactly as
`experiments.run --seed s --seeds 1` with the cell's settings as flags would.

All cells train as one jit(scan(vmap(update))), so only traced settings may vary. A static
one (num_envs, pid_delay, multiplier_hidden, cg_iters: any pytree_node=False field), an
unknown one, another algorithm's, one also given by its own flag, or a malformed,
repeated or out-of-range value is a one-line `error: ...` (exit status 2, nothing written).
Cost limits are not a --grid setting: `--cost-limits D1,D2,..` is the limit axis.

At most 2 axes, counting the limit axis when --cost-limits has more than one limit: they
are the heatmap's rows and columns. More is an error at parse time; fix the other settings
with their flags, or run one sweep per value.

At the end, and on every --resume (a finished sweep is only re-summarised), the folder
gets, besides a run's files:
  cells.csv          one row per (cost limit, cell), limit major: the grid values,
                     cost_limit, seeds, return_mean, return_std, cost_mean, cost_std (over
                     seeds of each seed's mean over the last 10% of updates: summary.json's
                     by_cell) and within_limit (1 if cost_mean <= cost_limit, else 0)
  plots/heatmap.png  2 axes: final return and final cost side by side, the first axis on
                     the rows (values rising upwards), each cell's mean and std written in;
                     cells whose cost is over their limit are hatched red in both panels, and
                     the limit is in the cost panel's title and on its colour bar. 1 axis: bars
                     with the std over seeds, over-limit bars red, the limit dashed.
                     (--no-plots skips it, as it skips the run's plots.)
"""

from __future__ import annotations

import csv
import pathlib
import sys
from typing import Any, Sequence

import numpy as np

from experiments import distributed, rundir, run
from experiments.cli import UsageError, flag_name, given, run_main, usage_errors

CELLS_FILE = "cells.csv"
HEATMAP_FILE = "heatmap.png"
MAX_AXES = 2
STATS = ("return", "cost")   # episode/<stat>: the cells' columns and the heatmap's panels


def build_parser():
  parser = run.build_parser(
      prog="python -m experiments.sweep",
      description="Train a grid of traced settings x seeds (x cost limits) as one compiled "
                  "program; see the module docstring.")
  group = parser.add_argument_group("sweep")
  group.add_argument("--grid", action="append", default=[], metavar="SETTING=V1,V2,..",
                     help="one axis of the grid: a traced setting and its values; repeat for "
                          "a second axis (--cost-limits with several limits is an axis too)")
  return parser


def _parse_values(name: str, text: str) -> list[float]:
  try:
    values = [float(t) for t in text.split(",") if t.strip()]
  except ValueError:
    raise UsageError(f"--grid {name}: expected comma-separated numbers, got {text!r}") from None
  if not values:
    raise UsageError(f"--grid {name}= has no values; give numbers like {name}=0.1,1")
  labels = [f"{v:g}" for v in values]
  if len(set(labels)) != len(labels):
    raise UsageError(f"--grid {name}={text} repeats a value (values are told apart by "
                     "their %g form, 6 significant digits)")
  return values


def parse_grid(texts: Sequence[str], spec: dict[str, Any], argv: Sequence[str]
               ) -> list[dict[str, Any]]:
  """The --grid flags as the spec's axes [{"setting": name, "values": [float, ...]}];
  UsageError (or ValueError from the config's own checks) naming what is wrong."""
  from jaxcrl import algorithms
  config = rundir.config_from_spec(spec)
  algo = config.algo
  traced = [n for n in algorithms.traced_settings(algo) if n != "cost_limit"]
  axes, seen = [], set()
  for text in texts:
    name, sep, values_text = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name:
      raise UsageError(f"--grid {text!r}: expected SETTING=V1,V2,.. "
                       "(e.g. --grid lagrange_lr=0.01,0.1)")
    if name in seen:
      raise UsageError(f"--grid {name} is given twice; give each setting's values once")
    seen.add(name)
    if name == "cost_limit":
      raise UsageError("--grid cost_limit: give cost limits with --cost-limits D1,D2,..; "
                       "they are the sweep's limit axis")
    algorithms.route(algo, {name: None})  # ValueError: unknown, or another algorithm's
    if name in algorithms.static_settings(algo):
      raise UsageError(f"--grid {name}: {name} is static (it shapes the compiled program, so "
                       "it cannot vary inside one jit(vmap)); traced settings of "
                       f"{algo}: {', '.join(traced)}")
    if given(argv, flag_name(name)):
      raise UsageError(f"give {name} by --grid or by {flag_name(name)}, not both")
    values = _parse_values(name, values_text)
    for v in values:
      try:
        algorithms.with_settings(config, **{name: v})
      except ValueError as err:
        raise UsageError(f"--grid {name}={v:g}: {err}") from None
    axes.append({"setting": name, "values": values})
  if not axes:
    raise UsageError("give at least one --grid SETTING=V1,V2,..; a sweep over cost limits "
                     "alone is `python -m experiments.run --cost-limits D1,D2,..`")
  names = [a["setting"] for a in axes] + (
      ["cost_limit (--cost-limits)"] if len(spec["cost_limits"]) > 1 else [])
  if len(names) > MAX_AXES:
    raise UsageError(f"a sweep has at most {MAX_AXES} axes (the heatmap's rows and columns), "
                     f"got {len(names)}: {', '.join(names)}; fix the others with their flags")
  return axes


def plot_axes(spec: dict[str, Any]) -> list[tuple[str, list[float]]]:
  """The heatmap's axes in order: the grid's, then the cost limit if there are several."""
  axes = [(a["setting"], [float(v) for v in a["values"]]) for a in spec["grid"]]
  if len(spec["cost_limits"]) > 1:
    axes.append(("cost_limit", [float(d) for d in spec["cost_limits"]]))
  return axes


def cell_rows(spec: dict[str, Any], summary: dict[str, Any]) -> list[dict[str, float]]:
  """cells.csv's rows from summary.json's by_cell."""
  rows = []
  nan = {"mean": float("nan"), "std": float("nan")}
  for group in summary["by_cell"]:
    row = {**group["cell"], "cost_limit": group["cost_limit"], "seeds": spec["seeds"]}
    for stat in STATS:
      value = group["final"].get(f"episode/{stat}", nan)
      # null: every seed of the cell went non-finite (summary.json's members say where)
      row[f"{stat}_mean"], row[f"{stat}_std"] = (
          float("nan") if value[k] is None else value[k] for k in ("mean", "std"))
    row["within_limit"] = int(row["cost_mean"] <= row["cost_limit"])
    rows.append(row)
  return rows


def write_cells(path: pathlib.Path, rows: list[dict[str, float]]) -> None:
  """rows as a CSV (header: the first row's keys), replaced atomically."""
  tmp = path.with_name(path.name + ".tmp")
  with open(tmp, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(list(rows[0]))
    for row in rows:
      writer.writerow([v if isinstance(v, int) else repr(float(v)) for v in row.values()])
  tmp.replace(path)


def _on_grid(rows: list[dict], axes: list[tuple[str, list[float]]], key: str) -> np.ndarray:
  """rows[key] laid out on the axes: [len(axis 0), len(axis 1)] (or [len(axis 0)])."""
  out = np.full([len(values) for _, values in axes], np.nan)
  for row in rows:
    out[tuple(values.index(row[name]) for name, values in axes)] = row[key]
  return out


def plot_heatmap(rows: list[dict], axes: list[tuple[str, list[float]]],
                 path: pathlib.Path, title: str) -> pathlib.Path:
  """Final return and cost per cell side by side (see the module docstring)."""
  from matplotlib.patches import Rectangle

  from experiments.plot import pyplot
  plt = pyplot()
  limits = sorted({row["cost_limit"] for row in rows})
  limit_text = f"limit {limits[0]:g}" if len(limits) == 1 else "limit per cell"
  over = _on_grid(rows, axes, "within_limit") == 0
  labels = [[f"{v:g}" for v in values] for _, values in axes]
  if len(axes) == 2:
    fig, panels = plt.subplots(1, 2, figsize=(3.5 + 1.6 * len(labels[1]),
                                               1.5 + 0.8 * len(labels[0])))
  else:
    fig, panels = plt.subplots(1, 2, figsize=(4 + 1.4 * len(labels[0]), 4.5))
  for ax, stat in zip(panels, STATS):
    mean, std = _on_grid(rows, axes, f"{stat}_mean"), _on_grid(rows, axes, f"{stat}_std")
    heading = f"final episode {stat}"
    if stat == "cost":
      heading += f" ({limit_text}; red: over it)"
    ax.set_title(heading, fontsize=9)
    if len(axes) == 2:
      image = ax.imshow(mean, cmap="viridis" if stat == "return" else "magma",
                        origin="lower", aspect="auto")
      bar = fig.colorbar(image, ax=ax)
      low, high = image.get_clim()
      if stat == "cost" and len(limits) == 1 and low <= limits[0] <= high:
        bar.ax.axhline(limits[0], color="red", linestyle="--", linewidth=1.5)
      for i, j in np.ndindex(mean.shape):
        shade = image.norm(mean[i, j]) if np.isfinite(mean[i, j]) else 0.0
        ax.text(j, i, f"{mean[i, j]:.3g}\n±{std[i, j]:.2g}", ha="center", va="center",
                fontsize=7, color="black" if shade > 0.6 else "white",
                bbox={"facecolor": image.cmap(shade), "edgecolor": "none", "pad": 1})
        if over[i, j]:
          ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///",
                                 edgecolor="red", linewidth=1.5))
      ax.set_xticks(range(len(labels[1])), labels[1])
      ax.set_yticks(range(len(labels[0])), labels[0])
      ax.set_xlabel(axes[1][0])
      ax.set_ylabel(axes[0][0])
    else:
      x = np.arange(len(labels[0]))
      colors = ["tab:red" if o else "tab:blue" for o in over]
      bars = ax.bar(x, mean, yerr=std, capsize=3, color=colors, alpha=0.8)
      for b, o in zip(bars, over):
        if o:
          b.set_hatch("///")
      if stat == "cost":
        ax.hlines(_on_grid(rows, axes, "cost_limit"), x - 0.4, x + 0.4, colors="red",
                  linestyles="--", label="cost limit", zorder=3)
        ax.legend(fontsize=7)
      ax.set_xticks(x, labels[0])
      ax.set_xlabel(axes[0][0])
      ax.set_ylabel(f"final episode {stat}")
      ax.grid(alpha=0.3, axis="y")
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def write_results(run_dir: pathlib.Path, spec: dict[str, Any], summary: dict[str, Any],
                  plots: bool = True) -> list[pathlib.Path]:
  """cells.csv and (if plots) plots/heatmap.png of a sweep, from its summary."""
  rows = cell_rows(spec, summary)
  write_cells(run_dir / CELLS_FILE, rows)
  written = [run_dir / CELLS_FILE]
  if plots:
    title = (f"{run_dir.name}: {spec['env']} {spec['config']['algo']}, update "
             f"{summary['updates']}\nmean ± std over {spec['seeds']} seed(s) of the mean "
             "over the last 10% of updates")
    written.append(plot_heatmap(rows, plot_axes(spec), run_dir / "plots" / HEATMAP_FILE,
                                title))
  return written


def _prepare(args, parser, argv: list[str]):
  """run's validation plus the grid's; writes nothing. -> (run_dir, spec, resuming, built)."""
  with usage_errors():
    if args.resume is not None and rundir.is_run(args.resume) and not rundir.read_spec(
        args.resume).get("grid"):
      raise UsageError(f"{str(args.resume)!r} is a run, not a sweep (its config.json has no "
                       f"grid); continue it with python -m experiments.run --resume "
                       f"{args.resume}")
    run_dir, spec, resuming = run.validate(args, parser, argv)
    if not resuming:
      spec = {**spec, "grid": parse_grid(args.grid, spec, argv)}
    return run_dir, spec, resuming, rundir.build(spec)


def _main(argv: list[str]) -> int:
  distributed.start(argv)  # first: before anything starts the XLA backend
  parser = build_parser()
  args = parser.parse_args(argv)
  run_dir, spec, resuming, built = _prepare(args, parser, argv)
  status = run.train_and_report(args, run_dir, spec, resuming, built)
  if status == 0:
    print(f"cells: {run_dir / CELLS_FILE}")
  return status


def main(argv: Sequence[str] | None = None) -> int:
  return run_main(_main, argv)


if __name__ == "__main__":
  sys.exit(main())
