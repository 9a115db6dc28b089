"""SmolVLA's graph plan: `vision` (one camera per call) -> `prefix` (images + language + state -> KV cache) ->
`denoise` (one Euler velocity with the cross/self attention pattern), run by the flow-matching runtime.

Language length: the bundle pads the prompt to `tokenizer_max_length` (a fixed shape for engines) and lets the
mask do the work; LeRobot pads to the longest prompt of the batch, which gives the same chunk (padded tokens
are never attended and take no position; tests/test_smolvla.py and the LeRobot parity check it).

Weights load strictly; the allow-list: `model.vlm_with_expert.vlm.lm_head.weight` (unused; the embedding table
when `…text_model.embed_tokens.weight` is absent, tied weights saved once).
"""

from __future__ import annotations

from dataclasses import asdict

from ...bundle import IOSpec
from ...checkpoint import LEGACY_STAT_PREFIXES, Checkpoint
from ...errors import CheckpointError
from ..common.weights import load_strict
from ..common.rtc_exact import exact_graph
from ..common.vla import (FLOW_CHUNK_CHECK, TOL_ACTION, TOL_TOKENS, embedding_file, frame_steps, rtc_settings,
                          sampler, tokenizer_settings, vla_observations)
from ..plan import ExportPlan, GraphPlan
from .config import SmolVLAConfig
from .model import DenoiseGraph, PrefixGraph, SmolVLACore, SmolVLAWeights, VisionGraph

VLM = "model.vlm_with_expert.vlm."
EMBED = VLM + "model.text_model.embed_tokens.weight"
LM_HEAD = VLM + "lm_head.weight"


def load_core(ckpt: Checkpoint, cfg: SmolVLAConfig) -> SmolVLACore:
    """Our modules on the meta device given the checkpoint's memory-mapped tensors (assign): no second copy."""
    import torch

    weights = ckpt.load_weights(mmap=True)
    if EMBED not in weights and LM_HEAD in weights:  # tied weights saved under the head's name only
        weights[EMBED] = weights[LM_HEAD]
    if EMBED not in weights:
        raise CheckpointError(f"smolvla checkpoint has neither {EMBED} nor {LM_HEAD}")
    if weights[EMBED].shape[0] != cfg.vlm.vocab_size:
        raise CheckpointError(f"smolvla: the embedding table has {weights[EMBED].shape[0]} rows but the VLM config "
                              f"({cfg.vlm_model_name}) says vocab_size {cfg.vlm.vocab_size}: wrong --vlm?")
    with torch.device("meta"):
        root = SmolVLAWeights(cfg)
    load_strict(root, weights, unused_prefixes=(LM_HEAD, *LEGACY_STAT_PREFIXES), what=f"smolvla {ckpt.path}",
                assign=True)
    return root.eval().model


def graph_specs(cfg: SmolVLAConfig, n_cams: int, lang_len: int):
    """IO of the three graphs. P = n_cams * tokens_per_image + lang_len + 1 (the state token)."""
    t, n = cfg.text, cfg.tokens_per_image
    p = n_cams * n + lang_len + 1
    kv = (t.depth, "batch", t.num_kv_heads, p, t.head_dim)
    vision = ([IOSpec("image", ("batch", 3, cfg.image_size, cfg.image_size))],
              [IOSpec("image_tokens", ("batch", n, t.width))])
    prefix = ([IOSpec("image_tokens", ("batch", n_cams * n, t.width)), IOSpec("image_mask", ("batch", n_cams)),
               IOSpec("lang_embeds", ("batch", lang_len, t.width)), IOSpec("lang_mask", ("batch", lang_len)),
               IOSpec("state", ("batch", cfg.max_state_dim))],
              [IOSpec("k_cache", kv), IOSpec("v_cache", kv)])
    denoise = ([IOSpec("x_t", ("batch", cfg.chunk_size, cfg.max_action_dim)),
                IOSpec("time_emb", ("batch", cfg.expert.width)), IOSpec("k_cache", kv), IOSpec("v_cache", kv),
                IOSpec("prefix_mask", ("batch", p))],
               [IOSpec("v_t", ("batch", cfg.chunk_size, cfg.max_action_dim))])
    return vision, prefix, denoise


def runtime_settings(cfg: SmolVLAConfig, tok: dict) -> dict:
    return {"kind": "flow", "model": "smolvla", "chunk_size": cfg.chunk_size, "n_action_steps": cfg.n_action_steps,
            "num_inference_steps": cfg.num_steps, "max_state_dim": cfg.max_state_dim,
            "max_action_dim": cfg.max_action_dim, "min_period": cfg.min_period, "max_period": cfg.max_period,
            "image_size": cfg.image_size, "padding": "top_left", "clamp": False, "append_newline": True,
            "state_token": True,  # the state is the prefix's last token (prefix graph input, one mask column)
            "tokenizer": {"file": "tokenizer.json", "source": tok["name"], "max_length": tok["max_length"],
                          "padding_side": tok["padding_side"], "lerobot_padding": cfg.pad_language_to},
            "rtc": rtc_settings(cfg.rtc_config)}


def build_plan(ckpt: Checkpoint, vlm: str | None = None, rtc_exact: bool = False) -> ExportPlan:
    """rtc_exact: also the `denoise_rtc` graph (velocity + the exact RTC vector-Jacobian product, common/rtc_exact.py)."""
    cfg = SmolVLAConfig.from_checkpoint(ckpt, vlm)
    core = load_core(ckpt, cfg)
    # LeRobot tokenizes with vlm_model_name's tokenizer (and so with --vlm's), whatever the processor recorded
    tok = tokenizer_settings(ckpt, cfg, vlm or cfg.vlm_model_name)
    if vlm:
        tok["name"] = vlm
    (vi, vo), (pi, po), (di, do) = graph_specs(cfg, len(cfg.image_keys), tok["max_length"])
    vocab = cfg.vlm.vocab_size
    graphs = [GraphPlan("vision", VisionGraph(core), vi, vo, {"image_tokens": TOL_TOKENS}, sampler(vi, vocab)),
              GraphPlan("prefix", PrefixGraph(core, cfg), pi, po, {"k_cache": TOL_TOKENS, "v_cache": TOL_TOKENS},
                        sampler(pi, vocab)),
              GraphPlan("denoise", DenoiseGraph(core, cfg), di, do, {"v_t": TOL_ACTION}, sampler(di, vocab))]
    if rtc_exact:
        graphs.append(exact_graph(graphs[-1], cfg.chunk_size, cfg.max_action_dim))
    obs = vla_observations(ckpt, cfg)
    keys = [*obs, "action"]
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items() if k != "vlm"}
    config["vlm_dims"] = asdict(cfg.vlm)
    embed_files, embedding = embedding_file(core.vlm_with_expert.vlm.model.text_model.embed_tokens.weight)
    config["vlm_source"] = vlm or cfg.vlm_model_name   # `validate` rebuilds the plan from the same VLM config
    return ExportPlan(policy_type=ckpt.policy_type, policy_config=config, graphs=graphs, observations=obs,
                      action={"key": "action", "shape": [cfg.action_dim]},
                      normalization={k: ckpt.norm_modes.get(k, "IDENTITY") for k in keys},
                      stats={k: ckpt.stats[k] for k in keys if k in ckpt.stats},
                      runtime={**runtime_settings(cfg, tok), "rtc_exact": bool(rtc_exact), "embedding": embedding}, noise_shape=["batch", cfg.chunk_size, cfg.max_action_dim],
                      extra={"tokenizer": tok["name"], "vlm": vlm or cfg.vlm_model_name}, end_to_end=FLOW_CHUNK_CHECK, extra_files=embed_files,
                      frame_steps=frame_steps(runtime_settings(cfg, tok)))
