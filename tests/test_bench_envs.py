"""experiments.bench envs and contacts: argument errors and one probe (timings are benchmarks,
not tests)."""

import numpy as np
import pytest

from experiments import bench


def test_unknown_env_exits_2_naming_it_and_the_known_ones(capsys):
  assert bench.main(["envs", "--envs", "HopperVelocity,NoSuchEnv", "--batch", "2"]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1
  assert "'NoSuchEnv'" in err and "HopperVelocity" in err and "AntVelocity" in err


def test_safety_gym_ids_are_accepted_before_any_compile(capsys, monkeypatch):
  from experiments import bench_envs
  ran = []
  monkeypatch.setattr(bench_envs, "bench_env", lambda name, *a, **k: ran.append(name) or
                      {"compile_s": 0.0, "run_s": 1.0, "steps_per_s": 1.0, "backend": "x"})
  assert bench.main(["envs", "--envs", "SafetyHopperVelocity-v1", "--batch", "2"]) == 0
  out = capsys.readouterr().out
  assert ran == ["SafetyHopperVelocity-v1"] and "jax.devices()" in out


def test_bench_train_settings_per_algorithm(capsys):
  """`--algos ALGO:SETTING=VALUE` times one algorithm under its own settings; a setting the
  algorithm does not take, or a bad value, is one line and exit 2."""
  assert bench.main(["train", "--algos", "ppo:max_kl=0.1", "--no-brax"]) == 2
  assert capsys.readouterr().err == (
      "error: max_kl is a setting of trpo, trpo_lag, cpo, pcpo, not of ppo\n")
  assert bench.main(["train", "--algos", "cpo:fvp_sample_freq=x", "--no-brax"]) == 2
  assert "fvp_sample_freq='x'" in capsys.readouterr().err
  argv = ["train", "--env", "ProbeTwoRegion", "--num-envs", "4", "--unroll-length", "4",
          "--num-minibatches", "2", "--num-epochs", "1", "--hidden", "4", "--updates", "1",
          "--repeats", "1", "--no-brax", "--algos", "ppo", "cpo:fvp_sample_freq=2"]
  assert bench.main(argv) == 0
  rows = [line.rsplit(": ", 1)[0].strip() for line in capsys.readouterr().out.splitlines()
          if "env steps/s" in line]
  assert rows == ["ppo", "cpo:fvp_sample_freq=2"]

def test_members_vmaps_the_rollout_and_counts_every_member(capsys, monkeypatch):
  from experiments import bench_envs
  assert bench.main(["envs", "--envs", "PointGoal0", "--members", "-1"]) == 2
  assert capsys.readouterr().err == "error: --members must be >= 0, got -1\n"
  clock = iter(range(100))  # every perf_counter() call advances one second
  monkeypatch.setattr(bench_envs.time, "perf_counter", lambda: float(next(clock)))
  one = bench_envs.bench_env("ProbeTwoRegion", batch=2, steps=3)
  two = bench_envs.bench_env("ProbeTwoRegion", batch=2, steps=3, members=2)
  assert (one["run_s"], one["steps_per_s"]) == (1.0, 6.0)  # 2 envs x 3 steps in 1 s
  assert (two["run_s"], two["steps_per_s"]) == (1.0, 12.0)  # 2 members of those


@pytest.mark.parametrize("argv,named", [
    (["--objects", "vases"], "'vases' is not one of buttons, gremlins"),
    (["--physics", "mujoco:0"], "'mujoco:0' is not one of mujoco:N"),
    (["--turns", "0,x"], "'0,x' is not a comma-separated list"),
])
def test_bench_contacts_bad_input_exits_2(capsys, argv, named):
  assert bench.main(["contacts", *argv]) == 2
  assert named in capsys.readouterr().err


def test_bench_contacts_head_on_probe_agrees(capsys):
  """Head on, every physics pins the Point against the button from its first touch on."""
  assert bench.main(["contacts", "--objects", "buttons", "--physics", "mujoco:4,planar",
                     "--offsets", "0", "--turns", "0", "--steps", "30"]) == 0
  row = [l for l in capsys.readouterr().out.splitlines() if l.startswith("  0.00  0.00")][0]
  cells = row.split("|")[1:]
  assert len(cells) == 2
  for cell in cells:
    steps, xy = cell.split("(")
    assert 10 <= int(steps) <= 20  # first touch after 13-15 steps
    np.testing.assert_allclose([float(v) for v in xy.strip(" )").split(",")], [0.1, 0.0],
                               atol=0.01)
