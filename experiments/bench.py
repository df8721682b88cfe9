"""Benchmarks (not tests): `python -m experiments.bench NAME [options]`; `NAME --help` for each.

  envs      per-env compile time and env steps/s of a jitted, vmapped, scanned random rollout,
            on one backend or several side by side (--backend planar,mjx).
  train     jaxcrl ppo / ppo_lag / ppo_statewise against Brax's ppo.train, side by side.
  fidelity  cost rate and return of scripted policies on each backend, side by side.
  contacts  a Point driving into a button or gremlin: contact steps on MuJoCo C, mjx, planar.
  guard     the non-finite guard's cost: a run chunk with and without its check.
  processes one run in 1 process and in N local processes (jax.distributed), side by side.
  offpolicy jaxcrl sac (or --algos) against Brax's sac.train, side by side.
"""

from __future__ import annotations

import sys

_COMMANDS = {
    "envs": "experiments.bench_envs",
    "train": "experiments.bench_train",
    "fidelity": "experiments.bench_fidelity",
    "contacts": "experiments.bench_contacts",
    "offpolicy": "experiments.bench_offpolicy",
    "guard": "experiments.bench_guard",
    "processes": "experiments.bench_processes",
}


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  if argv[:1] in (["-h"], ["--help"]):
    print(__doc__)
    return 0
  if not argv or argv[0] not in _COMMANDS:
    from envs.registry import did_you_mean
    got = (repr(argv[0]) + did_you_mean(argv[0], _COMMANDS)) if argv else "nothing"
    print(f"error: unknown benchmark {got}; choose one of: {', '.join(_COMMANDS)} "
          "(python -m experiments.bench --help describes them)", file=sys.stderr)
    return 2
  import importlib
  return importlib.import_module(_COMMANDS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
  sys.exit(main())
