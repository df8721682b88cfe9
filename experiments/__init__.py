"""The command-line tools (`python -m experiments.run`, eval, sweep, benchmark, bench, plot,
compare, ...) and what they share.

envs.quiet_imports comes first, so a module here that imports Brax before `envs`
(bench_train, bench_offpolicy) does not print mujoco.mjx's Warp lines.
"""

import envs.quiet_imports  # noqa: F401  first: mujoco.mjx without its Warp start-up lines
