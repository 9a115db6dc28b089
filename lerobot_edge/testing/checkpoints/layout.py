"""The parts of LeRobot's on-disk checkpoint layout every policy shares, written without LeRobot installed:
config.json, model.safetensors, policy_preprocessor.json / policy_postprocessor.json with their normalizer
state files ("<pipeline>_step_<i>_<registry name>.safetensors"). Weights are seeded random values at a scale that
keeps activations O(1), so every tensor changes the output.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)


def random_weights(shapes: dict[str, tuple], seed: int) -> dict[str, np.ndarray]:
    """N(0, 1/fan_in) for matrices and convs, ~1 for norm scales, positive running_var, small biases."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes.items():
        if name.endswith("running_var"):
            v = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("running_mean") or name.endswith("bias"):
            v = rng.normal(0, 0.1, shape)
        elif len(shape) == 1:  # norm weights
            v = 1 + rng.normal(0, 0.1, shape)
        elif "embed" in name:  # position / cls embeddings
            v = rng.normal(0, 1, shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            v = rng.normal(0, 1 / np.sqrt(fan_in), shape)
        out[name] = v.astype(np.float32)
    return out


def random_stats(features: dict[str, dict], seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Dataset stats of every feature: ImageNet's for cameras, seeded mean/std/min/max/quantiles for vectors."""
    rng = np.random.default_rng(seed + 1)
    stats = {}
    for key, f in features.items():
        if f["type"] == "VISUAL":
            stats[key] = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "min": np.zeros((3, 1, 1), np.float32),
                          "max": np.ones((3, 1, 1), np.float32), "q01": np.full((3, 1, 1), 0.01, np.float32),
                          "q99": np.full((3, 1, 1), 0.99, np.float32)}
            continue
        d = f["shape"][0]
        mean, std = rng.normal(0, 1, d), rng.uniform(0.5, 2, d)
        stats[key] = {k: v.astype(np.float32) for k, v in dict(
            mean=mean, std=std, min=mean - 2 * std, max=mean + 2 * std, q01=mean - 1.8 * std,
            q99=mean + 1.8 * std, q10=mean - 1.2 * std, q90=mean + 1.2 * std).items()}
    return stats


def save_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """numpy tensors -> a safetensors file as LeRobot writes it (C-contiguous; 0-d tensors such as flags and
    num_batches_tracked stay 0-d)."""
    from safetensors.numpy import save_file

    save_file({k: np.require(v, requirements="C") for k, v in tensors.items()}, str(path))


def write_processors(d: Path, input_features: dict, output_features: dict, norm_map: dict,
                     stats: dict, step_index: int = 3) -> None:
    """policy_preprocessor.json (+ normalizer state) and policy_postprocessor.json (+ unnormalizer state)."""
    flat = {f"{k}.{s}": v for k, st in stats.items() for s, v in st.items()}
    pre_state = f"policy_preprocessor_step_{step_index}_normalizer_processor.safetensors"
    post_state = "policy_postprocessor_step_0_unnormalizer_processor.safetensors"
    before = [{"registry_name": "rename_observations_processor", "config": {"rename_map": {}}},
              {"registry_name": "to_batch_processor", "config": {}},
              {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}}]
    while len(before) < step_index:
        before.insert(1, {"registry_name": "tokenizer_processor", "config": {}})
    pre = {"name": "policy_preprocessor", "steps": before[:step_index] + [
        {"registry_name": "normalizer_processor",
         "config": {"eps": 1e-8, "features": {**input_features, **output_features}, "norm_map": norm_map},
         "state_file": pre_state}]}
    post = {"name": "policy_postprocessor", "steps": [
        {"registry_name": "unnormalizer_processor",
         "config": {"eps": 1e-8, "features": output_features, "norm_map": norm_map}, "state_file": post_state},
        {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}}]}
    (d / "policy_preprocessor.json").write_text(json.dumps(pre, indent=2))
    (d / "policy_postprocessor.json").write_text(json.dumps(post, indent=2))
    save_safetensors(d / pre_state, flat)
    save_safetensors(d / post_state, flat)


def write_vla_processors(d: Path, body: dict, tokenizer: Path, seed: int, padding: str = "max_length") -> None:
    """A VLA's processor files as LeRobot 0.6 saves them: normalizer stats at step 4, and the tokenizer step
    naming `tokenizer` (a local directory: the real ones are gated or large) with the config's max length."""
    feats, outs = body["input_features"], body["output_features"]
    write_processors(d, feats, outs, body["normalization_mapping"], random_stats({**feats, **outs}, seed),
                     step_index=4)
    pre = json.loads((d / "policy_preprocessor.json").read_text())
    for step in pre["steps"]:
        if step["registry_name"] == "tokenizer_processor":
            step["config"] = {"tokenizer_name": str(tokenizer), "max_length": body["tokenizer_max_length"],
                              "padding_side": "right", "padding": padding, "truncation": True}
    (d / "policy_preprocessor.json").write_text(json.dumps(pre, indent=2))


def write_word_tokenizer(path: Path, specials: list[str], words: list[str], vocab_size: int,
                         normalized_specials: bool = True) -> dict[str, int]:
    """A tiny tokenizer.json for the VLA writers: the special tokens, then whole words, then single printable
    characters, padded with <unusedN> to exactly `vocab_size` entries; words split as [a-z]+ or one character.
    Returns the vocabulary (token -> id)."""
    from tokenizers import AddedToken, Regex, Tokenizer, models, pre_tokenizers

    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    vocab_list = specials + words + [c for c in chars if c not in words]
    vocab_list += [f"<unused{i}>" for i in range(vocab_size - len(vocab_list))]
    vocab = {tok: i for i, tok in enumerate(vocab_list[:vocab_size])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[a-z]+|[^a-z]"), behavior="isolated")
    extra = {} if normalized_specials else {"normalized": False}
    tok.add_special_tokens([AddedToken(t, special=True, **extra) for t in specials])
    tok.save(str(path))
    return vocab
