"""Pi0's graph plan: `vision` (one camera per call) -> `prefix` (KV cache) -> `denoise` (one Euler velocity),
and with `rtc_exact=True` a fourth graph `denoise_rtc` (velocity + the RTC VJP correction, see rtc_exact.py).

Weights load strictly; the allow-list: `…paligemma.lm_head.weight` may be present (and is the embedding table
when `…language_model.embed_tokens.weight` is absent, as LeRobot does at load), `…gemma_expert.lm_head.weight`
is unused.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np

from ...bundle import IOSpec
from ...checkpoint import LEGACY_STAT_PREFIXES, Checkpoint
from ...errors import CheckpointError
from ..common.weights import load_strict
from ..plan import ExportPlan, GraphPlan
from .config import PI0Config
from .model import DenoiseGraph, PI0Core, PI0Weights, PrefixGraph, VisionGraph
from .rtc_exact import exact_graph
from .validate import chunk_check

PG = "model.paligemma_with_expert.paligemma."
EMBED = PG + "model.language_model.embed_tokens.weight"
LM_HEADS = (PG + "lm_head.weight", "model.paligemma_with_expert.gemma_expert.lm_head.weight")
STATE = "observation.state"
TOL_TOKENS = {"atol": 1e-3, "min_cosine": 0.99999}
# one velocity on random KV/weights (activations O(10)); the 1e-4 contract is checked on the full chunk
TOL_ACTION = {"atol": 1e-3, "min_cosine": 0.99999}
DEFAULT_TOKENIZER = "google/paligemma-3b-pt-224"
EXPORT_OPTIONS = ("rtc_exact",)


def prepare_weights(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """LeRobot's load-time fix: the tied lm_head stands in for a missing embedding table."""
    if EMBED not in weights and LM_HEADS[0] in weights:
        weights[EMBED] = weights[LM_HEADS[0]]
    if EMBED not in weights:
        raise CheckpointError(f"pi0 checkpoint has neither {EMBED} nor {LM_HEADS[0]}")
    return weights


def load_core(ckpt: Checkpoint, cfg: PI0Config, core_cls=PI0Core):
    """Our modules with the checkpoint's weights. Built on the meta device and given the memory-mapped
    tensors themselves (assign): at full size (13 GB fp32) there is never a second copy of the weights."""
    import torch

    weights = prepare_weights(ckpt.load_weights(mmap=True))
    cfg.vocab_size = int(weights[EMBED].shape[0])
    with torch.device("meta"):
        root = PI0Weights(cfg, core_cls(cfg))
    load_strict(root, weights, unused_prefixes=(*LM_HEADS, *LEGACY_STAT_PREFIXES), what=f"{ckpt.policy_type} {ckpt.path}",
                assign=True)
    return root.eval().model


def tokenizer_settings(ckpt: Checkpoint, cfg) -> dict:
    """The saved preprocessor's tokenizer step (name, max_length, padding side); LeRobot's defaults otherwise."""
    p = ckpt.path / "policy_preprocessor.json"
    step = {}
    if p.is_file():
        for s in json.loads(p.read_text()).get("steps", []):
            if s.get("registry_name") == "tokenizer_processor":
                step = s.get("config") or {}
    return {"name": step.get("tokenizer_name") or DEFAULT_TOKENIZER,
            "max_length": int(step.get("max_length") or cfg.tokenizer_max_length),
            "padding_side": step.get("padding_side", "right")}


def graph_specs(cfg, n_cams: int, prefix_len: int, with_state: bool):
    """IO of the three graphs (shared by pi0 and pi05)."""
    d, v = cfg.vlm, cfg.vision
    kv = (d.depth, "batch", d.num_kv_heads, prefix_len, d.head_dim)
    vision = ([IOSpec("image", ("batch", 3, v.image_size, v.image_size))],
              [IOSpec("image_tokens", ("batch", v.num_patches, d.width))])
    prefix = ([IOSpec("image_tokens", ("batch", n_cams * v.num_patches, d.width)),
               IOSpec("image_mask", ("batch", n_cams)),
               IOSpec("lang_embeds", ("batch", prefix_len - n_cams * v.num_patches, d.width)),
               IOSpec("lang_mask", ("batch", prefix_len - n_cams * v.num_patches))],
              [IOSpec("k_cache", kv), IOSpec("v_cache", kv)])
    den_in = [IOSpec("x_t", ("batch", cfg.chunk_size, cfg.max_action_dim)), IOSpec("time_emb", ("batch", cfg.expert.width)),
              IOSpec("k_cache", kv), IOSpec("v_cache", kv), IOSpec("prefix_mask", ("batch", prefix_len))]
    if with_state:
        den_in.append(IOSpec("state", ("batch", cfg.max_state_dim)))
    return vision, prefix, (den_in, [IOSpec("v_t", ("batch", cfg.chunk_size, cfg.max_action_dim))])


def host_embeddings(core, file: str = "embedding.npy") -> tuple[dict, dict]:
    """The language embedding table as a bundle file the runtime memory-maps and gathers from (pi0's prefix
    graph takes embeddings, not ids). -> (ExportPlan.extra_files entry, runtime["embedding"] settings); the
    scale is sqrt(width) rounded to float32, as transformers multiplies in the table's dtype."""
    return embedding_file(core.paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight, file)


def embedding_file(table, file: str = "embedding.npy") -> tuple[dict, dict]:
    """host_embeddings for any (vocab, width) table parameter (pi0, pi05, SmolVLA)."""
    def write(path) -> None:
        np.save(path, table.detach().numpy(), allow_pickle=False)   # streams from the memory-mapped weights

    scale = float(np.float32(table.shape[1] ** 0.5))
    return {file: write}, {"file": file, "scale": scale, "rows": int(table.shape[0]), "width": int(table.shape[1])}


def vla_observations(ckpt: Checkpoint, cfg) -> dict:
    """The manifest's observation spec of a VLA: every camera feeds the per-camera `image` input (resized on the
    host, so any size is accepted), the state (when the checkpoint has one) the `state` input."""
    obs = {k: {"kind": "image", "shape": list(ckpt.input_features[k].shape), "graph_input": "image"}
           for k in cfg.image_keys}
    if cfg.state_dim:
        obs[STATE] = {"kind": "state", "shape": [cfg.state_dim], "graph_input": "state"}
    return obs


def sampler(inputs: list[IOSpec], vocab: int):
    """Seeded, non-trivial inputs for validation: masks keep the first row valid, tokens within the vocab."""
    def sample(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        out = {}
        for i in inputs:
            shape = tuple(batch if s == "batch" else s for s in i.shape)
            if i.dtype == "int64":
                out[i.name] = rng.integers(0, vocab, shape, dtype=np.int64)
            elif i.name.endswith("mask"):
                m = (rng.random(shape) < 0.7).astype(np.float32)
                m[..., 0] = 1.0
                out[i.name] = m
            elif i.name in ("image", "time_emb"):  # pixels in [-1, 1]; sin/cos values
                out[i.name] = rng.uniform(-1, 1, shape).astype(np.float32)
            else:
                out[i.name] = rng.standard_normal(shape).astype(np.float32)
        return out
    return sample


def flow_plan(ckpt: Checkpoint, cfg, core, model: str, denoise, with_state: bool, extra_runtime: dict,
              rtc_exact: bool = False) -> ExportPlan:
    """The ExportPlan of a pi-family checkpoint, given its core module and denoise graph (+ `denoise_rtc`)."""
    tok = tokenizer_settings(ckpt, cfg)
    n_cams, npatch = len(cfg.image_keys), cfg.vision.num_patches
    prefix_len = n_cams * npatch + tok["max_length"]
    (vi, vo), (pi, po), (di, do) = graph_specs(cfg, n_cams, prefix_len, with_state)
    graphs = [GraphPlan("vision", VisionGraph(core), vi, vo, {"image_tokens": TOL_TOKENS}, sampler(vi, cfg.vocab_size)),
              GraphPlan("prefix", PrefixGraph(core, npatch), pi, po, {"k_cache": TOL_TOKENS, "v_cache": TOL_TOKENS},
                        sampler(pi, cfg.vocab_size)),
              GraphPlan("denoise", denoise, di, do, {"v_t": TOL_ACTION}, sampler(di, cfg.vocab_size))]
    if rtc_exact:
        graphs.append(exact_graph(graphs[-1], cfg.chunk_size, cfg.max_action_dim))
    obs = vla_observations(ckpt, cfg)
    keys = [*obs, "action"]
    rtc = dict(cfg.rtc_config or {})
    embed_files, embedding = host_embeddings(core)
    runtime = {"kind": "flow", "model": model, "chunk_size": cfg.chunk_size, "n_action_steps": cfg.n_action_steps,
               "num_inference_steps": cfg.num_inference_steps, "max_state_dim": cfg.max_state_dim,
               "max_action_dim": cfg.max_action_dim, "min_period": cfg.min_period,
               "max_period": cfg.max_period, "image_size": cfg.vision.image_size, "padding": "center",
               "tokenizer": {"file": "tokenizer.json", "source": tok["name"], "max_length": tok["max_length"],
                             "padding_side": tok["padding_side"]},
               "rtc": {"enabled": bool(rtc.get("enabled", False)),
                       "prefix_attention_schedule": str(rtc.get("prefix_attention_schedule", "LINEAR")).upper(),
                       "max_guidance_weight": float(rtc.get("max_guidance_weight", 10.0)),
                       "execution_horizon": int(rtc.get("execution_horizon", 10))},
               "rtc_exact": bool(rtc_exact), "embedding": embedding,
               **extra_runtime}
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}
    return ExportPlan(policy_type=ckpt.policy_type, policy_config=config, graphs=graphs, observations=obs,
                      action={"key": "action", "shape": [cfg.action_dim]},
                      normalization={k: ckpt.norm_modes.get(k, "IDENTITY") for k in keys},
                      stats={k: ckpt.stats[k] for k in keys if k in ckpt.stats}, runtime=runtime,
                      noise_shape=["batch", cfg.chunk_size, cfg.max_action_dim],
                      extra={"tokenizer": tok["name"]}, end_to_end=chunk_check(graphs), extra_files=embed_files)


def build_plan(ckpt: Checkpoint, rtc_exact: bool = False) -> ExportPlan:
    cfg = PI0Config.from_checkpoint(ckpt)
    core = load_core(ckpt, cfg)
    return flow_plan(ckpt, cfg, core, "pi0", DenoiseGraph(core, cfg), True, {"append_newline": True}, rtc_exact)
