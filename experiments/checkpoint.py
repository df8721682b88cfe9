"""Orbax checkpoints of a whole pytree (e.g. a batched jaxcrl TrainState), typed keys included.

Orbax stores plain arrays only, so typed PRNG keys travel as their `jax.random.key_data`
and are re-wrapped on restore with the impl read off the restore template. Orbax writes
each step into `<step>.orbax-checkpoint-tmp-*` and renames it when complete, so a process
killed mid-save leaves only a tmp dir, which `CheckpointStore` ignores. A numbered step
dir that still fails to restore (copied by hand, disk full, ...) is skipped with a warning
in favour of the newest one that restores.

  store = CheckpointStore(run_dir / "checkpoints")
  store.save(step, state)
  step, state = store.restore_latest(template)   # template: concrete or jax.eval_shape tree

Leaves are matched to the template by their path, so a checkpoint still restores after the
tree gained a leaf (e.g. a new TrainConfig field) when the caller passes `fill`, a tree of
the template's structure whose concrete leaves supply the values the checkpoint lacks.
A leaf the checkpoint has and the template lacks, or one whose shape or dtype changed, is
never dropped or cast: the restore fails.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import sys
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp


def _is_key(x: Any) -> bool:
  return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _key_impl(x: Any) -> str:
  """The PRNG impl name of a concrete or abstract (ShapeDtypeStruct) key array."""
  if isinstance(x, jax.ShapeDtypeStruct):
    # key_impl only accepts arrays; a tracer of the same aval carries the impl.
    found = []
    jax.eval_shape(lambda k: found.append(jax.random.key_impl(k)), x)
    return found[0]
  return jax.random.key_impl(x)


def _size(x: Any) -> int:
  return int(np.prod(x.shape)) if hasattr(x, "shape") else 1


def _path_name(path: Any) -> str:
  """A leaf's path as a file-safe name: `.config.cost_limit` -> `config_cost_limit`."""
  return re.sub(r"[^A-Za-z0-9]+", "_", jax.tree_util.keystr(path)).strip("_")


def is_under(path: Any, prefixes: tuple[str, ...]) -> bool:
  """Whether a leaf's path (`jax.tree_util.keystr` form, e.g. `.learner.replay.size`) is
  one of `prefixes` or below one."""
  name = jax.tree_util.keystr(path)
  return any(name == p or name.startswith(p + ".") or name.startswith(p + "[")
             for p in prefixes)


def to_raw(tree: Any, omit: tuple[str, ...] = ()) -> dict[str, Any]:
  """A flat {name: array} of the tree's leaves, keys as their uint32 `key_data`.

  Names are `<leaf index>_<path>` so they are unique, readable and sorted in tree order;
  `from_raw` matches them by path. Zero-size leaves (e.g. an MJX model's empty actuator
  state) are left out: orbax refuses to save them, and `from_raw` rebuilds them from the
  template's shape. So are the subtrees at the keystr paths `omit` (`is_under`), which a
  restore takes from its `fill`.
  """
  raw = {}
  for i, (path, x) in enumerate(jax.tree_util.tree_flatten_with_path(tree)[0]):
    if _size(x) == 0 or is_under(path, omit):
      continue
    raw[f"{i:05d}_{_path_name(path)}"] = jax.random.key_data(x) if _is_key(x) else x
  return raw


def _shardings(template: Any) -> dict[str, Any]:
  """{leaf path name: sharding} where each leaf of `template` restores, as `to_raw`
  stores it (a key's is its key_data's): a concrete leaf's own sharding (a multi-process
  run passes its initial state, whose shards span the processes); an abstract leaf's
  is this process's first device, so one process can also read what several wrote
  (orbax refuses a checkpoint of another topology without a target placement)."""
  default = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  out = {}
  for path, x in jax.tree_util.tree_flatten_with_path(template)[0]:
    if not _size(x):
      continue
    if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer):
      out[_path_name(path)] = (jax.random.key_data(x) if _is_key(x) else x).sharding
    else:
      out[_path_name(path)] = default
  return out


def _is_concrete(x: Any) -> bool:
  return not isinstance(x, jax.ShapeDtypeStruct) and hasattr(x, "shape")


def from_raw(raw: dict[str, Any], template: Any, fill: Any = None,
             migrate: Callable[[dict], dict] | None = None,
             omit: tuple[str, ...] = ()) -> Any:
  """Inverse of `to_raw`: the leaves of `raw` in `template`'s structure, keys re-wrapped.

  Leaves are found by path (the name after the index), after `migrate` (if given) has
  mapped {path: leaf} of an older tree layout to today's. A template leaf that `raw`
  lacks is taken from `fill` (same structure as `template`) when that leaf is concrete
  there (with a note on stderr, unless it lies under `omit`: left out on purpose);
  otherwise, and for a leaf of `raw` the template lacks, raises ValueError naming them.
  """
  by_path = {name.split("_", 1)[1]: x for name, x in raw.items()}  # to_raw: index_path
  if len(by_path) != len(raw):
    raise ValueError("checkpoint leaf paths are not unique: "
                     f"{sorted(name for name in raw)}")
  if migrate is not None:
    by_path = migrate(by_path)
  flat, treedef = jax.tree_util.tree_flatten_with_path(template)
  fills = treedef.flatten_up_to(fill) if fill is not None else [None] * len(flat)
  out, missing, changed, filled = [], [], [], []
  for (path, t), f in zip(flat, fills):
    name = _path_name(path)
    if _size(t) == 0:
      out.append(jnp.zeros(t.shape, t.dtype))
      continue
    x = by_path.pop(name, None)
    if x is None:
      if not _is_concrete(f):
        missing.append(name)
        continue
      x = f
      if not is_under(path, omit):
        filled.append(name)
    elif _is_key(t):
      x = jax.random.wrap_key_data(x, impl=_key_impl(t))
    if x.shape != t.shape or x.dtype != t.dtype:
      changed.append(f"{name} {x.dtype}{list(x.shape)} != {t.dtype}{list(t.shape)}")
    out.append(x)
  problems = ([f"lacks {missing}"] if missing else []) + (
      [f"has leaves the state lacks {sorted(by_path)}"] if by_path else []) + (
      [f"changed {changed}"] if changed else [])
  if problems:
    raise ValueError("the checkpoint " + "; ".join(problems))
  if filled:
    print(f"note: the checkpoint lacks {filled}; taking them from the given fill",
          file=sys.stderr)
  return jax.tree.unflatten(treedef, out)


class CheckpointStore:
  """Numbered checkpoints of one pytree in `directory` (synchronous, atomic per step).

  `omit`: keystr paths of subtrees that `save` leaves out (`to_raw`); a restore of such a
  checkpoint needs them in its `fill`.
  """

  def __init__(self, directory: str | pathlib.Path, max_to_keep: int | None = 3,
               omit: tuple[str, ...] = ()):
    self.directory = pathlib.Path(directory).absolute()
    self.omit = tuple(omit)
    self._manager = ocp.CheckpointManager(
        self.directory,
        item_handlers=ocp.StandardCheckpointHandler(),  # so a fresh store reads metadata
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False),
    )

  def steps(self) -> list[int]:
    """Completed (renamed) step numbers, ascending."""
    self._manager.reload()
    return sorted(self._manager.all_steps())

  def save(self, step: int, tree: Any) -> None:
    self._manager.save(step, args=ocp.args.StandardSave(to_raw(tree, self.omit)), force=True)
    self._manager.wait_until_finished()

  def try_save(self, step: int, tree: Any) -> str | None:
    """`save`, reporting a failure instead of raising: None if step `step` was written,
    else one line saying why and which checkpoint is still the newest restorable one.

    A failed write (disk full, read-only folder, ...) leaves at most an unfinished tmp
    dir, which is removed if it can be (restores ignore it either way); the steps
    written before stay as they were.
    """
    try:
      self.save(step, tree)
      return None
    except Exception as err:  # noqa: BLE001 - any failure leaves the old steps usable
      reason = f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}"
    for tmp in self.directory.glob(f"{step}.orbax-checkpoint-tmp*"):
      shutil.rmtree(tmp, ignore_errors=True)
    try:
      self._manager.reload()
      kept = self.steps()
    except Exception:  # noqa: BLE001 - the folder may be unreadable too
      kept = []
    newest = f"update {kept[-1]}" if kept else "none"
    return (f"checkpoint of update {step} in {self.directory} failed ({reason}); "
            f"newest restorable checkpoint: {newest}")

  def restore(self, step: int, template: Any, fill: Any = None,
              migrate: Callable[[dict], dict] | None = None,
              omit: tuple[str, ...] = ()) -> Any:
    """The tree saved at `step`, with the structure, dtypes and key impls of `template`.

    Leaves the checkpoint lacks come from `fill`'s concrete leaves; `migrate` maps an
    older layout's leaf paths; `omit` names the subtrees left out on purpose (see
    `from_raw`).
    """
    saved = self._manager.item_metadata(step)
    shardings = _shardings(template)
    abstract = {name: jax.ShapeDtypeStruct(m.shape, m.dtype,
                                           sharding=shardings.get(name.split("_", 1)[1]))
                for name, m in saved.items()}
    raw = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
    return from_raw(raw, template, fill, migrate, omit)

  def restore_latest(self, template: Any, fill: Any = None,
                     migrate: Callable[[dict], dict] | None = None,
                     omit: tuple[str, ...] = ()) -> tuple[int, Any] | None:
    """(step, tree) from the newest step that restores, or None if there are no steps.

    Steps after the restored one are unusable; they are deleted so the resumed run can
    save those step numbers again. If there are steps and none restores into
    `template` (e.g. written by a version whose state has other leaves), raises
    ValueError and deletes nothing: starting over would overwrite the run.
    """
    failures = []
    for step in reversed(self.steps()):
      try:
        tree = self.restore(step, template, fill, migrate, omit)
      except Exception as err:  # noqa: BLE001 - any failure means "not a usable checkpoint"
        print(f"warning: checkpoint step {step} in {self.directory} is unreadable "
              f"({type(err).__name__}); trying an older one", file=sys.stderr)
        reason = (str(err).splitlines() or [""])[0][:300]
        failures.append(f"step {step}: {type(err).__name__}: {reason}")
        continue
      if jax.process_index() == 0:
        for later in self.steps():
          if later > step:
            shutil.rmtree(self.directory / str(later))
      if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(f"restored {self.directory} {step}")
      self._manager.reload()
      return step, tree
    if failures:
      raise ValueError(
          f"none of the checkpoints in {self.directory} restores into this state "
          f"({', '.join(failures)}); were they written by another version or config? "
          "Resume with the version that wrote them, or start a new run")
    return None

  def close(self) -> None:
    self._manager.close()
