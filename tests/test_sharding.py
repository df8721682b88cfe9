"""The env batch sharded over 2 (forced host) CPU devices trains like 1 device."""

import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np


ROOT = pathlib.Path(__file__).resolve().parent.parent

# Shared by this process (1 device) and the 2-device subprocess.
SCRIPT = textwrap.dedent("""
    import dataclasses, jax, numpy as np, envs, jaxcrl
    CFG = jaxcrl.make_config(
        "ppo_statewise", num_envs=8, unroll_length=8, num_minibatches=4, num_epochs=2,
        num_timesteps=8 * 8 * 3, policy_hidden=(16,), value_hidden=(16,),
        multiplier_hidden=(16,), statewise_threshold=1.0)

    def run():
      train = jaxcrl.make_train(envs.make("ProbeTwoRegion", episode_length=5), CFG)
      state, metrics = jax.jit(train)(jax.random.key(0))
      out = {k.replace("/", "."): np.asarray(v) for k, v in metrics.items()}
      out["policy_kernel"] = np.asarray(state.learner.policy_params["params"]["dense_0"]["kernel"])
      out["env_obs"] = np.asarray(state.env_state.obs)
      out["num_shards"] = np.asarray(len(state.env_state.obs.sharding.device_set))
      return out
""")


def _run_here():
  namespace = {}
  exec(SCRIPT, namespace)  # pylint: disable=exec-used
  return namespace["run"]()


def test_two_device_sharded_training_matches_one_device(tmp_path):
  out_file = tmp_path / "two.npz"
  code = SCRIPT + f"\nassert len(jax.devices()) == 2\nnp.savez({str(out_file)!r}, **run())\n"
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT),
             JAX_COMPILATION_CACHE_DIR=str(ROOT / ".jax_cache"))
  proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  two = dict(np.load(out_file))
  one = _run_here()
  assert int(two["num_shards"]) == 2 and int(one["num_shards"]) == 1
  for name, value in one.items():
    if name == "num_shards":
      continue
    # Cross-device reductions sum in another order: close, not bit-equal.
    np.testing.assert_allclose(two[name], value, rtol=2e-3, atol=2e-4, err_msg=name)
