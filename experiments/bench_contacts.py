"""Contact probes: `python -m experiments.bench contacts [--objects buttons,gremlins]
[--physics mujoco:100,mujoco:1,mjx,planar] [--offsets 0,0.05,0.1,0.15,0.2] [--turns 0,0.3,-0.3]
[--steps 100]`.

A Point starts at rest at the origin heading +x and drives at full thrust, action (1, turn),
into one object whose contact is 0.35 m ahead and `offset` to the side (a button at
(0.35, offset); a gremlin whose circle starts there, moving +x). For each physics, each probe
prints the env steps (of `--steps`) that end in contact with the object and where the robot
is at the end; a summary line per physics gives the total contact steps, the summed
|steps - the first physics' steps| and the mean distance of the final positions from the first
physics'. These are the moments that set Button's contact costs: how long a robot pushing into
an obstacle keeps touching it.

Physics:
  mujoco:N  MuJoCo C (`mujoco.mj_step`) on the mjx backend's MJCF with N Newton iterations
            (line-search iterations max(N, 8) capped at 50; N = 100 is MuJoCo's default solver,
            as Safety-Gymnasium runs it). Gremlins move before every substep, as in mjx.
  mjx       the mjx World at its configured solver (`envs.robots`).
  planar    the planar World.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import sys

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from envs import obstacles
from envs.mjx_world import MjxWorld, build_xml
from envs.planar import PlanarWorld
from envs.robots import POINT
from envs.world import Layout

OBJECTS = {"buttons": obstacles.buttons, "gremlins": obstacles.gremlins}
AHEAD = 0.35


def _anchor(name: str, offset: float) -> np.ndarray:
  """[1, 2] the layout position that puts the object's contact AHEAD and `offset` aside."""
  if name == "gremlins":  # its path starts at anchor + (0, GREMLIN_TRAVEL), moving +x
    return np.array([[AHEAD, offset - obstacles.GREMLIN_TRAVEL]])
  return np.array([[AHEAD, offset]])


def mujoco_probe(name: str, offset: float, turn: float, steps: int = 100,
                 iterations: int = 100) -> tuple[int, np.ndarray]:
  """MuJoCo C: (env steps ending in contact with the object, robot xy [2] at the end)."""
  group = OBJECTS[name](1)
  m = mujoco.MjModel.from_xml_string(build_xml(POINT, (group,)))
  m.opt.iterations, m.opt.ls_iterations = iterations, min(max(iterations, 8), 50)
  d = mujoco.MjData(m)
  anchor = _anchor(name, offset)
  z = m.body_pos[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, f"{name}0"), 2]
  d.mocap_pos[0] = [anchor[0, 0], anchor[0, 1], z]
  action = jnp.array([1.0, turn])
  touching, xy = 0, d.qpos[:2].copy()
  for _ in range(steps):
    for _ in range(POINT.n_frames):
      if group.path is not None:
        d.mocap_pos[0, :2] = np.asarray(group.path(jnp.asarray(anchor), jnp.asarray(d.time)))[0]
      d.ctrl[:] = np.asarray(POINT.ctrl(action, jnp.asarray(d.qpos), jnp.asarray(d.qvel)))
      xy = d.qpos[:2].copy()  # the accessors' instant: the start of the last substep
      mujoco.mj_step(m, d)
    touching += int(d.ncon > 0)
  return touching, xy


def world_probe(world, name: str, offset: float, turn: float,
                steps: int = 100) -> tuple[int, np.ndarray]:
  """A World (`envs.world`): the same probe as `mujoco_probe`."""
  layout = Layout(robot_xy=jnp.zeros(2), robot_yaw=jnp.zeros(()),
                  xy={name: jnp.asarray(_anchor(name, offset), jnp.float32)},
                  yaw={name: jnp.zeros(1)})
  contact, xy = _rollout(world, name, steps)(world.init(layout), jnp.asarray(turn, jnp.float32))
  return int((np.asarray(contact) > 0).sum()), np.asarray(xy)


@functools.cache
def _rollout(world, name: str, steps: int):
  """Jitted (ws, turn []) -> (robot contacts with `name` per step [steps], final xy [2]): one
  trace per (world, name, steps); offsets and turns are traced."""
  def rollout(ws, turn):
    def step(ws, _):
      ws = world.step(ws, jnp.stack([jnp.ones_like(turn), turn]))
      return ws, world.robot_contacts(ws, name).sum()
    ws, contact = jax.lax.scan(step, ws, None, length=steps)
    return contact, world.robot_pose(ws)[0][:2]
  return jax.jit(rollout)


def _parse(argv: list[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog="python -m experiments.bench contacts",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--objects", default=",".join(OBJECTS))
  parser.add_argument("--physics", default="mujoco:100,mujoco:1,mjx,planar")
  parser.add_argument("--offsets", default="0,0.05,0.1,0.15,0.2")
  parser.add_argument("--turns", default="0,0.3,-0.3")
  parser.add_argument("--steps", type=int, default=100)
  return parser.parse_args(argv)


def _check(args: argparse.Namespace) -> str | None:
  for name in args.objects.split(","):
    if name not in OBJECTS:
      return f"--objects {name!r} is not one of {', '.join(OBJECTS)}"
  for p in args.physics.split(","):
    kind, _, n = p.partition(":")
    if not (p in ("mjx", "planar") or (kind == "mujoco" and n.isdigit() and int(n) > 0)):
      return f"--physics {p!r} is not one of mujoco:N (N >= 1 Newton iterations), mjx, planar"
  for flag, text in (("--offsets", args.offsets), ("--turns", args.turns)):
    try:
      [float(x) for x in text.split(",")]
    except ValueError:
      return f"{flag} {text!r} is not a comma-separated list of numbers"
  if args.steps < 1:
    return f"--steps {args.steps} must be >= 1"
  return None


def main(argv: list[str] | None = None) -> int:
  args = _parse(sys.argv[1:] if argv is None else argv)
  problem = _check(args)
  if problem:
    print(f"error: {problem}", file=sys.stderr)
    return 2
  offsets = [float(x) for x in args.offsets.split(",")]
  turns = [float(x) for x in args.turns.split(",")]
  physics = args.physics.split(",")
  for name in args.objects.split(","):
    group = OBJECTS[name](1)
    worlds = {"mjx": MjxWorld("Point", (group,)), "planar": PlanarWorld("Point", (group,))}
    print(f"\n{name}: env steps in contact of {args.steps} (robot xy at the end)")
    print("offset  turn | " + " | ".join(f"{p:<18}" for p in physics))
    totals = np.zeros(len(physics))
    step_err, xy_err = np.zeros(len(physics)), np.zeros(len(physics))
    for offset, turn in itertools.product(offsets, turns):
      rows = []
      for p in physics:
        if p.startswith("mujoco"):
          rows.append(mujoco_probe(name, offset, turn, args.steps, int(p.split(":")[1])))
        else:
          rows.append(world_probe(worlds[p], name, offset, turn, args.steps))
      for i, (n, xy) in enumerate(rows):
        totals[i] += n
        step_err[i] += abs(n - rows[0][0])
        xy_err[i] += np.linalg.norm(xy - rows[0][1]) / (len(offsets) * len(turns))
      print(f"{offset:6.2f} {turn:5.2f} | " + " | ".join(
          f"{n:3d} ({xy[0]:5.2f}, {xy[1]:5.2f})" for n, xy in rows), flush=True)
    print("total        | " + " | ".join(f"{int(t):<18d}" for t in totals))
    print("|n - first|  | " + " | ".join(f"{int(e):<18d}" for e in step_err))
    print("xy off, m    | " + " | ".join(f"{e:<18.3f}" for e in xy_err))
  return 0


if __name__ == "__main__":
  sys.exit(main())
