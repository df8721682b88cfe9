"""`python -m experiments.bench fidelity`: its sensor spread check and bad input."""

import chex
import numpy as np

from envs import planar, robots
from experiments import bench_fidelity


def test_sensor_labels_name_every_sensor_entry_of_both_backends():
  for name, robot in robots.ROBOTS.items():
    labels = robots.SENSOR_LABELS[name]
    assert len(labels) == robot.sensor_size == planar.planar_robot(name).sensor_size
    assert len(set(labels)) == len(labels)
  assert robots.SENSOR_LABELS["Car"][2] == "accelerometer z"


def test_differing_sensors_flags_constant_on_one_backend_or_twice_the_spread():
  planar_std = np.full(24, 0.5)
  mjx_std = np.full(24, 0.6)
  planar_std[2], mjx_std[2] = 1e-4, 5.4  # accelerometer z: constant on planar only
  planar_std[6], mjx_std[6] = 0.0, 0.0  # gyro x: constant on both
  planar_std[0], mjx_std[0] = 0.67, 2.56  # accelerometer x: 3.8x
  differ = bench_fidelity.differing_sensors("Car", [planar_std, mjx_std])
  assert [label for label, _ in differ] == ["accelerometer x", "accelerometer z"]
  assert differ[1][1] == [1e-4, 5.4]


def test_a_cell_reports_each_sensor_entrys_spread():
  cell = bench_fidelity.run_cell("PointCircle0", "planar", "wander", 2, 0)
  chex.assert_shape(cell["sensor_std"], (12,))
  std = dict(zip(robots.SENSOR_LABELS["Point"], cell["sensor_std"]))
  # The Point moves in the plane: no vertical velocity, no roll or pitch rate.
  assert std["velocimeter z"] == std["gyro x"] == std["gyro y"] == 0.0
  # Gravity, exactly, every step: no float32 cancellation from E[x^2] - E[x]^2 at 9.81.
  assert std["accelerometer z"] == 0.0
  assert std["velocimeter x"] > 0.01 and std["gyro z"] > 0.01
  assert cell["robot"] == "Point"


def test_bad_input_exits_2(capsys):
  assert bench_fidelity.main(["--policies", "bogus"]) == 2
  assert "unknown policy 'bogus'" in capsys.readouterr().err
  assert bench_fidelity.main(["--envs", "HalfCheetah"]) == 2
