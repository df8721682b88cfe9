"""`experiments.run` / `.eval` end to end, in-process, on a tiny ProbeCostlyBandit config."""

import json
import os
import pathlib
import shutil
import signal

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from experiments import eval as eval_cli
from experiments import logs, rundir, run
from experiments.checkpoint import CheckpointStore, to_raw
from experiments.logs import read_csv

# 2 seeds x 2 limits; 6 updates of 8 envs x 4 steps; chunks of 2 updates, a checkpoint each.
TINY = ["--env", "ProbeCostlyBandit", "--algo", "ppo_lag", "--steps", "192",
        "--num-envs", "8", "--unroll-length", "4", "--num-minibatches", "2",
        "--num-epochs", "1", "--policy-hidden", "8", "--value-hidden", "8",
        "--lagrange-lr", "0.5", "--seeds", "2",
        "--cost-limits", "0.2,0.5", "--log-every", "2", "--checkpoint-every", "2",
        "--no-progress", "--no-plots"]


def _listing(root: pathlib.Path):
  """Every path under root with its size and mtime: proof that nothing was touched."""
  return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                for p in root.rglob("*"))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  out = tmp_path_factory.mktemp("runs") / "tiny"
  assert run.main(TINY + ["--out", str(out)]) == 0
  return out


def test_run_folder_contents(finished):
  spec = json.loads((finished / "config.json").read_text())
  assert spec["env"] == "ProbeCostlyBandit" and spec["seeds"] == 2
  assert spec["cost_limits"] == [0.2, 0.5] and spec["config"]["num_envs"] == 8
  assert spec["argv"][:2] == ["--env", "ProbeCostlyBandit"] and "jax" in spec["versions"]
  for m in rundir.run_members(spec):
    data = logs.read_csv(finished / "metrics" / f"{m.name}.csv")
    np.testing.assert_array_equal(data["update"], np.arange(1, 7))
    np.testing.assert_array_equal(data["train/env_steps"], 32 * np.arange(1, 7))
    for key in ("episode/return", "episode/cost", "lambda/mean", "policy/kl"):
      assert np.isfinite(data[key]).all()
    assert any((finished / "tb" / m.name).iterdir())
  assert CheckpointStore(finished / "checkpoints").steps() == [2, 4, 6]
  timing = logs.read_csv(finished / "metrics" / "timing.csv")   # one row per chunk
  np.testing.assert_array_equal(timing["update"], [2, 4, 6])
  assert np.all(np.isfinite(timing["env_steps_per_s"]) & (timing["env_steps_per_s"] > 0))
  summary = json.loads((finished / "summary.json").read_text())
  assert summary["finished"] and summary["updates"] == 6
  assert set(summary["by_limit"]) == {"0.2", "0.5"}
  # The limits share keys per seed, so they differ only through lambda's response to d:
  # with cost above both limits, the tighter one grows lambda faster.
  lam = {d: summary["by_limit"][d]["lambda/mean"]["mean"] for d in ("0.2", "0.5")}
  assert lam["0.2"] > lam["0.5"] > 0


def test_cumulative_cost_column(finished):
  """train/cumulative_cost: each update's batch cost (cost rate x 32 env steps) summed from
  the start, per member; the checkpoint holds the same total."""
  _, state = rundir.latest_state(finished)
  for j, m in enumerate(rundir.run_members(rundir.read_spec(finished))):
    data = logs.read_csv(finished / "metrics" / f"{m.name}.csv")
    total = data["train/cumulative_cost"]
    np.testing.assert_allclose(total, np.cumsum(data["episode/cost_rate"] * 32), rtol=1e-6)
    assert np.all(np.diff(total) >= 0) and total[-1] > 0
    np.testing.assert_allclose(state.cumulative_cost.high[j] + state.cumulative_cost.low[j],
                               total[-1], rtol=1e-6)


def test_resume_is_bit_identical_and_skips_broken_checkpoints(finished, tmp_path):
  # Simulate a run killed while saving update 6: checkpoints up to 2 complete, update 4's
  # numbered dir lost its data, update 6 only in orbax's tmp dir; CSVs ran ahead to 6.
  broken = tmp_path / "broken"
  shutil.copytree(finished, broken)
  ckpt = broken / "checkpoints"
  (broken / "summary.json").unlink(missing_ok=True)
  shutil.rmtree(ckpt / "4" / "default")
  (ckpt / "4" / "default").mkdir()
  os.rename(ckpt / "6", ckpt / "6.orbax-checkpoint-tmp-1234")
  assert run.main(["--resume", str(broken), "--no-progress", "--no-plots"]) == 0

  step_a, state_a = rundir.latest_state(finished)
  step_b, state_b = rundir.latest_state(broken)
  assert step_a == step_b == 6
  leaves_a, leaves_b = jax.tree.leaves(to_raw(state_a)), jax.tree.leaves(to_raw(state_b))
  assert len(leaves_a) == len(leaves_b)
  for a, b in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  for m in rundir.run_members(rundir.read_spec(finished)):
    name = f"metrics/{m.name}.csv"
    assert (broken / name).read_text() == (finished / name).read_text()
  # Wall-clock timing differs, but its rows past the resumed checkpoint were replaced.
  timing = logs.read_csv(broken / "metrics" / "timing.csv")
  np.testing.assert_array_equal(timing["update"], [2, 4, 6])


def test_resume_with_more_steps_matches_a_longer_run(finished, tmp_path):
  # Extending the 6-update run to 8 updates gives the same logs as training 8 from scratch.
  extended = tmp_path / "extended"
  shutil.copytree(finished, extended)
  assert run.main(["--resume", str(extended), "--steps", "256", "--no-progress",
                   "--no-plots"]) == 0
  assert rundir.read_spec(extended)["config"]["num_timesteps"] == 256
  straight = tmp_path / "straight"
  argv = TINY[:TINY.index("--steps")] + TINY[TINY.index("--steps") + 2:]
  assert run.main(argv + ["--steps", "256", "--out", str(straight)]) == 0
  for m in rundir.run_members(rundir.read_spec(finished)):
    name = f"metrics/{m.name}.csv"
    assert (extended / name).read_text() == (straight / name).read_text()
  assert json.loads((extended / "summary.json").read_text())["updates"] == 8

  # A 5-update run ends off the 2-update chunk grid; extended to 8 it must run 3 updates
  # (5-7, 7-8), not redo the 4-6 chunk from update 5's state (which labelled update 7 "6"
  # and logged update 5 twice).
  short = tmp_path / "short"
  assert run.main(argv + ["--steps", "160", "--out", str(short)]) == 0
  assert run.main(["--resume", str(short), "--steps", "256", "--no-progress",
                   "--no-plots"]) == 0
  (step_a, state_a), (step_b, state_b) = rundir.latest_state(straight), rundir.latest_state(short)
  assert step_a == step_b == 8
  np.testing.assert_array_equal(state_b.update_step.value(), [8, 8, 8, 8])
  for (name, a), b in zip(to_raw(state_a).items(), to_raw(state_b).values()):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)
  for m in rundir.run_members(rundir.read_spec(finished)):
    name = f"metrics/{m.name}.csv"
    assert (short / name).read_text() == (straight / name).read_text()


BAD = {
    "unknown env": (["--env", "NoSuchEnv"], "NoSuchEnv"),
    "unknown algo": (["--algo", "ppo_magic"], "ppo_magic"),
    "negative limit list": (["--cost-limits", "10,-1"], "-1"),
    "negative limit": (["--cost-limit", "-3"], "-3"),
    "both limit flags": (["--cost-limit", "3", "--cost-limits", "1,2"], "not both"),
    "non-dividing minibatches": (["--num-minibatches", "5"], "num_minibatches=5"),
    "steps below one update": (["--steps", "10"], "num_timesteps=10"),
    "zero seeds": (["--seeds", "0"], "--seeds 0"),
    "bad number": (["--num-envs", "eight"], "eight"),
    "unknown backend": (["--env", "PointGoal1", "--backend", "bullet"],
                        "backend 'bullet' is not one of planar, mjx"),
    "backend of a physics-free env": (["--backend", "planar"], "has only its own physics"),
    "another family's setting": (["--max-kl", "0.02"],
                                 "max_kl is a setting of trpo, trpo_lag, cpo, pcpo, not of "
                                 "ppo_lag"),
    "a setting out of its range": (["--algo", "trpo_lag", "--max-kl", "-1"],
                                   "max_kl must be > 0, got -1.0"),
    "a multiplier setting of no multiplier": (["--algo", "cpo", "--lagrange-lr", "0.1"],
                                              "lagrange_lr is a setting of ppo_lag"),
    "a buffer flag without a buffer": (["--no-checkpoint-buffer"],
                                       "--no-checkpoint-buffer is for the off-policy "
                                       "algorithms (sac, "),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_exit_2_writes_nothing(name, tmp_path, capsys):
  extra, needle = BAD[name]
  out = tmp_path / "new"
  before = _listing(tmp_path)
  base = TINY[:TINY.index("--cost-limits")] + TINY[TINY.index("--cost-limits") + 2:]
  assert run.main(base + extra + ["--out", str(out)]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
  assert _listing(tmp_path) == before


def test_bad_resume_and_out_exit_2_touch_nothing(finished, tmp_path, capsys):
  shutil.copytree(finished, tmp_path / "done")
  (tmp_path / "notarun").mkdir()
  (tmp_path / "notarun" / "x.txt").write_text("keep me")
  before = _listing(tmp_path)
  cases = [
      (["--resume", str(tmp_path / "notarun")], "not a jaxcrl run folder"),
      (["--resume", str(tmp_path / "missing")], "not a jaxcrl run folder"),
      (TINY + ["--out", str(tmp_path / "done")], "already holds a run"),
      (TINY + ["--out", str(tmp_path / "notarun")], "not an empty folder"),
      (["--resume", str(tmp_path / "done"), "--num-envs", "4"], "--num-envs"),
      (["--resume", str(tmp_path / "done"), "--steps", "128"], "only be extended"),
  ]
  for argv, needle in cases:
    assert run.main(argv) == 2, argv
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
  assert _listing(tmp_path) == before


def test_resume_of_checkpoints_another_version_wrote_exits_2_touching_nothing(
    finished, tmp_path, monkeypatch, capsys):
  """A trainer whose state has other leaves must not restart the run over its logs."""
  shutil.copytree(finished, tmp_path / "older")
  before = _listing(tmp_path)
  template = rundir.state_template
  def other_state(built):  # a state with an extra, unfillable leaf
    state = template(built)
    return state.replace(update_step=(state.update_step,
                                      jax.ShapeDtypeStruct((3,), np.float32)))
  monkeypatch.setattr(rundir, "state_template", other_state)
  argv = ["--resume", str(tmp_path / "older"), "--steps", "256", "--no-progress",
          "--no-plots"]
  assert run.main(argv) == 2
  err = capsys.readouterr().err.strip().splitlines()[-1]
  assert err.startswith("error: cannot resume") and "none of the checkpoints" in err, err
  assert _listing(tmp_path) == before


def test_resume_of_a_checkpoint_older_than_a_config_field(finished, tmp_path, capsys):
  """A run written before TrainConfig gained `target_kl` resumes, the new field taken from
  its (default) config, and ends exactly where the same run trained by today's code ends."""
  older = tmp_path / "older"
  shutil.copytree(finished, older)
  (older / "summary.json").unlink()
  for step in ("4", "6"):
    shutil.rmtree(older / "checkpoints" / step)
  _, state = rundir.latest_state(older)
  # What the older version wrote: no config_target_kl leaf, the later indices one lower.
  kept = [(name.split("_", 1)[1], x) for name, x in to_raw(state).items()
          if not name.endswith("_config_learner_target_kl")]
  assert len(kept) == len(to_raw(state)) - 1
  shutil.rmtree(older / "checkpoints" / "2")
  manager = ocp.CheckpointManager(older / "checkpoints", options=ocp.CheckpointManagerOptions(
      enable_async_checkpointing=False))
  manager.save(2, args=ocp.args.StandardSave(
      {f"{i:05d}_{path}": x for i, (path, x) in enumerate(kept)}))
  manager.wait_until_finished()
  manager.close()
  spec = json.loads((older / "config.json").read_text())
  del spec["config"]["learner"]["target_kl"]
  (older / "config.json").write_text(json.dumps(spec))

  assert run.main(["--resume", str(older), "--no-progress", "--no-plots"]) == 0
  assert "lacks ['config_learner_target_kl']" in capsys.readouterr().err
  assert rundir.read_spec(older)["config"]["learner"]["target_kl"] == 0.0
  (step_a, state_a), (step_b, state_b) = rundir.latest_state(finished), rundir.latest_state(older)
  assert step_a == step_b == 6
  for (name, a), b in zip(to_raw(state_a).items(), to_raw(state_b).values()):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)


LEGACY = pathlib.Path(__file__).parent / "data"


def test_resume_of_a_run_written_before_the_learner_seam(tmp_path):
  """tests/data/legacy_statewise_run was written by the trainer before the Learner seam
  (commit 4fc3e8c: flat config.json, policy and critics at the TrainState's top level):
    python -m experiments.run --env ProbeTwoRegion --algo ppo_statewise --steps 640
      --num-envs 4 --unroll-length 8 --num-minibatches 2 --num-epochs 2 --policy-hidden 8
      --value-hidden 8 --multiplier-hidden 8 --log-every 5 --checkpoint-every 10 --seeds 1
      --cost-limits 0.5,1 --out legacy_statewise_run
  and legacy_statewise_continued/ holds the metrics that same code wrote when the run was
  resumed with --steps 960. Today's code resumes it (leaves renamed, the flat config
  mapped) and writes the same metrics."""
  work = tmp_path / "run"
  shutil.copytree(LEGACY / "legacy_statewise_run", work)
  assert run.main(["--resume", str(work), "--steps", "960", "--no-progress",
                   "--no-plots"]) == 0
  spec = rundir.read_spec(work)
  assert spec["config"]["multiplier"]["multiplier_hidden"] == [8]
  assert "pid_kp" not in json.dumps(spec["config"])
  for name in ("seed0_limit0.5.csv", "seed0_limit1.csv"):
    ours = read_csv(work / "metrics" / name)
    theirs = read_csv(LEGACY / "legacy_statewise_continued" / name)
    assert len(ours["update"]) == len(theirs["update"]) == 30
    for key in theirs:
      np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-7, err_msg=key)


def test_eval_finite_and_reproducible(finished, tmp_path, capsys):
  work = tmp_path / "run"
  shutil.copytree(finished, work)
  assert eval_cli.main([str(work), "--episodes", "4", "--seed", "3"]) == 0
  first = json.loads((work / "eval" / "step6.json").read_text())
  assert eval_cli.main([str(work), "--episodes", "4", "--seed", "3"]) == 0
  assert json.loads((work / "eval" / "step6.json").read_text()) == first
  assert first["step"] == 6 and len(first["members"]) == 4
  for stats in first["by_limit"].values():
    for key, v in stats.items():
      assert np.isfinite(v["mean"]) and np.isfinite(v["std"]), key
    # One-step bandit: return = cost = cost rate, each 0 or 1.
    assert stats["return"] == stats["cost"] == stats["cost_rate"]
    assert 0.0 <= stats["within_limit"]["mean"] <= 1.0
  assert eval_cli.main([str(work), "--step", "4"]) == 0
  assert (work / "eval" / "step4.json").exists()
  out = capsys.readouterr().out
  assert "limit 0.2:" in out and "within_limit" in out

  before = _listing(tmp_path)
  for argv, needle in [([str(work), "--step", "5"], "available: 2, 4, 6"),
                       ([str(tmp_path / "nope")], "not a jaxcrl run folder"),
                       ([str(work), "--episodes", "0"], "--episodes 0"),
                       ([str(work), "--render", str(tmp_path / "x.html")],
                        "no physics system to draw"),
                       ([str(work), "--backend", "mjx"],
                        "backend 'mjx': env 'ProbeCostlyBandit' has only its own physics")]:
    assert eval_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err, err
  assert _listing(tmp_path) == before


def test_ctrl_c_saves_last_chunk_and_resume_matches(finished, tmp_path, monkeypatch, capsys):
  out = tmp_path / "interrupted"
  real_write = logs.MetricsLog.write

  def write_then_interrupt(self, first_update, metrics):
    real_write(self, first_update, metrics)
    if first_update == 5:  # Ctrl-C while chunk 3 is being saved
      raise KeyboardInterrupt

  monkeypatch.setattr(logs.MetricsLog, "write", write_then_interrupt)
  # Checkpoints only at the end: the update-4 checkpoint must come from the Ctrl-C handler.
  argv = TINY[:TINY.index("--checkpoint-every")] + TINY[TINY.index("--checkpoint-every") + 2:]
  assert run.main(argv + ["--checkpoint-every", "6", "--out", str(out)]) == 130
  assert "--resume" in capsys.readouterr().err
  assert CheckpointStore(out / "checkpoints").steps() == [4]
  monkeypatch.setattr(logs.MetricsLog, "write", real_write)
  assert run.main(["--resume", str(out), "--no-progress", "--no-plots"]) == 0
  _, state_a = rundir.latest_state(finished)
  _, state_b = rundir.latest_state(out)
  for a, b in zip(jax.tree.leaves(to_raw(state_a)), jax.tree.leaves(to_raw(state_b))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  m = rundir.run_members(rundir.read_spec(out))[0]
  assert ((out / "metrics" / f"{m.name}.csv").read_text()
          == (finished / "metrics" / f"{m.name}.csv").read_text())


def test_sigterm_checkpoints_like_ctrl_c(tmp_path, monkeypatch, capsys):
  """A scheduler's SIGTERM mid-run keeps the last completed chunk and exits 143."""
  out = tmp_path / "terminated"
  real_write = logs.MetricsLog.write

  def write_then_terminate(self, first_update, metrics):
    real_write(self, first_update, metrics)
    if first_update == 5:
      os.kill(os.getpid(), signal.SIGTERM)

  monkeypatch.setattr(logs.MetricsLog, "write", write_then_terminate)
  before = signal.getsignal(signal.SIGTERM)
  argv = TINY[:TINY.index("--checkpoint-every")] + TINY[TINY.index("--checkpoint-every") + 2:]
  assert run.main(argv + ["--checkpoint-every", "6", "--out", str(out)]) == 143
  assert f"--resume {out}" in capsys.readouterr().err
  assert CheckpointStore(out / "checkpoints").steps() == [4]
  assert signal.getsignal(signal.SIGTERM) is before


def test_help_lists_every_algorithm_and_its_settings():
  import jaxcrl
  text = " ".join(run.build_parser().format_help().split())
  for name, algo in jaxcrl.ALGORITHMS.items():
    assert f"{name} ({algo.paper})" in text, name
  for setting, (_, takers) in jaxcrl.algorithms.family_settings().items():
    flag = "--" + setting.replace("_", "-")
    assert flag in text and f"[{', '.join(takers)}; default" in text, setting
