"""Pi-family test fixtures without LeRobot: a synthetic tokenizer directory (built with `tokenizers`) and a
reduced pi0 checkpoint in LeRobot 0.6's on-disk layout (dummy Gemma for VLM and expert, a tiny SigLIP through
the test-only `edge_vision_config`). Used by the default suite and by scripts/lerobot_reference_pi.py (which
imports only `write_tokenizer` from here: numpy + tokenizers)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .layout import random_weights, write_vla_processors

WORDS = ("pick put place the a an red blue green cube block bowl up down left right into on of and to grasp "
         "open close drawer move arm gripper task state action").split()
TINY_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}


def write_tokenizer(d: Path, vocab_size: int = 1024) -> Path:
    """tokenizer.json + tokenizer_config.json: a word/char-level tokenizer that prepends <bos> (as PaliGemma's
    does), keeps "\\n" and spaces as tokens, and has exactly `vocab_size` entries (the real pi size: 257,152)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors

    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    vocab_list = specials + [w for w in WORDS] + [c for c in chars if c not in WORDS]
    vocab_list += [f"<unused{i}>" for i in range(vocab_size - len(vocab_list))]
    vocab = {tok: i for i, tok in enumerate(vocab_list[:vocab_size])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[a-z]+|[^a-z]"), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])])
    tok.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "pad_token": "<pad>", "bos_token": "<bos>",
        "eos_token": "<eos>", "unk_token": "<unk>", "add_bos_token": True, "model_max_length": 1 << 20}))
    (d / "special_tokens_map.json").write_text(json.dumps({"pad_token": "<pad>", "bos_token": "<bos>",
                                                            "eos_token": "<eos>", "unk_token": "<unk>"}))
    return d


def pi0_config_body(cameras: dict[str, tuple], state_dim: int, action_dim: int, tokenizer_max_length: int = 12,
                    chunk_size: int = 8, rtc: dict | None = None, kind: str = "pi0") -> dict:
    """config.json of a reduced pi0 / pi05 (LeRobot 0.6 field names)."""
    quant = kind == "pi05"
    feats = {"observation.state": {"type": "STATE", "shape": [state_dim]},
             **{k: {"type": "VISUAL", "shape": list(s)} for k, s in cameras.items()}}
    return {"type": kind, "n_obs_steps": 1, "input_features": feats,
            "output_features": {"action": {"type": "ACTION", "shape": [action_dim]}}, "device": "cpu",
            "use_amp": False, "paligemma_variant": "dummy", "action_expert_variant": "dummy", "dtype": "float32",
            "chunk_size": chunk_size, "n_action_steps": chunk_size, "max_state_dim": 32, "max_action_dim": 32,
            "num_inference_steps": 10, "min_period": 4e-3, "max_period": 4.0, "rtc_config": rtc,
            "image_resolution": [224, 224], "empty_cameras": 0, "tokenizer_max_length": tokenizer_max_length,
            "normalization_mapping": {"VISUAL": "IDENTITY", "STATE": "QUANTILES" if quant else "MEAN_STD",
                                      "ACTION": "QUANTILES" if quant else "MEAN_STD"},
            "edge_vision_config": dict(TINY_VISION)}


def write_pi0_checkpoint(d: Path, tokenizer_dir: Path, *, cameras: dict[str, tuple] | None = None,
                         state_dim: int = 6, action_dim: int = 5, seed: int = 0, vocab_size: int = 1024,
                         tie_embeddings: bool = True, kind: str = "pi0", **config) -> Path:
    """A reduced pi0 (or pi05: kind="pi05") checkpoint; with tie_embeddings the embedding table is stored only as lm_head (as
    LeRobot's save does for tied weights)."""
    import torch

    from lerobot_edge.policies.common.paligemma.config import PiConfig as PI0Config
    from lerobot_edge.policies.common.paligemma.model import PiWeights as PI0Weights
    from lerobot_edge.policies.pi0.model import PI0Core
    from lerobot_edge.policies.pi05.model import PI05Core

    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    cameras = cameras or {"observation.images.top": (3, 96, 128), "observation.images.wrist": (3, 64, 64)}
    body = pi0_config_body(cameras, state_dim, action_dim, kind=kind, **config)
    (d / "config.json").write_text(json.dumps(body, indent=2))
    ours = PI0Config(state_dim=state_dim, action_dim=action_dim, image_keys=tuple(cameras), vocab_size=vocab_size,
                     **{k: (tuple(v) if isinstance(v, list) else v) for k, v in body.items()
                        if k in PI0Config.__dataclass_fields__ and k not in ("state_dim", "action_dim")})
    with torch.device("meta"):
        core = (PI05Core if kind == "pi05" else PI0Core)(ours)
        shapes = {k: tuple(v.shape) for k, v in PI0Weights(ours, core).state_dict().items()}
    weights = random_weights(shapes, seed)
    for k in weights:  # Gemma stores RMSNorm scales as offsets (x * (1 + w)): keep the scale near 1
        if k.endswith("norm.weight") and ("language_model" in k or "gemma_expert" in k):
            weights[k] = weights[k] - np.float32(1.0)
    embed = "model.paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight"
    if tie_embeddings:
        weights["model.paligemma_with_expert.paligemma.lm_head.weight"] = weights.pop(embed)
    from safetensors.numpy import save_file
    save_file(weights, str(d / "model.safetensors"))
    write_vla_processors(d, body, tokenizer_dir, seed)
    return d


def _with_tokenizer(d: Path, **kw) -> Path:
    """A pi checkpoint whose synthetic tokenizer lives beside it (<dir>-tokenizer)."""
    d = Path(d)
    return write_pi0_checkpoint(d, write_tokenizer(d.parent / f"{d.name}-tokenizer"), **kw)


def tiny_pi0(d: Path) -> Path:
    """The suites' tiny pi0 (openpi's `dummy` Gemma, a small SigLIP)."""
    return _with_tokenizer(d)


def tiny_pi05(d: Path) -> Path:
    """The suites' tiny pi0.5 (prompt of 64 tokens: the discretized state goes into it)."""
    return _with_tokenizer(d, kind="pi05", tokenizer_max_length=64, seed=1)


def reduced_pi0(d: Path) -> Path:
    """The bench's reduced pi0 (openpi's `dummy` Gemma variants and a small SigLIP, 2 cameras: CI size)."""
    return _with_tokenizer(d, kind="pi0")


def reduced_pi05(d: Path) -> Path:
    """The bench's reduced pi0.5."""
    return _with_tokenizer(d, kind="pi05")
