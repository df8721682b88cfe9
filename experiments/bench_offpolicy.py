"""Off-policy throughput: jaxcrl's sac (or --algos) vs Brax's sac.train, side by side.

  python -m experiments.bench offpolicy [--env PointGoal1] [--num-envs 16] [--utd 1] ...

Both trainers get the same env, num_envs, minibatch size, gradient steps per vectorised env
step (--utd: Brax's grad_updates_per_step, jaxcrl's utd_ratio with unroll_length 1, so an
update of ours is one training step of Brax's: one step of every env, then utd gradient
steps), replay capacity, observation normalisation, network sizes and activation (policy
and critics). jaxcrl's sac does a little more per gradient step than Brax's: a third
critic head (the cost critic) and its target.
Two regimes: while the replay buffer fills (default), and --full-buffer, the steady state
of any run longer than the buffer, where Brax's UniformSamplingQueue shifts its whole
contents on every insert and jaxcrl's ring buffer overwrites the oldest slots in place.
Timing: like `bench train`. jaxcrl's update loop (a lax.scan of --updates updates, state
donated and fed back) is compiled ahead of time from a state past its warm-up (with
--full-buffer, its buffer marked full: a ring buffer's cost does not depend on its
contents); one call of each algorithm is timed after each of Brax's timed epochs (from its
progress_fn), so all trainers share the machine's load, and the best of --repeats calls
is kept. Brax's sac.train runs 2 + repeats epochs of --updates training steps each after a
prefill of --batch-size transitions (with --full-buffer, of --buffer-size), and we read
`training/sps` of all but the first two epochs (compiles). Prints env steps/s and gradient
steps/s of each and the ratio to Brax.
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Callable

import jax

import envs.quiet_imports  # noqa: F401  first: Brax imports mujoco.mjx, which prints Warp lines
from brax.envs.base import Wrapper

import jaxcrl
from experiments.bench_train import (DEFAULT_ENV, bench_env, compile_updates, epoch_timer,
                                     time_round)


def _parse(argv):
  parser = argparse.ArgumentParser(prog="python -m experiments.bench offpolicy",
                                   description=__doc__.splitlines()[0])
  parser.add_argument("--env", default=None,
                      help=f"registered env (default {DEFAULT_ENV}), or brax:NAME for a Brax "
                           "env with zero cost")
  parser.add_argument("--updates", type=int, default=200,
                      help="training steps (one vectorised env step + --utd gradient steps) "
                           "per timed chunk")
  parser.add_argument("--repeats", type=int, default=3, help="timed chunks per trainer")
  parser.add_argument("--num-envs", type=int, default=16)
  parser.add_argument("--batch-size", type=int, default=256,
                      help="transitions per gradient step")
  parser.add_argument("--utd", type=int, default=1,
                      help="gradient steps per vectorised env step")
  parser.add_argument("--buffer-size", type=int, default=100_000)
  parser.add_argument("--full-buffer", action="store_true",
                      help="time with the replay buffer full (Brax prefills all of it)")
  parser.add_argument("--episode-length", type=int, default=None)
  parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256],
                      help="hidden sizes of policy and critics")
  parser.add_argument("--activation", default="relu", choices=("tanh", "relu", "swish"))
  parser.add_argument("--learning-rate", type=float, default=3e-4)
  parser.add_argument("--algos", nargs="+", default=["sac"],
                      help="off-policy algorithms to time (default: sac)")
  parser.add_argument("--no-brax", action="store_true", help="skip Brax's sac.train")
  return parser.parse_args(argv)


class _KeepMetrics(Wrapper):
  """Carries every metric the incoming state has into the next one: Brax's evaluator (which
  SAC runs after every epoch) adds `reward` to the metrics at reset and scans the step, so
  the env must keep the keys it was given."""

  def step(self, state, action):
    nstate = self.env.step(state, action)
    return nstate.replace(metrics={**state.metrics, **nstate.metrics})


def _compile_jaxcrl(env, config: jaxcrl.TrainConfig, full: bool
                    ) -> tuple[Callable[[], None], float]:
  """(run: () -> None, compile seconds). `run` does config.num_updates updates, feeding the
  donated state back, from a state past the replay warm-up (its buffer marked full if
  `full`)."""
  init, update = jaxcrl.make_init_update(env, config)
  state = jax.jit(init)(jax.random.key(0))
  warm = config.learner.warmup_steps // config.batch_size + 1
  state = jax.jit(lambda s: jax.lax.scan(lambda s, _: update(s), s, None, length=warm)[0])(
      state)
  if full:
    buffer = state.learner.replay
    state = state.replace(learner=state.learner.replace(
        replay=buffer.replace(size=jax.numpy.full_like(buffer.size,
                                                       config.learner.buffer_size))))
  compiled, compile_s = compile_updates(update, state, config.num_updates, donate=True)
  holder = [state]

  def run():
    holder[0], metrics = compiled(holder[0])
    jax.block_until_ready(metrics)

  return run, compile_s


def _time_brax(env, args, episode_length: int, between: Callable[[], None]) -> float:
  """Best `training/sps` of Brax's epochs 3.. 2 + repeats; `between()` runs after each."""
  from brax.training.agents.sac import networks as sac_networks
  from brax.training.agents.sac import train as sac
  from jaxcrl.networks import ACTIVATIONS

  progress, best = epoch_timer(between)
  epochs = 2 + args.repeats
  fill = args.buffer_size if args.full_buffer else args.batch_size
  prefill = -(-fill // args.num_envs) * args.num_envs
  network_factory = functools.partial(
      sac_networks.make_sac_networks, hidden_layer_sizes=tuple(args.hidden),
      activation=ACTIVATIONS[args.activation])
  sac.train(
      environment=_KeepMetrics(env),
      num_timesteps=prefill + epochs * args.updates * args.num_envs,
      episode_length=episode_length,
      num_envs=args.num_envs,
      num_eval_envs=1,
      learning_rate=args.learning_rate,
      discounting=0.99,
      batch_size=args.batch_size,
      num_evals=epochs + 1,
      normalize_observations=True,
      min_replay_size=fill,
      max_replay_size=args.buffer_size,
      grad_updates_per_step=args.utd,
      network_factory=network_factory,
      seed=0,
      progress_fn=progress,
  )
  return best()


def main(argv: list[str] | None = None) -> int:
  args = _parse(sys.argv[1:] if argv is None else argv)
  try:
    on_policy = [a for a in args.algos if not jaxcrl.algorithms.is_off_policy(a)]
    if on_policy:
      raise ValueError(f"{', '.join(on_policy)}: --algos takes off-policy algorithms "
                       "(sac, sac_lag, ...); time the on-policy ones with `bench train`")
    name, env = bench_env(args.env)
    episode_length = args.episode_length or getattr(env, "episode_length", 1000)
    hidden = tuple(args.hidden)
    configs = {algo: jaxcrl.make_config(
        algo, num_timesteps=args.updates * args.num_envs, num_envs=args.num_envs,
        unroll_length=1, episode_length=episode_length, policy_hidden=hidden,
        value_hidden=hidden, activation=args.activation, policy_lr=args.learning_rate,
        value_lr=args.learning_rate, batch_size=args.batch_size, utd_ratio=args.utd,
        buffer_size=args.buffer_size, warmup_steps=args.batch_size,
        **({"multiplier_hidden": hidden} if jaxcrl.algorithms.is_statewise(algo) else {}))
        for algo in args.algos}
  except ValueError as err:
    print(f"error: {err}", file=sys.stderr)
    return 2
  print(f"env={name} devices={jax.devices()} num_envs={args.num_envs} "
        f"batch={args.batch_size} utd={args.utd} buffer={args.buffer_size}"
        f"{' (full)' if args.full_buffer else ' (filling)'} hidden={hidden} "
        f"activation={args.activation} updates={args.updates} repeats={args.repeats}")
  compiled, compile_s = {}, {}
  for algo, config in configs.items():
    compiled[algo], compile_s[algo] = _compile_jaxcrl(env, config, args.full_buffer)
  best = {}
  brax_sps = None
  if args.no_brax:
    for _ in range(args.repeats):
      time_round(compiled, best)
  else:
    brax_sps = _time_brax(env, args, episode_length, lambda: time_round(compiled, best))
  rows = [] if brax_sps is None else [("brax_sac", brax_sps, None)]
  rows += [(algo, args.updates * args.num_envs / seconds, compile_s[algo])
           for algo, seconds in best.items()]
  width = max(len(r[0]) for r in rows)
  for algo, sps, compile_time in rows:
    grad = sps / args.num_envs * args.utd
    ratio = f"  {sps / brax_sps:.2f}x brax" if brax_sps and algo != "brax_sac" else ""
    note = f"  (compile {compile_time:.1f} s)" if compile_time is not None else ""
    print(f"{algo:>{width}}: {sps:10.0f} env steps/s {grad:9.1f} gradient steps/s{ratio}{note}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
