"""One run in one process and in N local processes (jax.distributed), side by side.

  python -m experiments.bench processes [--processes 2] [--env PointGoal1] [-- RUN FLAGS]

Runs `python -m experiments.run` with the same flags (and --out in a temporary folder)
first as one process, then as N processes on this machine (loopback coordinator, each
process one CPU device holding num_envs / N envs), then again in that order for
--repeats rounds, and prints each one's steady env steps/s per member (summary.json's
timing: the first chunk, which compiles, excluded) and the ratio N-process / 1-process.
On one machine the processes share its cores, so expect no gain: what it shows is the
cost of the cross-process all-reduces; on a cluster each process brings its own cores
or accelerator.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

from experiments import distributed

DEFAULT_RUN = ["--env", "PointGoal1", "--algo", "ppo_lag", "--steps", "320000",
               "--num-envs", "32", "--unroll-length", "125", "--num-minibatches", "8",
               "--num-epochs", "4", "--log-every", "10", "--checkpoint-every", "1000000"]


def _parse(argv):
  parser = argparse.ArgumentParser(prog="python -m experiments.bench processes",
                                   description=__doc__.splitlines()[0])
  parser.add_argument("--processes", type=int, default=2)
  parser.add_argument("--repeats", type=int, default=2, help="rounds of (1, N) runs")
  parser.add_argument("run_flags", nargs="*",
                      help=f"experiments.run flags after `--` (default: {' '.join(DEFAULT_RUN)})")
  return parser.parse_args(argv)


def _run(flags: list[str], out: pathlib.Path, processes: int) -> float:
  """Steady env steps/s per member of one run of `flags` in `processes` processes."""
  base = [sys.executable, "-m", "experiments.run", *flags, "--out", str(out),
          "--no-progress", "--no-plots"]
  if processes == 1:
    commands = [base]
  else:
    coordinator = f"localhost:{distributed.free_port()}"
    commands = [base + ["--coordinator", coordinator, "--num-processes", str(processes),
                        "--process-id", str(i)] for i in range(processes)]
  procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
           for c in commands]
  for p in procs:
    if p.wait() != 0:
      raise RuntimeError(f"run failed: {p.stderr.read()[-2000:]}")
  timing = json.loads((out / "summary.json").read_text())["timing_last_session"]
  return timing["steady_env_steps_per_s_per_member"]


def main(argv: list[str] | None = None) -> int:
  args = _parse(sys.argv[1:] if argv is None else argv)
  flags = args.run_flags or DEFAULT_RUN
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                        str(pathlib.Path(__file__).resolve().parent.parent / ".jax_cache"))
  results = {1: [], args.processes: []}
  with tempfile.TemporaryDirectory() as tmp:
    for r in range(args.repeats):
      for n in results:
        sps = _run(flags, pathlib.Path(tmp) / f"r{r}_p{n}", n)
        results[n].append(sps)
        print(f"round {r + 1}: {n} process(es): {sps:,.0f} env steps/s per member",
              flush=True)
  one, many = (float(np.median(results[n])) for n in results)
  print(f"{' '.join(flags)}")
  print(f"median: 1 process {one:,.0f}, {args.processes} processes {many:,.0f} env steps/s "
        f"per member; ratio {many / one:.2f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
