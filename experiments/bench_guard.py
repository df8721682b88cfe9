"""What the non-finite guard costs: one run chunk with and without its check, side by side.

  python -m experiments.bench guard [--env PointGoal1] [--algo ppo_lag] [--seeds 2] ...

The chunk is what `experiments.run` compiles: a lax.scan of the vmapped update over
--log-every updates for every member; the guarded one also runs `guard.make_check` on the
chunk's metrics and end state (the same program run.py compiles). Both are compiled
ahead of time, then called alternately --repeats times each from the same state, so they
share the machine's load; prints the best and median seconds per chunk of each and the
guard's overhead per update, and the check alone timed on the chunk's output (its own
dispatch included, so an upper bound on what it adds inside the chunk). A NaN is caught
at the end of the chunk it appears in, so the time to detect it is at most one chunk:
the per-chunk seconds printed.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _parse(argv):
  parser = argparse.ArgumentParser(prog="python -m experiments.bench guard",
                                   description=__doc__.splitlines()[0])
  parser.add_argument("--env", default="PointGoal1")
  parser.add_argument("--algo", default="ppo_lag")
  parser.add_argument("--seeds", type=int, default=2, help="members trained together")
  parser.add_argument("--num-envs", type=int, default=32)
  parser.add_argument("--unroll-length", type=int, default=125)
  parser.add_argument("--num-minibatches", type=int, default=8)
  parser.add_argument("--num-epochs", type=int, default=4)
  parser.add_argument("--log-every", type=int, default=10, help="updates per chunk")
  parser.add_argument("--repeats", type=int, default=5, help="timed chunks of each")
  return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
  args = _parse(sys.argv[1:] if argv is None else argv)
  import jax

  import envs
  import jaxcrl
  from experiments import guard

  env = envs.make(args.env)
  config = jaxcrl.make_config(args.algo, num_envs=args.num_envs,
                              unroll_length=args.unroll_length,
                              num_minibatches=args.num_minibatches,
                              num_epochs=args.num_epochs)
  init, update = jaxcrl.make_init_update(env, config)
  keys = jax.random.split(jax.random.key(0), args.seeds)
  state = jax.jit(jax.vmap(init))(keys)
  names, check = guard.make_check(state, jaxcrl.metric_keys(env, config))
  marker = np.zeros((args.log_every,), np.float32)

  def plain(state, marker):
    return jax.lax.scan(lambda s, _: jax.vmap(update)(s), state, marker)

  def guarded(state, marker):
    new_state, metrics = plain(state, marker)
    return new_state, metrics, check(new_state, metrics)

  compiled = {}
  for name, fn in (("plain", plain), ("guarded", guarded)):
    t0 = time.perf_counter()
    compiled[name] = jax.jit(fn).lower(state, marker).compile()
    print(f"{name}: compiled in {time.perf_counter() - t0:.1f} s", flush=True)
  times = {name: [] for name in compiled}
  for _ in range(args.repeats):
    for name, fn in compiled.items():
      t0 = time.perf_counter()
      jax.block_until_ready(fn(state, marker))
      times[name].append(time.perf_counter() - t0)
  steps = args.log_every * args.num_envs * args.unroll_length
  print(f"{args.env} {args.algo}: {args.seeds} member(s), chunks of {args.log_every} updates "
        f"x {args.num_envs} envs x {args.unroll_length} steps; guard checks {len(names)} "
        "quantities")
  for name, t in times.items():
    print(f"{name:8s} best {min(t):.3f} s  median {np.median(t):.3f} s per chunk  "
          f"({steps / min(t):,.0f} env steps/s per member)")
  # The check alone, on the chunk's output: a few microseconds of isfinite, far below the
  # chunks' run-to-run noise on a shared machine, so it is timed on its own too.
  new_state, metrics = compiled["plain"](state, marker)
  check_fn = jax.jit(check).lower(new_state, metrics).compile()
  jax.block_until_ready(check_fn(new_state, metrics))
  check_times = []
  for _ in range(200):
    t0 = time.perf_counter()
    jax.block_until_ready(check_fn(new_state, metrics))
    check_times.append(time.perf_counter() - t0)
  alone = float(np.median(check_times))
  print(f"check alone (its own dispatch included): median {1e3 * alone:.3f} ms = "
        f"{100 * alone / min(times['plain']):.4f}% of the best plain chunk")
  best = {name: min(t) for name, t in times.items()}
  median = {name: float(np.median(t)) for name, t in times.items()}
  print(f"guard overhead: {100 * (best['guarded'] / best['plain'] - 1):+.2f}% (best), "
        f"{100 * (median['guarded'] / median['plain'] - 1):+.2f}% (median) of an update; "
        f"time to detect a NaN <= one chunk = {median['guarded']:.2f} s")
  return 0


if __name__ == "__main__":
  sys.exit(main())
