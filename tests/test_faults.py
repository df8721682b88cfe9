"""Faults a long run meets: a member going NaN, a checkpoint folder that stops taking
writes. In-process `experiments.run` on tiny ProbeCostlyBandit configs."""

import contextlib
import json
import os
import pathlib
import re
import subprocess

import chex
import jax
import numpy as np
import pytest
from flax import struct

from experiments import guard, logs, run, rundir
from experiments.checkpoint import CheckpointStore

TINY = ["--env", "ProbeCostlyBandit", "--algo", "ppo_lag", "--num-envs", "8",
        "--unroll-length", "4", "--num-minibatches", "2", "--num-epochs", "1",
        "--policy-hidden", "8", "--value-hidden", "8", "--seeds", "1", "--log-every", "2",
        "--checkpoint-every", "2", "--no-progress", "--no-plots"]
# lambda += 1e38 (J_c - d) per update, unbounded: the limit-0 member's lambda (J_c about
# 0.5-1 per episode) passes float32's 3.4e38 after a few updates and turns inf; the
# limit-1000 member's J_c - d < 0 keeps its lambda at 0.
RUNAWAY = TINY + ["--steps", "384", "--cost-limits", "0,1000", "--lagrange-lr", "1e38",
                  "--lambda-max", "inf"]
STOPPED = re.compile(r"error: non-finite (\S+) in member seed0_limit0 at update (\d+); last "
                     r"finite checkpoint: update (\d+) in (\S+) \(--on-nonfinite continue "
                     r"trains the other members\)")


def _last_error_line(capsys) -> str:
  return capsys.readouterr().err.strip().splitlines()[-1]


def _trained_parts(state):
  return (state.learner, state.multiplier, state.normalizer)


def test_a_nonfinite_member_stops_the_run_with_status_3_and_the_kept_checkpoint_resumes(
    tmp_path, capsys):
  out = tmp_path / "runaway"
  assert run.main(RUNAWAY + ["--out", str(out)]) == guard.EXIT_NONFINITE == 3
  match = STOPPED.fullmatch(_last_error_line(capsys))
  assert match, "unexpected message"
  quantity, update, kept = match[1], int(match[2]), int(match[3])
  assert quantity.startswith("lambda/") and match[4] == str(out / "checkpoints")
  # Caught within the chunk it appeared in: the kept state is that chunk's start.
  assert update > 2 and kept == 2 * ((update - 1) // 2)
  assert CheckpointStore(out / "checkpoints").steps()[-1] == kept
  step, state = rundir.latest_state(out)
  assert step == kept
  chex.assert_tree_all_finite(_trained_parts(state))
  for name in ("seed0_limit0", "seed0_limit1000"):   # the logs end where the state does
    data = logs.read_csv(out / "metrics" / f"{name}.csv")
    np.testing.assert_array_equal(data["update"], np.arange(1, kept + 1))
    assert np.isfinite(data["lambda/max"]).all()
  record = json.loads((out / rundir.NONFINITE_FILE).read_text())
  assert record == {"seed0_limit0": {"update": update, "quantity": quantity,
                                     "last_finite_update": kept}}

  # The kept checkpoint resumes: stopping again at the same update (CPU runs are
  # deterministic), then, told to continue, training the finite member to the end.
  assert run.main(["--resume", str(out), "--no-progress", "--no-plots"]) == 3
  assert STOPPED.fullmatch(_last_error_line(capsys)).group(2, 3) == match.group(2, 3)
  assert run.main(["--resume", str(out), "--no-progress", "--no-plots",
                   "--on-nonfinite", "continue"]) == 0
  summary = json.loads((out / "summary.json").read_text())
  assert summary["finished"] and summary["updates"] == 12
  bad, good = summary["members"]
  assert bad["nonfinite"] == record["seed0_limit0"] and bad["final"]["episode/cost"] is None
  assert "nonfinite" not in good and np.isfinite(good["final"]["episode/cost"])
  assert summary["by_limit"]["0"]["episode/cost"] == {"mean": None, "std": None}
  assert summary["by_limit"]["1000"]["episode/cost"]["mean"] == good["final"]["episode/cost"]
  data = logs.read_csv(out / "metrics" / "seed0_limit0.csv")
  np.testing.assert_array_equal(data["update"], np.arange(1, 13))
  assert np.isfinite(data["lambda/max"][:kept]).all()
  assert np.isnan(data["lambda/max"][kept:]).all()      # not trained past its freeze
  step, state = rundir.latest_state(out)
  assert step == 12
  chex.assert_tree_all_finite(_trained_parts(state))    # checkpoints stay finite
  np.testing.assert_array_equal(state.update_step.value(), [kept, 12])


def test_guard_names_the_first_nonfinite_quantity_and_update():
  """Member 0: finite. Member 1: loss/b turns inf at chunk update 2 (of 0-3), loss/a NaN
  at update 3: the first is (loss/b, 2). Member 2: only a state leaf is NaN: (that leaf,
  the chunk's last update 3)."""
  @struct.dataclass
  class State:   # the fields the guard checks, batched over 3 members
    learner: dict
    multiplier: dict
    normalizer: dict

  def make_state(w):
    return State(learner={"w": w}, multiplier={},
                 normalizer={"n": np.zeros((3, 2), np.float32)})
  w = np.zeros((3, 4), np.float32)
  w[2, 1] = np.nan
  loss_a, loss_b = np.zeros((4, 3), np.float32), np.zeros((4, 3), np.float32)
  loss_b[2, 1], loss_a[3, 1] = np.inf, np.nan
  names, check = guard.make_check(make_state(w), ["loss/a", "loss/b", "episode/return"])
  assert names == ["loss/a", "loss/b", "learner['w']", "normalizer['n']"]
  first_quantity, first_update = jax.jit(check)(
      make_state(w), {"loss/a": loss_a, "loss/b": loss_b,
                 "episode/return": np.full((4, 3), np.nan)})   # not a checked metric
  chex.assert_shape((first_quantity, first_update), (3,))
  np.testing.assert_array_equal(first_quantity, [-1, 1, 2])
  np.testing.assert_array_equal(first_update[1:], [2, 3])


# -- disk faults ----------------------------------------------------------------------

@contextlib.contextmanager
def _read_only(folder: pathlib.Path):
  """`folder` refuses new entries while inside: chmod for a normal user; root ignores
  modes, so for root the immutable attribute (chattr +i, which binds root too)."""
  os.chmod(folder, 0o555)
  immutable = False
  try:
    probe = folder / "probe"
    try:
      probe.mkdir()
      probe.rmdir()
      writable = True
    except OSError:
      writable = False
    if writable:
      immutable = subprocess.run(["chattr", "+i", str(folder)],
                                 capture_output=True).returncode == 0
      if not immutable:
        pytest.skip("cannot make a folder read-only here: root, and no chattr +i")
    yield
  finally:
    if immutable:
      subprocess.run(["chattr", "-i", str(folder)], check=True)
    os.chmod(folder, 0o755)


@contextlib.contextmanager
def _checkpoints_fail_from_update_4():
  """Inside, the checkpoint folder turns read-only just before update 4's checkpoint, for
  the rest of the run (a real write failure, at a known moment)."""
  real_save = CheckpointStore.save
  with pytest.MonkeyPatch.context() as patch, contextlib.ExitStack() as read_only:
    def save(self, step, tree):
      if step == 4:
        read_only.enter_context(_read_only(self.directory))
      return real_save(self, step, tree)
    patch.setattr(CheckpointStore, "save", save)
    yield


SIX = TINY + ["--steps", "192", "--cost-limits", "0.5"]   # 6 updates, checkpoints 2, 4, 6


def test_checkpoint_errors_stop_exits_4_keeping_the_previous_checkpoint(tmp_path, capsys):
  out = tmp_path / "stop"
  with _checkpoints_fail_from_update_4():
    assert run.main(SIX + ["--out", str(out)]) == run.EXIT_CHECKPOINT == 4
  line = _last_error_line(capsys)
  assert re.fullmatch(
      rf"error: checkpoint of update 4 in {re.escape(str(out / 'checkpoints'))} failed "
      r"\(\w+: .*\); newest restorable checkpoint: update 2; stopping "
      r"\(--checkpoint-errors continue trains on\)", line), line
  assert CheckpointStore(out / "checkpoints").steps() == [2]
  assert run.main(["--resume", str(out), "--no-progress", "--no-plots"]) == 0
  assert CheckpointStore(out / "checkpoints").steps() == [2, 4, 6]


def test_checkpoint_errors_continue_trains_on_and_resumes_from_the_last_good_one(
    tmp_path, capsys):
  out = tmp_path / "continue"
  with _checkpoints_fail_from_update_4():
    assert run.main(SIX + ["--out", str(out), "--checkpoint-errors", "continue"]) == 0
  err = capsys.readouterr().err
  for update in (4, 6):
    assert (f"warning: checkpoint of update {update} in {out / 'checkpoints'} failed ("
            in err)
  assert err.count("newest restorable checkpoint: update 2; training on") == 2
  assert json.loads((out / "summary.json").read_text())["finished"]
  assert CheckpointStore(out / "checkpoints").steps() == [2]
  # The folder writable again, the run resumes from update 2 and ends as one that never
  # failed.
  assert run.main(["--resume", str(out), "--no-progress", "--no-plots"]) == 0
  clean = tmp_path / "clean"
  assert run.main(SIX + ["--out", str(clean)]) == 0
  (_, a), (_, b) = rundir.latest_state(out), rundir.latest_state(clean)
  chex.assert_trees_all_equal(_trained_parts(a), _trained_parts(b))
