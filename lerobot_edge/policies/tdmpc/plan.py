"""TDMPC's graph plan: encoder, pi, and (use_mpc) the planner's pi_rollout and value graphs.

The target model (`model_target.*`) is not exported; its keys are allow-listed.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from ...bundle import IOSpec
from ...checkpoint import LEGACY_STAT_PREFIXES, Checkpoint
from ..common.weights import load_strict
from ..plan import ExportPlan, GraphPlan
from .config import TDMPCConfig
from .model import EncoderGraph, PiGraph, PiRolloutGraph, TDMPCModule, ValueGraph

TOL = {"atol": 1e-4, "min_cosine": 0.99999}
UNUSED = ("model_target.",)


def _observations(cfg: TDMPCConfig, ckpt: Checkpoint) -> dict[str, dict]:
    obs = {}
    if cfg.state_dim:
        obs["observation.state"] = {"kind": "state", "shape": [cfg.state_dim], "graph_input": "observation.state"}
    if cfg.env_state_dim:
        obs["observation.environment_state"] = {"kind": "env_state", "shape": [cfg.env_state_dim],
                                                "graph_input": "observation.environment_state"}
    if cfg.image_key:
        obs[cfg.image_key] = {"kind": "image", "shape": list(cfg.image_shape), "graph_input": cfg.image_key}
    return obs


def _normal(shapes: dict[str, tuple], uniform: tuple[str, ...] = ()):
    """Seeded inputs: N(0, 1), except latents in (0, 1) (the encoder ends in a sigmoid) and actions in [-1, 1]."""
    def sample(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        out = {}
        for name, shape in shapes.items():
            s = tuple(batch if d == "batch" else d for d in shape)
            out[name] = (rng.uniform(0, 1, s) if name == "z" else rng.uniform(-1, 1, s) if name in uniform
                         else rng.standard_normal(s)).astype(np.float32)
        return out
    return sample


def _graphs(m: TDMPCModule, cfg: TDMPCConfig, obs: dict[str, dict]) -> list[GraphPlan]:
    D, A, H, Q = cfg.latent_dim, cfg.action_dim, cfg.horizon, cfg.q_ensemble_size
    names = list(obs)
    enc_in = {k: ("batch", *o["shape"]) for k, o in obs.items()}
    graphs = [
        GraphPlan("encoder", EncoderGraph(m, names).eval(), [IOSpec(k, s) for k, s in enc_in.items()],
                  [IOSpec("z", ("batch", D))], {"z": TOL}, _normal(enc_in)),
        GraphPlan("pi", PiGraph(m).eval(), [IOSpec("z", ("batch", D))], [IOSpec("action", ("batch", A))],
                  {"action": TOL}, _normal({"z": ("batch", D)})),
    ]
    if cfg.use_mpc:
        roll = {"z": ("batch", D), "noise": (H, "batch", A)}
        val = {"z": ("batch", D), "actions": (H, "batch", A), "noise": ("batch", A)}
        graphs += [
            GraphPlan("pi_rollout", PiRolloutGraph(m).eval(), [IOSpec(k, s) for k, s in roll.items()],
                      [IOSpec("actions", (H, "batch", A))], {"actions": TOL}, _normal(roll)),
            GraphPlan("value", ValueGraph(m).eval(), [IOSpec(k, s) for k, s in val.items()],
                      [IOSpec("G", ("batch",)), IOSpec("terminal_q", (Q, "batch"))],
                      {"G": TOL, "terminal_q": TOL}, _normal(val, uniform=("actions",))),
        ]
    return graphs


def build_plan(ckpt: Checkpoint) -> ExportPlan:
    cfg = TDMPCConfig.from_checkpoint(ckpt)
    module = TDMPCModule(cfg)
    load_strict(module, ckpt.load_weights(), unused_prefixes=(*LEGACY_STAT_PREFIXES, *UNUSED),
                what=f"TDMPC {ckpt.path}")
    module.eval()
    obs = _observations(cfg, ckpt)
    keys = [*obs, "action"]
    runtime = {k: getattr(cfg, k) for k in (
        "action_dim", "horizon", "n_action_steps", "n_action_repeats", "cem_iterations", "max_std", "min_std",
        "n_gaussian_samples", "n_pi_samples", "n_elites", "elite_weighting_temperature", "gaussian_mean_momentum",
        "discount", "uncertainty_regularizer_coeff", "q_ensemble_size")}
    return ExportPlan(
        policy_type="tdmpc",
        policy_config={k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        graphs=_graphs(module, cfg, obs),
        observations=obs,
        action={"key": "action", "shape": [cfg.action_dim]},
        normalization={k: ckpt.norm_modes.get(k, "IDENTITY") for k in keys},
        stats={k: ckpt.stats[k] for k in keys if k in ckpt.stats},
        runtime={"kind": "tdmpc", "planner": "mpc" if cfg.use_mpc else "pi", **runtime},
        legacy_stats=ckpt.legacy_stats,
    )
