"""experiments.bench envs: argument errors (the timing itself is a benchmark, not a test)."""

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
