"""`experiments.sweep` end to end, in-process: a 2 x 2 grid x 2 seeds on ProbeCostlyBandit."""

import json
import pathlib

import numpy as np
import pytest

from experiments import logs, rundir, run, sweep
from experiments.checkpoint import CheckpointStore
from experiments.logs import read_csv

# 6 updates of 8 envs x 4 steps; chunks of 2 updates, a checkpoint each. Cells: lagrange_lr
# (the multiplier's step) x lambda_init, both LagrangeConfig leaves.
NO_LIMIT = ["--env", "ProbeCostlyBandit", "--algo", "ppo_lag", "--steps", "192",
            "--num-envs", "8", "--unroll-length", "4", "--num-minibatches", "2",
            "--num-epochs", "1", "--policy-hidden", "8", "--value-hidden", "8",
            "--log-every", "2", "--checkpoint-every", "2", "--no-progress"]
BASE = NO_LIMIT + ["--cost-limit", "0.3"]
GRID = ["--grid", "lagrange_lr=0.1,0.5", "--grid", "lambda_init=0,1"]
TINY = BASE + ["--seeds", "2"] + GRID
CELLS = [(0.1, 0.0), (0.1, 1.0), (0.5, 0.0), (0.5, 1.0)]  # first axis major


def _listing(root: pathlib.Path):
  return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                for p in root.rglob("*"))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  out = tmp_path_factory.mktemp("sweeps") / "grid"
  assert sweep.main(TINY + ["--out", str(out)]) == 0
  return out


def test_sweep_writes_cells_heatmap_and_member_logs(finished):
  spec = rundir.read_spec(finished)
  assert spec["grid"] == [{"setting": "lagrange_lr", "values": [0.1, 0.5]},
                          {"setting": "lambda_init", "values": [0.0, 1.0]}]
  members = rundir.run_members(spec)
  assert [m.name for m in members[:2]] == ["seed0_limit0.3_lagrange_lr0.1_lambda_init0",
                                           "seed0_limit0.3_lagrange_lr0.1_lambda_init1"]
  assert len(members) == 8 and [m.seed for m in members] == [0] * 4 + [1] * 4
  for m in members:
    data = read_csv(finished / "metrics" / f"{m.name}.csv")
    np.testing.assert_array_equal(data["update"], np.arange(1, 7))

  cells = read_csv(finished / "cells.csv")
  assert list(cells) == ["lagrange_lr", "lambda_init", "cost_limit", "seeds", "return_mean",
                         "return_std", "cost_mean", "cost_std", "within_limit"]
  np.testing.assert_array_equal(np.stack([cells["lagrange_lr"], cells["lambda_init"]], 1),
                                CELLS)
  np.testing.assert_array_equal(cells["cost_limit"], 0.3)
  np.testing.assert_array_equal(cells["seeds"], 2)
  # Each cell: mean and std over its 2 seeds of each seed's final-window mean.
  for i, (lr, init) in enumerate(CELLS):
    finals = [logs.final_value(read_csv(finished / "metrics" / f"{m.name}.csv")[key])
              for key in ("episode/return", "episode/cost")
              for m in members if m.cell == (("lagrange_lr", lr), ("lambda_init", init))]
    np.testing.assert_allclose(cells["return_mean"][i], np.mean(finals[:2]), rtol=1e-6)
    np.testing.assert_allclose(cells["cost_std"][i], np.std(finals[2:]), rtol=1e-6, atol=1e-9)
  np.testing.assert_array_equal(cells["within_limit"],
                                cells["cost_mean"] <= cells["cost_limit"])
  summary = json.loads((finished / "summary.json").read_text())
  assert "by_limit" not in summary and len(summary["by_cell"]) == 4
  assert summary["by_cell"][3]["cell"] == {"lagrange_lr": 0.5, "lambda_init": 1.0}

  head = (finished / "plots" / "heatmap.png").read_bytes()
  assert head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) > 5000


def test_members_train_with_their_cells_settings(finished):
  _, state = rundir.latest_state(finished)
  cells = [m.cell for m in rundir.run_members(rundir.read_spec(finished))]
  np.testing.assert_allclose(state.config.multiplier.lagrange_lr,
                             [dict(c)["lagrange_lr"] for c in cells], rtol=1e-6)
  np.testing.assert_array_equal(state.config.multiplier.lambda_init,
                                [dict(c)["lambda_init"] for c in cells])
  np.testing.assert_allclose(state.config.cost_limit, 0.3, rtol=1e-6)
  # Everything else is the run's config, in every member.
  np.testing.assert_allclose(state.config.multiplier.lambda_max, 100.0)
  np.testing.assert_allclose(state.config.policy_lr, 3e-4, rtol=1e-6)


def test_a_member_matches_the_same_run_trained_alone(finished, tmp_path):
  """Member (seed 1, lagrange_lr 0.5, lambda_init 1) uses key 0 + 1, as a plain run of
  seed 1 with those settings does."""
  alone = tmp_path / "alone"
  assert run.main(BASE + ["--seed", "1", "--lagrange-lr", "0.5", "--lambda-init", "1",
                          "--no-plots", "--out", str(alone)]) == 0
  ours = read_csv(finished / "metrics" / "seed1_limit0.3_lagrange_lr0.5_lambda_init1.csv")
  theirs = read_csv(alone / "metrics" / "seed0_limit0.3.csv")
  assert set(ours) == set(theirs)
  for key in theirs:
    np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_interrupted_sweep_resumes_to_the_same_result(finished, tmp_path, monkeypatch,
                                                      capsys):
  out = tmp_path / "interrupted"
  real_write = logs.MetricsLog.write

  def write_then_interrupt(self, first_update, metrics):
    real_write(self, first_update, metrics)
    if first_update == 3:
      raise KeyboardInterrupt

  monkeypatch.setattr(logs.MetricsLog, "write", write_then_interrupt)
  assert sweep.main(TINY + ["--no-plots", "--out", str(out)]) == 130
  assert f"--resume {out}" in capsys.readouterr().err
  assert CheckpointStore(out / "checkpoints").steps() == [2]
  assert not (out / "cells.csv").exists()
  monkeypatch.setattr(logs.MetricsLog, "write", real_write)
  assert sweep.main(["--resume", str(out), "--no-progress", "--no-plots"]) == 0
  for m in rundir.run_members(rundir.read_spec(out)):
    name = f"metrics/{m.name}.csv"
    assert (out / name).read_text() == (finished / name).read_text(), name
  assert (out / "cells.csv").read_text() == (finished / "cells.csv").read_text()
  assert "limit 0.3 lagrange_lr=0.5 lambda_init=1: return" in capsys.readouterr().out


BAD = {
    "a static shared field": (["--grid", "num_envs=4,8"],
                              "--grid num_envs: num_envs is static"),
    "a static family field": (["--algo", "ppo_pid", "--grid", "pid_delay=1,2"],
                              "--grid pid_delay: pid_delay is static"),
    "an unknown setting": (["--grid", "warp_speed=1,2"], "unknown setting 'warp_speed'"),
    "another algorithm's setting": (["--grid", "max_kl=0.01,0.02"],
                                    "max_kl is a setting of trpo, trpo_lag, cpo, pcpo, not "
                                    "of ppo_lag"),
    "another algorithm's static setting": (["--grid", "multiplier_hidden=8,16"],
                                           "multiplier_hidden is a setting of ppo_statewise"),
    "a bad number": (["--grid", "lagrange_lr=0.1,fast"],
                     "--grid lagrange_lr: expected comma-separated numbers, got '0.1,fast'"),
    "no values": (["--grid", "lagrange_lr="], "--grid lagrange_lr= has no values"),
    "no equals sign": (["--grid", "lagrange_lr"], "expected SETTING=V1,V2"),
    "a value out of range": (["--grid", "lagrange_lr=-1,0.1"],
                             "--grid lagrange_lr=-1: lagrange_lr must be >= 0, got -1.0"),
    "a repeated value": (["--grid", "lagrange_lr=0.1,0.10"], "repeats a value"),
    "a setting given twice": (["--grid", "lagrange_lr=0.1", "--grid", "lagrange_lr=0.2"],
                              "given twice"),
    "cost_limit": (["--grid", "cost_limit=1,2"], "--cost-limits"),
    "a setting also given by its flag": (["--lagrange-lr", "0.2", "--grid",
                                          "lagrange_lr=0.1,0.5"], "not both"),
    "three axes": (["--grid", "lagrange_lr=0.1,0.5", "--grid", "lambda_init=0,1",
                    "--cost-limits", "0.2,0.5"],
                   "at most 2 axes (the heatmap's rows and columns), got 3"),
    "no grid": ([], "give at least one --grid"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_grid_exit_2_writes_nothing(name, tmp_path, capsys):
  extra, needle = BAD[name]
  out = tmp_path / "new"
  before = _listing(tmp_path)
  base = NO_LIMIT if "--cost-limits" in extra else BASE
  assert sweep.main(base + extra + ["--out", str(out)]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
  assert _listing(tmp_path) == before


def test_resume_misuse_exit_2_touches_nothing(finished, tmp_path, capsys):
  plain = tmp_path / "plain"
  assert run.main(BASE + ["--no-plots", "--steps", "32", "--out", str(plain)]) == 0
  before = _listing(tmp_path) + _listing(finished)
  cases = [
      (["--resume", str(plain)], "is a run, not a sweep"),
      (["--resume", str(finished), "--grid", "lagrange_lr=1,2"], "drop --grid"),
  ]
  for argv, needle in cases:
    assert sweep.main(argv) == 2, argv
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
  assert _listing(tmp_path) + _listing(finished) == before
