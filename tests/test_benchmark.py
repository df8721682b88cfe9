"""`experiments.benchmark` (suites, suite folders, resume) and `experiments.results` (the
page). Fast tier: no training (a synthetic folder of fake runs for the page). Slow tier:
the smoke suite end to end on tiny settings, SIGTERM-ed and resumed."""

import csv
import json
import os
import pathlib
import signal

import numpy as np
import pytest

from experiments import benchmark, logs, results, rundir, run
from jaxcrl import algorithms


def _listing(root: pathlib.Path):
  """Every path under root with its size and mtime: proof that nothing was touched."""
  return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                for p in root.rglob("*"))


TINY = """\
name = "{name}"
version = {version}
description = "a test suite"
tasks = ["PointGoal1", "CarGoal1"]
algorithms = ["ppo", "ppo_lag"]
seeds = 2
cost_limits = [25.0]
log_every = 2
checkpoint_every = 2

[settings]
num_timesteps = {steps}
num_envs = 4
unroll_length = 25
num_minibatches = 2
num_epochs = 1

[settings.ppo_lag]
lagrange_lr = 0.01
"""


def _suite_file(tmp_path: pathlib.Path, name: str = "tiny", version: int = 1,
                steps: int = 2000, text: str | None = None) -> pathlib.Path:
  path = tmp_path / f"{name}.toml"
  path.write_text(text if text is not None else TINY.format(name=name, version=version,
                                                             steps=steps))
  return path


def _made_folder(tmp_path: pathlib.Path, suite_path: pathlib.Path) -> pathlib.Path:
  """A suite folder as `benchmark SUITE --out` starts it (its suite.json), no runs yet."""
  suite = benchmark.load_suite(str(suite_path))
  folder = tmp_path / "made"
  folder.mkdir()
  manifest = benchmark.new_manifest(suite, folder)
  manifest["sessions"].append({"started": "t", "commit": "abc1234", "command": "cmd"})
  benchmark.write_manifest(folder, manifest)
  return folder


# ---- suites --------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(benchmark.known_suites()))
def test_suite_files_parse_and_every_run_validates(name, tmp_path):
  suite = benchmark.load_suite(name)
  plans = benchmark.plan(suite)
  assert plans and all(p.algo in algorithms.ALGORITHMS for p in plans)
  assert len(plans) == len(suite.definition["tasks"]) * len(suite.definition["algorithms"])
  # Through experiments.run's own validation (every algorithm on the first task, every
  # task with the first algorithm: the rest is their product); nothing is written.
  d = suite.definition
  some = [p for p in plans if p.task == d["tasks"][0] or p.algo == d["algorithms"][0]]
  prepared = benchmark.prepare(tmp_path / "folder", some, {}, run.build_parser())
  assert [p.state for p in prepared] == ["new"] * len(some)
  assert not any(tmp_path.iterdir())
  for p in prepared:
    assert p.spec["config"]["algo"] == p.plan.algo and p.spec["env"] == p.plan.task
    assert p.spec["seeds"] == suite.definition["seeds"]


def test_the_suites_say_what_the_issue_asks():
  on_policy = [a for a in algorithms.ALGORITHMS if not algorithms.is_off_policy(a)]
  sg = benchmark.load_suite("safety-gym").definition
  assert sg["algorithms"] == on_policy and sg["selector"] == "on-policy"
  assert sg["tasks"] == [f"{robot}{task}1" for robot in ("Point", "Car")
                         for task in ("Goal", "Button", "Push", "Circle")]
  assert (sg["seeds"], sg["cost_limits"], sg["settings"]["num_timesteps"]) == (3, [25.0],
                                                                                10_000_000)
  levels = benchmark.load_suite("levels").definition
  assert levels["tasks"] == [t.replace("1", "2") for t in sg["tasks"]]
  assert {k: v for k, v in levels.items() if k not in ("name", "tasks", "description")} == {
      k: v for k, v in sg.items() if k not in ("name", "tasks", "description")}
  smoke = benchmark.load_suite("smoke").definition
  assert (len(smoke["tasks"]), len(smoke["algorithms"]), smoke["seeds"]) == (2, 3, 1)
  headline = benchmark.load_suite("headline").definition
  assert headline["tasks"] == sg["tasks"][:4] and headline["algorithms"] == [
      "ppo_lag", "ppo_statewise_auto"]
  assert {k: v for k, v in headline.items() if k in ("seeds", "cost_limits", "settings")} == {
      k: v for k, v in sg.items() if k in ("seeds", "cost_limits", "settings")}


def test_settings_tables_override_in_order(tmp_path):
  text = TINY.format(name="tiny", version=1, steps=2000) + (
      '[settings.on-policy]\nnum_envs = 8\n[settings.ppo]\nnum_envs = 16\n')
  suite = benchmark.load_suite(str(_suite_file(tmp_path, text=text)))
  assert benchmark.settings_for(suite.definition, "ppo")["num_envs"] == 16
  assert benchmark.settings_for(suite.definition, "ppo_lag")["num_envs"] == 8
  assert benchmark.settings_for(suite.definition, "ppo_lag")["lagrange_lr"] == 0.01
  argv = benchmark.plan(suite)[1].argv
  assert argv[argv.index("--lagrange-lr") + 1] == "0.01"


BAD_SUITES = {  # case: (text in TINY, replaced by, what the error says)
    "another algorithm's setting": ("num_epochs = 1\n", "num_epochs = 1\nclip_eps = 0.1\n"
                                    "lagrange_lr = 0.1\n",
                                    "ppo: lagrange_lr is a setting of"),
    "a bad value": ("num_envs = 4", "num_envs = -4", "num_envs"),
    "an unknown algorithm": ('["ppo", "ppo_lag"]', '["ppo", "ppo_lagg"]',
                             "unknown algorithm 'ppo_lagg' (did you mean 'ppo_lag'?)"),
    "an unknown task": ('"CarGoal1"]', '"CarGoal7"]', "unknown environment 'CarGoal7'"),
    "an unknown key": ("seeds = 2", "seeds = 2\nsteps = 5", "unknown key(s) ['steps']"),
    "a table for nobody": ("[settings.ppo_lag]", "[settings.ppo_lagg]",
                           "[settings.ppo_lagg] names no group or algorithm"),
    "a name not the file's": ('name = "tiny"', 'name = "other"', "must be the file's name"),
}


@pytest.mark.parametrize("case", sorted(BAD_SUITES))
def test_bad_suite_exit_2_writes_nothing(case, tmp_path, capsys):
  old, new, needle = BAD_SUITES[case]
  text = TINY.format(name="tiny", version=1, steps=2000)
  assert old in text
  path = _suite_file(tmp_path, text=text.replace(old, new))
  before = _listing(tmp_path)
  assert benchmark.main([str(path), "--out", str(tmp_path / "out")]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
  assert _listing(tmp_path) == before


def test_unknown_suite_exit_2_with_the_closest_name(tmp_path, capsys):
  assert benchmark.main(["smok", "--out", str(tmp_path / "out")]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: unknown suite 'smok' (did you mean 'smoke'?)"), err
  assert not any(tmp_path.iterdir())


def test_resume_of_another_suite_or_version_exit_2_touching_nothing(tmp_path, capsys):
  folder = _made_folder(tmp_path, _suite_file(tmp_path))
  other = _suite_file(tmp_path, name="other")
  before = _listing(tmp_path)
  cases = [
      ([str(other), "--resume", str(folder)],
       "holds suite 'tiny' (version 1), not 'other'"),
      (["smoke", "--resume", str(folder)], "not 'smoke'"),
  ]
  for argv, needle in cases:
    assert benchmark.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err, err
  assert _listing(tmp_path) == before
  # The same file at another version, then changed without a version bump.
  for version, steps, needle in ((2, 2000, "made by version 1 of suite 'tiny' (commit "
                                  "abc1234)"),
                                 (1, 4000, "its definition has changed since (settings)")):
    path = _suite_file(tmp_path, version=version, steps=steps)
    before = _listing(tmp_path)
    assert benchmark.main([str(path), "--resume", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err, err
    assert _listing(tmp_path) == before


def test_out_and_resume_folders_exit_2(tmp_path, capsys):
  path = _suite_file(tmp_path)
  folder = _made_folder(tmp_path, path)
  (tmp_path / "full").mkdir()
  (tmp_path / "full" / "x").write_text("x")
  before = _listing(tmp_path)
  for argv, needle in (
      ([str(path), "--out", str(folder)], "already holds a suite"),
      ([str(path), "--out", str(tmp_path / "full")], "not an empty folder"),
      ([str(path), "--resume", str(tmp_path / "full")], "not a benchmark folder"),
      ([str(path), "--resume", str(folder), "--out", str(tmp_path / "o")], "not both")):
    assert benchmark.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err, err
  assert _listing(tmp_path) == before


def test_help(capsys):
  assert benchmark.main(["--help"]) == 0
  out = capsys.readouterr().out
  assert "--resume DIR" in out and "smoke" in out


def test_suite_loop_records_sessions_stops_and_resumes(tmp_path, monkeypatch, capsys):
  """The loop over runs, with run.train_and_report faked (no training): the bar's steps,
  suite.json's sessions and wall times, a SIGTERM-ed run (143) and the resume."""
  path = _suite_file(tmp_path)
  folder = tmp_path / "suite"
  calls, steps = [], []
  real_bar = benchmark._SuiteBar.advance
  monkeypatch.setattr(benchmark._SuiteBar, "advance",
                      lambda self, n: (steps.append(n), real_bar(self, n)))

  def fake(args, run_dir, spec, resuming, built, on_chunk=None):
    """Leaves what a run leaves (config.json, checkpoints/; summary.json once finished)."""
    calls.append((run_dir.name, resuming))
    (run_dir / rundir.CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
    rundir.write_spec(run_dir, spec)
    if len(calls) == 2:
      return 143
    on_chunk(800)  # one chunk: 2 members x 400 env steps
    (run_dir / rundir.SUMMARY_FILE).write_text(json.dumps({"finished": True}))
    return 0

  monkeypatch.setattr(run, "train_and_report", fake)
  monkeypatch.setattr(rundir, "build", lambda spec: None)  # the fake trains nothing
  pages = []
  monkeypatch.setattr(results, "write_results", lambda folder: pages.append(folder) or folder)
  assert benchmark.main([str(path), "--out", str(folder), "--no-progress"]) == 143
  assert f"--resume {folder}" in capsys.readouterr().err
  assert not pages
  manifest = benchmark.read_manifest(folder)
  assert [r.get("sessions", 0) for r in manifest["runs"].values()] == [1, 1, 0, 0]
  assert calls == [("PointGoal1_ppo", False), ("PointGoal1_ppo_lag", False)]
  # 2 seeds x 2000 steps (20 updates of 4 envs x 25) per run: the chunk, then the rest of
  # the finished run; nothing for the interrupted one.
  assert steps == [800, 3200]
  assert benchmark.main([str(path), "--resume", str(folder), "--no-progress"]) == 0
  assert calls[2:] == [("PointGoal1_ppo_lag", True), ("CarGoal1_ppo", False),
                       ("CarGoal1_ppo_lag", False)]
  manifest = benchmark.read_manifest(folder)
  assert [r["sessions"] for r in manifest["runs"].values()] == [1, 2, 1, 1]
  assert len(manifest["sessions"]) == 2 and manifest["sessions"][1]["command"].endswith(
      f"--resume {folder} --no-progress")
  assert pages == [folder]  # the page is written once the suite is through


# ---- the page, on fake runs ----------------------------------------------------------

COLUMNS = ("update", "episode/count", "episode/cost", "episode/return", "train/env_steps",
           "train/cumulative_cost")


def _fake_run(folder: pathlib.Path, name: str, task: str, algo: str,
              curves: list[dict[str, list[float]]], finished: bool = True,
              nonfinite_seed: int | None = None) -> None:
  """A run folder as experiments.run leaves it: config.json, one CSV per seed with 20
  updates of 100 env steps each (episodes end at every update), summary.json if finished."""
  run_dir = folder / benchmark.RUNS_DIR / name
  (run_dir / "metrics").mkdir(parents=True)
  spec = {"env": task, "seed": 0, "seeds": len(curves), "cost_limits": [25.0],
          "config": {"algo": algo, "num_timesteps": 2000, "num_envs": 4,
                     "unroll_length": 25, "action_repeat": 1}}
  rundir.write_spec(run_dir, spec)
  for s, curve in enumerate(curves):
    with open(run_dir / "metrics" / f"seed{s}_limit25.csv", "w", newline="") as f:
      w = csv.writer(f)
      w.writerow(COLUMNS)
      for u in range(len(curve["return"])):
        cost = np.nan if s == nonfinite_seed and u >= 18 else curve["cost"][u]
        w.writerow([u + 1, 4, cost, curve["return"][u], (u + 1) * 100,
                    curve["cumulative"][u]])
  if finished:
    (run_dir / rundir.SUMMARY_FILE).write_text(json.dumps({
        "finished": True, "members": [{}] * len(curves),
        "timing_last_session": {"wall_s": 99.0, "first_chunk_s": 20.0,
                                "steady_env_steps_per_s_per_member": 100.0}}))


def _curve(last_two_returns, last_two_costs, total_cost, length=20):
  """20 updates: zeros, then the last 2 (the final window: 10% of 20) as given."""
  return {"return": [0.0] * (length - 2) + list(last_two_returns),
          "cost": [0.0] * (length - 2) + list(last_two_costs),
          "cumulative": list(np.linspace(0, total_cost, length))}


@pytest.fixture(scope="module")
def page(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("page")
  folder = _made_folder(tmp, _suite_file(tmp))
  manifest = benchmark.read_manifest(folder)
  manifest["runs"]["PointGoal1_ppo_lag"]["wall_s"] = 125.0
  benchmark.write_manifest(folder, manifest)
  # seed 0: return (4 + 6) / 2 = 5, cost (20 + 30) / 2 = 25; seed 1: 9 and 35.
  _fake_run(folder, "PointGoal1_ppo_lag", "PointGoal1", "ppo_lag",
            [_curve((4, 6), (20, 30), 1000), _curve((8, 10), (30, 40), 3000)])
  _fake_run(folder, "PointGoal1_ppo", "PointGoal1", "ppo",
            [_curve((20, 22), (50, 54), 5000), _curve((24, 26), (56, 60), 7000)],
            nonfinite_seed=1)
  _fake_run(folder, "CarGoal1_ppo", "CarGoal1", "ppo",
            [_curve((1, 3), (10, 12), 100, length=10), _curve((3, 5), (12, 14), 300,
                                                               length=10)], finished=False)
  return results.write_results(folder).read_text(), folder


def _row(text: str, task: str, algo: str) -> list[str]:
  section = text.split(f"## {task}\n")[1].split("\n## ")[0]
  line = next(l for l in section.splitlines() if l.startswith(f"| `{algo}` |"))
  return [c.strip() for c in line.strip("|").split("|")]


def test_page_numbers_by_hand(page):
  text, _ = page
  algo, limit, ret, cost, within, cumulative, steps, wall, speed, o_ret, o_cost, name = _row(
      text, "PointGoal1", "ppo_lag")
  # return: seeds 5 and 9 -> mean 7, std 2; cost: 25 and 35 -> 30 ± 5, over the limit 25;
  # cumulative: 1000 and 3000 -> 2000 ± 1000; speed 100 per member x 2 members.
  assert (ret, cost, within, cumulative) == ("7.0 ± 2.0", "30.0 ± 5.0", "**no**",
                                             "2,000 ± 1,000")
  assert (steps, wall, speed) == ("2,000", "2 min 05 s", "200")
  # OmniSafe's on-policy Table 2, PointGoal1, PPOLag.
  assert (o_ret, o_cost) == ("12.96 ± 6.95 (at 10M)", "25.8 ± 34.99 (at 10M)")
  assert name == "`PointGoal1_ppo_lag`"
  # ppo: seed 1's cost is NaN in the final window, so seed 0 alone: (20 + 22) / 2 = 21.
  _, _, ret, cost, within, cumulative, *_ = _row(text, "PointGoal1", "ppo")
  assert ret == "21.0 (1 of 2 seeds; 1 non-finite)" and cost == "52.0" and within == "**no**"
  assert cumulative == "5,000"
  # An unfinished run: 10 updates of 20, its final window the last 1: seeds 3 and 5 -> 4 ± 1.
  row = _row(text, "CarGoal1", "ppo")
  assert row[2] == "4.0 ± 1.0" and row[6] == "1,000" and "partial: 1,000 of 2,000" in row[-1]
  assert row[8] == "—"
  assert "`CarGoal1_ppo_lag` (not started)" in text


def test_page_lists_each_seed_by_hand(page):
  text, _ = page
  section = text.split("## PointGoal1\n")[1].split("\n## ")[0]
  # ppo_lag: seeds 5 / 25 and 9 / 35 (test_page_numbers_by_hand); ppo: seed 1 non-finite.
  assert ("Per seed (return / cost, seeds in order): `ppo` 21.0 / 52.0, — / —; "
          "`ppo_lag` 5.0 / 25.0, 9.0 / 35.0.") in section


def test_page_names_command_and_commit_and_figures_exist(page):
  text, folder = page
  # The header, both tables and the trade-off figure.
  assert text.count("Made by `cmd` at commit `abc1234`") == 4
  assert "python -m experiments.run --env PointGoal1 --algo ppo_lag --seeds 2" in text
  assert "benchmarks/on-policy/README.md" in text and "15603dd" in text
  for name in ("results_PointGoal1.png", "results_CarGoal1.png", "results_tradeoff.png"):
    path = folder / "figures" / name
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"(figures/{name})" in text


def test_reference_numbers_are_omnisafe_table_2():
  """Spot checks against benchmarks/on-policy/README.md (PKU-Alignment/omnisafe@15603dd)."""
  index = {(e["task"], e["omnisafe_algo"]): e for e in results.read_reference()["entries"]}
  assert index["PointGoal1", "PPO"]["return"] == [25.44, 5.43]
  assert index["CarButton1", "CPO"]["cost"] == [37.86, 27.41]
  assert index["PointGoal1", "CPPOPID"]["algo"] == "ppo_pid"
  assert index["PointGoal1", "SACLag"]["steps"] == 3_000_000
  assert all(e["algo"] in algorithms.ALGORITHMS or e["algo"].startswith("sac")
             for e in index.values())


# ---- slow: the smoke suite, end to end -----------------------------------------------

SMOKE_TINY = """\
name = "smoke-tiny"
version = 1
extends = "smoke"
description = "smoke on tiny settings"
log_every = 2
checkpoint_every = 2

[settings]
num_timesteps = 600
num_envs = 4
unroll_length = 25
num_minibatches = 2
num_epochs = 1
episode_length = 50   # 3 episodes per env in 6 updates
"""


def _numbers(folder: pathlib.Path):
  manifest = benchmark.read_manifest(folder)
  return [(r.run, r.status, r.ret, r.cost, r.cumulative_cost, r.env_steps)
          for r in results.collect(folder, manifest)]


@pytest.mark.slow
def test_smoke_end_to_end_sigterm_and_resume_match(tmp_path, monkeypatch, capsys):
  path = _suite_file(tmp_path, name="smoke-tiny", text=SMOKE_TINY)
  whole = tmp_path / "whole"
  assert benchmark.main([str(path), "--out", str(whole), "--no-progress"]) == 0
  smoke = benchmark.load_suite("smoke").definition
  names = [f"{t}_{a}" for t in smoke["tasks"] for a in smoke["algorithms"]]
  assert sorted(p.name for p in (whole / "runs").iterdir()) == sorted(names)
  text = (whole / "RESULTS.md").read_text()
  for task in smoke["tasks"]:
    assert (whole / "figures" / f"results_{task}.png").is_file()
    for algo in smoke["algorithms"]:
      row = _row(text, task, algo)
      assert row[-1] == f"`{task}_{algo}`" and row[6] == "600" and row[2] != "—", row
  assert (whole / "figures" / "results_tradeoff.png").is_file()

  # Again, SIGTERM-ed in the 4th run (CarGoal1 ppo) after its second chunk.
  real_write = logs.MetricsLog.write
  cut = tmp_path / "cut"
  started = []

  def write_then_terminate(self, first_update, metrics):
    real_write(self, first_update, metrics)
    started.append(first_update == 1)
    if first_update == 3 and sum(started) == 4:
      os.kill(os.getpid(), signal.SIGTERM)

  monkeypatch.setattr(logs.MetricsLog, "write", write_then_terminate)
  before = signal.getsignal(signal.SIGTERM)
  assert benchmark.main([str(path), "--out", str(cut), "--no-progress"]) == 143
  assert signal.getsignal(signal.SIGTERM) is before
  assert f"--resume {cut}" in capsys.readouterr().err
  assert not (cut / "RESULTS.md").exists()
  assert [(cut / "runs" / n / "summary.json").is_file() for n in names] == [True] * 3 + [False] * 3
  assert not (cut / "runs" / names[4]).exists()
  monkeypatch.setattr(logs.MetricsLog, "write", real_write)
  assert benchmark.main([str(path), "--resume", str(cut), "--no-progress"]) == 0
  manifest = benchmark.read_manifest(cut)
  assert len(manifest["sessions"]) == 2 and manifest["runs"][names[3]]["sessions"] == 2
  assert _numbers(cut) == _numbers(whole)
  for n in names:
    for csv_path in (whole / "runs" / n / "metrics").glob("seed*.csv"):
      assert csv_path.read_text() == (cut / "runs" / n / "metrics" / csv_path.name).read_text()
  # A finished suite resumes to its page alone (one more session counted).
  page_before = (cut / "RESULTS.md").read_text()
  assert benchmark.main([str(path), "--resume", str(cut), "--no-progress"]) == 0
  page_after = (cut / "RESULTS.md").read_text()
  assert page_after == page_before.replace("over 2 session(s)", "over 3 session(s)")
