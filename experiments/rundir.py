"""What a run folder is, and how to rebuild a run's env, configs and state from it.

A run folder holds `config.json` (the run spec below), `metrics/`, `tb/`, `checkpoints/`,
`nonfinite.json` if a member went non-finite, and, once finished, `summary.json` and
`plots/`. The spec is a plain JSON dict:

  env: registered env name         seed, seeds: base seed and number of seeds
  backend: the env's physics backend ('planar', 'mjx', or a velocity task's Brax pipeline)
  cost_limits: [float, ...]        log_every, checkpoint_every: in updates
  config: TrainConfig's shared fields, with the family settings nested under 'learner'
    and 'multiplier' (cost_limit there is ignored in favour of cost_limits). Specs
    written before the Learner seam hold every setting flat; `config_from_spec` reads
    both, keeping the settings the run's algorithm takes.
  grid: only in a sweep's spec (experiments/sweep.py), the axes in order,
    [{"setting": "lagrange_lr", "values": [0.01, 0.1]}, ...]: traced settings that each
    member overrides with its cell's values (a list, so the axis order survives the
    sorted keys). A spec without it is a plain run: one empty cell.
  processes: how many processes trained it (experiments/distributed.py; absent = 1): its
    checkpoints hold their shards, so it resumes with as many
  argv, versions, created: provenance

Reading specs and metrics needs no JAX; `build` imports jaxcrl and envs.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import pathlib
from typing import Any

import numpy as np

from experiments.cli import UsageError
from experiments.logs import Member, members

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
SUMMARY_FILE = "summary.json"
NONFINITE_FILE = "nonfinite.json"


def is_run(path: str | pathlib.Path) -> bool:
  return (pathlib.Path(path) / CONFIG_FILE).is_file()


def read_spec(path: str | pathlib.Path) -> dict[str, Any]:
  """The spec of run folder `path`; UsageError if `path` is not a run folder."""
  path = pathlib.Path(path)
  if not is_run(path):
    raise UsageError(f"{str(path)!r} is not a jaxcrl run folder (no {CONFIG_FILE}); "
                     "pass a folder written by `python -m experiments.run --out DIR`")
  try:
    spec = json.loads((path / CONFIG_FILE).read_text())
  except json.JSONDecodeError as err:
    raise UsageError(f"{str(path / CONFIG_FILE)!r} is not valid JSON ({err})") from None
  missing = {"env", "seed", "seeds", "cost_limits", "config"} - set(spec)
  if missing:
    raise UsageError(f"{str(path / CONFIG_FILE)!r} lacks {sorted(missing)}; "
                     "not a jaxcrl run folder")
  return spec


def write_spec(path: pathlib.Path, spec: dict[str, Any]) -> None:
  tmp = path / (CONFIG_FILE + ".tmp")
  tmp.write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
  tmp.rename(path / CONFIG_FILE)


def read_nonfinite(path: str | pathlib.Path, up_to_update: int) -> dict[str, dict]:
  """The members of run folder `path` that went non-finite by update `up_to_update` (the
  checkpoint a resumed run starts from): member name -> {"update": the first non-finite
  update, "quantity": the first non-finite loss or state leaf, "last_finite_update": where
  its state was frozen}. Later records are dropped: their member is not frozen in that
  checkpoint, and retrains (and fails again) from it."""
  file = pathlib.Path(path) / NONFINITE_FILE
  if not file.is_file():
    return {}
  records = json.loads(file.read_text())
  return {name: r for name, r in records.items() if r["update"] <= up_to_update}


def write_nonfinite(path: pathlib.Path, records: dict[str, dict]) -> None:
  """Writes `read_nonfinite`'s records atomically (temp file + rename)."""
  tmp = path / (NONFINITE_FILE + ".tmp")
  tmp.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")
  tmp.rename(path / NONFINITE_FILE)


def grid_cells(spec: dict[str, Any]) -> list[tuple[tuple[str, float], ...]]:
  """The cells of the spec's grid, first axis major: [((setting, value), ...), ...];
  [()] (one empty cell) for a plain run."""
  axes = [[(axis["setting"], float(v)) for v in axis["values"]]
          for axis in spec.get("grid") or ()]
  return list(itertools.product(*axes))


def run_members(spec: dict[str, Any]) -> list[Member]:
  return members(spec["seeds"], spec["cost_limits"], grid_cells(spec))


@dataclasses.dataclass
class Built:
  """A run's objects. Batch axis M = seeds x cost limits x grid cells, seed-major (see
  `run_members`; a plain run has one cell)."""
  env: Any                 # unbatched env from envs.make
  config: Any              # TrainConfig of member 0 (the first cost limit and cell)
  member_configs: list     # one TrainConfig per member
  stacked_config: Any      # jaxcrl.stack_configs(member_configs), leaves [M, ...]
  keys: Any                # typed keys [M]
  init: Any                # (keys[M], stacked_config) -> TrainState[M], jitted
  update: Any              # unbatched update(state) -> (state, metrics)
  omit: tuple = ()         # keystr paths its checkpoints leave out (`checkpoint_omits`)


def is_legacy(spec: dict[str, Any]) -> bool:
  """Whether the spec predates the Learner seam (flat settings, no 'learner')."""
  return "learner" not in spec["config"]


def config_from_spec(spec: dict[str, Any]) -> Any:
  """The run's TrainConfig (ValueError naming a bad or misplaced setting).

  A legacy (flat) spec carried every family's settings whatever the algorithm; only the
  run's algorithm's are kept, so its config is the one it trained with.
  """
  from jaxcrl import algorithms
  values = dict(spec["config"])
  algo = values.pop("algo", "ppo_lag")
  for slot in ("learner", "multiplier"):
    values.update(values.pop(slot, None) or {})
  if is_legacy(spec):
    taken = set(algorithms.SHARED_SETTINGS)
    taken.update(k for k in values if algo in algorithms.takers(k))
    values = {k: v for k, v in values.items() if k in taken}
  values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
  return algorithms.make_config(algo, **values)


# TrainState fields that moved under TrainState.learner with the Learner seam.
_LEGACY_LEARNER_FIELDS = ("policy_params", "value_params", "cost_value_params",
                          "policy_opt_state", "value_opt_state", "cost_value_opt_state")


def migrate_legacy_leaves(by_path: dict[str, Any]) -> dict[str, Any]:
  """Checkpoint leaves of an older TrainState layout, renamed to today's paths.

  - Pre-Learner-seam: the policy, critics and their optimizer states moved under
    `learner`; the flat config leaves are dropped (the restore takes the config from the
    run's spec, which `config_from_spec` maps).
  - update_step was one int32 word; it is a two-word `counters.Count` (high, low) now.
  A current checkpoint passes through unchanged.
  """
  out = dict(by_path)
  if "update_step" in out:
    low = np.asarray(out.pop("update_step"))
    out["update_step_low"], out["update_step_high"] = low, np.zeros_like(low)
  if not any(name.startswith(_LEGACY_LEARNER_FIELDS) for name in out):
    return out
  renamed = {}
  for name, x in out.items():
    if name.startswith(_LEGACY_LEARNER_FIELDS):
      renamed["learner_" + name] = x
    elif not name.startswith("config_"):
      renamed[name] = x
  return renamed


def make_env(spec: dict[str, Any], backend: str | None = None) -> Any:
  """The run's unbatched env on `backend`, else on the spec's own backend.

  A spec without 'backend' predates the planar backend: its navigation env ran on mjx.
  Raises ValueError (naming the accepted ones) for an unknown backend, or for a backend given
  to an env that has no choice of physics.
  """
  import envs
  from envs.navigation import NavigationEnv
  env = envs.make(spec["env"])
  backend = backend or spec.get("backend")
  if backend is None:
    backend = "mjx" if isinstance(env, NavigationEnv) else env.backend
  if env.backend == backend:
    return env
  try:
    return envs.make(spec["env"], backend=backend)
  except TypeError as err:
    raise ValueError(f"backend {backend!r}: env {spec['env']!r} has only its own physics "
                     f"({env.backend!r})") from err


def member_config(base: Any, member: Member) -> Any:
  """The TrainConfig `member` trains with: `base` with its cost limit and its cell's
  settings (each routed to where it lives, `jaxcrl.algorithms.with_settings`)."""
  config = dataclasses.replace(base, cost_limit=member.cost_limit)
  if member.cell:
    from jaxcrl import algorithms
    config = algorithms.with_settings(config, **dict(member.cell))
  return config


def build(spec: dict[str, Any], backend: str | None = None) -> Built:
  """Rebuilds env, configs, keys and the batched init of the run described by `spec`
  (on `backend` if given, else the spec's)."""
  import jax
  import jaxcrl

  env = make_env(spec, backend)
  base = config_from_spec(spec)
  member_configs = [member_config(base, m) for m in run_members(spec)]
  stacked = jaxcrl.stack_configs(member_configs)
  keys = jax.numpy.stack([jax.random.key(spec["seed"] + m.seed) for m in run_members(spec)])
  from jaxcrl import algorithms
  if algorithms.is_off_policy(base.algo):   # every member's replay buffer, before any is made
    from jaxcrl.offpolicy import driver
    driver.check_memory(env, member_configs[0], len(member_configs))
  init, update = jaxcrl.make_init_update(env, member_configs[0])
  return Built(env=env, config=member_configs[0], member_configs=member_configs,
               stacked_config=stacked, keys=keys, init=jax.jit(jax.vmap(init)),
               update=update, omit=checkpoint_omits(spec))


def checkpoint_omits(spec: dict[str, Any]) -> tuple[str, ...]:
  """The TrainState subtrees (keystr paths) the run's checkpoints leave out: the replay
  buffer of an off-policy run started with --no-checkpoint-buffer; none otherwise."""
  if spec.get("checkpoint_buffer", True):
    return ()
  from jaxcrl import algorithms
  return (algorithms.get(spec["config"]["algo"]).driver.replay_path,)


def state_template(built: Built) -> Any:
  """The batched TrainState's shapes and dtypes, without running init."""
  import jax
  return jax.eval_shape(built.init, built.keys, built.stacked_config)


def restore_args(built: Built) -> dict[str, Any]:
  """How every reader restores a run's checkpoint into its TrainState: the template,
  leaves the checkpoint lacks filled in, and the legacy layout's leaves renamed.

  Filled: config leaves (settings added since, or a legacy layout) from the spec, and
  `cumulative_cost` (added with the train/cumulative_cost metric) with zeros, so a run
  resumed from a checkpoint older than that leaf counts its cost from the resume.

  A run whose checkpoints leave subtrees out (`Built.omit`: the replay buffer) restores
  them as zeros: an empty buffer (size and position 0), which the resumed run refills
  from its warm-up on.

    store.restore(step, **restore_args(built)); store.restore_latest(**restore_args(built))
  """
  import jax
  import jax.numpy as jnp

  from experiments.checkpoint import is_under
  template = state_template(built)
  zeros = lambda t: jnp.zeros(t.shape, t.dtype)
  fill = template.replace(config=built.stacked_config,
                          cumulative_cost=jax.tree.map(zeros, template.cumulative_cost))
  if built.omit:
    fill = jax.tree_util.tree_map_with_path(
        lambda path, f: zeros(f) if is_under(path, built.omit) else f, fill)
  return {"template": template, "fill": fill, "migrate": migrate_legacy_leaves,
          "omit": built.omit}


def latest_state(run_dir: str | pathlib.Path) -> tuple[int, Any]:
  """(update, batched TrainState) of the newest checkpoint of run folder `run_dir` that
  restores (`CheckpointStore.restore_latest`: later unreadable steps are deleted)."""
  from experiments.checkpoint import CheckpointStore
  run_dir = pathlib.Path(run_dir)
  built = build(read_spec(run_dir))
  store = CheckpointStore(run_dir / CHECKPOINT_DIR)
  try:
    restored = store.restore_latest(**restore_args(built))
  finally:
    store.close()
  if restored is None:
    raise UsageError(f"{str(run_dir)!r} has no checkpoint yet")
  return restored
