#!/usr/bin/env python3
"""Produce LeRobot 0.4.4 reference checkpoints and reference actions for ACT.

Runs ONLY inside the LeRobot reference venv (``make parity-env`` builds ``.venv-lerobot``); the
lerobot_edge package is never imported here. For every case it writes::

    OUT/<case>/checkpoint/     config.json, model.safetensors,
                               policy_preprocessor.json
                               + policy_preprocessor_step_3_normalizer_processor.safetensors,
                               policy_postprocessor.json
                               + policy_postprocessor_step_0_unnormalizer_processor.safetensors
    OUT/<case>/reference.npz   inputs and LeRobot's outputs (layout below)
    OUT/<case>/meta.json       case config, versions, seeds, sha256 of weights / files / this script, checks

and finally ``OUT/DONE`` once every requested case succeeded.

reference.npz layout (B = batch size, A = action dim, T = chunk_size):
    n_steps                     int64 scalar
    obs.<i>.<feature key>       float32, batched exactly as fed to the pre-processor, i in [0, n_steps)
                                images (B, 3, H, W) in [0, 1]; states (B, D) in robot units
    pre.0.<feature key>         float32, output of LeRobot's pre-processor for step 0 (normalized)
    chunk                       float32 (B, T, A) robot units: post(policy.predict_action_chunk(pre(obs.0)))
    chunk_normalized            float32 (B, T, A) policy.predict_action_chunk(pre(obs.0)) (before post)
    actions                     float32 (n_steps, B, A) robot units: after policy.reset(),
                                actions[i] = post(policy.select_action(pre(obs.i)))
    actions_normalized          float32 (n_steps, B, A) the same before post

The checkpoint is written, then the policy is reloaded with ``ACTPolicy.from_pretrained(dir)`` and the
processors with ``make_pre_post_processors(cfg, pretrained_path=dir)`` (as lerobot-eval / lerobot-record do)
before anything is computed, so the reference is what the files on disk produce.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SCRIPT_PATH = Path(__file__).resolve()

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# ---------------------------------------------------------------------------------------------------------
# Cases. Everything that determines a case's checkpoint and reference lives here (so the script hash covers
# it). Feature order matters: LeRobot puts camera tokens in the order of config.input_features.
# ---------------------------------------------------------------------------------------------------------
CASES: dict[str, dict] = {
    "aloha": {
        # gym-aloha sim insertion: ACTConfig defaults (resnet18, dim 512, 8 heads, ff 3200, 4 enc / 1 dec
        # layers, use_vae, latent 32, 4 VAE layers, MEAN_STD for VISUAL/STATE/ACTION).
        "seed": 1001,
        "batch": 1,
        "n_steps": 3,
        "config_type_field": False,
        "inputs": [
            ("observation.images.top", "VISUAL", (3, 480, 640)),
            ("observation.state", "STATE", (14,)),
        ],
        "action_dim": 14,
        "config": {"chunk_size": 100, "n_action_steps": 100},
    },
    "multicam_prenorm": {
        "seed": 1002,
        "batch": 2,
        "n_steps": 11,  # n_action_steps 5: refills at steps 0, 5 and 10
        "config_type_field": True,
        "inputs": [
            ("observation.images.left", "VISUAL", (3, 64, 80)),
            ("observation.images.wrist_right", "VISUAL", (3, 48, 64)),
            ("observation.state", "STATE", (6,)),
            ("observation.environment_state", "ENV", (5,)),
        ],
        "action_dim": 6,
        "config": {
            "pre_norm": True,
            "feedforward_activation": "gelu",
            "n_decoder_layers": 2,
            "n_encoder_layers": 2,
            "dim_model": 64,
            "n_heads": 4,
            "dim_feedforward": 128,
            "latent_dim": 8,
            "n_vae_encoder_layers": 1,
            "chunk_size": 12,
            "n_action_steps": 5,
            "normalization_mapping": {
                "STATE": "MIN_MAX",
                "ENV": "MIN_MAX",
                "ACTION": "MIN_MAX",
                "VISUAL": "MEAN_STD",
            },
        },
    },
    "ensemble": {
        "seed": 1003,
        "batch": 2,
        "n_steps": 12,  # > chunk_size 8, so the ensemble counts saturate
        "config_type_field": True,
        "inputs": [
            ("observation.images.top", "VISUAL", (3, 56, 72)),
            ("observation.state", "STATE", (5,)),
        ],
        "action_dim": 4,
        "config": {
            "dim_model": 32,
            "n_heads": 2,
            "dim_feedforward": 64,
            "n_encoder_layers": 1,
            "n_decoder_layers": 1,
            "latent_dim": 4,
            "n_vae_encoder_layers": 1,
            "chunk_size": 8,
            "n_action_steps": 1,
            "temporal_ensemble_coeff": 0.01,
        },
    },
    "novae_quantiles": {
        "seed": 1004,
        "batch": 2,
        "n_steps": 7,  # chunk 6 = n_action_steps 6: refills at steps 0 and 6
        "config_type_field": False,
        "inputs": [
            ("observation.images.top", "VISUAL", (3, 40, 48)),
            ("observation.state", "STATE", (3,)),
        ],
        "action_dim": 3,
        "config": {
            "use_vae": False,
            "dim_model": 32,
            "n_heads": 4,
            "dim_feedforward": 64,
            "chunk_size": 6,
            "n_action_steps": 6,
            "normalization_mapping": {
                "STATE": "QUANTILES",
                "ACTION": "QUANTILES",
                "VISUAL": "IDENTITY",
            },
        },
    },
    "resnet50_dilation": {
        "seed": 1005,
        "batch": 2,
        "n_steps": 3,
        "config_type_field": True,
        "inputs": [
            ("observation.images.top", "VISUAL", (3, 64, 64)),
            ("observation.state", "STATE", (4,)),
        ],
        "action_dim": 4,
        "config": {
            "vision_backbone": "resnet50",
            "replace_final_stride_with_dilation": True,
            "dim_model": 32,
            "n_heads": 2,
            "dim_feedforward": 64,
            "n_encoder_layers": 1,
            "chunk_size": 5,
            "n_action_steps": 5,
        },
    },
    "env_only": {
        # No observation.state. LeRobot 0.4.4 builds this policy but ACT.forward reads
        # batch["observation.state"].device at inference (the latent is zeros on that device), so it raises
        # KeyError without that key. We feed LeRobot an extra, undeclared observation.state of shape (B, 0)
        # (used for nothing but .device; the normalizer ignores undeclared keys). It is NOT stored in
        # reference.npz: our policy must not need it.
        "seed": 1006,
        "batch": 2,
        "n_steps": 5,  # chunk 4 = n_action_steps 4: refills at steps 0 and 4
        "config_type_field": True,
        "inputs": [
            ("observation.images.top", "VISUAL", (3, 32, 32)),
            ("observation.environment_state", "ENV", (6,)),
        ],
        "action_dim": 2,
        "config": {
            "dim_model": 32,
            "n_heads": 2,
            "dim_feedforward": 64,
            "n_encoder_layers": 1,
            "n_decoder_layers": 1,
            "latent_dim": 4,
            "n_vae_encoder_layers": 1,
            "chunk_size": 4,
            "n_action_steps": 4,
            # ACT's default mapping has no ENV entry (ENV would be IDENTITY); normalize it here.
            "normalization_mapping": {
                "VISUAL": "MEAN_STD",
                "STATE": "MEAN_STD",
                "ENV": "MEAN_STD",
                "ACTION": "MEAN_STD",
            },
        },
        "lerobot_workaround": "extra undeclared observation.state of shape (B, 0) fed to LeRobot (see CASES)",
    },
}
DEFAULT_CASES = list(CASES)

KEEP_AS_COMPUTED = ("model.vae_encoder_pos_enc",)
# Attention q/k projections are drawn QK_GAIN times larger than 1/sqrt(fan_in). At gain 1 the attention of
# a random ACT is almost uniform (aloha: decoder cross-attention entropy 5.62 of max 5.71 nats), so every
# query sees the same average and the aloha chunk hardly varies over time (std 0.006 normalized);
# "tiny attention logits can hide bugs". At gain 1.5: entropy 4.9 nats, std over time 0.05; gain 2 makes the
# first encoder layer nearly one-hot in several cases (entropy 0.05-0.3 nats).
QK_GAIN = 1.5


def no_influence_in_eval(cfg, name: str) -> bool:
    """Tensors that structurally cannot influence LeRobot ACT's inference outputs (eval mode).

    - the VAE encoder (model.vae_encoder*) only runs in training;
    - in eval the latent is all zeros, so only the bias of encoder_latent_input_proj counts;
    - the decoder input is all zeros, so in the first decoder layer every self-attention value is the same
      vector and the attention pattern (q/k projections) cannot matter. Post-norm: v = 0 @ W_v + b_v, so the
      whole in_proj_weight is dead. Pre-norm: the layer sees LayerNorm(0) = norm1.bias, so norm1.weight is
      dead (in_proj_weight still matters through W_v @ norm1.bias).
    """
    if name.startswith("model.vae_encoder") or name == "model.encoder_latent_input_proj.weight":
        return True
    if cfg.pre_norm:
        return name == "model.decoder.layers.0.norm1.weight"
    return name == "model.decoder.layers.0.self_attn.in_proj_weight"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def derived_seed(seed: int, purpose: str) -> int:
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def generator(seed: int, purpose: str) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed(derived_seed(seed, purpose))
    return g


# ---------------------------------------------------------------------------------------------------------
# Config, stats, weights, observations
# ---------------------------------------------------------------------------------------------------------
def build_config(case: dict):
    from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig

    kwargs = dict(case["config"])
    if "normalization_mapping" in kwargs:
        kwargs["normalization_mapping"] = {
            k: NormalizationMode(v) for k, v in kwargs["normalization_mapping"].items()
        }
    input_features = {
        key: PolicyFeature(type=FeatureType(ftype), shape=tuple(shape)) for key, ftype, shape in case["inputs"]
    }
    output_features = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(case["action_dim"],))}
    return ACTConfig(
        input_features=input_features,
        output_features=output_features,
        pretrained_backbone_weights=None,  # the ImageNet download is unreachable; weights are redrawn anyway
        device="cpu",
        **kwargs,
    )


def make_stats(case: dict, g: torch.Generator) -> dict[str, dict[str, torch.Tensor]]:
    """Random but realistic dataset stats with every key LeRobot 0.4's compute_stats writes."""
    stats: dict[str, dict[str, torch.Tensor]] = {}
    features = [(k, t, s) for k, t, s in case["inputs"]] + [("action", "ACTION", (case["action_dim"],))]
    for key, ftype, shape in features:
        count = torch.tensor([float(5000 + int(torch.randint(0, 5000, (1,), generator=g)))])
        if ftype == "VISUAL":
            cshape = (shape[0], 1, 1)
            mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).reshape(cshape)
            std = torch.tensor(IMAGENET_STD, dtype=torch.float32).reshape(cshape)
            full = lambda v: torch.full(cshape, v, dtype=torch.float32)  # noqa: E731
            stats[key] = {
                "mean": mean,
                "std": std,
                "min": full(0.0),
                "max": full(1.0),
                "q01": full(0.01),
                "q10": full(0.10),
                "q50": full(0.50),
                "q90": full(0.90),
                "q99": full(0.99),
                "count": count,
            }
        else:
            (d,) = shape
            mean = torch.randn(d, generator=g)
            std = 0.5 + 1.5 * torch.rand(d, generator=g)
            stats[key] = {
                "mean": mean,
                "std": std,
                "min": mean - 2.0 * std,
                "max": mean + 2.0 * std,
                "q01": mean - 1.8 * std,
                "q10": mean - 1.2816 * std,
                "q50": mean.clone(),
                "q90": mean + 1.2816 * std,
                "q99": mean + 1.8 * std,
                "count": count,
            }
    return stats


@torch.no_grad()
def redraw_weights(policy: torch.nn.Module, g: torch.Generator) -> list[str]:
    """Redraw every parameter and buffer at a scale that keeps activations O(1).

    Returns the names that were left as LeRobot computed them (the sinusoidal VAE table).
    """
    from torchvision.ops.misc import FrozenBatchNorm2d

    def normal_(t: torch.Tensor, std: float, mean: float = 0.0) -> None:
        t.copy_(mean + std * torch.randn(t.shape, generator=g, dtype=torch.float32).to(t.dtype))

    def uniform_(t: torch.Tensor, lo: float, hi: float) -> None:
        t.copy_(lo + (hi - lo) * torch.rand(t.shape, generator=g, dtype=torch.float32).to(t.dtype))

    touched: set[str] = set()
    kept: list[str] = []
    for mod_name, mod in policy.named_modules():
        prefix = f"{mod_name}." if mod_name else ""
        direct = {n: t for n, t in mod.named_parameters(recurse=False)}
        direct.update({n: t for n, t in mod.named_buffers(recurse=False) if t is not None})
        if not direct:
            continue
        full = {n: prefix + n for n in direct}
        if isinstance(mod, torch.nn.Conv2d):
            fan_in = mod.in_channels // mod.groups * math.prod(mod.kernel_size)
            normal_(mod.weight, 1.0 / math.sqrt(fan_in))
            if mod.bias is not None:
                normal_(mod.bias, 0.1)
        elif isinstance(mod, torch.nn.Linear):
            normal_(mod.weight, 1.0 / math.sqrt(mod.in_features))
            if mod.bias is not None:
                normal_(mod.bias, 0.1)
        elif isinstance(mod, torch.nn.MultiheadAttention):
            # in_proj_weight (3D, D); out_proj is a Linear submodule handled above.
            assert mod._qkv_same_embed_dim and mod.bias_k is None and mod.bias_v is None
            normal_(mod.in_proj_weight, 1.0 / math.sqrt(mod.embed_dim))
            d = mod.embed_dim
            mod.in_proj_weight[: 2 * d].mul_(QK_GAIN)  # q and k rows: sharper attention (see QK_GAIN)
            if mod.in_proj_bias is not None:
                normal_(mod.in_proj_bias, 0.1)
        elif isinstance(mod, torch.nn.LayerNorm):
            normal_(mod.weight, 0.1, mean=1.0)
            normal_(mod.bias, 0.1)
        elif isinstance(mod, FrozenBatchNorm2d):
            normal_(mod.weight, 0.1, mean=1.0)
            normal_(mod.bias, 0.1)
            normal_(mod.running_mean, 0.1)
            uniform_(mod.running_var, 0.5, 1.5)
        elif isinstance(mod, torch.nn.Embedding):
            normal_(mod.weight, 1.0)
        else:
            for n, t in direct.items():
                if full[n] in KEEP_AS_COMPUTED:
                    kept.append(full[n])
                    touched.add(full[n])
                else:
                    raise RuntimeError(f"don't know how to redraw {full[n]} ({type(mod).__name__})")
            continue
        touched.update(full.values())

    all_names = set(policy.state_dict().keys())
    missing = sorted(all_names - touched)
    if missing:
        raise RuntimeError(f"tensors not redrawn: {missing}")
    return kept


def make_observations(case: dict, stats, g: torch.Generator) -> list[dict[str, torch.Tensor]]:
    b = case["batch"]
    out = []
    for _ in range(case["n_steps"]):
        obs = {}
        for key, ftype, shape in case["inputs"]:
            if ftype == "VISUAL":
                obs[key] = torch.rand((b, *shape), generator=g, dtype=torch.float32)
            else:
                mean, std = stats[key]["mean"], stats[key]["std"]
                obs[key] = (mean + std * torch.randn((b, *shape), generator=g)).to(torch.float32)
        out.append(obs)
    return out


# ---------------------------------------------------------------------------------------------------------
# Save / reload
# ---------------------------------------------------------------------------------------------------------
def add_type_field(config_path: Path) -> None:
    """Put "type": "act" first, as draccus 0.10 (LeRobot's pin) writes it."""
    cfg = json.loads(config_path.read_text())
    if "type" in cfg:
        return
    cfg = {"type": "act", **cfg}
    config_path.write_text(json.dumps(cfg, indent=4) + "\n")


def load_policy_from_disk(ckpt: Path):
    import draccus
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy

    has_type = "type" in json.loads((ckpt / "config.json").read_text())
    if has_type:
        # The normal LeRobot path (PreTrainedConfig.from_pretrained pops "type").
        policy = ACTPolicy.from_pretrained(str(ckpt))
    else:
        # LeRobot 0.4.4's PreTrainedConfig.from_pretrained fails on a config.json without "type"
        # (draccus ParsingError, then config.pop("type")); parse the file as an ACTConfig directly.
        with draccus.config_type("json"):
            config = draccus.parse(ACTConfig, str(ckpt / "config.json"), args=[])
        policy = ACTPolicy.from_pretrained(str(ckpt), config=config)
    policy.eval()
    return policy


def check_reloaded_weights(policy, ckpt: Path, expected: dict[str, torch.Tensor]) -> None:
    """from_pretrained uses strict=False; make sure every tensor really came from disk."""
    from safetensors.torch import load_file

    on_disk = load_file(str(ckpt / "model.safetensors"))
    sd = policy.state_dict()
    if set(on_disk) != set(sd):
        only_disk, only_model = sorted(set(on_disk) - set(sd)), sorted(set(sd) - set(on_disk))
        raise RuntimeError(f"key mismatch: only on disk {only_disk}, only in model {only_model}")
    for k, v in sd.items():
        if not torch.equal(v, on_disk[k]) or not torch.equal(v, expected[k]):
            raise RuntimeError(f"reloaded tensor {k} differs from what was saved")


# ---------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------
def degeneracy_report(chunk_norm: torch.Tensor) -> dict:
    """chunk_norm: (B, T, A) in normalized units."""
    flat = chunk_norm.reshape(-1, chunk_norm.shape[-1])
    rep = {
        "std_all": float(chunk_norm.std()),
        "min_over_dims_of_std": float(flat.std(dim=0).min()),  # per action dim, over batch and time
        "std_across_action_dims": float(chunk_norm.std(dim=-1).mean()),
        "std_over_time": float(chunk_norm.std(dim=1).mean()),
        "abs_max": float(chunk_norm.abs().max()),
    }
    if chunk_norm.shape[0] > 1:
        rep["std_over_batch"] = float(chunk_norm.std(dim=0).mean())
    return rep


@torch.no_grad()
def sensitivity_check(policy, batch: dict[str, torch.Tensor], seed: int) -> dict:
    """Perturb every tensor in turn; report those that do not move the (normalized) chunk."""
    g = generator(seed, "sensitivity")
    base = policy.predict_action_chunk(batch).clone()
    scale = float(base.abs().mean())
    dead, weak, min_rel = [], [], math.inf
    named = list(policy.state_dict(keep_vars=True).items())
    for name, t in named:
        orig = t.detach().clone()
        noise = torch.randn(t.shape, generator=g, dtype=torch.float32)
        if name.endswith("running_var"):
            t.data.mul_(torch.exp(0.2 * noise))
        else:
            t.data.add_(0.2 * (orig.abs().mean() + 1e-3) * noise)
        out = policy.predict_action_chunk(batch)
        t.data.copy_(orig)
        rel = float((out - base).abs().max()) / max(scale, 1e-12)
        expected_dead = no_influence_in_eval(policy.config, name)
        if expected_dead:
            if rel > 1e-4:  # below that it is fp32 rounding (e.g. softmax weights not summing to exactly 1)
                dead.append(f"{name} (expected no influence, but it moves the chunk by {rel:.1e})")
        elif rel < 1e-5:
            dead.append(name)
        else:
            min_rel = min(min_rel, rel)
            if rel < 1e-3:
                weak.append((name, rel))
    again = policy.predict_action_chunk(batch)
    if not torch.equal(again, base):
        raise RuntimeError("sensitivity check did not restore the weights")
    return {
        "n_tensors": len(named),
        "unexpected_no_influence": dead,
        "weak_influence_lt_1e-3": weak,
        "min_relative_change": min_rel,
    }


# ---------------------------------------------------------------------------------------------------------
# One case
# ---------------------------------------------------------------------------------------------------------
def run_case(name: str, out_dir: Path, sensitivity: bool) -> dict:
    import lerobot
    import torchvision
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    case = CASES[name]
    seed = case["seed"]
    t0 = time.perf_counter()
    case_dir = out_dir / name
    if case_dir.exists():
        shutil.rmtree(case_dir)
    ckpt = case_dir / "checkpoint"
    ckpt.mkdir(parents=True)

    torch.manual_seed(seed)  # nothing should draw from the global RNG in eval, but be safe
    cfg = build_config(case)
    policy = ACTPolicy(cfg)
    kept = redraw_weights(policy, generator(seed, "weights"))
    expected = {k: v.detach().clone() for k, v in policy.state_dict().items()}
    stats = make_stats(case, generator(seed, "stats"))
    pre, post = make_pre_post_processors(cfg, dataset_stats=stats)
    policy.save_pretrained(str(ckpt))
    pre.save_pretrained(str(ckpt))
    post.save_pretrained(str(ckpt))
    if case["config_type_field"]:
        add_type_field(ckpt / "config.json")
    del policy, pre, post
    t_build = time.perf_counter() - t0

    # ---- everything below uses only what is on disk ----
    policy = load_policy_from_disk(ckpt)
    check_reloaded_weights(policy, ckpt, expected)
    pre, post = make_pre_post_processors(
        policy.config,
        pretrained_path=str(ckpt),
        preprocessor_overrides={"device_processor": {"device": "cpu"}},
    )
    obs_steps = make_observations(case, stats, generator(seed, "observations"))
    extra = {}
    if "lerobot_workaround" in case:
        extra = {"observation.state": torch.zeros((case["batch"], 0), dtype=torch.float32)}

    arrays: dict[str, np.ndarray] = {"n_steps": np.array(case["n_steps"], dtype=np.int64)}
    for i, obs in enumerate(obs_steps):
        for k, v in obs.items():
            arrays[f"obs.{i}.{k}"] = v.numpy().copy()

    t1 = time.perf_counter()
    with torch.no_grad():
        policy.eval()
        batch0 = pre({**{k: v.clone() for k, v in obs_steps[0].items()}, **extra})
        for k in obs_steps[0]:
            arrays[f"pre.0.{k}"] = batch0[k].detach().numpy().astype(np.float32).copy()
        chunk_norm = policy.predict_action_chunk(batch0)
        chunk = post(chunk_norm.clone())
        t_chunk = time.perf_counter() - t1

        policy.reset()
        actions, actions_norm = [], []
        for obs in obs_steps:
            b = pre({**{k: v.clone() for k, v in obs.items()}, **extra})
            a_norm = policy.select_action(b)
            actions_norm.append(a_norm.clone())
            actions.append(post(a_norm.clone()))
        t_loop = time.perf_counter() - t1 - t_chunk

    arrays["chunk"] = chunk.numpy().astype(np.float32)
    arrays["chunk_normalized"] = chunk_norm.numpy().astype(np.float32)
    arrays["actions"] = torch.stack(actions).numpy().astype(np.float32)
    arrays["actions_normalized"] = torch.stack(actions_norm).numpy().astype(np.float32)
    for k, v in arrays.items():
        if not np.all(np.isfinite(v)):
            raise RuntimeError(f"{name}: non-finite values in {k}")

    # ---- self-consistency checks of LeRobot's own behaviour ----
    b_, t_, a_ = arrays["chunk"].shape
    assert (b_, t_, a_) == (case["batch"], cfg.chunk_size, case["action_dim"]), arrays["chunk"].shape
    assert arrays["actions"].shape == (case["n_steps"], b_, a_), arrays["actions"].shape
    checks = {}
    if cfg.temporal_ensemble_coeff is None:
        n = min(cfg.n_action_steps, case["n_steps"])
        # first n_action_steps actions come from the step-0 chunk, later observations ignored until refill
        diff = np.abs(arrays["actions"][:n] - arrays["chunk"][:, :n].transpose(1, 0, 2)).max()
        checks["queue_first_refill_matches_chunk_maxabs"] = float(diff)
        assert diff <= 1e-5, diff
        refills = list(range(0, case["n_steps"], cfg.n_action_steps))
        checks["chunk_refill_steps"] = refills
    else:
        diff = np.abs(arrays["actions"][0] - arrays["chunk"][:, 0]).max()
        checks["ensemble_first_action_is_chunk_0_maxabs"] = float(diff)
        assert diff <= 1e-5, diff
        # Offline form of LeRobot's online ensembler, in normalized space: action_t is the average of
        # chunk_s[t - s] over s = max(0, t-T+1)..t, weighted exp(-coeff * j) with j = 0 for the OLDEST s.
        with torch.no_grad():
            chunks = [
                policy.predict_action_chunk(pre({**{k: v.clone() for k, v in o.items()}, **extra})).numpy()
                for o in obs_steps
            ]
        coeff, T = cfg.temporal_ensemble_coeff, cfg.chunk_size
        worst = 0.0
        for t in range(case["n_steps"]):
            srcs = list(range(max(0, t - T + 1), t + 1))
            w = np.exp(-coeff * np.arange(len(srcs)))
            want = sum(wj * chunks[s][:, t - s] for wj, s in zip(w, srcs)) / w.sum()
            worst = max(worst, float(np.abs(want - arrays["actions_normalized"][t]).max()))
        checks["ensemble_matches_offline_weighted_average_maxabs"] = worst
        assert worst <= 1e-5, worst
    checks["degeneracy"] = degeneracy_report(chunk_norm)
    print(f"[{name}] chunk (normalized) stats: {json.dumps(checks['degeneracy'])}", flush=True)
    deg = checks["degeneracy"]
    # Not degenerate: varies across action dims (the brief's criterion), over the chunk, and with the obs.
    if not (deg["std_across_action_dims"] > 0.1 and deg["std_all"] > 0.1 and deg["std_over_time"] > 0.01):
        raise RuntimeError(f"{name}: degenerate chunk output {deg}")
    if "std_over_batch" in deg and deg["std_over_batch"] <= 0.01:
        raise RuntimeError(f"{name}: chunk does not depend on the observation {deg}")

    t2 = time.perf_counter()
    if sensitivity:
        # at most 2 x 96 x 128 probe images: weight influence does not depend on resolution
        probe_case = dict(case)
        probe_case["inputs"] = [
            (k, t, (s[0], min(s[1], 96), min(s[2], 128)) if t == "VISUAL" else s) for k, t, s in case["inputs"]
        ]
        probe_case["batch"], probe_case["n_steps"] = 2, 1
        probe = make_observations(probe_case, stats, generator(seed, "probe"))[0]
        if extra:
            probe["observation.state"] = torch.zeros((2, 0))
        pb = pre(probe)
        checks["sensitivity"] = sensitivity_check(policy, pb, seed)
        s = checks["sensitivity"]
        print(
            f"[{name}] sensitivity: {s['n_tensors']} tensors, min relative change {s['min_relative_change']:.2e}, "
            f"unexpected no-influence: {s['unexpected_no_influence']}, weak: {s['weak_influence_lt_1e-3']}",
            flush=True,
        )
        if s["unexpected_no_influence"]:
            raise RuntimeError(f"{name}: tensors without influence: {s['unexpected_no_influence']}")
    t_sens = time.perf_counter() - t2

    np.savez(case_dir / "reference.npz", **arrays)

    files = sorted(p.name for p in ckpt.iterdir())
    meta = {
        "case": name,
        "case_config": case,
        "seed": seed,
        "derived_seeds": {p: derived_seed(seed, p) for p in ("weights", "stats", "observations")},
        "lerobot_version": lerobot.__version__,
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "weights_sha256": sha256_file(ckpt / "model.safetensors"),
        "checkpoint_files_sha256": {f: sha256_file(ckpt / f) for f in files},
        "reference_npz_sha256": sha256_file(case_dir / "reference.npz"),
        "script_sha256": sha256_file(SCRIPT_PATH),
        "config_has_type_field": "type" in json.loads((ckpt / "config.json").read_text()),
        "kept_as_computed": kept,
        "no_influence_in_eval": sorted(k for k in expected if no_influence_in_eval(cfg, k)),
        "npz_keys": {k: [list(v.shape), str(v.dtype)] for k, v in arrays.items()},
        "checks": checks,
        "timing_s": {
            "build_and_save": round(t_build, 3),
            "chunk": round(t_chunk, 3),
            "select_action_loop": round(t_loop, 3),
            "sensitivity": round(t_sens, 3),
            "total": round(time.perf_counter() - t0, 3),
        },
    }
    (case_dir / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    print(f"[{name}] done in {meta['timing_s']['total']:.1f}s  {json.dumps(meta['timing_s'])}", flush=True)
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="output directory")
    ap.add_argument(
        "--cases", default=",".join(DEFAULT_CASES), help=f"comma list (default: all: {','.join(DEFAULT_CASES)})"
    )
    ap.add_argument(
        "--sensitivity",
        choices=("off", "small", "all"),
        default="all",
        help="perturb every tensor and check the chunk moves (default all; 'small': all cases but aloha)",
    )
    args = ap.parse_args(argv)

    import lerobot

    if lerobot.__version__ != "0.4.4":
        print(f"warning: expected lerobot 0.4.4, got {lerobot.__version__}", file=sys.stderr)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown cases {unknown}; known: {list(CASES)}")

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "DONE").unlink(missing_ok=True)
    t0 = time.perf_counter()
    summary = {}
    for c in cases:
        sens = args.sensitivity == "all" or (args.sensitivity == "small" and c != "aloha")
        meta = run_case(c, args.out, sens)
        summary[c] = {"weights_sha256": meta["weights_sha256"], "timing_s": meta["timing_s"]}
    total = time.perf_counter() - t0
    done = {
        "cases": cases,
        "lerobot_version": lerobot.__version__,
        "torch_version": torch.__version__,
        "script_sha256": sha256_file(SCRIPT_PATH),
        "total_s": round(total, 3),
        "summary": summary,
    }
    # write DONE atomically, last
    with tempfile.NamedTemporaryFile("w", dir=args.out, delete=False, suffix=".tmp") as f:
        json.dump(done, f, indent=2)
        tmp = f.name
    os.replace(tmp, args.out / "DONE")
    print(f"all {len(cases)} cases done in {total:.1f}s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
