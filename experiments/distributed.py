"""One run over several processes (hosts, or accelerators of one host), with
`jax.distributed`.

  # on each of N hosts (or N local processes), the same command with its own id:
  python -m experiments.run ... --coordinator HOST:PORT --num-processes N --process-id I
  # under SLURM (srun) or Open MPI (mpirun) the three flags may be left out: JAX reads
  # the job's layout from the environment (jax.distributed.initialize's auto-detection).

Every process builds the same program; `jax.devices()` then lists every process's
devices, the env batch is sharded over all of them (jaxcrl.train's 'batch' mesh),
parameters stay replicated and XLA inserts the cross-process all-reduces (Gloo on CPUs,
NCCL on GPUs). Process 0 alone writes logs, plots and summary.json; checkpoints are
written by every process (orbax writes each process's shards, process 0 the metadata),
so the run folder must be on a file system all processes share.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from experiments.cli import UsageError

# What jax.distributed.initialize() reads a job's layout from (jax/_src/clusters): the
# variables that must all be present, and the one holding the process count. A job step
# of one process (e.g. an sbatch script outside srun) is not a multi-process run.
_CLUSTERS = (
    (("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID",
      "SLURM_LOCALID"), "SLURM_NTASKS"),
    (("OMPI_MCA_orte_hnp_uri", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),
     "OMPI_COMM_WORLD_SIZE"),
)


def add_flags(parser) -> None:
  group = parser.add_argument_group(
      "multi-process (jax.distributed; under SLURM or Open MPI these are detected)")
  group.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                     help="address of process 0's coordinator service")
  group.add_argument("--num-processes", type=int, default=None, metavar="N",
                     help="number of processes in the run")
  group.add_argument("--process-id", type=int, default=None, metavar="I",
                     help="this process's index, 0 .. N-1 (process 0 writes the logs)")


FLAGS = ("--coordinator", "--num-processes", "--process-id")


def _cluster_size() -> int:
  """The process count of the SLURM or Open MPI job this process is a step of, else 1."""
  for required, count in _CLUSTERS:
    if all(var in os.environ for var in required):
      try:
        return int(os.environ[count])
      except ValueError:
        return 1
  return 1


def check_flags(args) -> bool:
  """Whether this run is multi-process; UsageError for an incomplete or inconsistent
  set of flags. Touches no JAX backend."""
  given = [args.coordinator is not None, args.num_processes is not None,
           args.process_id is not None]
  if any(given) and not all(given):
    raise UsageError("give --coordinator, --num-processes and --process-id together "
                     "(or none of them, under SLURM or Open MPI)")
  if all(given):
    if ":" not in args.coordinator:
      raise UsageError(f"--coordinator {args.coordinator!r} is invalid; give HOST:PORT, "
                       "e.g. localhost:12355")
    if args.num_processes < 1:
      raise UsageError(f"--num-processes {args.num_processes} is invalid; need at least 1")
    if not 0 <= args.process_id < args.num_processes:
      raise UsageError(f"--process-id {args.process_id} is invalid; accepted: 0 to "
                       f"{args.num_processes - 1} (--num-processes {args.num_processes})")
    return args.num_processes > 1
  return _cluster_size() > 1


def start(argv: list[str]) -> None:
  """Joins this process to the run's others if `argv` (or the job's environment) makes
  it a multi-process run; UsageError for bad flags. Reads only this module's flags, so it
  runs before the full parser, whose defaults import jaxcrl and envs (and with them the
  XLA backend, which jax.distributed.initialize must precede)."""
  import argparse
  parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
  add_flags(parser)
  try:
    args, _ = parser.parse_known_args(argv)
  except SystemExit:
    raise UsageError("--num-processes and --process-id take integers") from None
  initialize(args)


def initialize(args) -> None:
  """Joins the run's processes (before any JAX computation), if it is multi-process."""
  if not check_flags(args):
    return
  import jax
  if args.coordinator is None:
    jax.distributed.initialize()
  else:
    jax.distributed.initialize(args.coordinator, num_processes=args.num_processes,
                               process_id=args.process_id)


def process_count() -> int:
  import jax
  return jax.process_count()


def is_primary() -> bool:
  """Whether this process writes the run's logs, plots and summary (process 0)."""
  import jax
  return jax.process_index() == 0


def free_port() -> int:
  """A free TCP port on localhost: a loopback coordinator's, for local multi-process runs
  (experiments.bench processes, tests/test_distributed.py)."""
  import socket
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def barrier(name: str) -> None:
  """Waits until every process reaches the barrier `name` (no-op with one process)."""
  import jax
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def to_host(tree: Any) -> Any:
  """numpy copies of a tree of (possibly multi-process) arrays. Replicated arrays, such as
  metrics and the guard's report, are read from this process's copy; others are gathered."""
  import jax
  if jax.process_count() == 1:
    return jax.device_get(tree)
  from jax.experimental import multihost_utils

  def one(x):
    if x.is_fully_addressable:
      return np.asarray(x)
    if x.is_fully_replicated:
      return np.asarray(x.addressable_data(0))
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))

  return jax.tree.map(one, tree)
