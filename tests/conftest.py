"""Shared pytest set-up: a persistent JAX compilation cache, so reruns skip XLA compiles, and
pytest-xdist's worker count."""

import os
import pathlib

import jax

_CACHE = os.environ.get(
    "JAX_COMPILATION_CACHE_DIR",
    str(pathlib.Path(__file__).resolve().parent.parent / ".jax_cache"),
)
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def pytest_xdist_auto_num_workers(config) -> int | None:
  """`-n auto` (pyproject's addopts): one worker per core, at most 4.

  Each worker is a process with its own JAX and compiled functions (the persistent cache above
  shares their XLA output), so more than a few cost memory and duplicated tracing for little.
  PYTEST_XDIST_AUTO_NUM_WORKERS overrides it (None hands it to xdist's own hook, which reads
  it); `-n 0` runs in one process.
  """
  del config
  if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
    return None
  return max(1, min(4, os.cpu_count() or 1))

