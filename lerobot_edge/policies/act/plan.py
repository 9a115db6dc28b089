"""ACT's graph plan: one graph, `act`, from normalized observations to the normalized action chunk."""

from __future__ import annotations

from dataclasses import asdict


from ...bundle import IOSpec
from ...checkpoint import LEGACY_STAT_PREFIXES, Checkpoint
from ..common.weights import load_strict
from ..plan import ExportPlan, GraphPlan, normal_sampler
from .config import ACTConfig
from .model import ACTPolicyModule

STATE, ENV = "observation.state", "observation.environment_state"
# fp32 gate, normalized action units (the contract's 1e-4 for a full chunk)
TOLERANCE = {"action": {"atol": 1e-4, "min_cosine": 0.99999}}


def _observations(ckpt: Checkpoint, cfg: ACTConfig) -> dict[str, dict]:
    obs = {}
    if cfg.state_dim:
        obs[STATE] = {"kind": "state", "shape": [cfg.state_dim], "graph_input": STATE}
    if cfg.env_state_dim:
        obs[ENV] = {"kind": "env_state", "shape": [cfg.env_state_dim], "graph_input": ENV}
    for key in ckpt.image_keys:
        obs[key] = {"kind": "image", "shape": list(ckpt.input_features[key].shape), "graph_input": key}
    return obs


def build_plan(ckpt: Checkpoint) -> ExportPlan:
    cfg = ACTConfig.from_checkpoint(ckpt)
    module = ACTPolicyModule(cfg)
    load_strict(module, ckpt.load_weights(), unused_prefixes=LEGACY_STAT_PREFIXES, what=f"ACT {ckpt.path}")
    module.eval()
    obs = _observations(ckpt, cfg)
    inputs = [IOSpec(o["graph_input"], ("batch", *o["shape"])) for o in obs.values()]
    outputs = [IOSpec("action", ("batch", cfg.chunk_size, cfg.action_dim))]
    graph = GraphPlan("act", module, inputs, outputs, TOLERANCE, normal_sampler(inputs))
    keys = [*obs, "action"]
    return ExportPlan(
        policy_type="act",
        policy_config={k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        graphs=[graph],
        observations=obs,
        action={"key": "action", "shape": [cfg.action_dim]},
        normalization={k: ckpt.norm_modes.get(k, "IDENTITY") for k in keys},
        stats={k: ckpt.stats[k] for k in keys if k in ckpt.stats},
        runtime={"kind": "act", "chunk_size": cfg.chunk_size, "n_action_steps": cfg.n_action_steps,
                 "temporal_ensemble_coeff": cfg.temporal_ensemble_coeff},
        legacy_stats=ckpt.legacy_stats,
    )
