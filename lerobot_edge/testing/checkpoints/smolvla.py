"""SmolVLA test fixtures without LeRobot: a SmolVLM2-like VLM directory (config.json with the architecture, a
synthetic tokenizer, processor files) and a reduced SmolVLA checkpoint in LeRobot 0.6's on-disk layout whose
`vlm_model_name` points at that directory. Used by the default suite, by scripts/lerobot_reference_smolvla.py
(which imports only `write_vlm_dir`: json + tokenizers) and by benchmarks/smolvla_full.py (FULL_VLM: the
SmolVLM2-500M-Video-Instruct architecture, written from its known sizes: the Hub is unreachable here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .layout import random_weights, write_word_tokenizer, write_vla_processors

WORDS = ("pick put place the a an red blue green cube block bowl up down left right into on of and to grasp "
         "open close drawer move arm gripper task state action").split()
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>", "<fake_token_around_image>", "<image>",
            "<global-img>", "<end_of_utterance>"]

# reduced: 4 text layers (2 self-attention, 2 cross-attention for the expert), 64x64 images -> 16 tokens each
TINY_VLM = {"text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "head_dim": 16, "rms_norm_eps": 1e-5, "vocab_size": 1024},
            "vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "patch_size": 8, "image_size": 64},
            "scale_factor": 2}
# HuggingFaceTB/SmolVLM2-500M-Video-Instruct
FULL_VLM = {"text": {"hidden_size": 960, "intermediate_size": 2560, "num_hidden_layers": 32,
                     "num_attention_heads": 15, "num_key_value_heads": 5, "head_dim": 64, "rms_norm_eps": 1e-5,
                     "vocab_size": 49280, "rope_theta": 100000.0, "max_position_embeddings": 8192},
            "vision": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                       "num_attention_heads": 12, "patch_size": 16, "image_size": 512},
            "scale_factor": 4}


def write_tokenizer(d: Path, vocab_size: int) -> None:
    """tokenizer.json + tokenizer_config.json: word/char level, no BOS (as SmolVLM2's), pad = <|im_end|>,
    SmolVLM's image special tokens, exactly `vocab_size` entries (the real size: 49,280)."""
    write_word_tokenizer(d / "tokenizer.json", SPECIALS, WORDS, vocab_size)
    (d / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "pad_token": "<|im_end|>", "bos_token": "<|im_start|>",
        "eos_token": "<end_of_utterance>", "unk_token": "<unk>", "add_bos_token": False, "model_max_length": 8192,
        "padding_side": "right",
        "extra_special_tokens": {"fake_image_token": "<fake_token_around_image>", "image_token": "<image>",
                                 "global_image_token": "<global-img>", "end_of_utterance_token": "<end_of_utterance>"}}))


def write_vlm_dir(d: Path, dims: dict = TINY_VLM) -> Path:
    """A directory `vlm_model_name` can name: config.json (SmolVLMConfig), tokenizer and processor files."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    text = {"model_type": "llama", "hidden_act": "silu", "attention_bias": False, "mlp_bias": False,
            "tie_word_embeddings": False, "pad_token_id": 2, **dims["text"]}
    vision = {"model_type": "smolvlm_vision", "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6,
              "num_channels": 3, **dims["vision"]}
    side = dims["vision"]["image_size"] // dims["vision"]["patch_size"]
    seq = side * side // dims["scale_factor"] ** 2
    (d / "config.json").write_text(json.dumps({
        "architectures": ["SmolVLMForConditionalGeneration"], "model_type": "smolvlm", "image_token_id": 5,
        "scale_factor": dims["scale_factor"], "tie_word_embeddings": False, "text_config": text,
        "vision_config": vision}, indent=2))
    write_tokenizer(d, dims["text"]["vocab_size"])
    (d / "processor_config.json").write_text(json.dumps({"processor_class": "SmolVLMProcessor", "image_seq_len": seq}))
    image_proc = {"image_processor_type": "SmolVLMImageProcessor", "processor_class": "SmolVLMProcessor",
                  "do_resize": True, "size": {"longest_edge": dims["vision"]["image_size"]},
                  "max_image_size": {"longest_edge": dims["vision"]["image_size"]}, "do_image_splitting": False,
                  "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    (d / "preprocessor_config.json").write_text(json.dumps(image_proc))
    (d / "video_preprocessor_config.json").write_text(json.dumps({
        **image_proc, "video_processor_type": "SmolVLMVideoProcessor", "image_processor_type": None}))
    return d


def smolvla_config_body(vlm_dir: Path, cameras: dict[str, tuple], state_dim: int, action_dim: int,
                        chunk_size: int = 8, tokenizer_max_length: int = 16, rtc: dict | None = None,
                        num_vlm_layers: int = 4, image_size: int = 64) -> dict:
    """config.json of a reduced SmolVLA (LeRobot 0.6 field names)."""
    feats = {"observation.state": {"type": "STATE", "shape": [state_dim]},
             **{k: {"type": "VISUAL", "shape": list(s)} for k, s in cameras.items()}}
    return {"type": "smolvla", "n_obs_steps": 1, "input_features": feats,
            "output_features": {"action": {"type": "ACTION", "shape": [action_dim]}}, "device": "cpu",
            "use_amp": False, "chunk_size": chunk_size, "n_action_steps": chunk_size,
            "normalization_mapping": {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"},
            "max_state_dim": 32, "max_action_dim": 32, "resize_imgs_with_padding": [image_size, image_size],
            "empty_cameras": 0, "adapt_to_pi_aloha": False, "use_delta_joint_actions_aloha": False,
            "tokenizer_max_length": tokenizer_max_length, "num_steps": 10, "use_cache": True,
            "vlm_model_name": str(vlm_dir), "load_vlm_weights": False, "add_image_special_tokens": False,
            "attention_mode": "cross_attn", "prefix_length": -1, "pad_language_to": "longest",
            "num_expert_layers": -1, "num_vlm_layers": num_vlm_layers, "self_attn_every_n_layers": 2,
            "expert_width_multiplier": 0.75, "min_period": 4e-3, "max_period": 4.0, "rtc_config": rtc}


def write_smolvla_checkpoint(d: Path, vlm_dir: Path, *, cameras: dict[str, tuple] | None = None, state_dim: int = 6,
                             action_dim: int = 5, seed: int = 0, tie_embeddings: bool = False, **config) -> Path:
    """A reduced SmolVLA checkpoint with random weights in LeRobot's key layout (our modules' shapes)."""
    import torch
    from safetensors.numpy import save_file

    from lerobot_edge.policies.smolvla.config import SmolVLAConfig
    from lerobot_edge.policies.smolvla.model import SmolVLAWeights

    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    cameras = cameras or {"observation.images.top": (3, 48, 64), "observation.images.wrist": (3, 40, 40)}
    body = smolvla_config_body(vlm_dir, cameras, state_dim, action_dim, **config)
    (d / "config.json").write_text(json.dumps(body, indent=2))
    write_vla_processors(d, body, vlm_dir, seed, padding="longest")
    cfg = SmolVLAConfig.from_checkpoint(_config_only(d))
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in SmolVLAWeights(cfg).state_dict().items()}
    weights = random_weights(shapes, seed)
    embed = "model.vlm_with_expert.vlm.model.text_model.embed_tokens.weight"
    head = "model.vlm_with_expert.vlm.lm_head.weight"
    if tie_embeddings:
        weights[head] = weights.pop(embed)
    else:
        weights[head] = np.random.default_rng(seed + 1).standard_normal(weights[embed].shape).astype(np.float32)
    save_file(weights, str(d / "model.safetensors"))
    return d


def _config_only(d: Path):
    """A Checkpoint-like view of config.json before the weights exist (SmolVLAConfig reads only these)."""
    from types import SimpleNamespace

    from lerobot_edge.checkpoint import Feature

    body = json.loads((d / "config.json").read_text())
    ins = {k: Feature(v["type"], tuple(v["shape"])) for k, v in body["input_features"].items()}
    outs = {k: Feature(v["type"], tuple(v["shape"])) for k, v in body["output_features"].items()}
    return SimpleNamespace(config=body, input_features=ins, output_features=outs, action_feature=outs["action"],
                           image_keys=[k for k, f in ins.items() if f.type == "VISUAL"],
                           dim=lambda k: ins[k].shape[0] if k in ins else 0)


def tiny(d: Path) -> Path:
    """The suites' tiny SmolVLA, with its tiny SmolVLM-like VLM directory beside it (<dir>-vlm)."""
    d = Path(d)
    return write_smolvla_checkpoint(d, write_vlm_dir(d.parent / f"{d.name}-vlm"))


reduced = tiny   # the bench's reduced SmolVLA (CI size; full size: benchmarks/smolvla_full.py)
