"""Host-side experiment plumbing on synthetic data: checkpoints, metric logs, flags, plots, comparisons."""

import argparse
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from experiments import cli, compare, logs, plot, rundir
from experiments.checkpoint import CheckpointStore, from_raw, to_raw


def _tree(seed):
  return {
      "params": {"w": jnp.arange(6.0).reshape(2, 3) + seed, "b": jnp.ones((3,), jnp.bfloat16)},
      "key": jax.random.split(jax.random.key(seed), 4),
      "rbg_key": jax.random.key(seed, impl="rbg"),
      "step": jnp.int32(seed),
  }


def _assert_same(a, b):
  a, b = to_raw(a), to_raw(b)
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert x.dtype == y.dtype and x.shape == y.shape
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_raw_round_trip_keeps_key_impls():
  tree = _tree(3)
  back = from_raw(to_raw(tree), jax.eval_shape(lambda: tree))
  assert jax.random.key_impl(back["rbg_key"]) == jax.random.key_impl(tree["rbg_key"])
  _assert_same(back, tree)
  # The restored keys draw the same numbers.
  np.testing.assert_array_equal(jax.random.normal(back["key"][1]),
                                jax.random.normal(tree["key"][1]))


def test_store_refuses_checkpoints_of_another_state(tmp_path):
  """Checkpoints that none restore (another trainer's state) raise, and stay on disk."""
  store = CheckpointStore(tmp_path / "ckpt", max_to_keep=None)
  for step in (1, 2):
    store.save(step, _tree(step))
  other = jax.eval_shape(lambda: {**_tree(0), "extra": jnp.zeros(3)})
  with pytest.raises(ValueError, match=r"none of the checkpoints .* \(step 2: ValueError: "
                     r"the checkpoint lacks \['extra'\], step 1"):
    store.restore_latest(other)
  assert store.steps() == [1, 2]
  _assert_same(store.restore(2, jax.eval_shape(lambda: _tree(0))), _tree(2))


def test_store_matches_leaves_by_path_and_fills_only_what_is_given(tmp_path, capsys):
  """A state that gained a leaf (a new config field) restores when the caller supplies
  it; a dropped, reshaped or retyped leaf never restores silently."""
  store = CheckpointStore(tmp_path / "ckpt", max_to_keep=None)
  store.save(1, _tree(1))
  grown = {**_tree(0), "a_new": jnp.full((2,), 7.0)}   # sorts first: every index shifts
  template = jax.eval_shape(lambda: grown)
  fill = {**template, "a_new": grown["a_new"]}
  back = store.restore(1, template, fill)
  _assert_same({k: v for k, v in back.items() if k != "a_new"}, _tree(1))
  np.testing.assert_array_equal(back["a_new"], [7.0, 7.0])
  assert "lacks ['a_new']" in capsys.readouterr().err
  np.testing.assert_array_equal(  # the restored keys still draw the saved numbers
      jax.random.normal(back["key"][2]), jax.random.normal(_tree(1)["key"][2]))
  shrunk = {k: v for k, v in _tree(0).items() if k != "step"}
  with pytest.raises(ValueError, match=r"has leaves the state lacks \['step'\]"):
    store.restore(1, jax.eval_shape(lambda: shrunk))
  reshaped = {**_tree(0), "step": jnp.zeros((2,), jnp.int32)}
  with pytest.raises(ValueError, match=r"changed \['step int32\[\] != int32\[2\]'\]"):
    store.restore(1, jax.eval_shape(lambda: reshaped))
  retyped = {**_tree(0), "step": jnp.float32(0)}
  with pytest.raises(ValueError, match=r"step int32\[\] != float32\[\]"):
    store.restore(1, jax.eval_shape(lambda: retyped), jax.eval_shape(lambda: retyped))


def test_zero_size_leaves_round_trip(tmp_path):
  tree = {"empty": jnp.zeros((4, 0), jnp.float32), "x": jnp.arange(3)}
  store = CheckpointStore(tmp_path / "ckpt")
  store.save(1, tree)
  back = store.restore(1, jax.eval_shape(lambda: tree))
  assert back["empty"].shape == (4, 0)
  _assert_same(back, tree)


def test_store_restores_latest_complete_and_skips_broken(tmp_path):
  store = CheckpointStore(tmp_path / "ckpt", max_to_keep=None)
  for step in (1, 2, 3):
    store.save(step, _tree(step))
  template = jax.eval_shape(lambda: _tree(0))
  # Killed mid-save: orbax's tmp dir for step 5. A numbered dir with its data gone: step 4.
  shutil.copytree(tmp_path / "ckpt" / "3", tmp_path / "ckpt" / "5.orbax-checkpoint-tmp-17")
  shutil.copytree(tmp_path / "ckpt" / "3", tmp_path / "ckpt" / "4")
  shutil.rmtree(tmp_path / "ckpt" / "4" / "default")
  (tmp_path / "ckpt" / "4" / "default").mkdir()
  store = CheckpointStore(tmp_path / "ckpt", max_to_keep=None)
  assert store.steps() == [1, 2, 3, 4]
  step, tree = store.restore_latest(template)
  assert step == 3
  _assert_same(tree, _tree(3))
  assert store.steps() == [1, 2, 3]  # the broken step 4 is cleared for the resumed run
  _assert_same(store.restore(1, template), _tree(1))


def test_metrics_log_truncates_on_resume(tmp_path):
  members = logs.members(2, [0.5, 1.0])
  log = logs.MetricsLog(tmp_path, members, tensorboard=True)
  k, m = 3, len(members)
  vals = np.arange(k * m, dtype=np.float32).reshape(k, m)
  log.write(1, {"b": vals, "a": -vals})
  log.write(4, {"b": vals + 100, "a": -vals})
  log.close()
  path = tmp_path / "metrics" / f"{members[1].name}.csv"
  data = logs.read_csv(path)
  assert list(data) == ["update", "a", "b"]
  np.testing.assert_array_equal(data["update"], np.arange(1, 7))
  np.testing.assert_array_equal(data["b"], np.concatenate([vals[:, 1], vals[:, 1] + 100]))
  # Resuming from update 4: rows 5 and 6 go, the rewritten ones come back once.
  log = logs.MetricsLog(tmp_path, members, start_update=4, tensorboard=True)
  log.write(5, {"b": vals[:2] + 7, "a": vals[:2]})
  log.close()
  data = logs.read_csv(path)
  np.testing.assert_array_equal(data["update"], np.arange(1, 7))
  np.testing.assert_array_equal(data["b"][4:], vals[:2, 1] + 7)
  assert list((tmp_path / "tb" / members[0].name).iterdir())


def test_metrics_log_writes_env_steps_exactly_past_float32_integers(tmp_path):
  """Past 2**24 float32 skips integers: update 2**23 + 1 at 3 env steps per update is
  25165827 env steps, which float32 rounds to 25165828; the CSV holds the exact count."""
  members = logs.members(1, [25.0])
  first = 2**23 + 1
  steps = np.float32(first * 3)
  assert int(steps) != first * 3
  log = logs.MetricsLog(tmp_path, members, tensorboard=False, steps_per_update=3,
                        start_update=first - 1)
  log.write(first, {"train/env_steps": np.full((2, 1), steps), "a": np.zeros((2, 1))})
  data = logs.read_csv(tmp_path / "metrics" / f"{members[0].name}.csv")
  np.testing.assert_array_equal(data["train/env_steps"], [first * 3, first * 3 + 3])
  np.testing.assert_array_equal(data["update"], [first, first + 1])


def test_metrics_log_resumed_by_a_trainer_with_more_metrics(tmp_path):
  """A new metric gets a column (nan in older rows); a dropped one is refused untouched."""
  members = logs.members(1, [25.0])
  path = tmp_path / "metrics" / f"{members[0].name}.csv"
  log = logs.MetricsLog(tmp_path, members, tensorboard=False)
  log.write(1, {"b": np.ones((2, 1)), "a": np.zeros((2, 1))})
  log = logs.MetricsLog(tmp_path, members, start_update=2, tensorboard=False)
  log.write(3, {"b": np.full((1, 1), 3.0), "a": np.zeros((1, 1)), "c": np.full((1, 1), 5.0)})
  data = logs.read_csv(path)
  assert list(data) == ["update", "a", "b", "c"]
  np.testing.assert_array_equal(data["update"], [1, 2, 3])
  np.testing.assert_array_equal(data["b"], [1, 1, 3])
  np.testing.assert_array_equal(data["c"], [np.nan, np.nan, 5.0])
  before = path.read_text()
  log = logs.MetricsLog(tmp_path, members, start_update=3, tensorboard=False)
  with pytest.raises(ValueError, match=r"columns \['a'\] that the trainer no longer"):
    log.write(4, {"b": np.ones((1, 1)), "c": np.ones((1, 1))})
  assert path.read_text() == before


@struct.dataclass
class _Config:
  """Synthetic config.

  Fields:
    name: one of _NAMES.
    steps: total steps,
      continued here.
    sizes, other: hidden sizes.
  """
  name: str = struct.field(pytree_node=False, default="a")
  steps: int = struct.field(pytree_node=False, default=1000)
  sizes: tuple = struct.field(pytree_node=False, default=(4, 4))
  length: int | None = struct.field(pytree_node=False, default=None)
  flag: bool = struct.field(pytree_node=False, default=True)
  rate: float = 0.5


_NAMES = ("a", "b")


def test_dataclass_flags_cover_every_field():
  parser = cli.Parser()
  names = cli.add_dataclass_flags(parser, _Config(), "config")
  assert names == ["name", "steps", "sizes", "length", "flag", "rate"]
  text = parser.format_help()
  for flag in ("--name", "--steps", "--sizes", "--length", "--flag", "--rate"):
    assert flag in text
  assert "one of a, b" in text and "continued here" in text and "(default: 1000)" in text
  args = parser.parse_args(["--steps", "5e6", "--sizes", "8,16", "--length", "none",
                            "--flag", "false", "--rate", "0.25"])
  assert (args.steps, args.sizes, args.length, args.flag, args.rate) == (
      5_000_000, (8, 16), None, False, 0.25)
  assert parser.parse_args(["--length", "7"]).length == 7
  with pytest.raises(cli.UsageError, match="1.5"):
    parser.parse_args(["--steps", "1.5"])
  cfg = cli.dataclass_from_dict(_Config, cli.dataclass_to_dict(_Config(sizes=(3,))))
  assert cfg == _Config(sizes=(3,))


def test_run_main_turns_usage_errors_into_exit_2(capsys):
  def body(argv):
    with cli.usage_errors():
      raise ValueError(f"bad value {argv[0]!r};\n accepted: x")
  assert cli.run_main(body, ["q"]) == 2
  err = capsys.readouterr().err
  assert err == "error: bad value 'q'; accepted: x\n"

  def crash(argv):
    raise ValueError("a bug, not bad input")
  with pytest.raises(ValueError, match="a bug"):
    cli.run_main(crash, [])


def _fake_run(path: pathlib.Path, limits, seeds=2, updates=20):
  path.mkdir()
  spec = {"env": "Fake", "seed": 0, "seeds": seeds, "cost_limits": limits,
          "config": {"algo": "ppo_lag"}}
  rundir.write_spec(path, spec)
  members = rundir.run_members(spec)
  log = logs.MetricsLog(path, members, tensorboard=False)
  t = np.arange(1, updates + 1, dtype=np.float32)[:, None]
  d = np.asarray([m.cost_limit for m in members], np.float32)[None]
  s = np.asarray([m.seed for m in members], np.float32)[None]
  cost = d + 10.0 / t + s
  log.write(1, {"episode/return": 2 * cost, "episode/cost": cost,
                "lambda/mean": 1 / (1 + d) + 0 * t, "train/env_steps": 64 * t + 0 * d})
  log.close()


def test_plots_written(tmp_path):
  _fake_run(tmp_path / "A", [5.0, 10.0, 25.0])
  _fake_run(tmp_path / "B", [25.0], seeds=1)
  assert plot.main([str(tmp_path / "A"), str(tmp_path / "B"),
                    "--out", str(tmp_path / "png")]) == 0
  written = sorted(p.name for p in (tmp_path / "png").iterdir())
  assert written == ["cost.png", "lambda.png", "return.png", "tradeoff.png"]
  for name in written:
    head = (tmp_path / "png" / name).read_bytes()
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) > 5000
  groups = plot.load_groups(tmp_path / "A")
  assert [g["limit"] for g in groups] == [5.0, 10.0, 25.0]
  # final = mean of the last 2 of 20 updates: d + 10 / t + seed.
  want = np.asarray([5 + 10 / 19.5 + s for s in (0, 1)])
  np.testing.assert_allclose(logs.final_value(groups[0]["data"]["episode/cost"]), want,
                             rtol=1e-3)


def test_plot_rejects_non_run(tmp_path, capsys):
  (tmp_path / "empty").mkdir()
  before = sorted(tmp_path.rglob("*"))
  assert plot.main([str(tmp_path / "empty")]) == 2
  assert "not a jaxcrl run folder" in capsys.readouterr().err
  assert sorted(tmp_path.rglob("*")) == before


def test_compare_final_numbers(tmp_path, capsys):
  _fake_run(tmp_path / "A", [5.0, 25.0])
  _fake_run(tmp_path / "B", [25.0], seeds=1)
  rows = compare.compare([tmp_path / "B", tmp_path / "A"])
  assert [(r["run"][-1], r["limit"], r["seeds"]) for r in rows] == [
      ("B", 25.0, 1), ("A", 5.0, 2), ("A", 25.0, 2)]
  # final = mean of the last 2 of 20 updates of cost d + 10 / t + seed; return = 2 cost.
  tail = (10 / 19 + 10 / 20) / 2
  base_return = 2 * (25 + tail)
  a5 = rows[1]
  assert a5["env steps"] == 64 * 20
  np.testing.assert_allclose(a5["cost"], (5 + tail + 0.5, 0.5), rtol=1e-5)
  np.testing.assert_allclose(a5["return / baseline"], 2 * (5 + tail + 0.5) / base_return,
                             rtol=1e-5)
  assert a5["cost < limit"] is False and rows[0]["return / baseline"] == pytest.approx(1.0)
  # --at 640 steps: the curves end at update 10, whose last 1 update is the final one.
  early = compare.compare([tmp_path / "B", tmp_path / "A"], at=640)
  assert [r["env steps"] for r in early] == [640, 640, 640]
  np.testing.assert_allclose(early[2]["cost"], (25 + 1 + 0.5, 0.5), rtol=1e-5)

  assert compare.main([str(tmp_path / "B"), str(tmp_path / "A"), "--at", "640"]) == 0
  table = capsys.readouterr().out.splitlines()
  assert len(table) == 2 + 3 and table[0].startswith("| run | algo | limit |")
  # A at limit 5: return 2 * 6.5 over the baseline's 2 * 26; no w or violation_frac logged.
  assert table[3].endswith("| 0.17 ± 0.00 | n/a | n/a | no | 25.0% |")


def test_compare_rejects_bad_input(tmp_path, capsys):
  _fake_run(tmp_path / "A", [25.0])
  before = sorted(tmp_path.rglob("*"))
  assert compare.main([str(tmp_path / "A"), "--at", "10"]) == 2
  assert capsys.readouterr().err == (
      f"error: --at 10 is before the first logged update of 'A' (64 env steps)\n")
  assert compare.main([str(tmp_path / "A"), "--at", "0"]) == 2
  assert "--at must be a positive number of env steps, got 0" in capsys.readouterr().err
  assert compare.main([str(tmp_path / "A"), "--baseline", str(tmp_path / "nope")]) == 2
  assert "not a jaxcrl run folder" in capsys.readouterr().err
  assert sorted(tmp_path.rglob("*")) == before
