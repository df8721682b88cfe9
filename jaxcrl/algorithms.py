"""The registry: algorithm name -> its learner and multiplier. The one list of algorithms.

Every other list (ALGOS, the CLI's --algo choices and --help, the benchmarks' defaults,
the tests' parametrisations) is derived from ALGORITHMS here. An entry names

  make_learner(nets, config, episode_steps) -> learners.base.Learner (episode_steps: T,
    agent steps per episode), and its family's default config;
  make_multiplier(obs_size, config, episode_steps) -> multipliers.Multiplier, and its
    family's default config;
  wrap_env(env, config, episode_length) -> env, for algorithms that change the
    environment (Saute; episode_length: the trainer's env steps per episode), or
    None;
  paper: one line for --help;
  driver: what trains it, a train.Driver (its networks, its own checks, its init and
    update): train.ON_POLICY (rollout -> GAE -> multiplier -> learner, the default), or
    jaxcrl/offpolicy/driver.py's DRIVER (replay buffer, SAC-family learners, whose
    make_learner gets offpolicy.sac.Nets).

  config = make_config("ppo_lag", lagrange_lr=1e-3, num_envs=32)
  config = with_settings(config, lagrange_lr=1e-2)      # the same routing, on a config
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

from envs.registry import did_you_mean
from jaxcrl import multipliers, saute, train
from jaxcrl.config import TrainConfig
from jaxcrl.learners import crpo, cup, focops, p3o, ppo, trust_region
from jaxcrl.offpolicy import driver as offpolicy_driver
from jaxcrl.offpolicy import sac


class Algorithm(NamedTuple):
  make_learner: Callable
  learner_defaults: Any
  make_multiplier: Callable
  multiplier_defaults: Any
  paper: str
  wrap_env: Callable | None = None
  driver: train.Driver = train.ON_POLICY


def _off_policy(objective: Callable | None, make_multiplier: Callable,
                multiplier_defaults: Any, paper: str) -> Algorithm:
  """An entry trained by the off-policy driver: SAC's learner whose actor minimises
  `objective` (`offpolicy.sac.make_sac`), with SACConfig's settings."""
  return Algorithm(sac.make_sac(objective), sac.SACConfig(), make_multiplier,
                   multiplier_defaults, paper, driver=offpolicy_driver.DRIVER)


ALGORITHMS: dict[str, Algorithm] = {
    "ppo": Algorithm(
        ppo.make_minibatch_learner(ppo.reward_objective), ppo.PPOConfig(),
        multipliers.make_none, multipliers.NoMultiplierConfig(),
        "PPO-clip, unconstrained (Schulman et al. 2017)"),
    "ppo_lag": Algorithm(
        ppo.make_minibatch_learner(ppo.penalized_objective), ppo.PPOConfig(),
        multipliers.make_lagrange, multipliers.LagrangeConfig(),
        "PPO on the Lagrangian, lambda by projected gradient ascent (Ray et al. 2019)"),
    "ppo_pid": Algorithm(
        ppo.make_minibatch_learner(ppo.penalized_objective), ppo.PPOConfig(),
        multipliers.make_pid, multipliers.PIDConfig(),
        "PPO with a PID Lagrange multiplier (Stooke, Achiam & Abbeel 2020)"),
    "ppo_statewise": Algorithm(
        ppo.make_minibatch_learner(ppo.penalized_objective), ppo.PPOConfig(),
        multipliers.make_statewise, multipliers.StatewiseConfig(),
        "PPO with a state-wise multiplier network lambda(s) for V_c(s) <= w"),
    "ppo_statewise_auto": Algorithm(
        ppo.make_minibatch_learner(ppo.statewise_objective), ppo.PPOConfig(),
        multipliers.make_statewise_auto, multipliers.StatewiseAutoConfig(),
        "PPO with a self-tuning lambda(s): log-space dual steps the net regresses onto, "
        "w adapted from d, per-state normalisation (this project)"),
    "focops": Algorithm(
        focops.make_focops, focops.FOCOPSConfig(),
        multipliers.make_lagrange, multipliers.LagrangeConfig(),
        "FOCOPS: fit pi* ~ pi_k exp((A_r - nu A_c) / lambda_T) by per-state KL "
        "(Zhang, Vuong & Ross 2020)"),
    "cup": Algorithm(
        cup.make_cup, cup.CUPConfig(),
        multipliers.make_lagrange, multipliers.LagrangeConfig(),
        "CUP: PPO improvement step, then a KL projection with the cost term "
        "(Yang et al. 2022)"),
    "p3o": Algorithm(
        p3o.make_learner, p3o.P3OConfig(),
        multipliers.make_none, multipliers.NoMultiplierConfig(),
        "P3O: PPO-clip plus kappa relu(clipped cost surrogate + J_c - d), an exact "
        "penalty (Zhang et al. 2022)"),
    "crpo": Algorithm(
        crpo.make_learner, crpo.CRPOConfig(),
        multipliers.make_none, multipliers.NoMultiplierConfig(),
        "CRPO: a PPO step on -A_c when J_c > d + tolerance, else on A_r "
        "(Xu, Liang & Lan 2021)"),
    "ppo_saute": Algorithm(
        ppo.make_minibatch_learner(ppo.reward_objective), saute.SauteConfig(),
        multipliers.make_none, multipliers.NoMultiplierConfig(),
        "Saute: PPO on the env with the remaining budget in the state and a fixed "
        "reward once it is spent (Sootla et al. 2022)",
        wrap_env=saute.wrap_env),
    "trpo": Algorithm(
        trust_region.make_trpo, trust_region.TrustRegionConfig(),
        multipliers.make_none, multipliers.NoMultiplierConfig(),
        "TRPO: natural-gradient step in a KL trust region, unconstrained "
        "(Schulman et al. 2015)"),
    "trpo_lag": Algorithm(
        trust_region.make_trpo_lag, trust_region.TrustRegionConfig(),
        multipliers.make_lagrange, multipliers.LagrangeConfig(),
        "TRPO on the Lagrangian, lambda by projected gradient ascent (Ray et al. 2019)"),
    "cpo": Algorithm(
        trust_region.make_cpo, trust_region.TrustRegionConfig(),
        multipliers.make_none, multipliers.NoMultiplierConfig(),
        "CPO: trust-region step on the linearised cost constraint, with recovery "
        "(Achiam et al. 2017)"),
    "pcpo": Algorithm(
        trust_region.make_pcpo, trust_region.TrustRegionConfig(),
        multipliers.make_none, multipliers.NoMultiplierConfig(),
        "PCPO: TRPO step, then KL projection on the linearised cost constraint "
        "(Yang et al. 2020)"),
    "sac": _off_policy(
        None, multipliers.make_none, multipliers.NoMultiplierConfig(),
        "SAC, unconstrained, with automatic entropy temperature; learns a cost critic too "
        "(Haarnoja et al. 2018)"),
    "sac_lag": _off_policy(
        sac.lagrangian_objective, multipliers.make_lagrange, multipliers.LagrangeConfig(),
        "SAC on the Lagrangian with a cost critic, lambda by projected gradient ascent on "
        "the episode cost (Ha et al. 2020; OmniSafe's SACLag)"),
    "sac_pid": _off_policy(
        sac.lagrangian_objective, multipliers.make_pid, multipliers.PIDConfig(),
        "SAC with a PID Lagrange multiplier (Stooke, Achiam & Abbeel 2020)"),
    "fac": _off_policy(
        sac.lagrangian_objective, multipliers.make_fac, multipliers.FACConfig(),
        "FAC: SAC with a state-wise multiplier net lambda(s) for Q_c(s, pi(s)) <= w, "
        "delayed ascent, decaying rate, negative output bias (Ma et al. 2021)"),
    "sac_statewise_auto": _off_policy(
        sac.statewise_objective, multipliers.make_statewise_auto,
        multipliers.StatewiseAutoConfig(),
        "SAC with ppo_statewise_auto's self-tuning lambda(s) on Q_c(s, pi(s)) "
        "(this project)"),
}
ALGOS: tuple[str, ...] = tuple(ALGORITHMS)


def get(algo: str) -> Algorithm:
  """The registry entry of `algo`; ValueError naming the accepted ones if unknown."""
  if algo not in ALGORITHMS:
    raise ValueError(f"unknown algo {algo!r}{did_you_mean(algo, ALGOS)}; choose one of: "
                     f"{', '.join(ALGOS)}")
  return ALGORITHMS[algo]


def _field_names(config: Any) -> tuple[str, ...]:
  return tuple(f.name for f in dataclasses.fields(config))


def is_statewise(algo: str) -> bool:
  """Whether `algo`'s multiplier is a network lambda(s), one value per state (its family
  config sizes that network: multiplier_hidden)."""
  return "multiplier_hidden" in _field_names(get(algo).multiplier_defaults)


def is_off_policy(algo: str) -> bool:
  """Whether `algo` trains from a replay buffer (its driver has one)."""
  return get(algo).driver.replay_path is not None


SHARED_SETTINGS: tuple[str, ...] = tuple(
    n for n in _field_names(TrainConfig) if n not in ("learner", "multiplier"))


def family_settings() -> dict[str, tuple[Any, list[str]]]:
  """Every family setting by name -> (a family config instance holding it with its
  default, the algorithms that take it), in registry order."""
  out: dict[str, tuple[Any, list[str]]] = {}
  for name, algo in ALGORITHMS.items():
    for defaults in (algo.learner_defaults, algo.multiplier_defaults):
      for field in _field_names(defaults):
        out.setdefault(field, (defaults, []))[1].append(name)
  return out


def takers(setting: str) -> list[str]:
  """The algorithms whose learner or multiplier has `setting`."""
  return family_settings().get(setting, (None, []))[1]


def resolve(config: TrainConfig) -> TrainConfig:
  """`config` with learner / multiplier None replaced by the algorithm's defaults;
  ValueError if a given family config is not the algorithm's."""
  algo = get(config.algo)
  parts = {}
  for slot, defaults in (("learner", algo.learner_defaults),
                         ("multiplier", algo.multiplier_defaults)):
    given = getattr(config, slot)
    if given is None:
      parts[slot] = defaults
    elif type(given) is not type(defaults):
      raise ValueError(
          f"{slot} config {type(given).__name__} does not belong to algo {config.algo!r}, "
          f"which takes {type(defaults).__name__}; build configs with "
          f"jaxcrl.make_config({config.algo!r}, ...)")
  return dataclasses.replace(config, **parts) if parts else config


def check(config: TrainConfig) -> None:
  """ValueError naming the first bad algorithm or family setting and what is accepted."""
  from jaxcrl.config import check_fields, check_sizes
  resolved = resolve(config)
  for family in (resolved.learner, resolved.multiplier):
    check_fields(family)
    for field in dataclasses.fields(family):
      if field.name.endswith("_hidden"):
        check_sizes(field.name, getattr(family, field.name))


def route(algo: str, settings: dict[str, Any]) -> tuple[dict, dict, dict]:
  """Each setting where it lives for `algo`: -> (TrainConfig's shared fields, the learner
  family's, the multiplier family's), each {name: value}.

  A setting the algorithm does not take raises ValueError naming it and the algorithms
  that take it (e.g. max_kl given to ppo_lag); an unknown one, naming the known ones.
  """
  entry = get(algo)
  shared = {k: v for k, v in settings.items() if k in SHARED_SETTINGS}
  rest = {k: v for k, v in settings.items() if k not in shared}
  families = []
  for defaults in (entry.learner_defaults, entry.multiplier_defaults):
    mine = {k: v for k, v in rest.items() if k in _field_names(defaults)}
    families.append(mine)
    rest = {k: v for k, v in rest.items() if k not in mine}
  for name in rest:
    if name in ("learner", "multiplier"):
      raise ValueError(f"give {name} settings by name (e.g. clip_eps=0.1), not as {name}=")
    who = takers(name)
    if who:
      raise ValueError(f"{name} is a setting of {', '.join(who)}, not of {algo}")
    known = sorted(SHARED_SETTINGS + tuple(family_settings()))
    raise ValueError(f"unknown setting {name!r}{did_you_mean(name, known)}; known: "
                     f"{', '.join(known)}")
  return shared, families[0], families[1]


def make_config(algo: str = "ppo_lag", **settings) -> TrainConfig:
  """A validated TrainConfig for `algo`; each setting goes where it lives by name:
  TrainConfig's shared fields, else the algorithm's learner or multiplier family config.

  A setting the algorithm does not take raises ValueError naming it and the algorithms
  that take it (e.g. max_kl given to ppo_lag).
  """
  entry = get(algo)
  shared, learner, multiplier = route(algo, settings)
  shared.pop("algo", None)
  return TrainConfig(algo=algo, **shared,
                     learner=dataclasses.replace(entry.learner_defaults, **learner),
                     multiplier=dataclasses.replace(entry.multiplier_defaults, **multiplier)
                     ).validate()


def with_settings(config: TrainConfig, **settings) -> TrainConfig:
  """`config` (validated) with each setting replaced where it lives, routed and refused
  as `make_config` does: `with_settings(config, lagrange_lr=1e-3, policy_lr=1e-4)`."""
  config = resolve(config)
  shared, learner, multiplier = route(config.algo, settings)
  if shared.get("algo", config.algo) != config.algo:
    raise ValueError(f"algo is fixed by the config ({config.algo!r}); build another with "
                     f"make_config({shared['algo']!r}, ...)")
  return dataclasses.replace(
      config, **shared, learner=dataclasses.replace(config.learner, **learner),
      multiplier=dataclasses.replace(config.multiplier, **multiplier)).validate()


def static_settings(algo: str) -> tuple[str, ...]:
  """The settings of `algo` that are static (pytree_node=False: they shape the compiled
  program, so they cannot differ inside one vmapped batch), shared ones first."""
  entry = get(algo)
  return tuple(f.name for config in (TrainConfig, entry.learner_defaults,
                                     entry.multiplier_defaults)
               for f in dataclasses.fields(config)
               if not f.metadata.get("pytree_node", True))


def traced_settings(algo: str) -> tuple[str, ...]:
  """The settings of `algo` that are traced leaves (they may differ inside one vmapped
  batch: cost limit, learning rates, the family's coefficients), shared ones first."""
  entry = get(algo)
  return tuple(f.name for config in (TrainConfig, entry.learner_defaults,
                                     entry.multiplier_defaults)
               for f in dataclasses.fields(config)
               if f.metadata.get("pytree_node", True) and f.name not in ("learner",
                                                                         "multiplier"))
