"""SAC's graph plan: one graph, `sac_actor`, normalized observations -> mean, std [, discrete_q].

Critics, target networks and the temperature are not exported; their keys are allow-listed by name.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from ...bundle import IOSpec
from ...checkpoint import LEGACY_STAT_PREFIXES, Checkpoint
from ..common.weights import load_strict
from ..plan import ExportPlan, GraphPlan, normal_sampler
from .config import SACConfig
from .model import SACActorModule

# fp32 gate, normalized action units (mean/std before tanh; q-values of the discrete critic)
TOLERANCE = {"mean": {"atol": 1e-4, "min_cosine": 0.99999}, "std": {"atol": 1e-4, "min_cosine": 0.99999},
             "discrete_q": {"atol": 1e-4, "min_cosine": 0.99999}}
# trained but unused at inference: the Q ensemble, the target networks, the temperature
UNUSED = ("critic_ensemble.critics.", "critic_target.", "discrete_critic_target.", "log_alpha")
# names under which LeRobot's de-duplicating save may keep the (non-shared) critic / actor encoders
CRITIC_ENCODER_ALIASES = ("encoder_critic.", "discrete_critic.encoder.", "critic_target.encoder.",
                          "discrete_critic_target.encoder.")
ACTOR_ENCODER_ALIASES = ("encoder_actor.",)


def canonical_weights(weights: dict[str, np.ndarray], cfg: SACConfig) -> dict[str, np.ndarray]:
    """Map aliased encoder keys onto `actor.encoder.*` / `critic_ensemble.encoder.*`; drop the critic encoder
    when the module does not use it (shared encoder, or no discrete critic)."""
    out = dict(weights)
    for aliases, target in ((ACTOR_ENCODER_ALIASES, "actor.encoder."),
                            (CRITIC_ENCODER_ALIASES, "critic_ensemble.encoder.")):
        for k in list(out):
            for a in aliases:
                if k.startswith(a):
                    v = out.pop(k)
                    out.setdefault(target + k[len(a):], v)
    if cfg.num_discrete_actions is None or cfg.shared_encoder:
        out = {k: v for k, v in out.items() if not k.startswith("critic_ensemble.encoder.")}
    if cfg.num_discrete_actions is None:
        out = {k: v for k, v in out.items() if not k.startswith("discrete_critic.")}
    return out


def _observations(cfg: SACConfig, names: list[str], ckpt: Checkpoint) -> dict[str, dict]:
    kinds = {"observation.state": "state", "observation.environment_state": "env_state"}
    return {k: {"kind": kinds.get(k, "image"), "shape": list(ckpt.input_features[k].shape), "graph_input": k}
            for k in names}


def build_plan(ckpt: Checkpoint) -> ExportPlan:
    cfg = SACConfig.from_checkpoint(ckpt)
    module = SACActorModule(cfg)
    weights = canonical_weights(ckpt.load_weights(), cfg)
    load_strict(module, weights, unused_prefixes=(*LEGACY_STAT_PREFIXES, *UNUSED), what=f"SAC {ckpt.path}")
    module.eval()
    obs = _observations(cfg, module.input_names, ckpt)
    inputs = [IOSpec(k, ("batch", *o["shape"])) for k, o in obs.items()]
    outputs = [IOSpec("mean", ("batch", cfg.action_dim)), IOSpec("std", ("batch", cfg.action_dim))]
    if cfg.num_discrete_actions is not None:
        outputs.append(IOSpec("discrete_q", ("batch", cfg.num_discrete_actions)))
    tol = {o.name: TOLERANCE[o.name] for o in outputs}
    graph = GraphPlan("sac_actor", module, inputs, outputs, tol, normal_sampler(inputs))
    keys = [*obs, "action"]
    pc = asdict(cfg)
    return ExportPlan(
        policy_type=ckpt.policy_type,   # "sac" (LeRobot 0.4) or "gaussian_actor" (0.6)
        policy_config={k: (list(v) if isinstance(v, tuple) else v) for k, v in pc.items()},
        graphs=[graph],
        observations=obs,
        action={"key": "action", "shape": [cfg.action_dim]},
        normalization={k: ckpt.norm_modes.get(k, "IDENTITY") for k in keys},
        stats={k: ckpt.stats[k] for k in keys if k in ckpt.stats},
        runtime={"kind": "sac", "sample": "mean", "action_dim": cfg.action_dim,
                 "num_discrete_actions": cfg.num_discrete_actions},
        legacy_stats=ckpt.legacy_stats,
        noise_shape=["batch", cfg.action_dim],
    )
