"""Per-member metric logs of a run: one CSV and one TensorBoard dir per (seed, cost limit)
and, in a sweep, grid cell.

A run trains `M = seeds x cost limits` members in one program (a sweep: x grid cells);
each update yields a flat dict of scalars per member. Rows are keyed by `update` (1-based count of updates done), so
a resumed run first drops rows past its checkpoint (`truncate`) and TensorBoard purges
events past it (`purge_step`), and the logs read as if the run had never stopped.

Layout under the run dir:
  metrics/seed{S}_limit{L}.csv   columns: update, <metric names, sorted>; a sweep's
                                 members add their cell: seed0_limit25_lagrange_lr0.1.csv
  metrics/timing.csv             columns: update, env_steps_per_s (per member, one row
                                 per chunk of updates ending at `update`; wall-clock, so
                                 kept apart from the reproducible metrics)
  tb/seed{S}_limit{L}/           tensorboardX event files (train/env_steps_per_s included)
"""

from __future__ import annotations

import csv
import dataclasses
import math
import pathlib
from typing import Mapping, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Member:
  """One trained copy: a seed index, a cost limit and, in a sweep, its grid cell.

  cell: ((setting, value), ...), the traced settings this member trains with on top of
    the run's config (experiments/sweep.py); () in a plain run.
  """
  seed: int
  cost_limit: float
  cell: tuple[tuple[str, float], ...] = ()

  @property
  def cell_suffix(self) -> str:
    """'' in a plain run, else '_lagrange_lr0.1_lambda_init0' (values as %g)."""
    return "".join(f"_{setting}{value:g}" for setting, value in self.cell)

  @property
  def cell_label(self) -> str:
    """'' in a plain run, else 'lagrange_lr=0.1 lambda_init=0'."""
    return " ".join(f"{setting}={value:g}" for setting, value in self.cell)

  @property
  def name(self) -> str:
    return f"seed{self.seed}_limit{self.cost_limit:g}{self.cell_suffix}"


def members(seeds: int, cost_limits: Sequence[float],
            cells: Sequence[tuple] = ((),)) -> list[Member]:
  """The order of the run's batch axis: seed-major, then cost limit, then grid cell (a
  plain run has the one empty cell)."""
  return [Member(s, float(c), tuple(cell)) for s in range(seeds) for c in cost_limits
          for cell in cells]


def read_csv(path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """A metrics CSV as column name -> float array (empty arrays if it has no rows)."""
  with open(path, newline="") as f:
    reader = csv.reader(f)
    header = next(reader, [])
    rows = [[float(v) for v in row] for row in reader if row]
  data = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(header))
  return {name: data[:, i] for i, name in enumerate(header)}


def truncate(path: pathlib.Path, last_update: int) -> None:
  """Drops rows with `update > last_update` (written after the checkpoint resumed from)."""
  if not path.exists():
    return
  with open(path, newline="") as f:
    rows = list(csv.reader(f))
  if not rows:
    return
  _rewrite(path, [rows[0]] + [r for r in rows[1:] if r and int(float(r[0])) <= last_update])


def _rewrite(path: pathlib.Path, rows: list[list[str]]) -> None:
  """Replaces the CSV's content with `rows` atomically (temp file + rename), so a
  process killed mid-write leaves the old file, never a half-written one."""
  tmp = path.with_name(path.name + ".tmp")
  with open(tmp, "w", newline="") as f:
    csv.writer(f).writerows(rows)
  tmp.replace(path)


ENV_STEPS = "train/env_steps"


class MetricsLog:
  """Appends per-update metrics of every member to its CSV and TensorBoard dir."""

  def __init__(self, run_dir: pathlib.Path, run_members: Sequence[Member],
               start_update: int = 0, tensorboard: bool = True,
               steps_per_update: int | None = None):
    """steps_per_update: env steps per update per member; when given, the
    `train/env_steps` column is written from the update count as an exact integer (the
    trainer's float32 metric stops counting every step at 2**24)."""
    self.members = list(run_members)
    self._steps_per_update = steps_per_update
    self._csv_dir = run_dir / "metrics"
    self._csv_dir.mkdir(parents=True, exist_ok=True)
    self._columns: list[str] | None = None
    self._writers = []
    for m in self.members:
      truncate(self.csv_path(m), start_update)
    truncate(self.timing_path, start_update)
    if tensorboard:
      from tensorboardX import SummaryWriter
      for m in self.members:
        self._writers.append(SummaryWriter(
            str(run_dir / "tb" / m.name),
            purge_step=start_update + 1))

  def csv_path(self, member: Member) -> pathlib.Path:
    return self._csv_dir / f"{member.name}.csv"

  @property
  def timing_path(self) -> pathlib.Path:
    return self._csv_dir / "timing.csv"

  def write_timing(self, last_update: int, env_steps_per_s: float) -> None:
    """Logs the env steps/s per member of the chunk of updates ending at last_update."""
    new = not self.timing_path.exists() or self.timing_path.stat().st_size == 0
    with open(self.timing_path, "a", newline="") as f:
      w = csv.writer(f)
      if new:
        w.writerow(["update", "env_steps_per_s"])
      w.writerow([last_update, _fmt(env_steps_per_s)])
    for writer in self._writers:
      writer.add_scalar("train/env_steps_per_s", float(env_steps_per_s), last_update)
      writer.flush()

  def write(self, first_update: int, metrics: Mapping[str, np.ndarray]) -> None:
    """Logs `metrics[name]` of shape [K, M] as updates first_update .. first_update+K-1."""
    names = sorted(metrics)
    if self._columns is None:
      self._columns = names
      for m in self.members:
        path = self.csv_path(m)
        if not path.exists() or path.stat().st_size == 0:
          with open(path, "w", newline="") as f:
            csv.writer(f).writerow(["update"] + names)
        else:
          with open(path, newline="") as f:
            header = next(csv.reader(f))
          if header[1:] != names:
            _add_columns(path, names)
    values = np.stack([np.asarray(metrics[n], np.float64) for n in names], axis=-1)
    num_updates = values.shape[0]
    if self._steps_per_update and ENV_STEPS in names:
      updates = np.arange(first_update, first_update + num_updates, dtype=np.float64)
      values[:, :, names.index(ENV_STEPS)] = (updates * self._steps_per_update)[:, None]
    for j, m in enumerate(self.members):
      with open(self.csv_path(m), "a", newline="") as f:
        w = csv.writer(f)
        for k in range(num_updates):
          w.writerow([first_update + k] + [_fmt(v) for v in values[k, j]])
      if self._writers:
        for k in range(num_updates):
          for i, n in enumerate(names):
            if math.isfinite(values[k, j, i]):  # a frozen member's rows are NaN (run.py)
              self._writers[j].add_scalar(n, float(values[k, j, i]), first_update + k)
    for w in self._writers:
      w.flush()

  def close(self) -> None:
    for w in self._writers:
      w.close()


def _add_columns(path: pathlib.Path, names: list[str]) -> None:
  """Rewrites the CSV with columns `update` + names, old rows holding nan in new columns
  (a run resumed by a newer trainer that reports more metrics). A metric that is gone is
  an error: its history would be dropped."""
  with open(path, newline="") as f:
    rows = list(csv.reader(f))
  old = rows[0][1:]
  gone = sorted(set(old) - set(names))
  if gone:
    raise ValueError(f"{path} has columns {gone} that the trainer no longer reports "
                     f"(it reports {names}); delete it or start a new run")
  index = {name: i + 1 for i, name in enumerate(old)}
  _rewrite(path, [["update"] + names] + [
      [row[0]] + [row[index[n]] if n in index else "nan" for n in names]
      for row in rows[1:] if row])


def _fmt(v: float) -> str:
  return repr(float(v)) if math.isfinite(v) else str(float(v))


FINAL_FRACTION = 0.1


def final_value(series: np.ndarray) -> np.ndarray:
  """[..., T] -> [...]: the mean over the last FINAL_FRACTION of updates (at least one).

  The one definition of a run's "final" number: summary.json, plots and compare use it.
  """
  series = np.asarray(series)
  window = max(1, int(round(series.shape[-1] * FINAL_FRACTION)))
  return series[..., -window:].mean(axis=-1)
