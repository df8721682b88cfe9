"""The results page of a benchmark folder: `python -m experiments.results DIR`.

`python -m experiments.benchmark` calls it at the end of a suite; run it alone to see a
suite that is still training (unfinished runs are marked). It writes

  DIR/RESULTS.md                       one table per task (below), the commands, the sources
  DIR/figures/results_<task>.png       learning curves: episode return and cost against env
                                       steps, one line per algorithm (mean over seeds, the
                                       band their min..max), the cost limit dotted
  DIR/figures/results_tradeoff.png     final return against final cost, one panel per task

A table's row is one (algorithm, cost limit) of the task's runs:
  return, cost     each seed's final value (`experiments.logs.final_value`: the mean over the
                   last 10% of updates), then mean ± std over the seeds (numpy's std, ddof 0;
                   one seed: the value alone). Seeds that went non-finite are left out and
                   counted. Each seed's own values follow the table ("Per seed").
  cumulative cost  train/cumulative_cost at the last update: the cost of every env step
                   trained on, per seed; mean ± std over seeds
  wall             the run's wall time summed over the suite's sessions (suite.json): build,
                   compilation, training and checkpoints
  env steps/s      summary.json's steady speed (chunks after the first, which compiles) per
                   member, times the members trained together (seeds x cost limits)
  OmniSafe         its published return and cost at cost limit 25 for the same task
                   (experiments/suites/omnisafe_reference.json: on-policy Table 2 at 1e7
                   steps, off-policy Table 2 at 1e6 / 3e6), only on rows at limit 25
Every table and figure names the command that made the suite and the commit(s) it ran at.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
from typing import Any, Sequence

import numpy as np

from experiments import benchmark
from experiments.cli import Parser, run_main
from experiments.logs import final_value
from experiments.plot import load_groups, pyplot
from experiments.rundir import SUMMARY_FILE, is_run, read_spec

PAGE = "RESULTS.md"
FIGURES = "figures"
REFERENCE = benchmark.SUITES_DIR / "omnisafe_reference.json"
STATS = ("episode/return", "episode/cost")


@dataclasses.dataclass
class Row:
  """One (task, algorithm, cost limit) of a suite folder. Stats are (mean, std) over the
  seeds whose value is finite, None when no seed has one."""
  task: str
  algo: str
  run: str
  limit: float
  status: str                  # finished, partial: .., not started, failed: .., ...
  seeds: int = 0               # seeds with finite final numbers
  nonfinite: int = 0           # seeds left out: non-finite
  ret: tuple[float, float] | None = None
  cost: tuple[float, float] | None = None
  cumulative_cost: tuple[float, float] | None = None
  env_steps: int = 0           # per seed, at the last logged update
  wall_s: float | None = None
  steps_per_s: float | None = None
  per_seed: tuple[tuple[float, float], ...] = ()  # each seed's final (return, cost); NaN: non-finite
  curves: dict[str, tuple[np.ndarray, np.ndarray]] = dataclasses.field(default_factory=dict)


def _stat(values: np.ndarray) -> tuple[float, float] | None:
  finite = values[np.isfinite(values)]
  return (float(finite.mean()), float(finite.std())) if finite.size else None


def fresh_curve(group: dict, metric: str) -> tuple[np.ndarray, np.ndarray]:
  """(x [T'], y [seeds, T']) of `metric`: for episode metrics only the updates where an
  episode ended in every seed (the others repeat the last value), when there are 2 such."""
  x, y = group["x"], group["data"][metric]
  count = group["data"].get("episode/count")
  if metric.startswith("episode/") and count is not None:
    fresh = (count > 0).all(0)
    if fresh.sum() >= 2:
      return x[fresh], y[:, fresh]
  return x, y


def _timing(run_dir: pathlib.Path, record: dict) -> tuple[float | None, float | None]:
  """(wall seconds, steady env steps/s of all members) of a run, where known."""
  wall = record.get("wall_s")
  summary_path = run_dir / SUMMARY_FILE
  if not summary_path.is_file():
    return wall, None
  summary = json.loads(summary_path.read_text())
  timing = summary.get("timing_last_session", {})
  wall = wall if wall is not None else timing.get("wall_s")
  per_member = timing.get("steady_env_steps_per_s_per_member")
  members = len(summary.get("members", ())) or 1
  return wall, (per_member * members if per_member is not None else None)


def collect(folder: pathlib.Path, manifest: dict[str, Any]) -> list[Row]:
  """The rows of every run of the suite folder, in the suite's order (task-major)."""
  limits = [float(d) for d in manifest["definition"]["cost_limits"]]
  rows = []
  for name, record in manifest["runs"].items():
    run_dir = folder / benchmark.RUNS_DIR / name
    base = dict(task=record["task"], algo=record["algo"], run=name)
    if not is_run(run_dir):
      rows += [Row(**base, limit=d, status="not started") for d in limits]
      continue
    summary = run_dir / SUMMARY_FILE
    spec = read_spec(run_dir)
    target = spec["config"]["num_timesteps"]
    wall, speed = _timing(run_dir, record)
    groups = {g["limit"]: g for g in load_groups(run_dir)}
    for d in limits:
      group = groups.get(d)
      if group is None:
        rows.append(Row(**base, limit=d, status="started, nothing logged yet", wall_s=wall))
        continue
      data = group["data"]
      env_steps = int(group["x"][-1])
      if record.get("failed"):
        status = f"failed: {record['failed']}"
      elif summary.is_file() and json.loads(summary.read_text()).get("finished"):
        status = "finished"
      else:
        status = f"partial: {env_steps:,} of {target:,} steps"
      finals = {k: final_value(data[k]) for k in STATS if k in data}
      ok = np.all([np.isfinite(v) for v in finals.values()], axis=0)
      if "episode/count" in data and not np.nansum(data["episode/count"]):
        status += "; no episode has ended yet"
        finals = {k: np.full_like(v, np.nan) for k, v in finals.items()}
      cumulative = data.get("train/cumulative_cost", np.full(ok.shape + (1,), np.nan))[:, -1]
      rows.append(Row(
          **base, limit=d, status=status, seeds=int(ok.sum()), nonfinite=int((~ok).sum()),
          ret=_stat(finals["episode/return"][ok]), cost=_stat(finals["episode/cost"][ok]),
          cumulative_cost=_stat(cumulative[ok]), env_steps=env_steps, wall_s=wall,
          steps_per_s=speed,
          per_seed=tuple(zip(np.where(ok, finals["episode/return"], np.nan).tolist(),
                             np.where(ok, finals["episode/cost"], np.nan).tolist())),
          curves={k: fresh_curve(group, k) for k in STATS if k in data}))
  return rows


def read_reference() -> dict[str, Any]:
  return json.loads(REFERENCE.read_text())


def _reference_index(reference: dict[str, Any]) -> dict[tuple[str, str], dict]:
  return {(e["task"], e["algo"]): e for e in reference["entries"]}


# ---- text ------------------------------------------------------------------------------

def _pm(stat: tuple[float, float] | None, seeds: int, big: bool = False) -> str:
  """'9.8 ± 5.0' (2 decimals under 1, thousands separated when big); one seed: the value."""
  if stat is None:
    return "—"
  mean, std = stat
  if big:
    return f"{mean:,.0f}" if seeds == 1 else f"{mean:,.0f} ± {std:,.0f}"
  digits = 2 if abs(mean) < 1 else 1
  return f"{mean:.{digits}f}" if seeds == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _duration(seconds: float | None) -> str:
  if seconds is None:
    return "—"
  seconds = int(round(seconds))
  if seconds < 3600:
    return f"{seconds // 60} min {seconds % 60:02d} s"
  return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _published(entry: dict | None, key: str, steps: int) -> str:
  if entry is None:
    return "—"
  mean, std = entry[key]
  note = "" if entry["steps"] == steps else f" (at {entry['steps'] / 1e6:g}M)"
  return f"{mean:g} ± {std:g}{note}"


def provenance(manifest: dict[str, Any]) -> tuple[str, str]:
  """(the command that made the suite folder, its commit(s): 'abc1234' or 'abc1234,
  def5678' when its sessions ran at several)."""
  sessions = manifest.get("sessions") or [{}]
  commits = list(dict.fromkeys(s.get("commit", "unknown") for s in sessions))
  return sessions[0].get("command", "?"), ", ".join(commits)


def table(rows: Sequence[Row], reference: dict[tuple[str, str], dict], steps: int) -> str:
  """One task's rows as a markdown table."""
  columns = ("algorithm", "limit", "return", "cost", "cost ≤ limit", "cumulative cost",
             "env steps / seed", "wall", "env steps/s", "OmniSafe return", "OmniSafe cost",
             "run")
  lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
  for r in rows:
    entry = reference.get((r.task, r.algo)) if r.limit == 25.0 else None
    within = "—" if r.cost is None else ("yes" if r.cost[0] <= r.limit else "**no**")
    seeds = (f" ({r.seeds} of {r.seeds + r.nonfinite} seeds; {r.nonfinite} non-finite)"
             if r.nonfinite else "")
    state = "" if r.status == "finished" else f" ({r.status})"
    cells = (f"`{r.algo}`", f"{r.limit:g}", _pm(r.ret, r.seeds) + seeds, _pm(r.cost, r.seeds),
             within, _pm(r.cumulative_cost, r.seeds, big=True),
             f"{r.env_steps:,}" if r.env_steps else "—", _duration(r.wall_s),
             f"{r.steps_per_s:,.0f}" if r.steps_per_s else "—",
             _published(entry, "return", steps), _published(entry, "cost", steps),
             f"`{r.run}`{state}")
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def seeds_line(rows: Sequence[Row]) -> str:
  """One task's final return / cost of every seed, per row, in seed order ('—' where a seed
  went non-finite): the numbers behind each row's mean ± std."""
  one = lambda v: _pm((v, 0.0), 1) if np.isfinite(v) else "—"
  cells = [f"`{r.algo}`" + (f" at {r.limit:g}" if len({x.limit for x in rows}) > 1 else "")
           + " " + ", ".join(f"{one(ret)} / {one(cost)}" for ret, cost in r.per_seed)
           for r in rows if r.per_seed]
  return "Per seed (return / cost, seeds in order): " + "; ".join(cells) + "." if cells else ""


# ---- figures ---------------------------------------------------------------------------

def _colors(algos: Sequence[str]) -> dict[str, Any]:
  plt = pyplot()
  cmap = plt.get_cmap("tab10" if len(algos) <= 10 else "tab20")
  return {a: cmap(i % cmap.N) for i, a in enumerate(algos)}


def _save(fig, path: pathlib.Path, command: str, commit: str, top: float = 1.0
          ) -> pathlib.Path:
  """Lays the figure out above a footer naming the command and the commit, writes it."""
  fig.tight_layout(rect=(0, 0.03, 1, top))
  fig.text(0.005, 0.005, f"{command}  ·  commit {commit}", fontsize=6.5, color="0.35",
           ha="left", va="bottom")
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=100)
  pyplot().close(fig)
  return path


def plot_curves(task: str, rows: Sequence[Row], colors: dict, path: pathlib.Path,
                command: str, commit: str) -> pathlib.Path:
  """Episode return and cost against env steps, one line per (algorithm, limit)."""
  plt = pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
  several = len({r.limit for r in rows}) > 1
  for r in rows:
    for ax, metric in zip(axes, STATS):
      if metric not in r.curves:
        continue
      x, y = r.curves[metric]
      label = r.algo + (f" d={r.limit:g}" if several else "")
      ax.plot(x, np.nanmean(y, 0), color=colors[r.algo], label=label, linewidth=1.4,
              linestyle="-" if r.limit == rows[0].limit else "--")
      if y.shape[0] > 1:
        ax.fill_between(x, np.nanmin(y, 0), np.nanmax(y, 0), color=colors[r.algo],
                        alpha=0.18, linewidth=0)
  for d in sorted({r.limit for r in rows}):
    axes[1].axhline(d, color="red", linestyle=":", linewidth=1.2, label=f"cost limit {d:g}")
  seeds = max((r.seeds + r.nonfinite for r in rows), default=0)
  for ax, metric in zip(axes, STATS):
    ax.set_xlabel("env steps per seed")
    ax.set_ylabel(metric.replace("/", " "))
    ax.grid(alpha=0.3)
  axes[1].legend(fontsize=7, loc="best")
  fig.suptitle(f"{task}: mean over {seeds} seed(s), band: min..max over seeds", fontsize=10)
  return _save(fig, path, command, commit)


def plot_tradeoff(rows: Sequence[Row], tasks: Sequence[str], colors: dict,
                  path: pathlib.Path, command: str, commit: str) -> pathlib.Path:
  """Final return against final cost, one panel per task, the limit dotted and the region
  over it shaded."""
  plt = pyplot()
  cols = min(4, len(tasks))
  nrows = -(-len(tasks) // cols)
  fig, axes = plt.subplots(nrows, cols, figsize=(3.6 * cols, 3.2 * nrows + 0.6),
                           squeeze=False)
  for ax, task in zip(axes.flat, tasks):
    mine = [r for r in rows if r.task == task and r.ret is not None and r.cost is not None]
    for r in mine:
      ax.errorbar(r.cost[0], r.ret[0], xerr=r.cost[1], yerr=r.ret[1], color=colors[r.algo],
                  marker="o", markersize=5, capsize=2, linestyle="none", label=r.algo)
    for d in sorted({r.limit for r in rows if r.task == task}):
      ax.axvline(d, color="red", linestyle=":", linewidth=1.2)
      ax.axvspan(d, max([d * 1.05] + [r.cost[0] + r.cost[1] for r in mine]) * 1.05,
                 color="red", alpha=0.05, linewidth=0)
    ax.set_xlim(left=0)
    ax.set_title(task, fontsize=9)
    ax.set_xlabel("final episode cost", fontsize=8)
    ax.set_ylabel("final episode return", fontsize=8)
    ax.grid(alpha=0.3)
  for ax in list(axes.flat)[len(tasks):]:
    ax.axis("off")
  handles = {}
  for ax in axes.flat:
    for h, label in zip(*ax.get_legend_handles_labels()):
      handles.setdefault(label, h)
  fig.legend(handles.values(), handles.keys(), loc="upper center", fontsize=7,
             ncol=min(len(handles), 7), frameon=False)
  return _save(fig, path, command, commit, top=0.92)


# ---- the page --------------------------------------------------------------------------

def write_results(folder: pathlib.Path) -> pathlib.Path:
  """Writes RESULTS.md and figures/ of the suite folder; returns the page's path."""
  folder = pathlib.Path(folder)
  manifest = benchmark.read_manifest(folder)
  definition = manifest["definition"]
  rows = collect(folder, manifest)
  reference = read_reference()
  index = _reference_index(reference)
  command, commits = provenance(manifest)
  writer = benchmark.commit()
  steps = int(definition["settings"].get("num_timesteps", 0))
  colors = _colors(definition["algorithms"])
  made = f"`{command}` at commit `{commits}`"
  finished = {r.run for r in rows} - {r.run for r in rows if r.status != "finished"}
  lines = [
      f"# Results: suite `{manifest['suite']}` (version {manifest['version']})", "",
      definition["description"] + ".", "",
      f"Made by {made}"
      + (f"; this page written at commit `{writer}`" if writer not in commits else "") + ".",
      f"Suite file: `{manifest['source']}` (sha256 of its resolved definition "
      f"`{manifest['sha256'][:12]}`); folder: `{folder}`.", "",
      f"- Tasks: {', '.join(definition['tasks'])}. Algorithms: "
      + ", ".join(f"`{a}`" for a in definition["algorithms"])
      + (f" (the registry's {definition['selector']} set)" if definition.get("selector")
         else "") + ".",
      f"- Runs: {len(finished)} of {len(manifest['runs'])} finished; wall time "
      f"{_duration(sum(r.get('wall_s', 0.0) for r in manifest['runs'].values()))} over "
      f"{len(manifest.get('sessions', ()))} session(s).",
      f"- Seeds: {definition['seeds']}; cost limits: "
      f"{', '.join(f'{float(d):g}' for d in definition['cost_limits'])}; budget: "
      + (f"{steps:,} env steps per seed" if steps else "each algorithm's default")
      + " (per-algorithm settings: the commands under each table).",
      "- return, cost: each seed's mean over the last 10% of updates, then mean ± std over "
      "seeds (ddof 0; one seed: the value). cumulative cost: the cost of every env step "
      "trained on (`train/cumulative_cost`), per seed. wall: the run's wall time over all "
      "sessions (compilation and checkpoints included). env steps/s: steady training speed "
      "of all seeds together (compilation excluded).",
      "- OmniSafe: its published return and cost at cost limit 25 ("
      f"[{reference['repository'].removeprefix('https://github.com/')}]"
      f"({reference['repository']}) at commit `{reference['commit'][:7]}`: "
      "`benchmarks/on-policy/README.md` Table 2, 1e7 steps; off-policy algorithms from "
      "`benchmarks/off-policy/README.md` Table 2, 1e6-3e6 steps), on Safety-Gymnasium's "
      "MuJoCo tasks with OmniSafe's own batch sizes, seeds and evaluation: a reference, not "
      "a side-by-side measurement.", ""]
  figures = folder / FIGURES
  for task in definition["tasks"]:
    mine = [r for r in rows if r.task == task]
    lines += [f"## {task}", "", f"Made by {made}.", "", table(mine, index, steps), ""]
    lines += [line, ""] if (line := seeds_line(mine)) else []
    if any(r.curves for r in mine):
      path = plot_curves(task, [r for r in mine if r.curves], colors,
                         figures / f"results_{task}.png", command, commits)
      lines += [f"![{task}: learning curves, made by {command} at commit {commits}]"
                f"({FIGURES}/{path.name})", ""]
    lines += ["Each row's run, alone:", "", "```"]
    lines += [manifest["runs"][name]["command"]
              for name in dict.fromkeys(r.run for r in mine)]
    lines += ["```", ""]
  if any(r.ret is not None for r in rows):
    path = plot_tradeoff(rows, definition["tasks"], colors, figures / "results_tradeoff.png",
                         command, commits)
    lines += ["## Return against cost", "",
              f"Final return against final cost (± std over seeds), the cost limit dotted "
              f"and the region over it shaded. Made by {made}.", "",
              f"![Return against cost, made by {command} at commit {commits}]"
              f"({FIGURES}/{path.name})", ""]
  page = folder / PAGE
  tmp = page.with_name(PAGE + ".tmp")
  tmp.write_text("\n".join(lines))
  tmp.replace(page)
  return page


def _main(argv: list[str]) -> int:
  parser = Parser(prog="python -m experiments.results", description=__doc__.split("\n")[0])
  parser.add_argument("folder", type=pathlib.Path, help="a benchmark (suite) folder")
  args = parser.parse_args(argv)
  benchmark.read_manifest(args.folder)  # fails on a non-suite folder before writing
  print(write_results(args.folder))
  return 0


def main(argv: Sequence[str] | None = None) -> int:
  return run_main(_main, argv)


if __name__ == "__main__":
  sys.exit(main())
