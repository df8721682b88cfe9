"""Benchmarks (not tests): `python -m experiments.bench {envs,train} [options]`.

  envs      per-env compile time and env steps/s of a jitted, vmapped, scanned random rollout,
            on one backend or several side by side (--backend planar,mjx).
  train     jaxcrl ppo / ppo_lag / ppo_statewise against Brax's ppo.train, side by side.
  fidelity  cost rate and return of scripted policies on each backend, side by side.
"""

from __future__ import annotations

import sys

_COMMANDS = {
    "envs": "experiments.bench_envs",
    "train": "experiments.bench_train",
    "fidelity": "experiments.bench_fidelity",
}


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  if not argv or argv[0] not in _COMMANDS:
    got = repr(argv[0]) if argv else "nothing"
    print(f"error: unknown benchmark {got}; choose one of: {', '.join(_COMMANDS)}",
          file=sys.stderr)
    return 2
  import importlib
  return importlib.import_module(_COMMANDS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
  sys.exit(main())
