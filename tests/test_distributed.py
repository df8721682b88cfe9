"""A run over two real processes (jax.distributed, loopback coordinator, Gloo CPU
collectives), against the same run in one process with the same total number of envs."""

import os
import pathlib
import socket
import subprocess
import sys

import chex
import jax
import numpy as np
import pytest

from experiments import distributed, rundir, run
from experiments.checkpoint import CheckpointStore, to_raw

ROOT = pathlib.Path(__file__).resolve().parent.parent
# 2 seeds x 2 limits; 8 envs (4 in each process); 6 updates, checkpoints at 2, 4, 6.
TINY = ["--env", "ProbeCostlyBandit", "--algo", "ppo_lag", "--steps", "192",
        "--num-envs", "8", "--unroll-length", "4", "--num-minibatches", "2",
        "--num-epochs", "1", "--policy-hidden", "8", "--value-hidden", "8",
        "--lagrange-lr", "0.5", "--seeds", "2", "--cost-limits", "0.2,0.5",
        "--log-every", "2", "--checkpoint-every", "2", "--no-progress", "--no-plots"]


def _env(**extra) -> dict[str, str]:
  env = dict(os.environ, **extra)
  env.setdefault("JAX_COMPILATION_CACHE_DIR", jax.config.jax_compilation_cache_dir)
  return env


def _free_slurm_job_id() -> int:
  """A SLURM_JOB_ID whose derived coordinator port (JAX: id % 4096 + 61440) is free."""
  for job_id in range(4096):
    with socket.socket() as s:
      try:
        s.bind(("localhost", job_id % 4096 + 61440))
        return job_id
      except OSError:
        continue
  raise RuntimeError("no free port in 61440..65535")


def _cli(argv: list[str], **env) -> subprocess.Popen:
  return subprocess.Popen([sys.executable, "-m", "experiments.run", *argv], cwd=ROOT,
                          env=_env(**env), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _two_processes(argv: list[str]) -> list[tuple[int, str, str]]:
  """Runs `argv` as processes 0 and 1 of one run: [(exit status, stdout, stderr)]."""
  flags = ["--coordinator", f"localhost:{distributed.free_port()}", "--num-processes", "2"]
  procs = [_cli(argv + flags + ["--process-id", str(i)]) for i in range(2)]
  return [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]


def _assert_states(a_dir, b_dir, exact: bool):
  (step_a, a), (step_b, b) = rundir.latest_state(a_dir), rundir.latest_state(b_dir)
  assert step_a == step_b
  a, b = ({name: np.asarray(x) for name, x in to_raw(s).items()} for s in (a, b))
  if exact:
    chex.assert_trees_all_equal(a, b)
  else:
    chex.assert_trees_all_close(a, b, rtol=1e-5, atol=1e-6)


def test_two_processes_train_as_one_process_does(tmp_path):
  _two_processes_as_one(tmp_path)


@pytest.mark.slow  # the fast tier's budget: a second pair of processes and a third run
def test_two_processes_resume_in_their_layout_and_only_there(tmp_path, capsys):
  two = _two_processes_as_one(tmp_path)
  # Its checkpoints hold two processes' shards: one process refuses to resume it...
  capsys.readouterr()
  assert run.main(["--resume", str(two), "--no-progress", "--no-plots"]) == 2
  assert capsys.readouterr().err.strip().splitlines()[-1] == (
      f"error: {str(two)!r} was trained by 2 process(es); resume it with 2 (this is 1): "
      "its checkpoints hold each process's shards")
  # ... two processes extend it, and it ends where one uninterrupted 2-device run ends.
  results = _two_processes(["--resume", str(two), "--steps", "256", "--no-progress",
                            "--no-plots"])
  assert [r[0] for r in results] == [0, 0], results[0][2][-2000:]
  longer = tmp_path / "longer"
  single = _cli([*TINY, "--steps", "256", "--out", str(longer)],
                XLA_FLAGS="--xla_force_host_platform_device_count=2")
  assert single.wait(timeout=300) == 0, single.stderr.read()[-2000:]
  assert CheckpointStore(two / "checkpoints").steps() == [4, 6, 8]
  _assert_states(two, longer, exact=True)


def _two_processes_as_one(tmp_path):
  """Trains TINY in two processes, in one process on two devices and on one; checks them."""
  two, one, one_2dev = tmp_path / "two", tmp_path / "one", tmp_path / "one_2dev"
  results = _two_processes(TINY + ["--out", str(two)])
  assert [r[0] for r in results] == [0, 0], results[0][2][-2000:] + results[1][2][-2000:]
  # Process 0 reports and writes the logs; process 1 only its checkpoint shards.
  assert "run folder:" in results[0][1] and "run folder:" not in results[1][1]
  assert rundir.read_spec(two)["processes"] == 2
  assert all(len(list((two / "tb" / m.name).iterdir())) == 1
             for m in rundir.run_members(rundir.read_spec(two)))
  single = _cli(TINY + ["--out", str(one_2dev)],
                XLA_FLAGS="--xla_force_host_platform_device_count=2")
  assert run.main(TINY + ["--out", str(one)]) == 0
  assert single.wait(timeout=300) == 0, single.stderr.read()[-2000:]

  # Two processes of one CPU device each run the program one process runs on two
  # devices: bit-identical logs and state. Against one device, the batch reductions are
  # split differently, which may round differently: equal within float32 tolerance
  # (on this config they came out bit-identical too).
  for m in rundir.run_members(rundir.read_spec(two)):
    name = f"metrics/{m.name}.csv"
    assert (two / name).read_text() == (one_2dev / name).read_text()
    np.testing.assert_allclose(np.loadtxt(two / name, delimiter=",", skiprows=1),
                               np.loadtxt(one / name, delimiter=",", skiprows=1),
                               rtol=1e-5, atol=1e-6)
  _assert_states(two, one_2dev, exact=True)
  _assert_states(two, one, exact=False)
  return two


@pytest.mark.slow  # the fast tier's budget; the flags' test above covers the mechanics
def test_a_slurm_job_step_is_detected_without_flags(tmp_path):
  """Under srun, SLURM's variables say the layout and jax.distributed reads them: the
  same two processes as above with no flags, a fake 2-task job step on localhost."""
  out = tmp_path / "slurm"
  slurm = dict(SLURM_JOB_ID=str(_free_slurm_job_id()), SLURM_STEP_NODELIST="localhost",
               SLURM_NTASKS="2")
  procs = [_cli(TINY + ["--out", str(out)], SLURM_PROCID=str(i), SLURM_LOCALID=str(i),
                **slurm) for i in range(2)]
  results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
  assert [r[0] for r in results] == [0, 0], results[0][2][-2000:] + results[1][2][-2000:]
  assert rundir.read_spec(out)["processes"] == 2
  assert CheckpointStore(out / "checkpoints").steps() == [2, 4, 6]
