"""Train, log, checkpoint: `python -m experiments.run [flags]` (`--help` lists them all).

  python -m experiments.run --env PointGoal1 --algo ppo_statewise --steps 5e6 --seeds 3 \
      --cost-limits 10,25,50 --out runs/sweep
  python -m experiments.run --resume runs/sweep     # continue where it stopped
  python -m experiments.run --resume runs/sweep --steps 1e7   # ... and train for longer

Seeds x cost limits train together as one batch axis M of one compiled program:
jit(scan(vmap(update))) runs `--log-every` updates per host round-trip. Member (s, d) uses
key jax.random.key(seed + s) for every limit d, so limits compare on common random numbers.
`python -m experiments.sweep` is this run with grid cells of traced settings added to the
batch axis (experiments/sweep.py); it shares train_run, checkpoints and resume.

Run folder (see experiments/rundir.py): config.json, metrics/*.csv, tb/*, checkpoints/<update>/
(the whole batched TrainState every --checkpoint-every updates and at the end),
summary.json and plots/*.png at the end. Checkpoints fall on chunk boundaries, so a resumed
run replays exactly the same compiled chunks and on CPU ends bit-identical to an
uninterrupted one. Ctrl-C (exit 130) or SIGTERM (exit 143, e.g. a scheduler's preemption)
saves the last completed chunk before exiting.

Faults (docs/scale_and_faults.md): every chunk checks each member's losses and parameters;
a non-finite one stops the run with the last finite checkpoint kept (exit 3), or with
--on-nonfinite continue freezes that member and trains the rest. A checkpoint that cannot
be written stops the run (exit 4) or, with --checkpoint-errors continue, is retried at the
next one; the previous checkpoint stays restorable. --coordinator, --num-processes and
--process-id (or SLURM / Open MPI) spread one run over several processes
(experiments/distributed.py).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import importlib.metadata
import json
import pathlib
import signal
import sys
import threading
import time
from typing import Any, Callable, Sequence

import numpy as np

from experiments import distributed, guard, rundir
from experiments.cli import (Parser, UsageError, add_dataclass_flags, dataclass_to_dict, given,
                             parse_floats, parse_int, run_main,
                             usage_errors)

# The default run, `python -m experiments.run` with no flags: under 3 minutes on a 2-core
# CPU, compile included (about 1 minute from an empty compile cache), and long enough to end
# visibly learning: return 5.3 against the random policy's -0.1, cost 25.0 against the
# limit 25 and the random policy's 37, lambda 0.2 (docs/usage.md). Flags override these.
DEFAULT_ENV = "PointGoal1"
DEFAULT_OVERRIDES = dict(
    algo="ppo_lag",
    num_timesteps=3_000_000,
    num_envs=32,
    unroll_length=125,
    num_minibatches=8,
    num_epochs=4,
)
FAULT_MODES = ("stop", "continue")
EXIT_CHECKPOINT = 4
# Flags that say how this process runs, not what the run is: they may go with --resume.
RUNTIME_FLAGS = ("--no-progress", "--no-plots", "--on-nonfinite", "--checkpoint-errors",
                 *distributed.FLAGS)
SUMMARY_METRICS = ("episode/return", "episode/cost", "episode/cost_rate",
                   "constraint/violation_frac", "lambda/mean", "lambda/max")
PACKAGES = ("jax", "jaxlib", "flax", "optax", "chex", "brax", "mujoco", "mujoco-mjx",
            "orbax-checkpoint", "numpy", "tensorboardX", "matplotlib")


def _default_config():
  import jaxcrl
  return dataclasses.replace(jaxcrl.TrainConfig(), **DEFAULT_OVERRIDES)


def _algo_help() -> str:
  from jaxcrl import algorithms
  return "algorithm: " + "; ".join(f"{name} ({a.paper})"
                                    for name, a in algorithms.ALGORITHMS.items())


def _add_family_flags(parser: Parser) -> list[str]:
  """One --flag per family setting (learner or multiplier), default None = the
  algorithm's own default; the help names the algorithms that take it."""
  from jaxcrl import algorithms
  from experiments.cli import field_docs, flag_name, _parser_for
  group = parser.add_argument_group(
      "algorithm settings (each taken only by the algorithms it names; unset = their "
      "defaults)")
  names = []
  for name, (defaults, algos) in algorithms.family_settings().items():
    value = getattr(defaults, name)
    field = next(f for f in dataclasses.fields(defaults) if f.name == name)
    parse, metavar = _parser_for(value, field.type)
    doc = field_docs(type(defaults)).get(name, "")
    shown = {repr(getattr(algorithms.ALGORITHMS[a].learner_defaults, name,
                          getattr(algorithms.ALGORITHMS[a].multiplier_defaults, name, None)))
             for a in algos}
    default = ", ".join(sorted(shown))
    group.add_argument(flag_name(name), dest=name, type=parse, default=argparse.SUPPRESS,
                       metavar=metavar,
                       help=f"{doc} [{', '.join(algos)}; default {default}]")
    names.append(name)
  return names


def build_parser(prog: str = "python -m experiments.run",
                 description: str = "Train a constrained RL algorithm on a jaxcrl env; see "
                                    "the module docstring.") -> Parser:
  """The run's flags (experiments.sweep adds --grid to them)."""
  parser = Parser(prog=prog, description=description)
  run = parser.add_argument_group("run")
  run.add_argument("--env", default=DEFAULT_ENV, help="registered env name or Safety-Gym id")
  run.add_argument("--backend", default=None,
                   help="physics: 'planar' (navigation default) or 'mjx'; velocity tasks take "
                        "a Brax pipeline name")
  run.add_argument("--seeds", type=parse_int, default=1, help="number of seeds trained together")
  run.add_argument("--seed", type=parse_int, default=0, help="first seed")
  run.add_argument("--cost-limits", type=parse_floats, default=None, metavar="D1,D2,..",
                   help="cost limits trained together (overrides --cost-limit)")
  run.add_argument("--steps", type=parse_int, default=None, metavar="INT",
                   help="alias of --num-timesteps")
  run.add_argument("--out", type=pathlib.Path, default=None,
                   help="new run folder; if absent, runs/<env>_<algo>_<time>")
  run.add_argument("--resume", type=pathlib.Path, default=None, metavar="RUN",
                   help="continue the run in this folder with its saved config "
                        "(only --steps may go with it, to extend the run)")
  run.add_argument("--log-every", type=parse_int, default=10, metavar="K",
                   help="updates per compiled chunk (one host round-trip, CSV/TB rows)")
  run.add_argument("--checkpoint-every", type=parse_int, default=50, metavar="N",
                   help="updates between checkpoints (rounded up to a multiple of K)")
  run.add_argument("--keep-checkpoints", type=parse_int, default=3, metavar="N",
                   help="newest checkpoints kept on disk")
  run.add_argument("--no-checkpoint-buffer", action="store_true",
                   help="off-policy algorithms: leave the replay buffer out of checkpoints "
                        "(about 170 MB per member per checkpoint at the default 1M buffer on "
                        "PointGoal1); a resumed run starts with an empty buffer and warms up "
                        "again, so it is no longer bit-identical to an uninterrupted one")
  run.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
  run.add_argument("--no-plots", action="store_true", help="skip plots at the end")
  faults = parser.add_argument_group("faults")
  faults.add_argument("--on-nonfinite", choices=FAULT_MODES, default="stop",
                      help="a member whose losses or parameters turn NaN/inf: 'stop' keeps "
                           "the last finite checkpoint and exits with status 3; 'continue' "
                           "freezes that member and trains the others (marked in "
                           "summary.json)")
  faults.add_argument("--checkpoint-errors", choices=FAULT_MODES, default="stop",
                      help="a checkpoint that cannot be written (disk full, read-only): "
                           "'stop' exits with status 4; 'continue' trains on and retries at "
                           "the next checkpoint. The previous checkpoint stays restorable "
                           "either way")
  distributed.add_flags(parser)
  add_dataclass_flags(parser, _default_config(), "shared settings (jaxcrl.TrainConfig fields)",
                      help_for=None, exclude=("learner", "multiplier"))
  for action in parser._actions:
    if action.dest == "algo":
      action.help = _algo_help() + " [static]"
  _add_family_flags(parser)
  return parser


def _versions() -> dict[str, str]:
  out = {"python": sys.version.split()[0]}
  for pkg in PACKAGES:
    try:
      out[pkg] = importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
      pass
  return out


def _requested_steps(args, argv: list[str]) -> int | None:
  """The env-step budget given as --steps or its alias --num-timesteps; None if neither."""
  if given(argv, "--steps") and given(argv, "--num-timesteps"):
    raise UsageError("give --steps or --num-timesteps, not both")
  if given(argv, "--steps"):
    return args.steps
  return args.num_timesteps if given(argv, "--num-timesteps") else None


def _spec_from_args(args, parser: Parser, argv: list[str]) -> dict[str, Any]:
  import envs
  from jaxcrl import algorithms
  from experiments.cli import flag_name
  settings = {name: getattr(args, name) for name in algorithms.SHARED_SETTINGS}
  settings.update({name: getattr(args, name) for name in algorithms.family_settings()
                   if given(argv, flag_name(name))})
  steps = _requested_steps(args, argv)
  if steps is not None:
    settings["num_timesteps"] = steps
  algo = settings.pop("algo")
  config = algorithms.make_config(algo, **settings)  # ValueError -> exit 2
  buffered = {}
  if algorithms.is_off_policy(algo):
    buffered = {"checkpoint_buffer": not args.no_checkpoint_buffer}
  elif args.no_checkpoint_buffer:
    off = ", ".join(a for a in algorithms.ALGOS if algorithms.is_off_policy(a))
    raise UsageError(f"--no-checkpoint-buffer is for the off-policy algorithms ({off}); "
                     f"{algo} keeps no replay buffer")
  if args.cost_limits is not None and given(argv, "--cost-limit"):
    raise UsageError("give --cost-limit or --cost-limits, not both")
  limits = args.cost_limits if args.cost_limits is not None else (config.cost_limit,)
  if not limits:
    raise UsageError("--cost-limits is empty; give numbers like 10,25,50")
  for d in limits:
    if not d >= 0:
      raise UsageError(f"cost limit {d:g} is invalid; cost limits must be >= 0")
  if len(set(limits)) != len(limits):
    raise UsageError(f"--cost-limits {','.join(f'{d:g}' for d in limits)} repeats a value")
  if args.seeds < 1:
    raise UsageError(f"--seeds {args.seeds} is invalid; need at least 1")
  if args.seed < 0:
    raise UsageError(f"--seed {args.seed} is invalid; seeds are >= 0")
  config = dataclasses.replace(config, cost_limit=float(limits[0]))
  for d in limits:
    dataclasses.replace(config, cost_limit=float(d)).validate()
  env_name = envs.canonical_name(args.env)
  backend = args.backend or envs.make(env_name).backend
  rundir.make_env({"env": env_name, "backend": backend})  # a bad --backend fails here, exit 2
  return {
      "env": env_name, "backend": backend, "seed": args.seed, "seeds": args.seeds,
      "cost_limits": [float(d) for d in limits],
      "log_every": args.log_every, "checkpoint_every": args.checkpoint_every,
      "keep": args.keep_checkpoints, **buffered, "config": dataclass_to_dict(config),
      "argv": argv, "versions": _versions(),
      "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
  }


def _check_intervals(spec: dict[str, Any]) -> None:
  if spec["log_every"] < 1:
    raise UsageError(f"--log-every {spec['log_every']} is invalid; need at least 1 update")
  if spec["checkpoint_every"] < 1:
    raise UsageError(f"--checkpoint-every {spec['checkpoint_every']} is invalid; "
                     "need at least 1 update")
  if spec.get("keep", 3) < 1:
    raise UsageError(f"--keep-checkpoints {spec['keep']} is invalid; keep at least 1")


def _chunk_bounds(num_updates: int, log_every: int, checkpoint_every: int, start: int = 0):
  """[(lo, hi, save)] from update `start`: chunks of log_every updates; save on every
  checkpoint_every-th boundary (rounded up to a chunk boundary) and at the end.

  A resumed run's chunks start at its checkpoint, which need not lie on a fresh run's
  grid (an extended run's last checkpoint is at its old num_updates).
  """
  bounds, lo, next_save = [], start, (start // checkpoint_every + 1) * checkpoint_every
  while lo < num_updates:
    hi = min(lo + log_every, num_updates)
    save = hi >= next_save or hi == num_updates
    if hi >= next_save:
      next_save = (hi // checkpoint_every + 1) * checkpoint_every
    bounds.append((lo, hi, save))
    lo = hi
  return bounds


def _prepare(args, parser: Parser, argv: list[str]):
  """Validates everything and builds env and trainer, writing nothing.

  Returns (run_dir, spec, resuming, built).
  """
  with usage_errors():
    run_dir, spec, resuming = validate(args, parser, argv)
    return run_dir, spec, resuming, rundir.build(spec)


def validate(args, parser: Parser, argv: list[str]) -> tuple[pathlib.Path, dict, bool]:
  """The run folder, its spec (new, or read back and extended by --steps) and whether it
  resumes; UsageError (or ValueError, inside `usage_errors`) on bad input. Writes nothing.
  """
  if args.resume is not None:
    allowed = ("--resume", "--steps", "--num-timesteps", *RUNTIME_FLAGS)
    extra = [a for a in argv if a.startswith("--") and a.split("=")[0] not in allowed]
    if extra:
      raise UsageError(f"--resume continues the saved config; drop {' '.join(extra)} "
                       f"(only --steps and {', '.join(RUNTIME_FLAGS)} may go with it)")
    spec = rundir.read_spec(args.resume)
    saved, now = spec.get("processes", 1), distributed.process_count()
    if saved != now:
      raise UsageError(f"{str(args.resume)!r} was trained by {saved} process(es); resume it "
                       f"with {saved} (this is {now}): its checkpoints hold each "
                       "process's shards")
    if not (args.resume / rundir.CHECKPOINT_DIR).is_dir():
      raise UsageError(f"{str(args.resume)!r} has no {rundir.CHECKPOINT_DIR}/; "
                       "not a run folder that can be resumed")
    _check_intervals(spec)
    import envs
    envs.canonical_name(spec["env"])
    spec = _extended(spec, args, argv)
    config = rundir.config_from_spec(spec)
    config.validate()
    # Fields added to TrainConfig since the run was written take their defaults, and
    # config.json is rewritten with them once the checkpoint has restored.
    return args.resume, {**spec, "config": dataclass_to_dict(config)}, True
  spec = _spec_from_args(args, parser, argv)
  _check_intervals(spec)
  spec["processes"] = distributed.process_count()
  out = args.out
  if out is None and spec["processes"] > 1:
    raise UsageError("a multi-process run needs --out (a folder every process shares)")
  if out is None:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = pathlib.Path("runs") / f"{spec['env']}_{spec['config']['algo']}_{stamp}"
  if rundir.is_run(out):
    raise UsageError(f"--out {str(out)!r} already holds a run; continue it with "
                     f"--resume {out} or choose a new folder")
  if out.exists() and (not out.is_dir() or any(out.iterdir())):
    raise UsageError(f"--out {str(out)!r} exists and is not an empty folder; "
                     "choose a new folder")
  return out, spec, False


def _extended(spec: dict[str, Any], args, argv: list[str]) -> dict[str, Any]:
  """The spec with num_timesteps raised to --steps / --num-timesteps when resuming.

  Nothing traced depends on num_timesteps (it only sets the number of updates), so an
  extended run continues exactly as a run started with the larger budget would.
  """
  steps = _requested_steps(args, argv)
  if steps is None:
    return spec
  current = spec["config"]["num_timesteps"]
  if steps < current:
    raise UsageError(f"--steps {steps} is less than the run's {current}; a resumed run can "
                     f"only be extended (give --steps >= {current})")
  return {**spec, "config": {**spec["config"], "num_timesteps": steps}}


def _summarise(run_dir: pathlib.Path, spec: dict, timing: dict[str, float],
               final_update: int, num_updates: int,
               nonfinite: dict[str, dict] | None = None) -> dict[str, Any]:
  """summary.json: each member's final metrics, and their mean and std over seeds per cost
  limit (`by_limit`), or in a sweep per (cost limit, grid cell) (`by_cell`).

  A member that went non-finite (`nonfinite`: member name -> where, see
  rundir.read_nonfinite) carries that record, its final metrics are null, and the means
  and stds are over the other members (null where none is left)."""
  from experiments.logs import final_value, read_csv
  nonfinite = nonfinite or {}
  members_out, groups = [], {}
  for m in rundir.run_members(spec):
    data = read_csv(run_dir / "metrics" / f"{m.name}.csv")
    rows = groups.setdefault((m.cost_limit, m.cell), [])
    final = {k: float(final_value(data[k])) for k in SUMMARY_METRICS if k in data}
    keys = list(final)  # the same columns in every member's log
    out = {"seed": m.seed, "cost_limit": m.cost_limit,
           **({"cell": dict(m.cell)} if m.cell else {})}
    if m.name in nonfinite:
      out.update(final={k: None for k in final}, nonfinite=nonfinite[m.name])
    else:
      out["final"] = final
      rows.append(final)
    members_out.append(out)

  def stat(rows: list[dict], k: str) -> dict[str, float | None]:
    values = [r[k] for r in rows]
    return ({"mean": float(np.mean(values)), "std": float(np.std(values))} if values
            else {"mean": None, "std": None})

  stats = {key: {k: stat(rows, k) for k in keys} for key, rows in groups.items()}
  if spec.get("grid"):
    by = {"by_cell": [{"cell": dict(cell), "cost_limit": d, "final": final}
                      for (d, cell), final in stats.items()]}
  else:
    by = {"by_limit": {f"{d:g}": final for (d, _), final in stats.items()}}
  return {
      "env": spec["env"], "algo": spec["config"]["algo"], "updates": final_update,
      "num_updates": num_updates,
      "env_steps_per_member": int(final_update * _steps_per_update(spec)),
      "finished": final_update >= num_updates,
      "timing_last_session": timing,
      "final_window": "mean of the last 10% of updates",
      **by, "members": members_out,
  }


def _steps_per_update(spec: dict) -> int:
  c = spec["config"]
  return c["num_envs"] * c["unroll_length"] * c["action_repeat"]


@dataclasses.dataclass(frozen=True)
class Faults:
  """What a run does on a fault: `on_nonfinite` (a member's losses or parameters turn
  NaN/inf) and `checkpoint_errors` (a checkpoint cannot be written), each 'stop' or
  'continue' (FAULT_MODES)."""
  on_nonfinite: str = "stop"
  checkpoint_errors: str = "stop"


class RunStopped(Exception):
  """The run stopped on a fault after keeping what it could: `status` is the exit status
  (guard.EXIT_NONFINITE = 3 for a non-finite member, EXIT_CHECKPOINT = 4 for a checkpoint
  that could not be written)."""

  def __init__(self, message: str, status: int):
    super().__init__(message)
    self.status = status


class _NoLog:
  """The metrics log of a process that is not process 0: writes nothing."""

  def write(self, *args):
    pass

  write_timing = close = write


def _nan_rows(metrics: dict[str, np.ndarray], members: np.ndarray) -> dict[str, np.ndarray]:
  """The chunk's metrics ([K, M] each) with the columns of `members` ([M] bool) NaN: the
  rows of a frozen member, whose updates were not kept."""
  return {k: np.where(members[None, :], np.nan, v) for k, v in metrics.items()}


def train_run(run_dir: pathlib.Path, spec: dict, resuming: bool, progress: bool = True,
              plots: bool = True, built: rundir.Built | None = None,
              faults: Faults = Faults(),
              on_chunk: Callable[[int], None] | None = None) -> dict[str, Any] | None:
  """Trains (or continues) the run in `run_dir`; returns summary.json's content (None in
  processes other than 0, which write no logs). Raises RunStopped on a fault `faults`
  says to stop on. on_chunk(env_steps), if given, is called after every recorded chunk
  with its env steps summed over the members (experiments.benchmark's suite-wide bar)."""
  import jax
  from tqdm import tqdm

  import jaxcrl
  from experiments.checkpoint import CheckpointStore
  from experiments.logs import MetricsLog

  primary = distributed.is_primary()
  built = built or rundir.build(spec)
  num_updates = built.config.num_updates
  store = CheckpointStore(run_dir / rundir.CHECKPOINT_DIR, max_to_keep=spec.get("keep", 3),
                          omit=built.omit)
  start, state = 0, None
  if resuming:
    restore = rundir.restore_args(built)
    if distributed.process_count() > 1:  # a concrete template: the shards' placement
      restore["template"] = built.init(built.keys, built.stacked_config)
    try:
      # Leaves newer than the checkpoint (config fields added since) come from the spec.
      restored = store.restore_latest(**restore)
    except ValueError as err:  # before MetricsLog, which would truncate the logs
      raise UsageError(f"cannot resume {run_dir}: {err}") from err
    if restored is not None:
      start, state = restored
  # Only now (resumable), the spec: new, or extended by --steps (atomic replace).
  if primary and (not resuming or spec != rundir.read_spec(run_dir)):
    rundir.write_spec(run_dir, spec)
  if state is None:
    state = built.init(built.keys, built.stacked_config)

  update = jax.vmap(built.update)
  names, check = guard.make_check(state, jaxcrl.metric_keys(built.env, built.config))

  @jax.jit
  def chunk_fn(state, length_marker):
    # length_marker is a dummy [L] array: its static shape fixes the scan length.
    new_state, metrics = jax.lax.scan(lambda s, _: update(s), state, length_marker)
    return new_state, metrics, check(new_state, metrics)

  select = jax.jit(guard.select_members)
  members = rundir.run_members(spec)
  failed = rundir.read_nonfinite(run_dir, start)
  frozen = np.array([m.name in failed for m in members])

  def save(step, tree):
    problem = store.try_save(step, tree)
    if problem is None:
      return
    if faults.checkpoint_errors == "stop":
      raise RunStopped(f"{problem}; stopping (--checkpoint-errors continue trains on)",
                       EXIT_CHECKPOINT)
    print(f"warning: {problem}; training on", file=sys.stderr)

  per_update = _steps_per_update(spec)
  log = (MetricsLog(run_dir, members, start_update=start, steps_per_update=per_update)
         if primary else _NoLog())
  bar = tqdm(total=num_updates * per_update, initial=start * per_update, unit="step",
             unit_scale=True, dynamic_ncols=True, disable=not progress or not primary,
             desc=f"{spec['env']} {spec['config']['algo']} M={len(built.member_configs)}")
  t0, done, first_chunk = time.perf_counter(), start, None
  chunk_t0 = t0
  try:
    for lo, hi, save_here in _chunk_bounds(num_updates, spec["log_every"],
                                           spec["checkpoint_every"], start):
      new_state, metrics, report = chunk_fn(state, np.zeros((hi - lo,), np.float32))
      metrics, (first_quantity, first_update) = distributed.to_host((metrics, report))
      now = time.perf_counter()
      newly = (first_quantity >= 0) & ~frozen
      for j in np.flatnonzero(newly):
        failed[members[j].name] = {
            "update": lo + 1 + int(first_update[j]),
            "quantity": names[first_quantity[j]], "last_finite_update": done}
      if newly.any():
        if primary:
          rundir.write_nonfinite(run_dir, failed)
        first = members[int(np.flatnonzero(newly)[0])].name
        where = (f"non-finite {failed[first]['quantity']} in member {first} at update "
                 f"{failed[first]['update']}")
        if faults.on_nonfinite == "stop":
          if done not in store.steps():
            save(done, state)  # the state at the last boundary the guard passed
          raise RunStopped(f"{where}; last finite checkpoint: update {done} in "
                           f"{store.directory} (--on-nonfinite continue trains the other "
                           "members)", guard.EXIT_NONFINITE)
        for j in np.flatnonzero(newly):
          name = members[j].name
          print(f"warning: non-finite {failed[name]['quantity']} in member {name} at "
                f"update {failed[name]['update']}; frozen at update {done}, training the "
                "others", file=sys.stderr)
        frozen = frozen | newly
        if frozen.all():
          raise RunStopped(f"{where}: every member is non-finite now; the checkpoints "
                           "hold their last finite states", guard.EXIT_NONFINITE)
      if frozen.any():
        new_state = select(frozen, state, new_state)
        metrics = _nan_rows(metrics, frozen)
      log.write(lo + 1, metrics)
      # Per member, training only (checkpointing excluded); the first chunk's includes
      # compilation.
      log.write_timing(hi, (hi - lo) * per_update / max(now - chunk_t0, 1e-9))
      if save_here:
        save(hi, new_state)
      # Only now is the chunk fully recorded; an interrupt before this line resumes from
      # `done`, and the logs' rows past it are dropped then.
      state, done = new_state, hi
      if first_chunk is None:
        first_chunk = (now - t0, done)
      chunk_t0 = time.perf_counter()
      bar.update((hi - lo) * per_update)
      if on_chunk is not None:
        on_chunk((hi - lo) * per_update * len(members))
      live = ~frozen
      if live.any():
        bar.set_postfix(ret=f"{metrics['episode/return'][-1][live].mean():.2f}",
                        cost=f"{metrics['episode/cost'][-1][live].mean():.2f}",
                        lam=f"{metrics['lambda/mean'][-1][live].mean():.3f}", refresh=False)
  except KeyboardInterrupt:
    bar.close()
    if done > start and done not in store.steps():
      problem = store.try_save(done, state)
      if problem:
        print(f"\nwarning: {problem}", file=sys.stderr)
    print(f"\ninterrupted after update {done}; continue with --resume {run_dir}",
          file=sys.stderr)
    raise
  finally:
    bar.close()
    log.close()
    store.close()
  if not primary:
    return None
  wall = time.perf_counter() - t0
  timing = {"wall_s": round(wall, 2)}
  if first_chunk is not None:
    # The first chunk includes compilation; the rest is the steady training speed.
    timing["first_chunk_s"] = round(first_chunk[0], 2)
    if done > first_chunk[1]:
      timing["steady_env_steps_per_s_per_member"] = round(
          (done - first_chunk[1]) * per_update / (wall - first_chunk[0]), 1)
  summary = _summarise(run_dir, spec, timing, done, num_updates, failed)
  (run_dir / rundir.SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
  if plots:
    from experiments.plot import plot_runs
    plot_runs([run_dir], run_dir / "plots")
  if spec.get("grid"):
    from experiments import sweep
    sweep.write_results(run_dir, spec, summary, plots)
  return summary


class Terminated(KeyboardInterrupt):
  """SIGTERM (a scheduler's preemption, `kill`), handled like Ctrl-C: the last completed
  chunk is checkpointed before the process exits (status 143 instead of 130)."""


@contextlib.contextmanager
def sigterm_interrupts():
  """While training, SIGTERM raises `Terminated` in the main thread."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return

  def handler(signum, frame):
    del signum, frame
    raise Terminated

  previous = signal.signal(signal.SIGTERM, handler)
  try:
    yield
  finally:  # a handler installed outside Python reads as None: restore the default then
    signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _main(argv: list[str]) -> int:
  distributed.start(argv)  # first: before anything starts the XLA backend
  parser = build_parser()
  args = parser.parse_args(argv)
  run_dir, spec, resuming, built = _prepare(args, parser, argv)
  return train_and_report(args, run_dir, spec, resuming, built)


def train_and_report(args, run_dir: pathlib.Path, spec: dict, resuming: bool,
                     built: rundir.Built,
                     on_chunk: Callable[[int], None] | None = None) -> int:
  """The command line's training of a validated run (or sweep): makes the folder, trains
  with SIGTERM handled like Ctrl-C, prints the final numbers. -> exit status: 0; 130
  (Ctrl-C) / 143 (SIGTERM) once the last completed chunk is checkpointed; 3 when a member
  went non-finite and 4 when a checkpoint failed, under the 'stop' fault modes."""
  if not resuming and distributed.is_primary():
    run_dir.mkdir(parents=True, exist_ok=True)
  distributed.barrier("run folder ready")
  faults = Faults(on_nonfinite=args.on_nonfinite, checkpoint_errors=args.checkpoint_errors)
  try:
    with sigterm_interrupts():
      summary = train_run(run_dir, spec, resuming, progress=not args.no_progress,
                          plots=not args.no_plots, built=built, faults=faults,
                          on_chunk=on_chunk)
  except KeyboardInterrupt as interrupt:
    return 143 if isinstance(interrupt, Terminated) else 130
  except RunStopped as stopped:
    print(f"error: {stopped}", file=sys.stderr)
    return stopped.status
  if summary is None:  # not process 0: process 0 reports
    return 0

  def line(stats: dict) -> str:
    return ", ".join(f"{k.replace('episode/', '')} {v['mean']:.3g}±{v['std']:.2g}"
                     if v["mean"] is not None else f"{k.replace('episode/', '')} -"
                     for k, v in stats.items())

  for d, stats in summary.get("by_limit", {}).items():
    print(f"limit {d}: {line(stats)}")
  for group in summary.get("by_cell", ()):
    cell = " ".join(f"{k}={v:g}" for k, v in group["cell"].items())
    print(f"limit {group['cost_limit']:g} {cell}: {line(group['final'])}")
  for m in summary["members"]:
    if "nonfinite" in m:
      where = m["nonfinite"]
      cell = "".join(f" {k}={v:g}" for k, v in m.get("cell", {}).items())
      print(f"non-finite: seed {m['seed']} limit {m['cost_limit']:g}{cell} at update "
            f"{where['update']} ({where['quantity']}); frozen at update "
            f"{where['last_finite_update']}")
  plots = (f"{run_dir / 'plots'}" if not args.no_plots else "none (--no-plots)")
  print(f"run folder: {run_dir}\n"
        f"  plots:    {plots}  (python -m experiments.plot {run_dir} ... compares runs)\n"
        f"  evaluate: python -m experiments.eval {run_dir} --episodes 10 --render "
        "episode.html\n"
        f"  continue: python -m experiments.run --resume {run_dir} --steps N")
  return 0


def main(argv: Sequence[str] | None = None) -> int:
  return run_main(_main, argv)


if __name__ == "__main__":
  sys.exit(main())
