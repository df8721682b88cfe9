"""What a newcomer reads first: no import noise, --help everywhere, and an unknown name
answered with the closest known one."""

import subprocess
import sys

import pytest

from envs.registry import did_you_mean
from experiments import bench, run


def test_importing_the_project_prints_nothing():
  """mujoco.mjx prints two 'Failed to import warp' lines without NVIDIA Warp; they are
  silenced at their source (envs/quiet_imports.py), whichever package is imported first."""
  for first in ("jaxcrl", "envs", "experiments.run", "experiments.bench_train",
                "experiments.bench_offpolicy"):
    out = subprocess.run([sys.executable, "-c", f"import {first}"], capture_output=True,
                         text=True, check=True).stdout
    assert out == "", (first, out)


@pytest.mark.parametrize("typed, known, expected", [
    ("PointGol1", ["PointGoal1", "PointGoal2", "CarGoal1"], " (did you mean 'PointGoal1'?)"),
    ("pointgoal1", ["PointGoal1", "CarGoal1"], " (did you mean 'PointGoal1'?)"),
    ("ppo_lagg", ["ppo", "ppo_lag", "ppo_pid"], " (did you mean 'ppo_lag'?)"),
    ("zzz", ["ppo", "ppo_lag"], ""),
])
def test_did_you_mean(typed, known, expected):
  assert did_you_mean(typed, known) == expected


@pytest.mark.parametrize("argv, message", [
    (["--env", "PointGol1"], "error: unknown environment 'PointGol1' (did you mean "
                             "'PointGoal1'?); known: "),
    (["--algo", "ppo_lagg"], "error: unknown algo 'ppo_lagg' (did you mean 'ppo_lag'?); "),
    (["--backend", "planr"], "error: backend 'planr' (did you mean 'planar'?) is not one "
                             "of planar, mjx"),
    (["--algo", "ppo_lag", "--lagrange-lrr", "1"],
     "error: unrecognized arguments: --lagrange-lrr 1 (did you mean '--lagrange-lr'?)"),
])
def test_unknown_names_are_answered_with_the_closest(argv, message, tmp_path, capsys):
  assert run.main(argv + ["--out", str(tmp_path / "x")]) == 2
  assert capsys.readouterr().err.startswith(message)
  assert not (tmp_path / "x").exists()


def test_bench_help_and_unknown_benchmark(capsys):
  assert bench.main(["--help"]) == 0
  out = capsys.readouterr().out
  assert all(name in out for name in bench._COMMANDS)
  assert bench.main(["gaurd"]) == 2
  assert capsys.readouterr().err.startswith(
      "error: unknown benchmark 'gaurd' (did you mean 'guard'?); choose one of: ")
