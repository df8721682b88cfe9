"""Top-down replays of navigation rollouts that open anywhere: one self-contained HTML page
(inline script and data, nothing fetched) and a GIF.

Replays read the env only through its physics-independent accessors (`groups`, `extents`,
`robot_geoms`, `backend`, `agent_pose`, `object_poses`), so every backend renders the same way.

  states = rollout(...)                       # one env, leading time axis [T, ...]
  replay = frames(env, states)                # numpy arrays, no JAX from here on
  pathlib.Path("episode.html").write_text(replay_html(replay, title="PointGoal1"))
  replay_gif(replay, "episode.gif")

World coordinates: x right, y up (metres); yaw counter-clockwise from +x.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import pathlib
from typing import Any

import numpy as np

from envs.world import Geom

# Safety-Gym's robot colours: the body and the parts that show its heading (arrow, bumpers).
ROBOT_RGBA = (0.7412, 0.0431, 0.1843, 1.0)
ROBOT_ACCENT_RGBA = (0.0039, 0.1529, 0.3961, 1.0)
COST_RGB = (1.0, 0.0, 0.0)  # costly path steps; no group is red, the robot is darker
PATH_RGB = (0.35, 0.45, 0.55)
VIEW_MARGIN = 0.15  # metres shown around the arena and everything drawn


@dataclasses.dataclass(frozen=True, eq=False)  # numpy fields: no elementwise ==
class Track:
  """One object group over a rollout.

  Attributes:
    name, kind ('site', 'free', 'fixed', 'mocap'), size: as in `envs.groups.Group`.
    rgba: (r, g, b, a) in [0, 1].
    footprint: `Geom`s of one object in its body frame (empty for a 'site' disk).
    xy: [T, count, 2] positions; yaw: [T, count] headings.
  """

  name: str
  kind: str
  size: float
  rgba: tuple[float, float, float, float]
  footprint: tuple[Geom, ...]
  xy: np.ndarray
  yaw: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class Replay:
  """A rollout of ONE navigation env as numpy arrays (T frames, one per env step).

  Attributes:
    extents: arena half-width (m).
    backend: the physics backend that produced it ('planar', 'mjx').
    robot_geoms: the robot's `Geom`s in its body frame; the first is drawn in ROBOT_RGBA,
      the rest (heading parts) in ROBOT_ACCENT_RGBA.
    robot_xy: [T, 2]; robot_yaw: [T].
    groups: a `Track` per object group, in the env's group order.
    reward, cost: [T] of each step; ret, cost_sum: [T] cumulative within the episode.
    cost_terms: {'cost_<key>': [T]} per cost source (metrics), 'cost_sum' excluded.
    done: [T] 1.0 where an episode ended (the path is broken after it).
  """

  extents: float
  backend: str
  robot_geoms: tuple[Geom, ...]
  robot_xy: np.ndarray
  robot_yaw: np.ndarray
  groups: tuple[Track, ...]
  reward: np.ndarray
  cost: np.ndarray
  ret: np.ndarray
  cost_sum: np.ndarray
  cost_terms: dict[str, np.ndarray]
  done: np.ndarray

  @property
  def steps(self) -> int:
    return int(self.reward.shape[0])

  def view(self) -> float:
    """Half-width (m) of a square view centred on the origin that shows the arena, every
    object (site disks whole) and the whole robot path."""
    robot = float(np.abs(self.robot_xy).max(initial=0.0)) + _reach(self.robot_geoms)
    reach = [self.extents, robot]
    for g in self.groups:
      if g.xy.size:
        reach.append(float(np.abs(g.xy).max()) + (_reach(g.footprint) if g.footprint
                                                  else g.size))
    return max(reach) + VIEW_MARGIN


def _reach(geoms: tuple[Geom, ...]) -> float:
  """Radius (m) around the body origin that holds every geom."""
  return max((math.hypot(*g.pos) + math.hypot(*g.size) for g in geoms), default=0.0)


def _rgba(text: str) -> tuple[float, float, float, float]:
  values = [float(v) for v in text.split()]
  return tuple((values + [1.0] * 4)[:4])


def _episode_cumsum(x: np.ndarray, done: np.ndarray) -> np.ndarray:
  """[T] running sum of x [T] that restarts after every step with done [T] set."""
  out = np.empty_like(x)
  total = 0.0
  for t in range(x.shape[0]):
    total += x[t]
    out[t] = total
    if done[t]:
      total = 0.0
  return out


def frames(env: Any, states: Any) -> Replay:
  """The replay of a rollout of ONE navigation env.

  Args:
    env: the unwrapped navigation env (its accessors: `groups`, `extents`, `robot_geoms`,
      `backend`, `agent_pose`, `object_poses`).
    states: an `envs.base.State` with a leading time axis [T, ...] (no batch axis), e.g.
      the states a `jax.lax.scan` over `env.step` returns. States of the auto-resetting
      `envs.wrap` are accepted: where `done` is set such a state already holds the next
      episode's reset, so that frame keeps the previous frame's poses.

  Returns:
    A `Replay` of T frames.
  """
  import jax

  reward = np.asarray(states.reward, np.float64)
  if reward.ndim != 1:
    raise ValueError(f"frames needs ONE env's states with a leading time axis [T]; got "
                     f"reward of shape {reward.shape} (select one env of a batch first)")
  (robot_xy, robot_yaw), poses = jax.device_get(
      jax.vmap(lambda s: (env.agent_pose(s), env.object_poses(s)))(states))
  robot_xy, robot_yaw = np.array(robot_xy, np.float64), np.array(robot_yaw, np.float64)
  poses = {k: (np.array(xy, np.float64), np.array(yaw, np.float64))
           for k, (xy, yaw) in poses.items()}
  done = np.asarray(states.done, np.float64)
  if "final_obs" in states.info:  # envs.wrap: a done state is already the next reset
    for t in np.flatnonzero(done[1:]) + 1:
      robot_xy[t], robot_yaw[t] = robot_xy[t - 1], robot_yaw[t - 1]
      for xy, yaw in poses.values():
        xy[t], yaw[t] = xy[t - 1], yaw[t - 1]
  cost = np.asarray(states.cost, np.float64)
  groups = tuple(
      Track(name=g.name, kind=g.kind, size=float(g.size), rgba=_rgba(g.rgba),
            footprint=tuple(g.footprint), xy=poses[g.name][0], yaw=poses[g.name][1])
      for g in env.groups)
  return Replay(
      extents=float(env.extents), backend=str(env.backend),
      robot_geoms=tuple(env.robot_geoms), robot_xy=robot_xy, robot_yaw=robot_yaw,
      groups=groups, reward=reward, cost=cost,
      ret=_episode_cumsum(reward, done), cost_sum=_episode_cumsum(cost, done),
      cost_terms={k: np.asarray(v, np.float64) for k, v in states.metrics.items()
                  if k.startswith("cost_") and k != "cost_sum"},
      done=done)


# --- HTML -----------------------------------------------------------------------------------
def _geom_json(g: Geom) -> dict:
  return {"kind": g.kind, "size": list(g.size), "pos": list(g.pos), "yaw": g.yaw}


def _flat(x: np.ndarray, decimals: int = 4) -> list[float]:
  return np.round(np.asarray(x, np.float64), decimals).reshape(-1).tolist()


def _track_json(g: Track) -> dict:
  moves = bool(np.any(g.xy != g.xy[:1]) or np.any(g.yaw != g.yaw[:1])) if g.xy.size else False
  xy, yaw = (g.xy, g.yaw) if moves else (g.xy[:1], g.yaw[:1])
  return {"name": g.name, "kind": g.kind, "size": g.size, "rgba": list(g.rgba),
          "footprint": [_geom_json(f) for f in g.footprint], "count": int(g.xy.shape[1]),
          "moves": moves, "xy": _flat(xy), "yaw": _flat(yaw)}


def replay_data(replay: Replay, title: str = "") -> dict:
  """The JSON-able dict the page draws from (flat arrays, time-major)."""
  return {
      "title": title, "backend": replay.backend, "extents": replay.extents,
      "view": replay.view(), "steps": replay.steps,
      "robot": {"geoms": [_geom_json(g) for g in replay.robot_geoms],
                "rgba": list(ROBOT_RGBA), "accent": list(ROBOT_ACCENT_RGBA),
                "xy": _flat(replay.robot_xy), "yaw": _flat(replay.robot_yaw)},
      "groups": [_track_json(g) for g in replay.groups],
      "reward": _flat(replay.reward, 5), "cost": _flat(replay.cost, 5),
      "ret": _flat(replay.ret, 5), "cost_sum": _flat(replay.cost_sum, 5),
      "cost_terms": {k: _flat(v, 5) for k, v in replay.cost_terms.items()},
      "done": _flat(replay.done, 0),
      "colors": {"cost": list(COST_RGB), "path": list(PATH_RGB)},
  }


# Nothing may be fetched: the policy makes the browser refuse any URL, so a page that renders
# under it is self-contained.
_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="__CSP__">
<title>__TITLE__</title>
<style>
  body { margin: 8px; font: 13px/1.35 monospace; color: #222; background: #fafafa; }
  #status { white-space: pre; margin: 2px 0 4px; }
  #view { display: block; border: 1px solid #bbb; background: #eceae4; }
  #controls { margin-top: 4px; display: flex; gap: 6px; align-items: center; }
  #slider { width: 420px; }
  .sw { display: inline-block; width: 10px; height: 10px; margin: 0 3px 0 8px;
        border: 1px solid #666; vertical-align: middle; }
</style>
</head>
<body>
<div><b>__TITLE__</b> <span id="legend"></span></div>
<div id="status"></div>
<canvas id="view" width="600" height="600"></canvas>
<div id="controls">
  <button id="play" type="button">play</button>
  <input id="slider" type="range" min="0" value="0" step="1">
  <select id="speed">
    <option value="10">10 steps/s</option><option value="30" selected>30 steps/s</option>
    <option value="100">100 steps/s</option><option value="300">300 steps/s</option>
  </select>
</div>
<script type="application/json" id="replay-data">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("replay-data").textContent);
const cv = document.getElementById("view"), ctx = cv.getContext("2d");
const slider = document.getElementById("slider"), playBtn = document.getElementById("play");
const T = D.steps, S = cv.width / (2 * D.view);
const px = x => cv.width / 2 + x * S, py = y => cv.height / 2 - y * S;
const css = (c, a) => "rgba(" + Math.round(255 * c[0]) + "," + Math.round(255 * c[1]) + ","
    + Math.round(255 * c[2]) + "," + (a === undefined ? (c.length > 3 ? c[3] : 1) : a) + ")";
const dark = c => [0.6 * c[0], 0.6 * c[1], 0.6 * c[2]];
slider.max = Math.max(T - 1, 0);

function pose(g, t, i) {  // [x, y, yaw] of object i of group g at frame t
  const f = g.moves ? t : 0, k = f * g.count + i;
  return [g.xy[2 * k], g.xy[2 * k + 1], g.yaw[k]];
}

function shape(geom, x, y, yaw, fill, stroke) {  // one Geom of a body at pose (x, y, yaw)
  ctx.save();
  ctx.translate(px(x), py(y));
  ctx.rotate(-yaw);  // the canvas' y axis points down
  ctx.translate(geom.pos[0] * S, -geom.pos[1] * S);
  ctx.rotate(-geom.yaw);
  ctx.beginPath();
  if (geom.kind === "circle") ctx.arc(0, 0, geom.size[0] * S, 0, 2 * Math.PI);
  else ctx.rect(-geom.size[0] * S, -geom.size[1] * S, 2 * geom.size[0] * S, 2 * geom.size[1] * S);
  ctx.fillStyle = fill; ctx.fill();
  if (stroke) { ctx.lineWidth = 1; ctx.strokeStyle = stroke; ctx.stroke(); }
  ctx.restore();
}

function arena() {
  const e = D.extents;
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(px(-e), py(e), 2 * e * S, 2 * e * S);
  ctx.strokeStyle = "#e3e3e3"; ctx.lineWidth = 1; ctx.beginPath();
  for (let v = -Math.floor(D.view * 2) / 2; v <= D.view; v += 0.5) {
    ctx.moveTo(px(v), 0); ctx.lineTo(px(v), cv.height);
    ctx.moveTo(0, py(v)); ctx.lineTo(cv.width, py(v));
  }
  ctx.stroke();
  ctx.strokeStyle = "#777"; ctx.lineWidth = 2;
  ctx.strokeRect(px(-e), py(e), 2 * e * S, 2 * e * S);
}

function sites(t) {
  for (const g of D.groups) {
    if (g.kind !== "site") continue;
    for (let i = 0; i < g.count; i++) {
      const [x, y] = pose(g, t, i);
      ctx.beginPath(); ctx.arc(px(x), py(y), g.size * S, 0, 2 * Math.PI);
      ctx.fillStyle = css(g.rgba, Math.max(g.rgba[3], 0.15)); ctx.fill();
      ctx.lineWidth = 1; ctx.strokeStyle = css(dark(g.rgba), 0.8); ctx.stroke();
    }
  }
}

function path(t) {
  const xy = D.robot.xy;
  ctx.lineCap = "round";
  ctx.strokeStyle = "rgba(0,0,0,0.12)"; ctx.lineWidth = 1; ctx.beginPath();
  for (let s = 0; s < T; s++) {
    if (s === 0 || D.done[s - 1]) ctx.moveTo(px(xy[2 * s]), py(xy[2 * s + 1]));
    else ctx.lineTo(px(xy[2 * s]), py(xy[2 * s + 1]));
  }
  ctx.stroke();
  for (let s = 1; s <= t; s++) {
    if (D.done[s - 1]) continue;
    const costly = D.cost[s] > 0;
    ctx.strokeStyle = css(costly ? D.colors.cost : D.colors.path, costly ? 1 : 0.8);
    ctx.lineWidth = costly ? 4 : 2;
    ctx.beginPath();
    ctx.moveTo(px(xy[2 * s - 2]), py(xy[2 * s - 1]));
    ctx.lineTo(px(xy[2 * s]), py(xy[2 * s + 1]));
    ctx.stroke();
  }
  ctx.fillStyle = css(D.colors.cost);
  for (let s = 0; s <= t; s++) {
    if (D.cost[s] > 0) {
      ctx.beginPath(); ctx.arc(px(xy[2 * s]), py(xy[2 * s + 1]), 3, 0, 2 * Math.PI); ctx.fill();
    }
  }
}

function bodies(t) {
  for (const g of D.groups) {
    if (g.kind === "site") continue;
    for (let i = 0; i < g.count; i++) {
      const [x, y, yaw] = pose(g, t, i);
      for (const f of g.footprint) shape(f, x, y, yaw, css(g.rgba), css(dark(g.rgba)));
    }
  }
}

function robot(t) {
  const r = D.robot, x = r.xy[2 * t], y = r.xy[2 * t + 1], yaw = r.yaw[t];
  r.geoms.forEach((g, k) => shape(g, x, y, yaw, css(k === 0 ? r.rgba : r.accent), "#000"));
  const asymmetric = r.geoms.some(g => g.pos[0] !== 0 || g.pos[1] !== 0);
  if (!asymmetric) {  // nothing shows the heading: draw it
    const reach = r.geoms.length ? r.geoms[0].size[0] * 1.6 : 0.15;
    ctx.strokeStyle = css(r.accent); ctx.lineWidth = 3; ctx.beginPath();
    ctx.moveTo(px(x), py(y));
    ctx.lineTo(px(x + reach * Math.cos(yaw)), py(y + reach * Math.sin(yaw))); ctx.stroke();
  }
}

const fmt = (v, d) => " " + (v >= 0 ? "+" : "") + v.toFixed(d);
function status(t) {
  const terms = Object.keys(D.cost_terms).filter(k => D.cost_terms[k][t] > 0)
      .map(k => k.slice(5)).join(", ");
  document.getElementById("status").textContent =
      "step " + (t + 1) + "/" + T + "   return " + D.ret[t].toFixed(3) + "   cost "
      + D.cost_sum[t].toFixed(2) + "   reward" + fmt(D.reward[t], 4) + "   step cost "
      + D.cost[t].toFixed(2) + (terms ? " (" + terms + ")" : "") + "   [" + D.backend + "]";
}

let frame = 0;
function draw(t) {
  frame = Math.min(Math.max(t | 0, 0), Math.max(T - 1, 0));
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#eceae4"; ctx.fillRect(0, 0, cv.width, cv.height);
  arena();
  if (T === 0) return;
  sites(frame); path(frame); bodies(frame); robot(frame); status(frame);
  slider.value = frame;
}

const legend = [["robot", D.robot.rgba]].concat(D.groups.map(g => [g.name, g.rgba]))
    .concat([["cost", D.colors.cost]]);
for (const [name, c] of legend) {
  const sw = document.createElement("span"); sw.className = "sw";
  sw.style.background = css(c, Math.max(c.length > 3 ? c[3] : 1, 0.3));
  const label = document.createElement("span"); label.textContent = name;
  document.getElementById("legend").append(sw, label);
}

let timer = null;
function pause() { clearInterval(timer); timer = null; playBtn.textContent = "play"; }
function play() {
  if (frame >= T - 1) draw(0);
  playBtn.textContent = "pause";
  const rate = Number(document.getElementById("speed").value);
  timer = setInterval(() => { if (frame >= T - 1) pause(); else draw(frame + 1); }, 1000 / rate);
}
playBtn.onclick = () => (timer ? pause() : play());
document.getElementById("speed").onchange = () => { if (timer) { pause(); play(); } };
slider.oninput = () => { pause(); draw(Number(slider.value)); };
document.addEventListener("keydown", e => {
  if (e.key === " ") { e.preventDefault(); timer ? pause() : play(); }
  else if (e.key === "ArrowRight") { pause(); draw(frame + 1); }
  else if (e.key === "ArrowLeft") { pause(); draw(frame - 1); }
});
// `page.html#step=N` opens at step N (1-based); else the first step.
const m = /step=(\\d+)/.exec(location.hash);
draw(m ? Number(m[1]) - 1 : 0);
</script>
</body>
</html>
"""


def replay_html(replay: Replay, title: str = "replay") -> str:
  """ONE self-contained HTML page (inline script and JSON data, no URL of any kind) with a
  top-down canvas of the replay, play/pause, a step slider and a status line (step, return
  and cost so far). It draws the first step on load; `page.html#step=N` opens at step N."""
  data = json.dumps(replay_data(replay, title), separators=(",", ":"), allow_nan=False)
  # Inside <script>, "</" could close the element; "<\\/" is the same JSON string.
  data = data.replace("</", "<\\/")
  return (_PAGE.replace("__CSP__", _CSP).replace("__TITLE__", html.escape(title))
          .replace("__DATA__", data))


# --- GIF ------------------------------------------------------------------------------------
def _placed(geom: Geom, xy: np.ndarray, yaw: float) -> tuple[np.ndarray, float]:
  """(centre [2], world yaw) of a body-frame geom on a body at (xy [2], yaw [])."""
  c, s = math.cos(yaw), math.sin(yaw)
  x, y = geom.pos
  return np.array([xy[0] + c * x - s * y, xy[1] + s * x + c * y]), yaw + geom.yaw


def _box_corners(centre: np.ndarray, half: tuple[float, ...], yaw: float) -> np.ndarray:
  """[4, 2] corners of a box of half-sizes `half` at `centre` [2] turned by `yaw`."""
  c, s = math.cos(yaw), math.sin(yaw)
  local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * np.asarray(half)
  return centre + local @ np.array([[c, s], [-s, c]])


def _costly_segments(xy: np.ndarray, cost: np.ndarray) -> np.ndarray:
  """[N, 2] polyline of the path xy [t, 2] through every step with cost [t] > 0, each from
  the step before it; runs of such steps are joined, separate runs split by NaN rows."""
  rows, last = [], -2
  for s in np.flatnonzero(cost > 0):
    if s != last + 1:
      rows += [np.full(2, np.nan), xy[max(s - 1, 0)]]
    rows.append(xy[s])
    last = s
  return np.array(rows[1:]) if rows else np.zeros((0, 2))


def _frame_steps(steps: int, every: int | None, max_frames: int) -> list[int]:
  every = every or max(1, math.ceil(steps / max_frames))
  picked = list(range(0, steps, every))
  if picked and picked[-1] != steps - 1:
    picked.append(steps - 1)
  return picked


def replay_gif(replay: Replay, path: str | pathlib.Path, fps: int = 20,
               every: int | None = None, size: int = 320, max_frames: int = 100,
               title: str = "") -> pathlib.Path:
  """Writes an animated GIF of the top-down view (the page's drawing, simplified).

  Args:
    replay: from `frames`.
    path: the .gif to write.
    fps: frames per second of the GIF.
    every: draw every `every`-th step (and the last); default: at most `max_frames` frames.
    size: width and height in pixels.
    title: shown before the status line.

  Returns:
    The path written.
  """
  from matplotlib import patches
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  from PIL import Image

  if replay.steps == 0:
    raise ValueError("replay_gif needs a replay of at least one step")
  dpi = 100
  fig = Figure(figsize=(size / dpi, size / dpi), dpi=dpi, facecolor="#eceae4")
  FigureCanvasAgg(fig)
  ax = fig.add_axes((0.0, 0.0, 1.0, 0.93))
  view = replay.view()
  ax.set_xlim(-view, view)
  ax.set_ylim(-view, view)
  ax.set_aspect("equal")
  ax.axis("off")
  e = replay.extents
  ax.add_patch(patches.Rectangle((-e, -e), 2 * e, 2 * e, facecolor="white",
                                 edgecolor="#777777", linewidth=1))

  def dark(rgba):
    return (0.6 * rgba[0], 0.6 * rgba[1], 0.6 * rgba[2], 1.0)

  movers = []  # (update(t), ...) closures per drawn shape

  def add_geom(geom: Geom, rgba, edge, pose_at):
    if geom.kind == "circle":
      patch = patches.Circle((0, 0), geom.size[0], facecolor=rgba, edgecolor=edge, lw=0.5)
    else:
      patch = patches.Polygon(np.zeros((4, 2)), closed=True, facecolor=rgba, edgecolor=edge,
                              lw=0.5)
    ax.add_patch(patch)

    def update(t):
      centre, yaw = _placed(geom, *pose_at(t))
      if geom.kind == "circle":
        patch.set_center(centre)
      else:
        patch.set_xy(_box_corners(centre, geom.size, yaw))
    movers.append(update)

  for g in replay.groups:
    if g.kind == "site":
      for i in range(g.xy.shape[1]):
        add_geom(Geom("circle", (g.size,)), (*g.rgba[:3], max(g.rgba[3], 0.15)),
                 dark(g.rgba), lambda t, g=g, i=i: (g.xy[t, i], 0.0))
  xy = replay.robot_xy
  ax.plot(xy[:, 0], xy[:, 1], color=(0, 0, 0, 0.12), lw=0.6)
  path_line, = ax.plot([], [], color=PATH_RGB, lw=1.2)
  cost_line, = ax.plot([], [], color=COST_RGB, lw=2.5, marker="o", markersize=3,
                       solid_capstyle="round")
  for g in replay.groups:
    if g.kind != "site":
      for i in range(g.xy.shape[1]):
        for f in g.footprint:
          add_geom(f, g.rgba, dark(g.rgba), lambda t, g=g, i=i: (g.xy[t, i], g.yaw[t, i]))
  for k, f in enumerate(replay.robot_geoms):
    add_geom(f, ROBOT_RGBA if k == 0 else ROBOT_ACCENT_RGBA, "black",
             lambda t: (replay.robot_xy[t], replay.robot_yaw[t]))
  heading, = ax.plot([], [], color=ROBOT_ACCENT_RGBA, lw=2)
  show_heading = not any(g.pos != (0.0, 0.0) for g in replay.robot_geoms)
  text = fig.text(0.01, 0.965, "", fontsize=7, va="center", family="monospace")

  rgb = []
  for t in _frame_steps(replay.steps, every, max_frames):
    for update in movers:
      update(t)
    path_line.set_data(xy[:t + 1, 0], xy[:t + 1, 1])
    cost_line.set_data(*_costly_segments(xy[:t + 1], replay.cost[:t + 1]).T)
    if show_heading:
      reach = 1.6 * replay.robot_geoms[0].size[0] if replay.robot_geoms else 0.15
      yaw = replay.robot_yaw[t]
      heading.set_data([xy[t, 0], xy[t, 0] + reach * math.cos(yaw)],
                       [xy[t, 1], xy[t, 1] + reach * math.sin(yaw)])
    text.set_text(f"{title + '  ' if title else ''}step {t + 1}/{replay.steps}  "
                  f"return {replay.ret[t]:.2f}  cost {replay.cost_sum[t]:.1f}")
    fig.canvas.draw()
    rgb.append(Image.fromarray(np.array(fig.canvas.buffer_rgba())[..., :3]))
  # One palette for all frames, no dithering: unchanged pixels stay identical, so Pillow
  # stores each frame as its difference from the last. The last frame has every colour
  # (its path holds all the costly steps).
  palette = rgb[-1].quantize(colors=64, method=Image.Quantize.MEDIANCUT)
  images = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in rgb]
  path = pathlib.Path(path)
  images[0].save(path, save_all=True, append_images=images[1:], loop=0,
                 duration=max(1, round(1000 / fps)), optimize=False)
  return path
