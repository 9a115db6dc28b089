"""VQ-BeT's graph plan: `policy` (normalized observation history -> code logits + offsets of the current
step) and `decode` (one-hot codes -> VQ-VAE decoder output). Code sampling, offsets and the action queue are
the runtime's (runtime/vqbet.py)."""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict

import numpy as np

from ...bundle import IOSpec
from ...checkpoint import LEGACY_STAT_PREFIXES, Checkpoint
from ..common.weights import load_strict
from ...runtime.observations import random_batch
from ..plan import Call, ChunkCheck, ExportPlan, GraphPlan, normal_sampler
from .config import N_VQ_LAYERS, STATE, VQBeTConfig
from .model import DecodeGraph, PolicyGraph, VQBeTPolicyModule

TOL = {"atol": 1e-4, "min_cosine": 0.99999}
CHECK_SEED, CHECK_DRAWS = 20240603, 4     # the end-to-end check: uniforms per observation (several codes)
DISCRETIZED = "vqbet.action_head.vqvae_model.discretized"
# trained but unused at inference: the VQ-VAE's action encoder, the codebooks' EMA statistics, flags and the
# training targets' index table
UNUSED = re.compile(r"vqbet\.(action_head\.vqvae_model\.(encoder\..*|discretized|vq_layer\.freeze_codebook|"
                    r"vq_layer\.layers\.\d+\._codebook\.(initted|cluster_size|embed_avg))|"
                    r"select_target_actions_indices)")


def inference_weights(weights: dict[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    """Drop the training-only tensors; warn, as LeRobot's select_action does, when the VQ-VAE was never
    discretized (its codebooks are then untrained and the actions meaningless)."""
    flag = weights.get(DISCRETIZED)
    if flag is not None and not bool(np.asarray(flag).item()):
        warnings.warn(f"{what}: the residual VQ-VAE is not discretized (training phase 1 did not finish); "
                      "LeRobot warns that such a VQ-BeT cannot be evaluated", stacklevel=3)
    return {k: v for k, v in weights.items() if not UNUSED.fullmatch(k)}


def _observations(cfg: VQBeTConfig) -> dict[str, dict]:
    return {STATE: {"kind": "state", "shape": [cfg.state_dim], "graph_input": STATE},
            cfg.image_key: {"kind": "image", "shape": list(cfg.image_shape), "graph_input": cfg.image_key}}


def _graphs(cfg: VQBeTConfig, policy: VQBeTPolicyModule) -> list[GraphPlan]:
    s, g, k = cfg.n_obs_steps, N_VQ_LAYERS, cfg.vqvae_n_embed
    ins = [IOSpec(STATE, ("batch", s, cfg.state_dim)), IOSpec(cfg.image_key, ("batch", s, *cfg.image_shape))]
    logits = ([IOSpec("primary_logits", ("batch", k)), IOSpec("secondary_logits", ("batch", k, k))]
              if cfg.sequentially_select else [IOSpec("code_logits", ("batch", g, k))])
    outs = [*logits, IOSpec("offsets", ("batch", g, k, cfg.action_chunk_size, cfg.action_dim))]
    dec_in = [IOSpec("codes_onehot", ("batch", g, k))]
    dec_out = [IOSpec("decoded", ("batch", cfg.action_chunk_size, cfg.action_dim))]
    return [GraphPlan("policy", PolicyGraph(policy), ins, outs, {o.name: TOL for o in outs}, normal_sampler(ins)),
            GraphPlan("decode", DecodeGraph(policy), dec_in, dec_out, {"decoded": TOL}, normal_sampler(dec_in))]


def _chunk_calls(bundle, rng: np.random.Generator) -> list[Call]:
    """Several chunks of one observation with different uniforms (B=1): a code drawn differently on the engine
    (logits that moved across a draw's boundary) shows up as an action error."""
    obs = random_batch(bundle.manifest["observations"], rng, 1)
    shape = (1, *bundle.manifest["noise_shape"][1:])                                     # (1, n_vq_layers)
    return [Call(obs, {"noise": rng.random(shape)}) for _ in range(CHECK_DRAWS)]


def build_plan(ckpt: Checkpoint) -> ExportPlan:
    cfg = VQBeTConfig.from_checkpoint(ckpt)
    policy = VQBeTPolicyModule(cfg)
    what = f"VQ-BeT {ckpt.path}"
    load_strict(policy, inference_weights(ckpt.load_weights(), what), unused_prefixes=LEGACY_STAT_PREFIXES,
                what=what)
    policy.eval()
    obs = _observations(cfg)
    keys = [*obs, "action"]
    runtime = {"kind": "vqbet", "n_obs_steps": cfg.n_obs_steps, "action_chunk_size": cfg.action_chunk_size,
               "n_action_steps": cfg.action_chunk_size, "action_dim": cfg.action_dim, "n_codes": cfg.vqvae_n_embed,
               "n_vq_layers": N_VQ_LAYERS, "temperature": cfg.bet_softmax_temperature,
               "sequentially_select": cfg.sequentially_select, "sampling": "sample", "noise": "uniform"}
    graphs = _graphs(cfg, policy)
    return ExportPlan(
        policy_type="vqbet",
        policy_config={k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        graphs=graphs, observations=obs, action={"key": "action", "shape": [cfg.action_dim]},
        normalization={k: ckpt.norm_modes.get(k, "IDENTITY") for k in keys},
        stats={k: ckpt.stats[k] for k in keys if k in ckpt.stats},
        runtime=runtime, legacy_stats=ckpt.legacy_stats,
        noise_shape=["batch", N_VQ_LAYERS],   # one U[0, 1) draw per residual-VQ layer (inverse CDF)
        end_to_end=ChunkCheck(_chunk_calls, CHECK_SEED),   # sampled chunks with shared draws
    )
