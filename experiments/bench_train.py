"""Trainer throughput: every on-policy jaxcrl algorithm (or --algos) vs Brax's ppo.train.

  python -m experiments.bench train [--env PointGoal1] [--steps N] [--num-envs B] ...

Every trainer gets the same env, batch (num_envs x unroll_length), minibatches, epochs,
observation normalisation and network sizes (Brax: batch_size = num_envs / num_minibatches
so one unroll per SGD round, policy with state-dependent std so both output 2A).
Env steps/s exclude compilation and are the best of --repeats timed chunks of
--updates updates each (the machine may be shared, so the best chunk is the least
disturbed one): jaxcrl's update loop (a lax.scan of `update` over one chunk, from a state
`init` made once, so like Brax's epochs it excludes resets and init) is compiled ahead of
time (`jax.jit(...).lower(state).compile()`) and one call of each algorithm is timed after
each of Brax's timed epochs (from its progress_fn), so all trainers share the load;
Brax's ppo.train runs 2 + repeats epochs of one chunk each (num_evals = 3 + repeats,
run_evals=False) and we read `training/sps` of all but the first two epochs, which
include its compiles (the second epoch recompiles for the donated state's new layout).
Prints steps/s and the ratio to Brax.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from typing import Callable

import jax

import envs.quiet_imports  # noqa: F401  first: Brax imports mujoco.mjx, which prints Warp lines
from brax.envs.base import Env, Wrapper

import envs
import jaxcrl

DEFAULT_ENV = "PointGoal1"
FALLBACK_ENV = "ProbeTwoRegion"


class _ZeroCost(Wrapper):
  """A Brax env (e.g. `brax:halfcheetah`) returning envs.base.State with cost 0, so the
  trainers can be compared on Brax physics before the Safety-Gym tasks exist."""

  def reset(self, rng):
    return envs.with_cost(self.env.reset(rng), 0.0)

  def step(self, state, action):
    return envs.with_cost(self.env.step(state, action), 0.0)


def _make_env(name: str):
  if name.startswith("brax:"):
    from brax import envs as brax_envs
    brax_name = name.split(":", 1)[1]
    if brax_name not in brax_envs._envs:  # pylint: disable=protected-access
      raise ValueError(f"unknown Brax env {brax_name!r}; known: "
                       f"{', '.join(sorted(brax_envs._envs))}")  # pylint: disable=protected-access
    return _ZeroCost(brax_envs.get_environment(brax_name))
  return envs.make(name)


def bench_env(given: str | None) -> tuple[str, Env]:
  """(name, env) of --env, or of DEFAULT_ENV (FALLBACK_ENV, with a note, until it is
  registered); ValueError for an unknown name."""
  name = given
  if name is None:
    name = DEFAULT_ENV if DEFAULT_ENV in envs.names() else FALLBACK_ENV
    if name != DEFAULT_ENV:
      print(f"note: {DEFAULT_ENV} is not registered yet; benchmarking {name}")
  return name, _make_env(name)


def _parse(argv):
  parser = argparse.ArgumentParser(prog="python -m experiments.bench train",
                                   description=__doc__.splitlines()[0])
  parser.add_argument("--env", default=None,
                      help=f"registered env (default {DEFAULT_ENV}; {FALLBACK_ENV} "
                           "until PointGoal1 is registered), or brax:NAME for a Brax "
                           "env with zero cost")
  parser.add_argument("--updates", type=int, default=4,
                      help="updates per timed chunk (env steps = updates x batch)")
  parser.add_argument("--steps", type=int, default=None,
                      help="env steps per timed chunk; overrides --updates")
  parser.add_argument("--repeats", type=int, default=3, help="timed chunks per trainer")
  parser.add_argument("--num-envs", type=int, default=64)
  parser.add_argument("--unroll-length", type=int, default=32)
  parser.add_argument("--num-minibatches", type=int, default=8)
  parser.add_argument("--num-epochs", type=int, default=4)
  parser.add_argument("--episode-length", type=int, default=None)
  parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64],
                      help="hidden sizes of policy, critics and lambda(s) net")
  parser.add_argument("--activation", default="tanh", choices=("tanh", "relu", "swish"))
  parser.add_argument("--algos", nargs="+",
                      default=[a for a in jaxcrl.ALGOS
                               if not jaxcrl.algorithms.is_off_policy(a)],
                      metavar="ALGO[:SETTING=VALUE...]",
                      help="algorithms to time (default: every on-policy one; the off-policy "
                           "ones have `bench offpolicy`), each optionally with its own "
                           "settings, e.g. cpo:fvp_sample_freq=1:cg_iters=10")
  parser.add_argument("--no-brax", action="store_true", help="skip Brax's ppo.train")
  return parser.parse_args(argv)


def _compile_jaxcrl(env, config: jaxcrl.TrainConfig):
  """(run: () -> outputs, compile seconds). `run` does config.num_updates updates from a
  state initialised once up front: like Brax's timed epochs it excludes env resets and
  parameter init (navigation resets sample layouts, which is not training throughput)."""
  init, update = jaxcrl.make_init_update(env, config)
  state = jax.jit(init)(jax.random.key(0))
  compiled, compile_s = compile_updates(update, state, config.num_updates)
  return (lambda: compiled(state)), compile_s


def compile_updates(update: Callable, state, num_updates: int, donate: bool = False
                    ) -> tuple[Callable, float]:
  """(state -> (state, metrics) running `num_updates` updates in one lax.scan, compiled ahead
  of time for `state`'s shapes; compile seconds)."""

  def updates(state):
    return jax.lax.scan(lambda s, _: update(s), state, None, length=num_updates)

  start = time.perf_counter()
  compiled = jax.jit(updates, donate_argnums=0 if donate else ()).lower(state).compile()
  return compiled, time.perf_counter() - start


def time_round(compiled: dict, best: dict) -> None:
  """Times one call of each compiled train, keeping the best seconds in `best`."""
  for name, fn in compiled.items():
    start = time.perf_counter()
    jax.block_until_ready(fn())
    best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)


def epoch_timer(between: Callable[[], None]
                ) -> tuple[Callable[..., None], Callable[[], float]]:
  """(progress_fn for a Brax trainer, best() -> the best `training/sps` of its epochs after
  the first two, which include its compiles); `between()` runs after each timed epoch."""
  sps = []

  def progress(step, metrics):
    del step
    if "training/sps" not in metrics:  # an evaluation before training
      return
    sps.append(float(metrics["training/sps"]))
    if len(sps) > 2:
      between()

  return progress, lambda: max(sps[2:])


def _time_brax(env, config: jaxcrl.TrainConfig, episode_length: int, repeats: int,
               between: Callable[[], None]) -> float:
  """Best `training/sps` of Brax's epochs 3.. 2 + repeats; `between()` runs after each."""
  from brax.training.agents.ppo import networks as ppo_networks
  from brax.training.agents.ppo import train as ppo
  from jaxcrl.networks import ACTIVATIONS

  progress, best = epoch_timer(between)
  network_factory = functools.partial(
      ppo_networks.make_ppo_networks,
      policy_hidden_layer_sizes=tuple(config.policy_hidden),
      value_hidden_layer_sizes=tuple(config.value_hidden),
      activation=ACTIVATIONS[config.activation],
      state_dependent_std=True)
  ppo.train(
      environment=env,
      num_timesteps=config.num_timesteps * (2 + repeats),
      num_envs=config.num_envs,
      episode_length=episode_length,
      action_repeat=config.action_repeat,
      unroll_length=config.unroll_length,
      batch_size=config.num_envs // config.num_minibatches,
      num_minibatches=config.num_minibatches,
      num_updates_per_batch=config.num_epochs,
      normalize_observations=True,
      learning_rate=float(config.policy_lr),
      entropy_cost=float(config.learner.entropy_coef),
      discounting=float(config.gamma),
      gae_lambda=float(config.gae_lambda),
      clipping_epsilon=float(config.learner.clip_eps),
      max_grad_norm=float(config.max_grad_norm),
      network_factory=network_factory,
      num_evals=3 + repeats,
      run_evals=False,
      seed=0,
      progress_fn=progress,
  )
  return best()


def main(argv: list[str] | None = None) -> int:
  args = _parse(sys.argv[1:] if argv is None else argv)
  try:
    name, env = bench_env(args.env)
  except ValueError as err:
    print(f"error: {err}", file=sys.stderr)
    return 2
  episode_length = args.episode_length or getattr(env, "episode_length", 1000)
  if args.num_envs % args.num_minibatches:
    print(f"error: --num-envs {args.num_envs} must be divisible by --num-minibatches "
          f"{args.num_minibatches} (Brax's batch_size = num_envs / num_minibatches)",
          file=sys.stderr)
    return 2
  steps = args.steps or args.updates * args.num_envs * args.unroll_length
  hidden = tuple(args.hidden)
  shared = dict(
      num_timesteps=steps, num_envs=args.num_envs, unroll_length=args.unroll_length,
      num_minibatches=args.num_minibatches, num_epochs=args.num_epochs,
      episode_length=episode_length, policy_hidden=hidden, value_hidden=hidden,
      activation=args.activation)

  def config_of(spec):
    """'algo[:setting=value...]' -> TrainConfig (ValueError naming a bad part)."""
    algo, *items = spec.split(":")
    own = {}
    for item in items:
      setting, sep, value = item.partition("=")
      if not sep:
        raise ValueError(f"{item!r} in --algos {spec!r} is not SETTING=VALUE")
      try:
        own[setting] = int(value) if value.lstrip("-").isdigit() else float(value)
      except ValueError:
        raise ValueError(f"{setting}={value!r} in --algos {spec!r} is not a number") from None
    if algo in jaxcrl.algorithms.takers("multiplier_hidden"):
      own.setdefault("multiplier_hidden", hidden)
    return jaxcrl.make_config(algo, **shared, **own)

  try:
    base = config_of("ppo")
    configs = {spec: config_of(spec) for spec in args.algos}
  except ValueError as err:
    print(f"error: {err}", file=sys.stderr)
    return 2
  print(f"env={name} devices={jax.devices()} steps={steps} num_envs={args.num_envs} "
        f"unroll={args.unroll_length} minibatches={args.num_minibatches} "
        f"epochs={args.num_epochs} hidden={hidden} activation={args.activation} "
        f"repeats={args.repeats}")
  compiled, compile_s = {}, {}
  for spec, config in configs.items():
    compiled[spec], compile_s[spec] = _compile_jaxcrl(env, config)
  # Timed rounds interleave with Brax's timed epochs, so load from other processes on a
  # shared machine hits every trainer alike.
  best, results = {}, {}
  if args.no_brax:
    for _ in range(args.repeats):
      time_round(compiled, best)
  else:
    results["brax_ppo"] = _time_brax(env, base, episode_length, args.repeats,
                                     lambda: time_round(compiled, best))
    print(f"{'brax_ppo':>14}: {results['brax_ppo']:12.0f} env steps/s")
  chunk = base.num_updates * base.batch_size * base.action_repeat
  width = max([14] + [len(spec) for spec in best])
  for algo, seconds in best.items():
    sps = chunk / seconds
    ratio = (f"  {sps / results['brax_ppo']:.2f}x brax" if "brax_ppo" in results else "")
    print(f"{algo:>{width}}: {sps:12.0f} env steps/s  (compile {compile_s[algo]:.1f} s){ratio}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
