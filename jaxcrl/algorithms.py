"""Algorithm name -> (policy loss, multiplier factory). Everything else is shared PPO."""

from __future__ import annotations

from typing import Callable, NamedTuple

from jaxcrl import losses, multipliers


class Algorithm(NamedTuple):
  """policy_loss(log_prob, old_log_prob, adv_r, adv_c, lam, clip_eps) -> [];
  make_multiplier(obs_size, config, episode_steps) -> multipliers.Multiplier."""

  policy_loss: Callable
  make_multiplier: Callable


ALGORITHMS: dict[str, Algorithm] = {
    "ppo": Algorithm(losses.reward_policy_loss, multipliers.make_none),
    "ppo_lag": Algorithm(losses.penalized_policy_loss, multipliers.make_lagrange),
    "ppo_pid": Algorithm(losses.penalized_policy_loss, multipliers.make_pid),
    "ppo_statewise": Algorithm(losses.penalized_policy_loss, multipliers.make_statewise),
}
