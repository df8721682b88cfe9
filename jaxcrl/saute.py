"""Saute RL: the remaining safety budget as part of the state, an unsafe reward once spent.

Sootla, Cowen-Rivers, Jafferjee, Wang, Mguni, Wang & Bou-Ammar 2022, "Saute RL: Almost
Surely Safe Reinforcement Learning Using State Augmentation" (ICML; arXiv:2202.06558).
The constraint becomes part of the MDP: the observation carries z, the normalised budget
left, and once it is spent the reward is a fixed penalty, so any policy that maximises the
augmented return keeps the episode's (discounted) cost within the budget almost surely.
Then plain PPO solves it (ppo_saute; lam = 0, no multiplier).

  z_0 = 1
  z_{t+1} = (z_t - c_t / d') / gamma_s          (gamma_s = saute_gamma)
  r'_t = r_t if z_{t+1} > 0 else saute_unsafe_reward
  obs'_t = concat(obs_t, [z_t])                  ([O + 1])

z_t d' gamma_s^t = d' - sum_{k<t} gamma_s^k c_k: z is the discounted budget left, as a
fraction of d'. d' is the per-episode limit d = config.cost_limit (traced, so a program
vmapped over cost limits gives each its own budget) converted to a discounted budget as
OmniSafe's SauteAdapter does, d' = d (1/T) sum_{t<T} gamma_s^t, T the env steps per
episode: for a cost spread evenly over the episode the discounted and undiscounted
budgets then bind together; at gamma_s = 1, d' = d and z = 1 - (cost so far) / d exactly.
Spending exactly the budget counts as spent (z = 0), as in OmniSafe and the authors' code.

Resets: `reset` starts z at 1, and envs.wrap's auto-reset rebuilds a finished env from
`reset`, so every episode starts with the full budget. The task's own reward of each step
is kept in `info["task_reward"]` (and the budget in `info["saute_z"]`); the trainer's
episode/return sums the reward the learner sees, i.e. the Saute reward (see the report on
the seam: to log the task return, envs.wrappers must sum `info["task_reward"]`).

Defaults (OmniSafe, configs/on-policy/PPOSaute.yaml): saute_gamma = 0.9999 and
saute_unsafe_reward = -0.2, its setting for every Safety-Gym navigation task it lists
(SafetyPointGoal1-v0, ..., SafetyCarCircle2-v0); its generic block has 0.999 and -1.0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.envs.base import Env, Wrapper
from flax import struct

from envs.base import State
from envs.wrappers import TASK_REWARD, reset_batch
from jaxcrl.learners import ppo


@struct.dataclass
class SauteConfig(ppo.PPOConfig):
  """PPOConfig plus Saute's env settings (read by `wrap_env`).

  saute_gamma: gamma_s, the budget's discount, in (0, 1]; 1 tracks the undiscounted
    episode cost. OmniSafe: 0.9999 on Safety-Gym.
  saute_unsafe_reward: the reward of every step once the budget is spent (<= 0).
    OmniSafe: -0.2 on Safety-Gym.
  """

  saute_gamma: float = 0.9999
  saute_unsafe_reward: float = -0.2

  CHECKS = {**ppo.PPOConfig.CHECKS,
            "saute_gamma": ("in (0, 1]", lambda v: 0 < v <= 1),
            "saute_unsafe_reward": ("<= 0", lambda v: v <= 0)}


def discounted_budget(cost_limit, gamma, episode_length: int) -> jax.Array:
  """d' = d (1/T) sum_{t<T} gamma^t: the per-episode limit as a discounted budget []."""
  steps = jnp.arange(episode_length, dtype=jnp.float32)
  return cost_limit * jnp.mean(jnp.asarray(gamma, jnp.float32) ** steps)


class SauteWrapper(Wrapper):
  """Any unbatched Brax-API env returning envs.base.State, with the budget z appended to
  its observation and the unsafe reward once z <= 0 (module docstring).

  cost_limit, gamma, unsafe_reward: d, gamma_s and the unsafe reward; floats or traced []
  arrays. episode_length: T, env steps per episode (for d' only).
  info gains "saute_z" [] (z, also obs[-1]) and envs.wrappers.TASK_REWARD [] (the env's
  own reward, which the trainer's episode/return sums).
  """

  def __init__(self, env: Env, cost_limit, gamma, unsafe_reward, episode_length: int):
    super().__init__(env)
    self.budget = discounted_budget(cost_limit, gamma, episode_length)
    self.gamma = gamma
    self.unsafe_reward = unsafe_reward

  @property
  def observation_size(self) -> int:
    return self.env.observation_size + 1

  def _augment(self, state: State, z: jax.Array, task_reward: jax.Array) -> State:
    return state.replace(obs=jnp.concatenate([state.obs, z[None]]),
                         info={**state.info, "saute_z": z, TASK_REWARD: task_reward})

  def reset(self, key: jax.Array) -> State:
    return self._start(self.env.reset(key))

  def reset_batch(self, keys: jax.Array) -> State:
    return jax.vmap(self._start)(reset_batch(self.env, keys))

  def _start(self, state: State) -> State:
    return self._augment(state, jnp.ones((), jnp.float32),
                         jnp.zeros_like(state.reward, jnp.float32))

  def step(self, state: State, action: jax.Array) -> State:
    z = state.info["saute_z"]
    # The wrapped env reads its own observation, without z.
    nstate = self.env.step(state.replace(obs=state.obs[:-1]), action)
    # A zero budget (cost_limit 0) is spent by any cost; the floor keeps 0 / 0 out of z.
    spent = nstate.cost / jnp.maximum(self.budget, 1e-6)
    z_next = ((z - spent) / self.gamma).astype(jnp.float32)
    reward = jnp.where(z_next > 0, nstate.reward, self.unsafe_reward).astype(
        nstate.reward.dtype)
    return self._augment(nstate.replace(reward=reward), z_next,
                         nstate.reward.astype(jnp.float32))


def wrap_env(env: Env, config, episode_length: int) -> SauteWrapper:
  """The registry's `wrap_env` of ppo_saute: `env` under `config`'s cost_limit and
  config.learner's saute_gamma / saute_unsafe_reward (traced leaves allowed);
  episode_length: T for the discounted budget, the trainer's (jaxcrl.train)."""
  return SauteWrapper(env, config.cost_limit, config.learner.saute_gamma,
                      config.learner.saute_unsafe_reward, episode_length)
