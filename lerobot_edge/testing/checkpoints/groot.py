"""GR00T N1.5 (LeRobot's `groot`) test fixtures without LeRobot: the Eagle 2.5 processor directory LeRobot's groot
reads from `HF_LEROBOT_HOME/<tokenizer_assets_repo>` (config.json with the vision tower and Qwen3 sizes, a
synthetic tokenizer, the chat template, image processor settings), the GR00T base-model config.json
(backbone_cfg / action_head_cfg) and a reduced LeRobot `groot` checkpoint in LeRobot 0.4.4's on-disk layout.

scripts/lerobot_reference_groot.py imports only `write_eagle_dir`, `base_config` and `groot_random_weights`
from here (json, numpy, tokenizers): LeRobot itself then builds, saves and runs the policy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .layout import random_weights, write_word_tokenizer, save_safetensors

WORDS = ("pick put place the a an red blue green cube block bowl up down left right into on of and to grasp "
         "open close drawer move arm gripper task state action perform user assistant system you are helpful "
         "image").split()
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>", "<img>", "</img>", "<IMG_CONTEXT>"]
IMAGE_TOKEN = "<IMG_CONTEXT>"
# Eagle 2.5's prompt shape: Qwen chat turns, each camera as an "<image-N>" placeholder that the processor expands
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{%- endif -%}"
    "<|im_start|>{{ message['role'] }}\n"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- set ns = namespace(n=0) -%}{%- for c in message['content'] -%}"
    "{%- if c['type'] == 'image' -%}{%- set ns.n = ns.n + 1 -%}<image-{{ ns.n }}>\n"
    "{%- elif c['type'] == 'text' -%}{{ c['text'] }}{%- endif -%}{%- endfor -%}{%- endif -%}"
    "<|im_end|>\n{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|im_start|>assistant\n{%- endif -%}")

# reduced: 32x32 images, patch 4 -> 64 patches -> pixel shuffle 0.5 -> 16 tokens per camera; 4 Qwen3 layers
TINY_EAGLE = {"vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                         "num_attention_heads": 4, "patch_size": 4, "image_size": 32},
              "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
                       "num_key_value_heads": 2, "head_dim": 16, "rms_norm_eps": 1e-6, "vocab_size": 512,
                       "rope_theta": 1000000.0, "max_position_embeddings": 4096},
              "use_pixel_shuffle": True, "mlp_connector_layers": 2, "downsample_ratio": 0.5, "select_layer": -1}
# nvidia/GR00T-N1.5-3B's Eagle (Siglip2-400M at 224 px, patch 14, no pixel shuffle, 1-layer MLP; Qwen3-1.7B)
FULL_EAGLE = {"vision": {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27,
                         "num_attention_heads": 16, "patch_size": 14, "image_size": 224},
              "text": {"hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 28,
                       "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "rms_norm_eps": 1e-6,
                       "vocab_size": 151936, "rope_theta": 1000000.0, "max_position_embeddings": 40960},
              "use_pixel_shuffle": False, "mlp_connector_layers": 1, "downsample_ratio": 0.5, "select_layer": -1}
TINY_HEAD = {"select_layer": 3, "action_horizon": 8, "num_inference_timesteps": 4, "hidden_size": 32,
             "dit": {"num_attention_heads": 2, "attention_head_dim": 24, "num_layers": 4},
             "vl_self_attention": {"num_attention_heads": 2, "attention_head_dim": 32, "num_layers": 1},
             "num_target_vision_tokens": 4, "max_seq_len": 32}
FULL_HEAD = {"select_layer": 12, "action_horizon": 16, "num_inference_timesteps": 4, "hidden_size": 1024,
             "dit": {"num_attention_heads": 32, "attention_head_dim": 48, "num_layers": 16},
             "vl_self_attention": {"num_attention_heads": 32, "attention_head_dim": 64, "num_layers": 4},
             "num_target_vision_tokens": 32, "max_seq_len": 1024}


def tokens_per_image(eagle: dict) -> int:
    side = eagle["vision"]["image_size"] // eagle["vision"]["patch_size"]
    return side * side // (4 if eagle["use_pixel_shuffle"] else 1)


def write_tokenizer(d: Path, vocab_size: int) -> int:
    """tokenizer.json (+ the small files LeRobot's groot insists on): word/char level, no BOS (as Qwen's), pad
    <|endoftext|>, exactly `vocab_size` entries. Returns the <IMG_CONTEXT> id."""
    vocab = write_word_tokenizer(d / "tokenizer.json", SPECIALS, WORDS, vocab_size, normalized_specials=False)
    specials = {"pad_token": "<|endoftext|>", "eos_token": "<|im_end|>", "unk_token": "<unk>"}
    (d / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", **specials, "add_bos_token": False,
        "model_max_length": 1 << 20, "padding_side": "left",
        "model_input_names": ["input_ids", "attention_mask"]}))
    (d / "special_tokens_map.json").write_text(json.dumps(specials))
    # vocab.json / merges.txt / added_tokens.json: LeRobot's ensure_eagle_cache_ready downloads any that is absent
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")
    (d / "added_tokens.json").write_text(json.dumps({t: vocab[t] for t in SPECIALS}))
    return vocab[IMAGE_TOKEN]


def write_eagle_dir(d: Path, eagle: dict = TINY_EAGLE) -> Path:
    """The Eagle processor directory (what `lerobot/eagle2hg-processor-groot-n1p5` holds, reduced): config.json
    (Eagle25VLConfig: SigLIP vision tower + Qwen3), tokenizer, chat template, image/processor configs."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    image_id = write_tokenizer(d, eagle["text"]["vocab_size"])
    text = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_act": "silu",
            "attention_bias": False, "tie_word_embeddings": False, "torch_dtype": "float32",
            "_attn_implementation": "sdpa", **eagle["text"]}
    vision = {"model_type": "siglip_vision_model", "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6,
              "num_channels": 3, "vision_use_head": False, **eagle["vision"]}
    auto = {"AutoConfig": "configuration_eagle2_5_vl.Eagle25VLConfig",
            "AutoModel": "modeling_eagle2_5_vl.Eagle25VLForConditionalGeneration"}
    (d / "config.json").write_text(json.dumps({
        "architectures": ["Eagle25VLForConditionalGeneration"], "model_type": "eagle_2_5_vl", "auto_map": auto,
        "text_config": text, "vision_config": vision, "select_layer": eagle["select_layer"],
        "downsample_ratio": eagle["downsample_ratio"], "use_pixel_shuffle": eagle["use_pixel_shuffle"],
        "mlp_connector_layers": eagle["mlp_connector_layers"], "image_token_index": image_id,
        "_attn_implementation": "sdpa", "force_image_size": eagle["vision"]["image_size"],
        "template": "qwen3-chat", "torch_dtype": "float32"}, indent=2))
    proc_auto = {"AutoProcessor": "processing_eagle2_5_vl.Eagle25VLProcessor"}
    (d / "processor_config.json").write_text(json.dumps({
        "processor_class": "Eagle25VLProcessor", "auto_map": proc_auto, "tokens_per_tile": tokens_per_image(eagle),
        "image_token": IMAGE_TOKEN, "video_token": IMAGE_TOKEN}))
    size = eagle["vision"]["image_size"]
    (d / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "Eagle25VLImageProcessorFast", "processor_class": "Eagle25VLProcessor",
        "auto_map": {"AutoImageProcessor": "image_processing_eagle2_5_vl_fast.Eagle25VLImageProcessorFast",
                     **proc_auto},
        "size": {"height": size, "width": size}, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
        "do_resize": True, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "resample": 3, "max_dynamic_tiles": 1, "min_dynamic_tiles": 1, "use_thumbnail": False, "do_pad": True}))
    (d / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}))
    (d / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2}))
    return d


def base_config(eagle: dict = TINY_EAGLE, head: dict = TINY_HEAD, *, max_state_dim: int = 64,
                max_action_dim: int = 32) -> dict:
    """The GR00T base model's config.json (GR00TN15Config: backbone_cfg, action_head_cfg) for these sizes."""
    llm = eagle["text"]["hidden_size"]
    dit, vsa = head["dit"], head["vl_self_attention"]
    ied = dit["num_attention_heads"] * dit["attention_head_dim"]
    return {
        "model_type": "gr00t_n1_5", "architectures": ["GR00T_N1_5"], "action_dim": max_action_dim,
        "action_horizon": head["action_horizon"], "compute_dtype": "float32",
        "backbone_cfg": {"project_to_dim": None, "select_layer": head["select_layer"], "reproject_vision": False,
                         "tune_llm": False, "tune_visual": False, "use_flash_attention": False, "load_bf16": False},
        "action_head_cfg": {
            "action_dim": max_action_dim, "action_horizon": head["action_horizon"], "add_pos_embed": True,
            "backbone_embedding_dim": llm, "hidden_size": head["hidden_size"], "input_embedding_dim": ied,
            "max_action_dim": max_action_dim, "max_state_dim": max_state_dim, "max_num_embodiments": 32,
            "max_seq_len": head["max_seq_len"], "model_dtype": "float32",
            "num_inference_timesteps": head["num_inference_timesteps"],
            "num_target_vision_tokens": head["num_target_vision_tokens"], "num_timestep_buckets": 1000,
            "noise_beta_alpha": 1.5, "noise_beta_beta": 1.0, "noise_s": 0.999, "tune_projector": True,
            "tune_diffusion_model": True, "use_vlln": True,
            "diffusion_model_cfg": {**dit, "cross_attention_dim": llm, "dropout": 0.2, "final_dropout": True,
                                    "interleave_self_attention": True, "norm_type": "ada_norm",
                                    "output_dim": head["hidden_size"], "positional_embeddings": None},
            "vl_self_attention_cfg": {**vsa, "dropout": 0.2, "final_dropout": True,
                                      "positional_embeddings": None}}}


def groot_random_weights(shapes: dict[str, tuple], seed: int) -> dict[str, np.ndarray]:
    """layout.random_weights, with the per-embodiment matrices W (E, in, out) at N(0, 1/in) (the generic rule
    would take in*out as the fan-in and silence them), the action decoder's last layer at a tenth of that (the
    velocity stays O(1) in normalized units), and softer attention and adaptive norms: query/key projections
    x0.5 (SigLIP, Qwen3) and x0.3 (action head), the DiT's AdaLayerNorm / output modulation x0.3. Random weights
    at full gain make this tiny model amplify float32 rounding (1e-7 relative at the pixels) ~1000-fold into the
    chunk; at these gains the amplification stays below ~10, so a 1e-4 parity bar tests the implementation."""
    out = random_weights(shapes, seed)
    rng = np.random.default_rng(seed + 7)
    for name, shape in shapes.items():
        if name.endswith(".W") and len(shape) == 3:
            gain = 0.1 if name.endswith("action_decoder.layer2.W") else 1.0
            out[name] = rng.normal(0, gain / np.sqrt(shape[1]), shape).astype(np.float32)
        elif "action_head" in name and name.endswith(("to_q.weight", "to_k.weight")):
            out[name] *= np.float32(0.3)
        elif name.endswith(("q_proj.weight", "k_proj.weight")):
            out[name] *= np.float32(0.5)
        elif "norm1.linear" in name or "proj_out_1" in name:
            out[name] *= np.float32(0.3)
    return out


def groot_config_body(base_dir: Path, eagle_dir: Path, cameras: dict[str, tuple], state_dim: int, action_dim: int,
                      n_action_steps: int = 6, image_size: int = 32) -> dict:
    """config.json of a LeRobot 0.4.4 `groot` checkpoint (its field names and defaults). tokenizer_assets_repo is
    the Eagle directory's absolute path: LeRobot joins it to HF_LEROBOT_HOME, which an absolute path overrides."""
    feats = {"observation.state": {"type": "STATE", "shape": [state_dim]},
             **{k: {"type": "VISUAL", "shape": list(s)} for k, s in cameras.items()}}
    return {"type": "groot", "n_obs_steps": 1, "input_features": feats,
            "output_features": {"action": {"type": "ACTION", "shape": [action_dim]}}, "device": "cpu",
            "use_amp": False, "use_peft": False, "push_to_hub": False, "repo_id": None, "private": None, "tags": None,
            "license": None, "pretrained_path": None, "chunk_size": 8, "n_action_steps": n_action_steps,
            "max_state_dim": 64, "max_action_dim": 32,
            "normalization_mapping": {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"},
            "image_size": [image_size, image_size], "base_model_path": str(Path(base_dir).resolve()),
            "tokenizer_assets_repo": str(Path(eagle_dir).resolve()), "embodiment_tag": "new_embodiment",
            "tune_llm": False, "tune_visual": False, "tune_projector": True, "tune_diffusion_model": True,
            "lora_rank": 0, "lora_alpha": 16, "lora_dropout": 0.1, "lora_full_model": False, "use_bf16": False}


def write_groot_processors(d: Path, state_dim: int, action_dim: int, seed: int) -> None:
    """policy_preprocessor.json / policy_postprocessor.json as LeRobot 0.4.4's groot saves them, with the
    min/max state files of its pack-inputs and action-unpack steps (one action dim constant: max == min)."""
    rng = np.random.default_rng(seed + 3)
    lo = {k: rng.normal(0, 1, n).astype(np.float32) for k, n in (("observation.state", state_dim),
                                                                  ("action", action_dim))}
    hi = {k: v + rng.uniform(0.5, 3, v.shape).astype(np.float32) for k, v in lo.items()}
    hi["action"][1] = lo["action"][1]
    flat = {**{f"{k}.min": v for k, v in lo.items()}, **{f"{k}.max": v for k, v in hi.items()}}
    pre_file, post_file = ("policy_preprocessor_step_2_groot_pack_inputs_v3.safetensors",
                           "policy_postprocessor_step_0_groot_action_unpack_unnormalize_v1.safetensors")
    pack = {"state_horizon": 1, "action_horizon": 8, "max_state_dim": 64, "max_action_dim": 32, "language_key": "task",
            "formalize_language": False, "embodiment_tag": "new_embodiment", "embodiment_mapping": dict(
                new_embodiment=31, oxe_droid=17, agibot_genie1=26, gr1=24, so100=2, unitree_g1=3),
            "normalize_min_max": True}
    device = {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}}
    pre = {"name": "policy_preprocessor", "steps": [
        {"registry_name": "rename_observations_processor", "config": {"rename_map": {}}},
        {"registry_name": "to_batch_processor", "config": {}},
        {"registry_name": "groot_pack_inputs_v3", "config": pack, "state_file": pre_file},
        {"registry_name": "groot_eagle_encode_v3", "config": {}},
        {"registry_name": "groot_eagle_collate_v3", "config": {}}, device]}
    post = {"name": "policy_postprocessor", "steps": [
        {"registry_name": "groot_action_unpack_unnormalize_v1",
         "config": {"env_action_dim": action_dim, "normalize_min_max": True}, "state_file": post_file}, device]}
    (d / "policy_preprocessor.json").write_text(json.dumps(pre, indent=2))
    (d / "policy_postprocessor.json").write_text(json.dumps(post, indent=2))
    save_safetensors(d / pre_file, flat)
    save_safetensors(d / post_file, flat)


def write_groot_layout(d: Path, *, cameras: dict[str, tuple] | None = None, state_dim: int = 6, action_dim: int = 5,
                       seed: int = 0, eagle: dict = TINY_EAGLE, head: dict = TINY_HEAD) -> dict[str, tuple]:
    """Everything of a groot checkpoint but its weights (config.json, processors, <d>-base/config.json and the
    <d>-eagle directory beside it) -> the shapes model.safetensors must hold (our modules' + the unused lm_head)."""
    import torch
    from safetensors.numpy import save_file

    from lerobot_edge.checkpoint import load_checkpoint
    from lerobot_edge.policies.groot.config import GrootConfig
    from lerobot_edge.policies.groot.model import GrootWeights

    d = Path(d)
    base, eagle_dir = d.parent / f"{d.name}-base", d.parent / f"{d.name}-eagle"
    for p in (d, base):
        p.mkdir(parents=True, exist_ok=True)
    write_eagle_dir(eagle_dir, eagle)
    (base / "config.json").write_text(json.dumps(base_config(eagle, head), indent=2))
    cameras = cameras or {"observation.images.front": (3, 32, 32), "observation.images.wrist": (3, 40, 48)}
    (d / "config.json").write_text(json.dumps(groot_config_body(base, eagle_dir, cameras, state_dim, action_dim,
                                                                image_size=eagle["vision"]["image_size"]), indent=2))
    write_groot_processors(d, state_dim, action_dim, seed)
    t = eagle["text"]
    llm = "_groot_model.backbone.eagle_model.language_model."
    marks = {f"{llm}model.layers.{i}.input_layernorm.weight": (t["hidden_size"],) for i in range(head["select_layer"])}
    save_file({k: np.ones(s, np.float32) for k, s in marks.items()}, str(d / "model.safetensors"))  # layer count
    cfg = GrootConfig.from_checkpoint(load_checkpoint(d))
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in GrootWeights(cfg).state_dict().items()}
    shapes[llm + "lm_head.weight"] = (t["vocab_size"], t["hidden_size"])
    return shapes


def write_groot_checkpoint(d: Path, *, seed: int = 0, **layout) -> Path:
    """A reduced groot checkpoint with random weights in LeRobot's key layout (write_groot_layout's files)."""
    from safetensors.numpy import save_file

    shapes = write_groot_layout(d, seed=seed, **layout)
    save_file(groot_random_weights(shapes, seed), str(Path(d) / "model.safetensors"))
    return Path(d)


def tiny(d: Path) -> Path:
    """The suites' tiny groot (two cameras, one at the Eagle tile size and one resized), Eagle/base dirs beside."""
    return write_groot_checkpoint(Path(d))
