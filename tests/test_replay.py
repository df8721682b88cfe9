"""Top-down replays (envs.replay): frames from a rollout, the self-contained page checked in a
real headless Chromium, the GIF, and eval's --render / --render-3d choices."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import envs
from envs import obstacles, replay
from envs.base import State
from envs.groups import Group
from envs.world import Geom
from experiments import eval as eval_cli
from experiments.cli import UsageError

T = 40
POINT_GEOMS = (Geom("circle", (0.1,)), Geom("box", (0.05, 0.05), pos=(0.1, 0.0)))


class FakeEnv:
  """The replay accessors over a synthetic State: pipeline_state = {'robot': [3],
  group name: [count, 3]} as (x, y, yaw)."""

  backend = "fake"
  extents = 1.5
  robot_geoms = POINT_GEOMS
  groups = (Group("goal", 1, keepout=0.3, size=0.3, rgba="0 1 0 0.25"),
            obstacles.hazards(3), Group("vases", 2, keepout=0.15, kind="free", size=0.1,
                                        rgba="0 1 1 1"),
            obstacles.pillars(1), obstacles.gremlins(1), obstacles.push_box("Point"))

  def agent_pose(self, state):
    q = state.pipeline_state["robot"]
    return q[:2], q[2]

  def object_poses(self, state):
    return {g.name: (state.pipeline_state[g.name][:, :2], state.pipeline_state[g.name][:, 2])
            for g in self.groups}


def synthetic_states(steps: int = T, auto_reset: bool = False) -> State:
  """[steps] States: the robot drives a circle of radius 0.8 from (0.8, 0) through a hazard at
  (0, 0.8);
  the steps within that hazard cost 1; the gremlin circles, the box turns."""
  t = jnp.arange(steps, dtype=jnp.float32)
  angle = 2 * jnp.pi * t / steps
  robot = jnp.stack([0.8 * jnp.cos(angle), 0.8 * jnp.sin(angle), angle + jnp.pi / 2], -1)
  static = lambda rows: jnp.tile(jnp.asarray(rows, jnp.float32)[None], (steps, 1, 1))
  ps = {"robot": robot,
        "goal": static([[-0.6, 0.6, 0.0]]),
        "hazards": static([[0.0, 0.8, 0.0], [-1.0, -1.0, 0.0], [0.0, -1.2, 0.0]]),
        "vases": static([[0.3, 0.3, 0.2], [-0.3, 0.2, 0.0]]),
        "pillars": static([[1.2, 1.2, 0.0]]),
        "gremlins": jnp.stack([-1.0 + 0.35 * jnp.sin(t / 5), 0.5 + 0.35 * jnp.cos(t / 5),
                               0 * t], -1)[:, None],
        "push_box": jnp.stack([0 * t, 0 * t - 0.3, t / 20], -1)[:, None]}
  hazard = (jnp.linalg.norm(robot[:, :2] - jnp.array([0.0, 0.8]), axis=-1) <= 0.2)
  cost = hazard.astype(jnp.float32)
  done = jnp.zeros(steps).at[-1].set(1.0)
  info = {"final_obs": jnp.zeros((steps, 3))} if auto_reset else {}
  return State(pipeline_state=ps, obs=jnp.zeros((steps, 3)), reward=0.01 * jnp.ones(steps),
               done=done, metrics={"cost_hazards": cost, "cost_sum": cost}, info=info,
               cost=cost)


@pytest.fixture(scope="module")
def fake_replay() -> replay.Replay:
  return replay.frames(FakeEnv(), synthetic_states())


def _page_data(page: str) -> dict:
  match = re.search(r'<script type="application/json" id="replay-data">(.*?)</script>', page,
                    re.S)
  assert match, "the page embeds no replay data"
  return json.loads(match.group(1))


def test_frames_shapes_and_sums(fake_replay):
  r = fake_replay
  assert r.steps == T and r.robot_xy.shape == (T, 2) and r.robot_yaw.shape == (T,)
  assert [g.name for g in r.groups] == [g.name for g in FakeEnv.groups]
  by_name = {g.name: g for g in r.groups}
  assert by_name["hazards"].xy.shape == (T, 3, 2) and by_name["vases"].yaw.shape == (T, 2)
  assert by_name["goal"].rgba == (0.0, 1.0, 0.0, 0.25)
  assert len(by_name["push_box"].footprint) == 5  # main box and four corners
  np.testing.assert_allclose(r.ret, 0.01 * np.arange(1, T + 1), rtol=1e-6)
  assert 0 < r.cost_sum[-1] == r.cost.sum() < T
  assert set(r.cost_terms) == {"cost_hazards"}
  assert r.view() >= r.extents + replay.VIEW_MARGIN


def test_frames_rejects_a_batch():
  batched = jax.tree.map(lambda x: x[:, None], synthetic_states())
  with pytest.raises(ValueError, match="ONE env"):
    replay.frames(FakeEnv(), batched)


def test_auto_reset_frame_keeps_the_episode_pose():
  """envs.wrap's done state already holds the next reset: its frame repeats the last pose."""
  states = synthetic_states(auto_reset=True)
  r = replay.frames(FakeEnv(), states)
  np.testing.assert_array_equal(r.robot_xy[-1], r.robot_xy[-2])
  assert not np.array_equal(r.robot_xy[-2], r.robot_xy[-3])
  plain = replay.frames(FakeEnv(), synthetic_states())
  np.testing.assert_allclose(plain.robot_xy[-1], np.asarray(states.pipeline_state["robot"])[-1, :2])


def test_page_is_self_contained(fake_replay):
  page = replay.replay_html(fake_replay, title="Fake</script><b>")
  for needle in ("http://", "https://", "//cdn", "url(", "@import", "<link", "<img",
                 "<iframe"):
    assert needle not in page, needle
  assert not re.search(r"\bsrc\s*=", page), "the page loads a script or image by URL"
  assert page.count("<canvas") == 1
  assert "default-src 'none'" in page  # the browser itself refuses any fetch
  assert "Fake</" not in page and "Fake&lt;/script&gt;&lt;b&gt;" in page  # escaped
  data = _page_data(page)
  assert data["steps"] == T and data["title"] == "Fake</script><b>"
  np.testing.assert_allclose(np.reshape(data["robot"]["xy"], (T, 2)), fake_replay.robot_xy,
                             atol=1e-4)
  groups = {g["name"]: g for g in data["groups"]}
  assert not groups["hazards"]["moves"] and len(groups["hazards"]["xy"]) == 3 * 2
  assert groups["gremlins"]["moves"] and len(groups["gremlins"]["xy"]) == T * 2
  assert data["cost"] == np.round(fake_replay.cost, 5).tolist()


def _chromium() -> str:
  for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
    if shutil.which(name):
      return shutil.which(name)
  pytest.fail("no headless browser for the replay page: install Chromium "
              "(Debian/Ubuntu: apt-get install -y chromium), or see .ci/run")


def _screenshot(page_path, shot_path, fragment: str = "") -> np.ndarray:
  """[H, W, 3] uint8 of Chromium's headless screenshot of the page, network off."""
  cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--disable-extensions", "--disable-background-networking",
         # any host name fails to resolve: a page that needed the network would show blank
         "--host-resolver-rules=MAP * ~NOTFOUND",
         f"--user-data-dir={shot_path.parent / 'profile'}",
         f"--screenshot={shot_path}", "--window-size=800,800",
         page_path.resolve().as_uri() + fragment]
  done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
  assert shot_path.exists(), (f"chromium wrote no screenshot (rc {done.returncode}): "
                              f"{done.stderr[-2000:]}")
  return np.asarray(Image.open(shot_path).convert("RGB"))


def _near(img: np.ndarray, rgb, tol: float = 12.0) -> np.ndarray:
  """[H, W] bool: pixels within `tol` (0..255 units, per channel) of rgb in [0, 1]."""
  target = 255 * np.asarray(rgb[:3])
  return np.all(np.abs(img.astype(np.float64) - target) <= tol, axis=-1)


def _canvas(img: np.ndarray) -> np.ndarray:
  """The canvas' square of a screenshot, found by its background colour (nothing else on
  the page has it; the legend's swatches, outside, would count as scene pixels)."""
  ys, xs = np.nonzero(_near(img, (236 / 255, 234 / 255, 228 / 255), tol=0))
  assert ys.size > 1000, "no canvas in the screenshot"
  top, left, size = ys.min(), xs.min(), xs.max() - xs.min() + 1
  return img[top:top + size, left:left + size]


def _check_scene(canvas: np.ndarray, expect_cost: bool | None):
  colours = np.unique(canvas.reshape(-1, 3), axis=0).shape[0]
  assert colours > 50, f"canvas looks blank: {colours} distinct colours"
  robot = _near(canvas, replay.ROBOT_RGBA)
  # The Point's body disk is r 0.1 m at about 150 px/m: ~700 px.
  assert robot.sum() > 200, f"robot colour on {robot.sum()} pixels only"
  assert _near(canvas, replay.ROBOT_ACCENT_RGBA).sum() > 20, "no heading arrow"
  if expect_cost is not None:
    cost = _near(canvas, replay.COST_RGB, tol=20).sum()
    assert (cost > 50) == expect_cost, f"{cost} cost-coloured pixels"


def _robot_xy(canvas: np.ndarray, view: float) -> np.ndarray:
  """[2] world position (m) of the centroid of the robot-coloured pixels."""
  ys, xs = np.nonzero(_near(canvas, replay.ROBOT_RGBA))
  size = canvas.shape[0]
  px_per_m = size / (2 * view)
  return np.array([(xs.mean() - size / 2) / px_per_m, (size / 2 - ys.mean()) / px_per_m])


def test_page_renders_in_headless_chromium(tmp_path):
  """A real browser with no network draws the scene on load: not blank, robot visible where
  step 1 has it, and with `#step=N` the costly path steps are highlighted."""
  r = replay.frames(FakeEnv(), synthetic_states())
  page = tmp_path / "replay.html"
  page.write_text(replay.replay_html(r, title="FakeGoal"))
  first = _canvas(_screenshot(page, tmp_path / "first.png"))
  _check_scene(first, expect_cost=False)
  np.testing.assert_allclose(_robot_xy(first, r.view()), r.robot_xy[0], atol=0.03)
  last = _canvas(_screenshot(page, tmp_path / "last.png", f"#step={T}"))
  _check_scene(last, expect_cost=True)
  np.testing.assert_allclose(_robot_xy(last, r.view()), r.robot_xy[-1], atol=0.03)


def test_gif_frames_and_size(fake_replay, tmp_path):
  path = replay.replay_gif(fake_replay, tmp_path / "replay.gif", fps=10, every=5, size=240)
  with Image.open(path) as gif:
    assert gif.size == (240, 240)
    assert gif.n_frames == T // 5 + 1  # steps 0, 5, ..., 35 and the last (39)
    gif.seek(gif.n_frames - 1)
    last = np.asarray(gif.convert("RGB"))
  assert _near(last, replay.ROBOT_RGBA, tol=20).sum() > 20
  assert _near(last, replay.COST_RGB, tol=30).sum() > 5


@pytest.fixture(scope="module")
def goal1():
  env = envs.make("PointGoal1")

  @jax.jit
  def rollout(key):
    def step(s, k):
      s = env.step(s, jax.random.uniform(k, (2,), minval=-1.0, maxval=1.0))
      return s, s
    _, states = jax.lax.scan(step, env.reset(key), jax.random.split(key, 20))
    return states

  return env, rollout(jax.random.key(0))


def test_frames_of_a_real_rollout(goal1, tmp_path):
  env, states = goal1
  r = replay.frames(env, states)
  assert r.steps == 20 and r.backend == env.backend and r.extents == env.extents
  xy, yaw = env.agent_pose(jax.tree.map(lambda x: x[7], states))
  np.testing.assert_allclose(r.robot_xy[7], xy, atol=1e-6)
  np.testing.assert_allclose(r.robot_yaw[7], yaw, atol=1e-6)
  poses = env.object_poses(jax.tree.map(lambda x: x[7], states))
  for track in r.groups:
    np.testing.assert_allclose(track.xy[7], poses[track.name][0], atol=1e-6)
  np.testing.assert_allclose(r.ret[-1], np.sum(states.reward), rtol=1e-5)
  page = replay.replay_html(r, title="PointGoal1")
  assert {g["name"] for g in _page_data(page)["groups"]} == {g.name for g in env.groups}
  with Image.open(replay.replay_gif(r, tmp_path / "g.gif", every=4)) as gif:
    assert gif.n_frames == 6  # steps 0, 4, ..., 16 and the last (19)


def test_real_rollout_page_in_chromium(goal1, tmp_path):
  env, states = goal1
  r = replay.frames(env, states)
  page = tmp_path / "goal1.html"
  page.write_text(replay.replay_html(r, title="PointGoal1"))
  canvas = _canvas(_screenshot(page, tmp_path / "goal1.png"))
  _check_scene(canvas, expect_cost=None)
  np.testing.assert_allclose(_robot_xy(canvas, r.view()), r.robot_xy[0], atol=0.03)


def test_eval_render_choices(goal1, tmp_path):
  """--render writes the page and a GIF beside it for a navigation env; --render-3d needs mjx
  or another Brax physics env."""
  env, states = goal1
  write = eval_cli._renderer(env, "PointGoal1")
  out = tmp_path / "ep.html"
  assert write(jax.tree.map(lambda x: x[:, None], states), out) == [out, out.with_suffix(".gif")]
  assert _page_data(out.read_text())["steps"] == 20 and out.with_suffix(".gif").stat().st_size
  probe = envs.make("ProbeCostlyBandit")
  with pytest.raises(UsageError, match="no physics system to draw"):
    eval_cli._renderer(probe, "ProbeCostlyBandit")
  with pytest.raises(UsageError, match="--render-3d: env 'ProbeCostlyBandit' has no physics"):
    eval_cli._renderer(probe, "ProbeCostlyBandit", three_d=True)
  assert env.backend == "planar"
  with pytest.raises(UsageError, match="--render-3d needs the mjx backend"):
    eval_cli._renderer(env, "PointGoal1", three_d=True)
