"""Train a suite of (algorithm, task) runs at a fixed budget and write its results page.

  python -m experiments.benchmark smoke --out runs/smoke      # minutes on a 2-core CPU
  python -m experiments.benchmark smoke --resume runs/smoke   # continue where it stopped
  python -m experiments.benchmark safety-gym                  # OmniSafe's budget: hours/days
  python -m experiments.results runs/smoke                    # the page alone, of any state

A suite is a small TOML file in experiments/suites/ (or a path to one): its tasks, its
algorithms (a list, or "on-policy" / "off-policy" / "all": the registry's algorithms with
or without an off-policy driver, jaxcrl/algorithms.py), seeds, cost limits, the run's
chunking (log_every, checkpoint_every) and [settings]: jaxcrl.make_config settings of every
algorithm, with [settings.on-policy], [settings.off-policy] and [settings.<algo>] tables
overriding them for those algorithms. `extends = "other-suite"` starts from another suite
(its settings merged, the rest replaced). Each file carries `version`: bump it when a
change alters the runs.

Each (algorithm, task) is one `python -m experiments.run` run in DIR/runs/<task>_<algo>/
(its seeds x cost limits one compiled program, members M = seeds x limits), trained in this
process with run.py's own machinery: run folder, checkpoints, resume, the non-finite guard
(--on-nonfinite continue: a diverging seed is frozen and marked, the suite goes on) and
Ctrl-C / SIGTERM, which checkpoint the running run and exit 130 / 143. Its config.json keeps
the exact `experiments.run` flags, so any row is one command to reproduce; RESULTS.md lists
them.

DIR/suite.json records the suite (name, version, the files and their resolved definition,
its sha256), every session's commit and command, and each run's wall time. `--resume DIR`
skips finished runs and resumes an interrupted one through run.py's resume. An unknown suite,
a bad setting, or --resume of a folder made by another suite or another version (or a
changed definition under the same version) is a one-line `error: ...`, exit 2, with nothing
written. At the end DIR/RESULTS.md and DIR/figures/ are (re)written (experiments/results.py).
One progress bar runs over the whole suite: env steps of all runs and members, with its ETA,
moved at every chunk by run.train_and_report's `on_chunk` hook.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import hashlib
import json
import pathlib
import shlex
import subprocess
import sys
import time
import tomllib
from typing import Any, Sequence

from experiments.cli import Parser, UsageError, flag_name, run_main, usage_errors

SUITES_DIR = pathlib.Path(__file__).resolve().parent / "suites"
REPO_ROOT = SUITES_DIR.parent.parent
MANIFEST = "suite.json"
RUNS_DIR = "runs"
GROUPS = ("on-policy", "off-policy")
SELECTORS = ("all", *GROUPS)
REQUIRED = ("name", "version", "description", "tasks", "algorithms", "seeds", "cost_limits",
            "log_every", "checkpoint_every", "settings")
OPTIONAL = ("extends", "seed", "backend", "keep_checkpoints")
# How every run of a suite runs: a diverging seed is frozen and marked, not the suite's end;
# the suite's bar replaces the run's.
RUN_RUNTIME_FLAGS = ("--no-plots", "--on-nonfinite", "continue")


@dataclasses.dataclass(frozen=True)
class Suite:
  """A suite as loaded: `definition` is the resolved dict (extends merged, algorithms
  expanded from the registry), `files` the text of every file it was read from."""
  name: str
  version: int
  path: pathlib.Path
  definition: dict[str, Any]
  files: dict[str, str]

  @property
  def sha256(self) -> str:
    """Of the resolved definition (comments and layout of the files do not count)."""
    text = json.dumps(self.definition, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class RunPlan:
  """One (algorithm, task) run of a suite: its folder name under DIR/runs and the
  `experiments.run` flags that train it (without --out and the runtime flags)."""
  name: str
  task: str
  algo: str
  argv: tuple[str, ...]

  def command(self, run_dir: pathlib.Path | str) -> str:
    """The `python -m experiments.run` line that trains this run into `run_dir`."""
    return shlex.join(["python", "-m", "experiments.run", *self.argv, "--out", str(run_dir)])


def known_suites() -> dict[str, pathlib.Path]:
  return {p.stem: p for p in sorted(SUITES_DIR.glob("*.toml"), key=lambda p: p.stem)}


def find_suite(name: str) -> pathlib.Path:
  """The file of suite `name` (a name in experiments/suites/ or a path to a .toml);
  UsageError naming the closest known suite."""
  path = pathlib.Path(name)
  if path.suffix == ".toml":
    if not path.is_file():
      raise UsageError(f"suite file {name!r} does not exist")
    return path
  known = known_suites()
  if name not in known:
    from envs.registry import did_you_mean
    raise UsageError(f"unknown suite {name!r}{did_you_mean(name, known)}; known: "
                     f"{', '.join(known)} (or a path to a suite .toml)")
  return known[name]


def _read_toml(path: pathlib.Path) -> tuple[dict[str, Any], str]:
  text = path.read_text()
  try:
    return tomllib.loads(text), text
  except tomllib.TOMLDecodeError as err:
    raise UsageError(f"suite file {str(path)!r} is not valid TOML ({err})") from None


def _merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
  """`child` over `parent`: [settings] and its tables merge key by key, the rest is
  replaced; name, version and description are never inherited."""
  out = {k: v for k, v in copy.deepcopy(parent).items()
         if k not in ("name", "version", "description", "extends")}
  for key, value in child.items():
    if key == "settings" and isinstance(value, dict):
      settings = out.setdefault("settings", {})
      for name, v in value.items():
        if isinstance(v, dict) and isinstance(settings.get(name), dict):
          settings[name] = {**settings[name], **v}
        else:
          settings[name] = copy.deepcopy(v)
    else:
      out[key] = copy.deepcopy(value)
  return out


def _read_chain(path: pathlib.Path, seen: tuple[str, ...] = ()
                ) -> tuple[dict[str, Any], dict[str, str]]:
  """The suite at `path` with its `extends` chain merged, and {file: text} of the chain."""
  raw, text = _read_toml(path)
  files = {_shown(path): text}
  parent_name = raw.get("extends")
  if parent_name is None:
    return raw, files
  if not isinstance(parent_name, str):
    raise UsageError(f"{_shown(path)}: extends must be a suite name, got {parent_name!r}")
  parent_path = (path.parent / f"{parent_name}.toml" if (path.parent / f"{parent_name}.toml")
                 .is_file() else find_suite(parent_name))
  if parent_path.stem in seen + (path.stem,):
    raise UsageError(f"{_shown(path)}: extends {parent_name!r} makes a cycle")
  parent, parent_files = _read_chain(parent_path, seen + (path.stem,))
  return _merge(parent, raw), {**parent_files, **files}


def _shown(path: pathlib.Path) -> str:
  """`path` relative to the repository when inside it."""
  try:
    return str(path.resolve().relative_to(REPO_ROOT))
  except ValueError:
    return str(path)


def _expand_algorithms(selector: Any, where: str) -> list[str]:
  from jaxcrl import algorithms
  if isinstance(selector, str):
    if selector not in SELECTORS:
      raise UsageError(f"{where}: algorithms = {selector!r}; give a list of algorithms or "
                       f"one of {', '.join(repr(s) for s in SELECTORS)}")
    names = [a for a in algorithms.ALGORITHMS
             if selector == "all" or (selector == "off-policy") == algorithms.is_off_policy(a)]
    if not names:
      raise UsageError(f"{where}: the registry has no {selector} algorithm")
    return names
  if not isinstance(selector, list) or not selector:
    raise UsageError(f"{where}: algorithms must be a non-empty list or one of "
                     f"{', '.join(repr(s) for s in SELECTORS)}")
  for name in selector:
    if name not in algorithms.ALGORITHMS:
      from envs.registry import did_you_mean
      raise UsageError(f"{where}: unknown algorithm {name!r}"
                       f"{did_you_mean(str(name), algorithms.ALGORITHMS)}; known: "
                       f"{', '.join(algorithms.ALGORITHMS)}")
  if len(set(selector)) != len(selector):
    raise UsageError(f"{where}: algorithms lists one twice")
  return list(selector)


def _check_shape(definition: dict[str, Any], where: str) -> None:
  """Keys and value types of a resolved definition; UsageError naming the first bad one."""
  import envs
  unknown = sorted(set(definition) - set(REQUIRED) - set(OPTIONAL))
  if unknown:
    raise UsageError(f"{where}: unknown key(s) {unknown}; a suite has "
                     f"{', '.join(REQUIRED + OPTIONAL)}")
  missing = [k for k in REQUIRED if k not in definition]
  if missing:
    raise UsageError(f"{where}: missing {', '.join(missing)}")

  def integer(key: str, low: int) -> None:
    value = definition.get(key, low)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
      raise UsageError(f"{where}: {key} = {value!r}; expected an integer >= {low}")

  for key, low in (("version", 1), ("seeds", 1), ("seed", 0), ("log_every", 1),
                   ("checkpoint_every", 1), ("keep_checkpoints", 1)):
    integer(key, low)
  tasks = definition["tasks"]
  if not isinstance(tasks, list) or not tasks or len(set(tasks)) != len(tasks):
    raise UsageError(f"{where}: tasks must be a non-empty list of distinct env names")
  for task in tasks:
    try:
      if envs.canonical_name(task) != task:
        raise UsageError(f"{where}: task {task!r} is registered as "
                         f"{envs.canonical_name(task)!r}; write that")
    except ValueError as err:
      raise UsageError(f"{where}: {err}") from None
  limits = definition["cost_limits"]
  if (not isinstance(limits, list) or not limits
      or not all(isinstance(d, (int, float)) and not isinstance(d, bool) for d in limits)):
    raise UsageError(f"{where}: cost_limits must be a non-empty list of numbers")
  if not isinstance(definition["settings"], dict):
    raise UsageError(f"{where}: settings must be a table")


def settings_for(definition: dict[str, Any], algo: str) -> dict[str, Any]:
  """The make_config settings of `algo`: [settings], then its group's table, then its own."""
  from jaxcrl import algorithms
  settings = definition["settings"]
  out = {k: v for k, v in settings.items() if not isinstance(v, dict)}
  group = "off-policy" if algorithms.is_off_policy(algo) else "on-policy"
  for table in (group, algo):
    out.update(settings.get(table, {}))
  return out


def _check_settings(definition: dict[str, Any], where: str) -> None:
  """Every algorithm's settings through jaxcrl.make_config (ValueError -> UsageError)."""
  from jaxcrl import algorithms
  for table, value in definition["settings"].items():
    if isinstance(value, dict) and table not in GROUPS and table not in algorithms.ALGORITHMS:
      from envs.registry import did_you_mean
      raise UsageError(f"{where}: [settings.{table}] names no group or algorithm"
                       f"{did_you_mean(table, (*GROUPS, *algorithms.ALGORITHMS))}; tables "
                       f"are {', '.join(GROUPS)} or an algorithm's name")
  for algo in definition["algorithms"]:
    settings = {k: tuple(v) if isinstance(v, list) else v
                for k, v in settings_for(definition, algo).items()}
    for reserved in ("algo", "cost_limit"):
      if reserved in settings:
        raise UsageError(f"{where}: {reserved} is not a setting here (algorithms and "
                         "cost_limits say it)")
    try:
      algorithms.make_config(algo, **settings, cost_limit=float(definition["cost_limits"][0]))
    except (ValueError, TypeError) as err:
      raise UsageError(f"{where}: {algo}: {err}") from None


def load_suite(name: str) -> Suite:
  """Reads, resolves and validates suite `name` (see the module docstring); UsageError
  naming the file and the first bad entry."""
  path = find_suite(name)
  merged, files = _read_chain(path)
  where = f"suite {_shown(path)}"
  if merged.get("name") != path.stem:
    raise UsageError(f"{where}: name = {merged.get('name')!r} must be the file's name "
                     f"{path.stem!r}")
  _check_shape(merged, where)
  definition = {k: v for k, v in merged.items() if k != "extends"}
  definition["algorithms"] = _expand_algorithms(merged["algorithms"], where)
  definition["selector"] = merged["algorithms"] if isinstance(merged["algorithms"], str) \
      else None
  _check_settings(definition, where)
  return Suite(name=path.stem, version=definition["version"], path=path,
               definition=definition, files=files)


def _flag_value(value: Any) -> str:
  if isinstance(value, bool):
    return "true" if value else "false"
  if value is None:
    return "none"
  if isinstance(value, (list, tuple)):
    return ",".join(_flag_value(v) for v in value)
  return repr(value) if isinstance(value, float) else str(value)


def plan(suite: Suite) -> list[RunPlan]:
  """The suite's runs, task-major: (task, algorithm) in the file's order."""
  d = suite.definition
  out = []
  for task in d["tasks"]:
    for algo in d["algorithms"]:
      argv = ["--env", task, "--algo", algo, "--seeds", str(d["seeds"]),
              "--seed", str(d.get("seed", 0)),
              "--cost-limits", ",".join(f"{float(x):g}" for x in d["cost_limits"]),
              "--log-every", str(d["log_every"]),
              "--checkpoint-every", str(d["checkpoint_every"])]
      if "keep_checkpoints" in d:
        argv += ["--keep-checkpoints", str(d["keep_checkpoints"])]
      if "backend" in d:
        argv += ["--backend", d["backend"]]
      for key, value in settings_for(d, algo).items():
        argv += [flag_name(key), _flag_value(value)]
      out.append(RunPlan(name=f"{task}_{algo}", task=task, algo=algo, argv=tuple(argv)))
  return out


def commit() -> str:
  """`git rev-parse --short HEAD` of this checkout, with -dirty if a file differs from it
  (tracked or untracked, ignored ones aside); 'unknown' outside a git checkout."""
  def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
  try:
    head = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain")
  except (OSError, subprocess.CalledProcessError):
    return "unknown"
  return head + ("-dirty" if dirty else "")


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def read_manifest(folder: pathlib.Path) -> dict[str, Any]:
  """DIR/suite.json; UsageError if `folder` is not a benchmark folder."""
  path = folder / MANIFEST
  if not path.is_file():
    raise UsageError(f"{str(folder)!r} is not a benchmark folder (no {MANIFEST}); pass a "
                     "folder written by `python -m experiments.benchmark SUITE --out DIR`")
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError as err:
    raise UsageError(f"{str(path)!r} is not valid JSON ({err})") from None


def write_manifest(folder: pathlib.Path, manifest: dict[str, Any]) -> None:
  """Atomically (temp file + rename)."""
  tmp = folder / (MANIFEST + ".tmp")
  tmp.write_text(json.dumps(manifest, indent=2) + "\n")
  tmp.replace(folder / MANIFEST)


def new_manifest(suite: Suite, folder: pathlib.Path) -> dict[str, Any]:
  """A new folder's suite.json: the suite, and per run (task-major) its task, algorithm and
  `experiments.run` command; sessions and wall times are added as they happen."""
  runs = {p.name: {"task": p.task, "algo": p.algo,
                   "command": p.command(folder / RUNS_DIR / p.name)} for p in plan(suite)}
  return {"suite": suite.name, "version": suite.version, "sha256": suite.sha256,
          "source": _shown(suite.path), "files": suite.files,
          "definition": suite.definition, "created": _now(), "sessions": [], "runs": runs}


def check_resume(folder: pathlib.Path, manifest: dict[str, Any], suite: Suite) -> None:
  """UsageError unless `folder` was made by this suite, at this version, as defined now."""
  made_by, version = manifest.get("suite"), manifest.get("version")
  if made_by != suite.name:
    raise UsageError(f"{str(folder)!r} holds suite {made_by!r} (version {version}), not "
                     f"{suite.name!r}; continue it with python -m experiments.benchmark "
                     f"{made_by} --resume {folder}")
  sessions = manifest.get("sessions") or [{}]
  at = sessions[0].get("commit", "unknown")
  if version != suite.version:
    raise UsageError(f"{str(folder)!r} was made by version {version} of suite "
                     f"{suite.name!r} (commit {at}); {_shown(suite.path)} is version "
                     f"{suite.version} now: start a new folder with --out, or resume at "
                     "that commit")
  if manifest.get("sha256") != suite.sha256:
    old = manifest.get("definition", {})
    changed = sorted(k for k in set(old) | set(suite.definition)
                     if old.get(k) != suite.definition.get(k))
    raise UsageError(f"{str(folder)!r} was made by suite {suite.name!r} version {version} "
                     f"as it was at commit {at}; its definition has changed since "
                     f"({', '.join(changed)}) under the same version: bump version in "
                     f"{_shown(suite.path)} and start a new folder with --out")


@dataclasses.dataclass
class Prepared:
  """A run ready to train: `state` is 'done', 'failed' (every member went non-finite in an
  earlier session), 'resume' or 'new'; args / spec as run.validate returns them."""
  plan: RunPlan
  run_dir: pathlib.Path
  state: str
  args: Any = None
  spec: dict[str, Any] | None = None
  total_steps: int = 0      # env steps of all members at the end
  done_steps: int = 0       # ... already trained


def _run_steps(spec: dict[str, Any], run_dir: pathlib.Path, state: str) -> tuple[int, int]:
  """(env steps of all members at the end, env steps already trained) of one run."""
  from experiments import rundir
  config = rundir.config_from_spec(spec)
  per_update = config.batch_size * config.action_repeat * len(rundir.run_members(spec))
  total = config.num_updates * per_update
  if state in ("done", "failed"):
    return total, total
  if state == "resume":
    from experiments.checkpoint import CheckpointStore
    store = CheckpointStore(run_dir / rundir.CHECKPOINT_DIR)
    try:
      return total, max(store.steps(), default=0) * per_update
    finally:
      store.close()
  return total, 0


def prepare(folder: pathlib.Path, plans: Sequence[RunPlan], manifest: dict[str, Any],
            run_parser: Parser) -> list[Prepared]:
  """Validates every run with run.validate (UsageError naming the run); writes nothing."""
  from experiments import run, rundir
  out = []
  for p in plans:
    run_dir = folder / RUNS_DIR / p.name
    record = manifest.get("runs", {}).get(p.name, {})
    if (run_dir / rundir.SUMMARY_FILE).is_file() and json.loads(
        (run_dir / rundir.SUMMARY_FILE).read_text()).get("finished"):
      state = "done"
    elif record.get("failed"):
      state = "failed"
    elif rundir.is_run(run_dir):
      state = "resume"
    else:
      state = "new"
    argv = ([*RUN_RUNTIME_FLAGS, "--resume", str(run_dir)] if state != "new"
            else [*p.argv, *RUN_RUNTIME_FLAGS, "--out", str(run_dir)])
    try:
      with usage_errors():
        args = run_parser.parse_args(argv)
        _, spec, _ = run.validate(args, run_parser, argv)
    except UsageError as err:
      raise UsageError(f"run {p.name}: {err}") from None
    prepared = Prepared(plan=p, run_dir=run_dir, state=state, args=args, spec=spec)
    prepared.total_steps, prepared.done_steps = _run_steps(spec, run_dir, state)
    out.append(prepared)
  return out


def build_parser() -> Parser:
  import argparse
  parser = Parser(prog="python -m experiments.benchmark", description=__doc__,
                  formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("suite", metavar="SUITE",
                      help=f"a suite of experiments/suites/ ({', '.join(known_suites())}) "
                           "or a path to a suite .toml")
  parser.add_argument("--out", type=pathlib.Path, default=None, metavar="DIR",
                      help="new suite folder (default: runs/<suite>_<time>)")
  parser.add_argument("--resume", type=pathlib.Path, default=None, metavar="DIR",
                      help="continue the suite in this folder: finished runs are skipped, an "
                           "interrupted one resumes from its checkpoint")
  parser.add_argument("--no-progress", action="store_true", help="no progress bar")
  return parser


def open_folder(args, suite: Suite) -> tuple[pathlib.Path, dict[str, Any]]:
  """The suite folder and its manifest (new, or read back and checked); writes nothing."""
  if args.resume is not None:
    if args.out is not None:
      raise UsageError("give --out (a new suite) or --resume (an existing one), not both")
    manifest = read_manifest(args.resume)
    check_resume(args.resume, manifest, suite)
    return args.resume, manifest
  out = args.out
  if out is None:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = pathlib.Path("runs") / f"{suite.name}_{stamp}"
  if (out / MANIFEST).is_file():
    raise UsageError(f"--out {str(out)!r} already holds a suite; continue it with "
                     f"--resume {out} or choose a new folder")
  if out.exists() and (not out.is_dir() or any(out.iterdir())):
    raise UsageError(f"--out {str(out)!r} exists and is not an empty folder; choose a new "
                     "folder")
  return out, new_manifest(suite, out)


class _SuiteBar:
  """One bar over the suite's env steps (all runs, all members) with its ETA."""

  def __init__(self, prepared: Sequence[Prepared], enabled: bool):
    from tqdm import tqdm
    self._bar = tqdm(total=sum(p.total_steps for p in prepared),
                     initial=sum(p.done_steps for p in prepared), unit="step",
                     unit_scale=True, dynamic_ncols=True, disable=not enabled,
                     desc="suite")

  @property
  def enabled(self) -> bool:
    return not self._bar.disable

  def start(self, index: int, count: int, p: Prepared) -> None:
    self._bar.set_description(f"suite {index}/{count} {p.plan.task} {p.plan.algo}")

  def advance(self, env_steps: int) -> None:
    self._bar.update(env_steps)

  def close(self) -> None:
    self._bar.close()


def _train(p: Prepared, bar: _SuiteBar) -> int:
  """Trains (or resumes) one run with run.py's train_and_report. -> its exit status."""
  from experiments import rundir, run
  with usage_errors():
    built = rundir.build(p.spec)
  p.args.no_progress = True   # the suite's bar, moved by every chunk, replaces the run's

  def on_chunk(env_steps: int) -> None:
    p.done_steps += env_steps
    bar.advance(env_steps)

  status = run.train_and_report(p.args, p.run_dir, p.spec, p.state == "resume", built,
                                on_chunk=on_chunk)
  if status == 0 and p.done_steps < p.total_steps:
    bar.advance(p.total_steps - p.done_steps)
    p.done_steps = p.total_steps
  return status


def _record(record: dict[str, Any], wall_s: float, status: int | None) -> None:
  """A run's session in suite.json: its wall time added; marked failed when every member
  went non-finite (a resume would only fail again)."""
  from experiments.guard import EXIT_NONFINITE
  record["wall_s"] = round(record.get("wall_s", 0.0) + wall_s, 2)
  record["sessions"] = record.get("sessions", 0) + 1
  if status == EXIT_NONFINITE:
    record["failed"] = "every seed went non-finite (its nonfinite.json says where)"


def _main(argv: list[str]) -> int:
  from experiments import results, run
  from experiments.guard import EXIT_NONFINITE
  parser = build_parser()
  args = parser.parse_args(argv)
  suite = load_suite(args.suite)
  folder, manifest = open_folder(args, suite)
  prepared = prepare(folder, plan(suite), manifest, run.build_parser())
  # Everything is valid: from here on the folder is written.
  folder.mkdir(parents=True, exist_ok=True)
  command = shlex.join(["python", "-m", "experiments.benchmark", *argv])
  manifest["sessions"].append({"started": _now(), "commit": commit(), "command": command})
  write_manifest(folder, manifest)
  bar = _SuiteBar(prepared, enabled=not args.no_progress)
  status = 0
  try:
    with run.sigterm_interrupts():  # SIGTERM between runs, too, ends with 143
      for i, p in enumerate(prepared, 1):
        if p.state not in ("new", "resume"):
          continue
        bar.start(i, len(prepared), p)
        t0, status = time.perf_counter(), None
        try:
          status = _train(p, bar)
        finally:
          _record(manifest["runs"][p.plan.name], time.perf_counter() - t0, status)
          write_manifest(folder, manifest)
        if status not in (0, EXIT_NONFINITE):
          break
  except KeyboardInterrupt as interrupt:  # between runs
    status = 143 if isinstance(interrupt, run.Terminated) else 130
  finally:
    bar.close()
  if status in (130, 143):
    print(f"suite interrupted; continue with python -m experiments.benchmark "
          f"{args.suite} --resume {folder}", file=sys.stderr)
    return status
  if status not in (0, EXIT_NONFINITE):
    return status
  page = results.write_results(folder)
  print(f"results: {page}")
  return 0


def main(argv: Sequence[str] | None = None) -> int:
  return run_main(_main, argv)


if __name__ == "__main__":
  sys.exit(main())
