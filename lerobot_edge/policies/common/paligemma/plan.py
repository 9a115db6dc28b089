"""The pi family's graph plan (pi0, pi05): `vision` (one camera per call) -> `prefix` (KV cache) -> `denoise`
(one Euler velocity), and with `rtc_exact=True` a fourth graph `denoise_rtc` (velocity + the RTC VJP correction,
common/rtc_exact.py). Each policy gives its core module and its denoise graph (policies/pi0, policies/pi05).
"""

from __future__ import annotations

from dataclasses import asdict

from ....bundle import IOSpec
from ....checkpoint import Checkpoint
from ...plan import ExportPlan, GraphPlan
from ..rtc_exact import exact_graph
from ..vla import (FLOW_CHUNK_CHECK, TOL_ACTION, TOL_TOKENS, embedding_file, frame_steps, rtc_settings,
                   sampler, tokenizer_settings, vla_observations)
from .config import PiConfig
from .model import PrefixGraph, VisionGraph

DEFAULT_TOKENIZER = "google/paligemma-3b-pt-224"


def graph_specs(cfg: PiConfig, n_cams: int, prefix_len: int, with_state: bool):
    """IO of the three graphs."""
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
    """PaliGemma's language embedding table as a bundle file gathered on the host (vla.embedding_file)."""
    return embedding_file(core.paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight, file)


def pi_plan(ckpt: Checkpoint, cfg: PiConfig, core, model: str, denoise, with_state: bool, extra_runtime: dict,
            rtc_exact: bool = False) -> ExportPlan:
    """The ExportPlan of a pi-family checkpoint, given its core module and denoise graph (+ `denoise_rtc`)."""
    tok = tokenizer_settings(ckpt, cfg, DEFAULT_TOKENIZER)
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
    embed_files, embedding = host_embeddings(core)
    runtime = {"kind": "flow", "model": model, "chunk_size": cfg.chunk_size, "n_action_steps": cfg.n_action_steps,
               "num_inference_steps": cfg.num_inference_steps, "max_state_dim": cfg.max_state_dim,
               "max_action_dim": cfg.max_action_dim, "min_period": cfg.min_period,
               "max_period": cfg.max_period, "image_size": cfg.vision.image_size, "padding": "center",
               "tokenizer": {"file": "tokenizer.json", "source": tok["name"], "max_length": tok["max_length"],
                             "padding_side": tok["padding_side"]},
               "rtc": rtc_settings(cfg.rtc_config), "rtc_exact": bool(rtc_exact), "embedding": embedding,
               **extra_runtime}
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}
    return ExportPlan(policy_type=ckpt.policy_type, policy_config=config, graphs=graphs, observations=obs,
                      action={"key": "action", "shape": [cfg.action_dim]},
                      normalization={k: ckpt.norm_modes.get(k, "IDENTITY") for k in keys},
                      stats={k: ckpt.stats[k] for k in keys if k in ckpt.stats}, runtime=runtime,
                      noise_shape=["batch", cfg.chunk_size, cfg.max_action_dim],
                      extra={"tokenizer": tok["name"]}, end_to_end=FLOW_CHUNK_CHECK, extra_files=embed_files,
                      frame_steps=frame_steps(runtime))
