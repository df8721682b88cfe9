"""Backend fidelity: `python -m experiments.bench fidelity [--envs A,B] [--episodes N]
[--backends planar,mjx] [--policies random,wander] [--sensors]`.

For each env, backend and scripted policy: N episodes of one full episode length each (a
vmapped batch of N envs, so N different layouts from seed `--seed`), then the mean cost rate
(cost per env step), mean episode return and mean episode cost, printed side by side with the
relative difference of the first backend from the last. Both backends see the same reset keys,
hence the same layouts.

When the env has several cost terms, a second line gives each term's share of steps in which
it fired, per backend in the order of --backends.

--sensors adds a line of the robot's sensor entries whose spread differs between the backends:
the standard deviation over all steps and episodes, per backend, of each entry that is
constant on one backend (std <= 1e-3, which the trainer's observation normaliser holds at 0,
`jaxcrl.normalize`) and not on another, or whose std differs by more than SENSOR_RATIO.

Policies (actions in [-1, 1]^2):
  random  uniform actions every step (Safety-Gymnasium's reference in FACTS section 6).
  wander  full thrust and slow turns: Point (1, 0.5 sin(2 pi t / 200 + phi)); Car drives both
          wheels at the 0.02 saturation, the right one modulated by 0.25 of that by the same
          sine (slow arcs). phi ~ U[0, 2 pi) per episode.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import envs
from envs import robots
from jaxcrl import normalize

POLICIES = ("random", "wander")
TURN_PERIOD = 200  # env steps per turning cycle of `wander`
CONSTANT_STD = math.sqrt(normalize.CONSTANT_VAR)
SENSOR_RATIO = 2.0
CAR_SATURATION = 0.02


def _parse(argv: list[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog="python -m experiments.bench fidelity",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--envs", default=None,
                      help="comma-separated navigation env names (default: all 24)")
  parser.add_argument("--episodes", type=int, default=256, help="episodes per cell (256)")
  parser.add_argument("--backends", default="planar,mjx", help="comma-separated backends")
  parser.add_argument("--policies", default=",".join(POLICIES),
                      help=f"comma-separated, of {', '.join(POLICIES)}")
  parser.add_argument("--sensors", action="store_true",
                      help="also list the sensor entries whose spread differs between backends")
  parser.add_argument("--seed", type=int, default=0)
  return parser.parse_args(argv)


def policy_action(policy: str, robot: str, key: jax.Array, t: jax.Array,
                  phase: jax.Array) -> jax.Array:
  """[B, 2] actions of `policy` at env step t for B envs with turning phases phase [B]."""
  if policy == "random":
    return jax.random.uniform(key, phase.shape + (2,), minval=-1.0, maxval=1.0)
  turn = jnp.sin(2 * jnp.pi * t / TURN_PERIOD + phase)
  if robot == "Car":
    left = jnp.full_like(turn, CAR_SATURATION)
    return jnp.stack([left, CAR_SATURATION * (1 + 0.25 * turn)], -1)
  return jnp.stack([jnp.ones_like(turn), 0.5 * turn], -1)


def run_cell(name: str, backend: str, policy: str, episodes: int, seed: int) -> dict:
  """Runs `episodes` episodes; returns cost_rate, ep_return, ep_cost (means), seconds,
  by_source {cost term: mean of its per-step indicator}, sensor_std [sensor_size] (over
  all steps and episodes) and robot."""
  env = envs.make(name, backend=backend)
  length = env.episode_length
  benv = envs.wrap(env, num_envs=episodes)
  robot = env.robot_name
  sensors = len(robots.SENSOR_LABELS[robot])

  @jax.jit
  def rollout(key):
    key_reset, key_phase, key_run = jax.random.split(key, 3)
    phase = jax.random.uniform(key_phase, (episodes,), maxval=2 * jnp.pi)

    def one(state, inputs):
      t, key = inputs
      state = benv.step(state, policy_action(policy, robot, key, t, phase))
      terms = {k[5:]: v for k, v in state.metrics.items()
               if k.startswith("cost_") and k != "cost_sum"}
      reading = state.obs[:, :sensors] - origin  # about the reset's mean: no cancellation
      return state, (state.cost, terms, reading.mean(0), (reading ** 2).mean(0))

    state = benv.reset(key_reset)
    origin = state.obs[:, :sensors].mean(0)
    state, (costs, terms, first, second) = jax.lax.scan(
        one, state, (jnp.arange(length), jax.random.split(key_run, length)))
    terms = {k: (v > 0).mean() for k, v in terms.items()}
    std = jnp.sqrt(jnp.maximum(second.mean(0) - first.mean(0) ** 2, 0.0))
    return costs, terms, state.info["episode_return"], state.info["episode_cost"], state.done, std

  start = time.perf_counter()
  costs, terms, ret, cost, done, std = jax.device_get(rollout(jax.random.key(seed)))
  if not np.all(done == 1):
    raise RuntimeError(f"{name}: episodes did not end after {length} steps")
  return {"cost_rate": float(costs.mean()), "ep_return": float(ret.mean()),
          "ep_cost": float(cost.mean()), "seconds": time.perf_counter() - start,
          "by_source": {k: float(v) for k, v in terms.items()}, "sensor_std": std,
          "robot": robot}


def differing_sensors(robot: str, stds: list[np.ndarray]) -> list[tuple[str, list[float]]]:
  """(label, [std per backend]) of the sensor entries whose spread differs between backends
  (module docstring); stds: per backend, [sensor_size]."""
  out = []
  for label, row in zip(robots.SENSOR_LABELS[robot], np.stack(stds, axis=-1)):
    constant = row <= CONSTANT_STD
    ratio = row.max() / max(row.min(), 1e-12)
    if constant.any() and not constant.all() or not constant.any() and ratio > SENSOR_RATIO:
      out.append((label, [float(x) for x in row]))
  return out


def _rel(a: float, b: float) -> str:
  if abs(b) < 1e-9:
    return "   n/a" if abs(a) > 1e-9 else "    0%"
  return f"{100 * (a - b) / abs(b):+5.0f}%"


def main(argv: list[str]) -> int:
  args = _parse(argv)
  nav = [n for n in envs.names() if any(t in n for t in ("Goal", "Button", "Push", "Circle"))]
  chosen = nav if args.envs is None else [n.strip() for n in args.envs.split(",") if n.strip()]
  backends = [b.strip() for b in args.backends.split(",") if b.strip()]
  policies = [p.strip() for p in args.policies.split(",") if p.strip()]
  for p in policies:
    if p not in POLICIES:
      print(f"error: unknown policy {p!r}; known: {', '.join(POLICIES)}", file=sys.stderr)
      return 2
  if args.episodes < 1:
    print(f"error: --episodes {args.episodes} is invalid; need at least 1", file=sys.stderr)
    return 2
  for name in chosen:
    try:
      name = envs.canonical_name(name)
      if name not in nav:
        raise ValueError(f"env {name!r} is not a navigation task; known: {', '.join(nav)}")
      for b in backends:
        envs.make(name, backend=b)
    except ValueError as err:
      print(f"error: {err}", file=sys.stderr)
      return 2
  print(f"jax.devices(): {jax.devices()}; {args.episodes} episodes per cell, seed {args.seed}")
  print(f"{'env':<14} {'policy':<7} " + " ".join(
      f"{b + ' cost/step':>16} {b + ' return':>14} {b + ' ep cost':>14}" for b in backends)
      + (f" {'d cost/step':>11} {'d return':>9}" if len(backends) > 1 else ""))
  for name in chosen:
    for policy in policies:
      cells = [run_cell(name, b, policy, args.episodes, args.seed) for b in backends]
      row = " ".join(f"{c['cost_rate']:>16.4f} {c['ep_return']:>14.3f} {c['ep_cost']:>14.2f}"
                     for c in cells)
      if len(cells) > 1:
        row += (f" {_rel(cells[0]['cost_rate'], cells[-1]['cost_rate']):>11}"
                f" {_rel(cells[0]['ep_return'], cells[-1]['ep_return']):>9}")
      print(f"{name:<14} {policy:<7} {row}", flush=True)
      if len(cells[0]["by_source"]) > 1:
        print(f"{'':<14} {'':<7} per source, steps with a cost: " + ", ".join(
            f"{k} " + " / ".join(f"{c['by_source'][k]:.4f}" for c in cells)
            for k in cells[0]["by_source"]), flush=True)
      if args.sensors and len(cells) > 1:
        differ = differing_sensors(cells[0]["robot"], [c["sensor_std"] for c in cells])
        print(f"{'':<14} {'':<7} sensor std, differing: " + (", ".join(
            f"{label} " + " / ".join(f"{x:.3g}" for x in row) for label, row in differ)
            or "none"), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
