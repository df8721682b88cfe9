"""Env throughput: `python -m experiments.bench envs [--envs A,B] [--batch 2048] [--steps N]
[--backend planar,mjx] [--members M]`.

With several backends each env is timed on each, one after the other in the same process,
and the ratio of the first to the last is printed.

For each env: the compile time of `reset` plus a `lax.scan` of N batched random-action steps
(`envs.wrap(env, num_envs=batch)`: vmap, episode limit, auto-reset), and env steps/s
(batch * N / seconds) of that scan, timed after one warm-up run. With `--members M` the reset
and the scan run under `jax.vmap` over M members, as the trainer runs seeds x cost limits, and
env steps/s counts all of them (M * batch * N / seconds). `--steps 1000` or more includes the
auto-reset at the end of each 1,000-step episode.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp

import envs


def _parse(argv: list[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog="python -m experiments.bench envs", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--envs", default=None,
                      help="comma-separated env names or Safety-Gymnasium ids (default: all)")
  parser.add_argument("--batch", type=int, default=2048, help="parallel envs (default 2048)")
  parser.add_argument("--steps", type=int, default=100,
                      help="batched steps per timed rollout (default 100)")
  parser.add_argument("--backend", default=None,
                      help="comma-separated backends passed to every env as backend=..., "
                      "measured side by side (e.g. planar,mjx; default: each env's own)")
  parser.add_argument("--members", type=int, default=0,
                      help="run under jax.vmap over this many members, as the trainer does "
                      "(default 0: no vmap)")
  parser.add_argument("--seed", type=int, default=0)
  return parser.parse_args(argv)


def bench_env(name: str, batch: int, steps: int, seed: int = 0, members: int = 0,
              **kwargs) -> dict[str, float]:
  """Compiles and times one env; returns {'compile_s', 'run_s', 'steps_per_s', 'backend'}.

  members: 0 for one batch, M >= 1 for M batches under `jax.vmap` (module docstring).
  """
  env = envs.make(name, **kwargs)
  benv = envs.wrap(env, num_envs=batch)

  def rollout(state: envs.State, key: jax.Array) -> envs.State:
    def one(state, key):
      action = jax.random.uniform(key, (batch, env.action_size), minval=-1.0, maxval=1.0)
      return benv.step(state, action), None

    state, _ = jax.lax.scan(one, state, jax.random.split(key, steps))
    return state

  key_reset, key_run = jax.random.split(jax.random.key(seed))
  reset_fn, rollout_fn = benv.reset, rollout
  if members:
    key_reset, key_run = (jax.random.split(k, members) for k in (key_reset, key_run))
    reset_fn, rollout_fn = jax.vmap(reset_fn), jax.vmap(rollout_fn)
  start = time.perf_counter()
  reset = jax.jit(reset_fn).lower(key_reset).compile()
  state = jax.block_until_ready(reset(key_reset))
  run = jax.jit(rollout_fn).lower(state, key_run).compile()
  compile_s = time.perf_counter() - start

  state = jax.block_until_ready(run(state, key_run))  # warm-up
  key_next = jax.vmap(jax.random.fold_in, (0, None))(key_run, 1) if members else (
      jax.random.fold_in(key_run, 1))
  start = time.perf_counter()
  state = jax.block_until_ready(run(state, key_next))
  run_s = time.perf_counter() - start
  if not bool(jnp.all(jnp.isfinite(state.obs))):
    raise FloatingPointError(f"{name}: non-finite observations after {2 * steps} steps")
  return {"compile_s": compile_s, "run_s": run_s,
          "steps_per_s": max(members, 1) * batch * steps / run_s, "backend": env.backend}


def main(argv: list[str]) -> int:
  args = _parse(argv)
  if args.members < 0:
    print(f"error: --members must be >= 0, got {args.members}", file=sys.stderr)
    return 2
  known = envs.names()
  chosen = known if args.envs is None else [n.strip() for n in args.envs.split(",") if n.strip()]
  backends = [None] if args.backend is None else [
      b.strip() for b in args.backend.split(",") if b.strip()]
  for name in chosen:
    try:
      envs.canonical_name(name)
    except ValueError:
      print(f"error: unknown env {name!r}; known: {', '.join(known)}", file=sys.stderr)
      return 2
    for backend in backends:
      if backend is not None:
        try:
          envs.make(name, backend=backend)
        except ValueError as err:
          print(f"error: {name}: {err}", file=sys.stderr)
          return 2
  print(f"jax.devices(): {jax.devices()}")
  print(f"batch {args.batch}, {args.steps} steps per rollout"
        + (f", vmapped over {args.members} member(s)" if args.members else ""))
  print(f"{'env':<24} {'backend':<8} {'compile s':>10} {'env steps/s':>14}")
  for name in chosen:
    rates = {}
    for backend in backends:
      kwargs = {} if backend is None else {"backend": backend}
      result = bench_env(name, args.batch, args.steps, args.seed, args.members, **kwargs)
      rates[backend] = result["steps_per_s"]
      print(f"{name:<24} {result['backend']:<8} {result['compile_s']:>10.1f} "
            f"{result['steps_per_s']:>14,.0f}", flush=True)
    if len(backends) > 1:
      first, last = backends[0], backends[-1]
      print(f"{name:<24} {first}/{last} = {rates[first] / rates[last]:.1f}x", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
