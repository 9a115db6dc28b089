"""SAC's graph plan: one graph, `sac_actor`, normalized observations -> mean, std [, discrete_q].

Critics, target networks and the temperature are not exported; their keys are allow-listed by name pattern
(`UNUSED_PATTERNS`), whether or not torch.compile left `_orig_mod` in them.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from ...bundle import IOSpec
from ...checkpoint import LEGACY_STAT_PREFIXES, Checkpoint
from ..common.weights import load_strict, strip_compile
from ..plan import ExportPlan, GraphPlan, normal_sampler
from .config import SACConfig
from .model import SACActorModule

# fp32 gate, normalized action units (mean/std before tanh; q-values of the discrete critic)
TOLERANCE = {"mean": {"atol": 1e-4, "min_cosine": 0.99999}, "std": {"atol": 1e-4, "min_cosine": 0.99999},
             "discrete_q": {"atol": 1e-4, "min_cosine": 0.99999}}
# trained but unused at inference, allow-listed by full name (matched once torch.compile's `_orig_mod` is taken
# out, wherever it sits): the Q ensemble and its target (LeRobot compiles both by default), the discrete
# critic's target and the temperature. Any other key the actor module does not use is an error naming it.
_HEAD = r"(net\.net\.\d+|output_layer)\.(weight|bias)"       # a critic MLP: Linear/LayerNorm layers + output
UNUSED_PATTERNS = (rf"critic_ensemble\.critics\.\d+\.{_HEAD}", rf"critic_target\.critics\.\d+\.{_HEAD}",
                   rf"discrete_critic_target\.{_HEAD}", r"log_alpha")
# names under which LeRobot's de-duplicating save may keep the (non-shared) critic / actor encoders
CRITIC_ENCODER_ALIASES = ("encoder_critic.", "discrete_critic.encoder.", "critic_target.encoder.",
                          "discrete_critic_target.encoder.")
ACTOR_ENCODER_ALIASES = ("encoder_actor.",)
_ALIASES = ((ACTOR_ENCODER_ALIASES, "actor.encoder."), (CRITIC_ENCODER_ALIASES, "critic_ensemble.encoder."))


def _alias_target(name: str) -> str | None:
    """The canonical name of an aliased encoder key (`encoder_critic.x` -> `critic_ensemble.encoder.x`)."""
    for aliases, target in _ALIASES:
        for a in aliases:
            if name.startswith(a):
                return target + name[len(a):]
    return None


def canonical_weights(weights: dict[str, np.ndarray], cfg: SACConfig) -> dict[str, np.ndarray]:
    """Map aliased encoder keys onto `actor.encoder.*` / `critic_ensemble.encoder.*` (a canonical key already
    present wins); drop the critic encoder when the module does not use it (shared encoder, or no discrete
    critic). Names are compared without `_orig_mod`; the keys that stay keep the file's spelling, so an error
    names a key as saved."""
    out: dict[str, np.ndarray] = {}
    names: set[str] = set()
    aliased: list[tuple[str, np.ndarray]] = []
    for k, v in weights.items():
        target = _alias_target(strip_compile(k))
        if target is None:
            out[k] = v
            names.add(strip_compile(k))
        else:
            aliased.append((target, v))
    for target, v in aliased:
        if target not in names:
            out[target] = v
            names.add(target)
    drop = (("critic_ensemble.encoder.",) if cfg.num_discrete_actions is None or cfg.shared_encoder else ()) + \
           (("discrete_critic.",) if cfg.num_discrete_actions is None else ())
    return {k: v for k, v in out.items() if not strip_compile(k).startswith(drop)}


def _observations(cfg: SACConfig, names: list[str], ckpt: Checkpoint) -> dict[str, dict]:
    kinds = {"observation.state": "state", "observation.environment_state": "env_state"}
    return {k: {"kind": kinds.get(k, "image"), "shape": list(ckpt.input_features[k].shape), "graph_input": k}
            for k in names}


def build_plan(ckpt: Checkpoint) -> ExportPlan:
    cfg = SACConfig.from_checkpoint(ckpt)
    module = SACActorModule(cfg)
    weights = canonical_weights(ckpt.load_weights(), cfg)
    load_strict(module, weights, unused_prefixes=LEGACY_STAT_PREFIXES, unused_patterns=UNUSED_PATTERNS,
                what=f"SAC {ckpt.path}")
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
