"""The state-wise multiplier lambda(s) over a navigation arena, with hazards drawn.

For one layout (an env reset), the robot is placed at rest at every point of a grid and its
observation is computed there; lambda(s) of a trained state-wise run's state
(`jaxcrl.algorithms.is_statewise`: ppo_statewise, ppo_statewise_auto) is averaged over
`headings` robot yaws (the lidar is egocentric, so lambda depends on the heading).

Needs from the env (`envs.navigation.NavigationEnv` has them): `obs_at(state, xy, yaw)`,
`extents`, `objects(world_state, info)`, `group(name).size` and `groups`. `supports(env)`
says whether an env has them.
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

_NEEDS = ("obs_at", "extents", "objects", "group", "groups")


def supports(env: Any) -> bool:
  return all(hasattr(env, n) for n in _NEEDS)


def make_compute(env: Any, config: Any, resolution: int = 48, headings: int = 8):
  """Builds a jitted `compute(state, key) -> dict` of lambda(s) on a [R, R] grid, R =
  `resolution`, over the layout of `env.reset(key)`.

  `state` is one (unbatched) TrainState of a state-wise run. The dict holds xs, ys [R],
  lam [R, R] (rows: y), hazards [N, 2], hazard_radius [], goal [2] (NaN if none) and
  `objects`: {group name: [n, 2]} for every group; all numpy.
  """
  import jax
  import jax.numpy as jnp

  import jaxcrl

  lam_fn = jaxcrl.make_lambda(env, config)
  ext = float(env.extents)
  xs = jnp.linspace(-ext, ext, resolution)
  grid = jnp.stack(jnp.meshgrid(xs, xs), -1).reshape(-1, 2)
  yaws = jnp.linspace(0.0, 2 * jnp.pi, headings, endpoint=False)
  names = [g.name for g in env.groups]

  @jax.jit
  def run(state, key):
    env_state = env.reset(key)
    obs = jax.vmap(lambda yaw: jax.vmap(
        lambda xy: env.obs_at(env_state, xy, yaw))(grid))(yaws)  # [H, G, O]
    lam = jax.vmap(lambda o: lam_fn(state, o))(obs).mean(0)  # [G]
    return lam.reshape(resolution, resolution), env.objects(env_state.pipeline_state,
                                                            env_state.info)

  def compute(state, key) -> dict[str, Any]:
    lam, groups = jax.device_get(run(state, key))
    return {
        "xs": np.asarray(xs), "ys": np.asarray(xs), "lam": lam,
        "hazards": groups.get("hazards", np.zeros((0, 2))),
        "hazard_radius": float(env.group("hazards").size) if "hazards" in names else 0.0,
        "goal": groups["goal"][0] if "goal" in names else np.full(2, np.nan),
        "objects": groups,
    }

  return compute


def plot(data: dict[str, np.ndarray], path: pathlib.Path, title: str) -> pathlib.Path:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(5.5, 4.8))
  ext = (data["xs"][0], data["xs"][-1], data["ys"][0], data["ys"][-1])
  im = ax.imshow(data["lam"], origin="lower", extent=ext, cmap="viridis")
  fig.colorbar(im, ax=ax, label="lambda(s), mean over headings")
  for i, xy in enumerate(data["hazards"]):
    ax.add_patch(plt.Circle(xy, data["hazard_radius"], fill=False, color="red", lw=1.5,
                            label="hazards" if i == 0 else None))
  for name, xys in data["objects"].items():
    if name not in ("hazards", "goal"):
      ax.scatter(xys[:, 0], xys[:, 1], marker="s", s=20, color="cyan", label=name)
  if np.isfinite(data["goal"]).all():
    ax.scatter(*data["goal"], marker="*", s=150, color="lime", edgecolor="k", label="goal")
  ax.set_title(title, fontsize=9)
  ax.set_xlabel("x (m)")
  ax.set_ylabel("y (m)")
  ax.legend(fontsize=7, loc="upper right")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def plot_run(run_dir: pathlib.Path, out_dir: pathlib.Path, seed: int = 0) -> list[pathlib.Path]:
  """lambda_map_limit{d}.png per cost limit (and grid cell of a sweep:
  lambda_map_limit{d}_{setting}{value}...png; seed 0's latest checkpoint) of a
  run of a state-wise algorithm (`algorithms.is_statewise`) on an env that `supports`;
  [] for any other run."""
  import jax

  from experiments import rundir
  from experiments.checkpoint import CheckpointStore

  spec = rundir.read_spec(run_dir)
  from jaxcrl import algorithms
  algo = spec["config"].get("algo")
  if algo not in algorithms.ALGOS or not algorithms.is_statewise(algo):
    return []
  built = rundir.build(spec)
  if not supports(built.env) or not (run_dir / rundir.CHECKPOINT_DIR).is_dir():
    return []
  store = CheckpointStore(run_dir / rundir.CHECKPOINT_DIR, max_to_keep=None)
  steps = store.steps()
  if not steps:
    return []
  state = store.restore(steps[-1], **rundir.restore_args(built))
  store.close()
  out_dir.mkdir(parents=True, exist_ok=True)
  written = []
  compute = make_compute(built.env, built.config)
  for j, m in enumerate(rundir.run_members(spec)):
    if m.seed != 0:
      continue
    member = jax.tree.map(lambda x: x[j], state)
    data = compute(member, jax.random.key(seed))
    parts = (f"limit {m.cost_limit:g}", m.cell_label, f"update {steps[-1]}")
    title = f"{run_dir.name}: {spec['env']} {algo}, " + ", ".join(filter(None, parts))
    written.append(plot(data, out_dir / f"lambda_map_limit{m.cost_limit:g}{m.cell_suffix}.png",
                        title))
  return written
