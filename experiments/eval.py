"""Evaluate a run's checkpoint: `python -m experiments.eval RUN [--step N] [--episodes 10]
[--seed 0] [--render out.html] [--render-3d out3d.html]`.

Runs `--episodes` deterministic episodes (tanh of the policy mean) for every member of the
run (seeds x cost limits, x grid cells in a sweep) in one jitted, vmapped scan over the
episode's agent steps, and prints and writes (RUN/eval/step{N}.json) per cost limit (per
cost limit and grid cell in a sweep, keyed like "25 lagrange_lr=0.1") the mean and std
over all of its episodes of: return, episode cost, cost rate (cost per env step) and the
share of episodes whose cost is within the limit. Same checkpoint and --seed -> the same numbers.

--render OUT.html writes a self-contained top-down replay page (no network needed) of one
deterministic episode of member 0, and OUT.gif beside it; navigation envs, any backend.
--render-3d OUT.html writes Brax's 3-D viewer page of it instead (mjx or Brax physics envs;
that page loads its scripts from public CDNs).
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any, Sequence

import numpy as np

from experiments import rundir
from experiments.cli import Parser, UsageError, parse_int, run_main, usage_errors

METRICS = ("return", "cost", "cost_rate", "within_limit")


def make_evaluate(env: Any, config: Any, episodes: int):
  """`evaluate(state, key) -> dict of [episodes]` for one (unbatched) TrainState.

  Each of the `episodes` envs runs from its own reset until its first `done`; the scan is
  as long as one full episode, so every env finishes once (the time limit truncates).
  """
  import jax
  import jax.numpy as jnp

  import envs
  import jaxcrl

  episode_length = config.episode_length or getattr(env, "episode_length", 1000)
  act = jaxcrl.make_act(env, config)
  agent_steps = -(-episode_length // config.action_repeat)

  def evaluate(state, key):
    # The env the policy acts in under this member's config (an algorithm's wrapper, e.g.
    # Saute's budget of its own cost limit); episode_return stays the task's return.
    eval_env = envs.wrap(jaxcrl.make_env(env, state.config), episodes, episode_length,
                         config.action_repeat)
    env_state = eval_env.reset(key)
    zeros = jnp.zeros((episodes,), jnp.float32)

    def step(carry, _):
      s, finished, ret, cost, length = carry
      action = act(state, s.obs, key, True)
      s = eval_env.step(s, action)
      ended = (s.done > 0) & ~finished
      ret = jnp.where(ended, s.info["episode_return"], ret)
      cost = jnp.where(ended, s.info["episode_cost"], cost)
      length = jnp.where(ended, s.info["steps"].astype(jnp.float32), length)
      return (s, finished | ended, ret, cost, length), None

    init = (env_state, jnp.zeros((episodes,), bool), zeros, zeros, zeros)
    (_, finished, ret, cost, length), _ = jax.lax.scan(step, init, None, agent_steps)
    return {"return": ret, "cost": cost, "cost_rate": cost / jnp.maximum(length, 1.0),
            "finished": finished,
            "within_limit": (cost <= state.config.cost_limit).astype(jnp.float32)}

  return evaluate


def make_rollout(env: Any, config: Any):
  """`rollout(state, key) -> env states [T]` of one deterministic episode (for rendering)."""
  import jax

  import envs
  import jaxcrl

  episode_length = config.episode_length or getattr(env, "episode_length", 1000)
  act = jaxcrl.make_act(env, config)

  def rollout(state, key):
    one_env = envs.wrap(jaxcrl.make_env(env, state.config), 1, episode_length,
                        config.action_repeat)

    def step(s, _):
      s = one_env.step(s, act(state, s.obs, key, True))
      return s, s
    _, states = jax.lax.scan(step, one_env.reset(key), None,
                             -(-episode_length // config.action_repeat))
    return states

  return rollout


def _renderer(env: Any, name: str, three_d: bool = False):
  """`write(states [T, 1], out) -> [paths written]` drawing one episode of `env`.

  Default: the self-contained top-down replay (`envs.replay`) of a navigation env, on any
  backend: the page at `out` and a GIF beside it (suffix .gif). three_d: the Brax 3-D viewer
  page at `out` (it loads its scripts from public CDNs) of an mjx navigation env or another
  Brax physics env. UsageError where the env has no such view.
  """
  import jax
  from envs.navigation import NavigationEnv

  def one(states):
    return jax.tree.map(lambda x: x[:, 0], states)

  if not three_d:
    if not isinstance(env, NavigationEnv):
      how = " (try --render-3d)" if hasattr(env, "sys") else ""
      raise UsageError(f"--render: env {name!r} has no physics system to draw as a top-down "
                       f"replay; it needs a navigation env such as PointGoal1{how}")

    def write_replay(states, out):
      from envs import replay
      frames = replay.frames(env, one(states))
      out.write_text(replay.replay_html(frames, title=name))
      return [out, replay.replay_gif(frames, out.with_suffix(".gif"), title=name)]
    return write_replay
  if isinstance(env, NavigationEnv):
    if env.backend != "mjx":
      raise UsageError(f"--render-3d needs the mjx backend; env {name!r} runs on "
                       f"{env.backend!r} (--render draws a top-down replay on any backend)")
    from envs.render import render_html

    def write_nav_3d(states, out):
      out.write_text(render_html(env, one(states)))
      return [out]
    return write_nav_3d
  if hasattr(env, "sys"):
    from brax.io import html

    def write_3d(states, out):
      first = one(states)
      out.write_text(html.render(env.sys, [
          jax.tree.map(lambda x, i=i: x[i], first.pipeline_state)
          for i in range(first.obs.shape[0])]))
      return [out]
    return write_3d
  raise UsageError(f"--render-3d: env {name!r} has no physics system to draw; it needs a "
                   "Brax/MJX physics env such as PointGoal1 on mjx")


def _main(argv: list[str]) -> int:
  parser = Parser(prog="python -m experiments.eval", description=__doc__.split("\n")[0])
  parser.add_argument("run", type=pathlib.Path, help="run folder")
  parser.add_argument("--step", type=parse_int, default=None,
                      help="checkpoint (update count) to load; latest if absent")
  parser.add_argument("--episodes", type=parse_int, default=10, help="episodes per member")
  parser.add_argument("--seed", type=parse_int, default=0, help="seed of the eval resets")
  parser.add_argument("--backend", default=None,
                      help="physics to evaluate on ('planar' or 'mjx' for navigation envs); "
                           "default: the run's own")
  parser.add_argument("--render", type=pathlib.Path, default=None, metavar="OUT.html",
                      help="also write a self-contained top-down replay page of one episode "
                           "of member 0, and OUT.gif beside it (navigation envs, any backend)")
  parser.add_argument("--render-3d", type=pathlib.Path, default=None, metavar="OUT.html",
                      help="also write a Brax 3-D viewer page of that episode (mjx or Brax "
                           "physics envs; the page loads its scripts from public CDNs)")
  args = parser.parse_args(argv)
  if args.episodes < 1:
    raise UsageError(f"--episodes {args.episodes} is invalid; need at least 1")
  spec = rundir.read_spec(args.run)
  ckpt_dir = args.run / rundir.CHECKPOINT_DIR
  if not ckpt_dir.is_dir():
    raise UsageError(f"{str(args.run)!r} has no checkpoints yet")

  import jax

  from experiments.checkpoint import CheckpointStore
  with usage_errors():
    own = rundir.build(spec)  # the run's TrainState (its env state too) restores into this
    built = own if args.backend in (None, own.env.backend) else rundir.build(spec, args.backend)
  writers = [(out, _renderer(built.env, spec["env"], three_d))
             for out, three_d in ((args.render, False), (args.render_3d, True))
             if out is not None]
  store = CheckpointStore(ckpt_dir, max_to_keep=None)
  steps = store.steps()
  if not steps:
    raise UsageError(f"{str(args.run)!r} has no complete checkpoint yet")
  step = steps[-1] if args.step is None else args.step
  if step not in steps:
    raise UsageError(f"--step {step} has no checkpoint; available: "
                     f"{', '.join(map(str, steps))}")
  try:
    state = store.restore(step, **rundir.restore_args(own))
  except ValueError as err:  # e.g. the env's observation size changed since training
    first = str(err).split(". ")[0]
    raise UsageError(f"checkpoint {step} of {str(args.run)!r} does not fit the run's env "
                     f"and config as they build now: {first}") from err
  finally:
    store.close()

  members = rundir.run_members(spec)
  keys = jax.random.split(jax.random.key(args.seed), len(members))
  evaluate = jax.jit(jax.vmap(make_evaluate(built.env, built.config, args.episodes)))
  results = jax.device_get(evaluate(state, keys))
  if not results["finished"].all():
    raise RuntimeError("some eval episodes did not end within the episode length")

  report: dict[str, Any] = {
      "run": str(args.run), "step": step, "episodes_per_member": args.episodes,
      "seed": args.seed, "deterministic": True, "backend": built.env.backend,
      "by_limit": {}, "members": []}
  groups: dict[str, list[int]] = {}   # a sweep's groups are (limit, cell): "25 lr=0.1"
  for j, m in enumerate(members):
    report["members"].append({"seed": m.seed, "cost_limit": m.cost_limit,
                              **({"cell": dict(m.cell)} if m.cell else {}),
                              **{k: float(np.mean(results[k][j])) for k in METRICS}})
    groups.setdefault(f"{m.cost_limit:g} {m.cell_label}".strip(), []).append(j)
  print(f"{spec['env']} ({built.env.backend}) {spec['config']['algo']} checkpoint {step}, "
        f"{args.episodes} deterministic episodes x {spec['seeds']} seeds per limit")
  for group, rows in groups.items():
    stats = {k: {"mean": float(np.mean(results[k][rows])),
                 "std": float(np.std(results[k][rows]))} for k in METRICS}
    report["by_limit"][group] = stats
    print(f"limit {group}: " + ", ".join(
        f"{k} {v['mean']:.4g}±{v['std']:.2g}" for k, v in stats.items()))
  # An eval on another backend than the run's (e.g. --backend mjx) gets its own file.
  other = "" if built.env.backend == own.env.backend else f"_{built.env.backend}"
  out = args.run / "eval" / f"step{step}{other}.json"
  out.parent.mkdir(exist_ok=True)
  out.write_text(json.dumps(report, indent=2) + "\n")
  print(f"wrote {out}")

  if writers:
    member0 = jax.tree.map(lambda x: x[0], state)
    states = jax.jit(make_rollout(built.env, built.config))(member0, jax.random.key(args.seed))
    for out, write in writers:
      out.parent.mkdir(parents=True, exist_ok=True)
      for path in write(states, out):
        print(f"wrote {path}")
  return 0


def main(argv: Sequence[str] | None = None) -> int:
  return run_main(_main, argv)


if __name__ == "__main__":
  sys.exit(main())
