#!/usr/bin/env python3
"""LeRobot 0.4.4 reference checkpoints and outputs for VQ-BeT (runs ONLY in the LeRobot venv).

Each case builds a small VQ-BeT with LeRobot, redraws every weight (the codebooks included) at a scale where
it matters, marks the residual VQ-VAE as trained (discretized, frozen codebooks: LeRobot's state after its
training phase 1), saves it and reloads it with from_pretrained. OUT/<case>/checkpoint/, reference.npz,
meta.json:
    obs.<i>.<key>   float32 (B, …) observations of step i (robot units, images in [0, 1])
    actions         float32 (n_steps, B, A) robot units: post(policy.select_action(pre(obs.i))) after reset()
    uniforms        float64 (n_chunks, B, G) the draws behind the codes of the current step's token, chunk by chunk
    codes           int64 (n_chunks, B, G) the codes LeRobot drew for that token
    first-chunk networks, at that token: code_logits (B, G, K) [or primary_logits (B, K) and
    secondary_logits (B, K), the latter given the drawn primary], offsets (B, G, K, W, A), decoded (B, W, A)
LeRobot draws codes with torch.multinomial; here torch.multinomial is replaced by an inverse CDF of uniforms
from numpy's default_rng(DRAW_SEED) (one per row, in LeRobot's row order), and the uniforms of the token the
rollout uses are saved, so lerobot-edge gets the same draws injected (`noise=`): not a statistical check.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

DRAW_SEED = 5151
SMALL = dict(vqvae_n_embed=8, vqvae_embedding_dim=16, vqvae_enc_hidden_dim=24, gpt_block_size=24, gpt_input_dim=32,
             gpt_output_dim=24, gpt_n_layer=2, gpt_n_head=4, gpt_hidden_dim=32, spatial_softmax_num_keypoints=8,
             pretrained_backbone_weights=None, bet_softmax_temperature=0.5)
CASES = {
    "vqbet": {"seed": 4101, "batch": 2, "n_steps": 10, "camera": ("observation.image", (3, 72, 72)),
              "state_dim": 4, "action_dim": 3,
              "config": {**SMALL, "n_obs_steps": 3, "n_action_pred_token": 3, "action_chunk_size": 4,
                         "crop_shape": (64, 64), "use_group_norm": True}},
    "vqbet_seq": {"seed": 4102, "batch": 2, "n_steps": 7, "camera": ("observation.images.top", (3, 64, 64)),
                  "state_dim": 5, "action_dim": 2,
                  "config": {**SMALL, "n_obs_steps": 2, "n_action_pred_token": 1, "action_chunk_size": 3,
                             "crop_shape": None, "use_group_norm": False, "sequentially_select": True}},
}


def generator(seed: int, what: str) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1000 + int(hashlib.sha256(what.encode()).hexdigest()[:6], 16))


@torch.no_grad()
def redraw(policy: torch.nn.Module, g: torch.Generator) -> None:
    """Every tensor at a scale where it changes the actions (minGPT initializes at std 0.02)."""
    def normal_(t, std, mean=0.0):
        t.copy_(mean + std * torch.randn(t.shape, generator=g))
    for mod in policy.modules():
        if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)):
            normal_(mod.weight, 1.0 / math.sqrt(mod.weight[0].numel()))
            if mod.bias is not None:
                normal_(mod.bias, 0.1)
        elif isinstance(mod, (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.BatchNorm2d)):
            normal_(mod.weight, 0.1, 1.0)
            normal_(mod.bias, 0.1)
            if isinstance(mod, torch.nn.BatchNorm2d):
                normal_(mod.running_mean, 0.1)
                mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=g))
        elif isinstance(mod, torch.nn.Embedding):
            normal_(mod.weight, 0.5)
    vqbet = policy.vqbet
    normal_(vqbet.action_token, 1.0)
    vq = vqbet.action_head.vqvae_model
    for layer in vq.vq_layer.layers:
        normal_(layer._codebook.embed, 1.0)
    # LeRobot's state after training phase 1 (VQBeTHead.discretize): inference uses the trained VQ-VAE
    vq.discretized.fill_(True)
    vq.vq_layer.freeze_codebook.fill_(True)


class InverseCDF:
    """Stands in for torch.multinomial(probs (R, K), 1): row r gets the first k with cdf[k] > u_r * total."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.calls: list[np.ndarray] = []

    def __call__(self, probs, num_samples=1, **kw):
        assert num_samples == 1
        p = probs.detach().double().numpy()
        u = self.rng.random(p.shape[0])
        cdf = np.cumsum(p, axis=-1)
        idx = np.minimum((cdf <= u[:, None] * cdf[:, -1:]).sum(-1), p.shape[1] - 1)
        self.calls.append(u)
        return torch.from_numpy(idx[:, None].astype(np.int64))


def make_policy(case: dict, out: Path):
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.factory import make_pre_post_processors
    from lerobot.policies.vqbet.configuration_vqbet import VQBeTConfig
    from lerobot.policies.vqbet.modeling_vqbet import VQBeTPolicy

    seed, (cam, shape), A = case["seed"], case["camera"], case["action_dim"]
    inputs = {cam: PolicyFeature(type=FeatureType.VISUAL, shape=shape),
              "observation.state": PolicyFeature(type=FeatureType.STATE, shape=(case["state_dim"],))}
    cfg = VQBeTConfig(input_features=inputs, output_features={"action": PolicyFeature(type=FeatureType.ACTION,
                                                                                     shape=(A,))},
                      device="cpu", **case["config"])
    torch.manual_seed(seed)
    policy = VQBeTPolicy(cfg)
    redraw(policy, generator(seed, "weights"))
    g = generator(seed, "stats")
    stats = {}
    for key, dim in (("observation.state", case["state_dim"]), ("action", A)):
        lo = torch.randn(dim, generator=g)
        stats[key] = {"min": lo, "max": lo + 1 + torch.rand(dim, generator=g)}
    pre, post = make_pre_post_processors(cfg, dataset_stats=stats)
    ckpt = out / "checkpoint"
    for obj in (policy, pre, post):
        obj.save_pretrained(ckpt)
    conf = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({"type": "vqbet", **conf}, indent=4))
    policy = VQBeTPolicy.from_pretrained(str(ckpt)).eval()
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(ckpt),
                                         preprocessor_overrides={"device_processor": {"device": "cpu"}})
    assert bool(policy.vqbet.action_head.vqvae_model.discretized)
    return policy, pre, post, stats


def head_outputs(policy, x: torch.Tensor, s: int, codes: torch.Tensor) -> dict[str, np.ndarray]:
    """LeRobot's own head layers at the current step's token (x: the head's input (N, T, D))."""
    head, cfg = policy.vqbet.action_head, policy.config
    xs = x[:, s - 1]                                                           # (N, D)
    n, k = xs.shape[0], cfg.vqvae_n_embed
    out = {"offsets": head.map_to_cbet_preds_offset(xs).reshape(n, 2, k, cfg.action_chunk_size, -1).numpy()}
    if cfg.sequentially_select:
        out["primary_logits"] = head.map_to_cbet_preds_primary_bin(xs).numpy()
        onehot = torch.nn.functional.one_hot(codes[:, 0], k).float()
        out["secondary_logits"] = head.map_to_cbet_preds_secondary_bin(torch.cat([xs, onehot], 1)).numpy()
    else:
        out["code_logits"] = head.map_to_cbet_preds_bin(xs).reshape(n, 2, k).numpy()
    return out


def run_case(name: str, case: dict, out: Path) -> None:
    policy, pre, post, stats = make_policy(case, out / name)
    B, cfg = case["batch"], policy.config
    S, W = cfg.n_obs_steps, cfg.action_chunk_size
    cam, shape = case["camera"]
    g = generator(case["seed"], "observations")
    st = stats["observation.state"]
    steps = [{cam: torch.rand((B, *shape), generator=g),
              "observation.state": st["min"] + (st["max"] - st["min"]) * torch.rand((B, case["state_dim"]),
                                                                                    generator=g)}
             for _ in range(case["n_steps"])]
    heads: list[tuple] = []
    hook = policy.vqbet.action_head.register_forward_hook(lambda m, a, o: heads.append((a[0], o)))
    draws, saved = InverseCDF(DRAW_SEED), torch.multinomial
    arrays: dict[str, np.ndarray] = {"n_steps": np.array(case["n_steps"])}
    actions = []
    torch.multinomial = draws
    try:
        with torch.no_grad():
            policy.reset()
            for i, obs in enumerate(steps):
                batch = {k: v for k, v in pre(dict(obs)).items() if k.startswith("observation.")}
                actions.append(post(policy.select_action(batch)).numpy())
                arrays.update({f"obs.{i}.{k}": v.numpy() for k, v in obs.items()})
    finally:
        torch.multinomial = saved
        hook.remove()
    T = S + cfg.n_action_pred_token - 1
    if cfg.sequentially_select:   # two calls per chunk (primary, secondary), N*T rows each
        u = np.stack([np.stack([a, b], -1) for a, b in zip(draws.calls[::2], draws.calls[1::2])])
    else:                         # one call per chunk, rows ordered (n, t, g)
        u = np.stack(draws.calls)
    u = u.reshape(len(heads), B, T, 2)[:, :, S - 1]                           # (n_chunks, B, G)
    codes = np.stack([o["sampled_centers"].reshape(B, T, 2)[:, S - 1].numpy() for _, o in heads])
    x0, o0 = heads[0]
    with torch.no_grad():
        arrays.update(head_outputs(policy, x0, S, torch.from_numpy(codes[0])))
    arrays.update(actions=np.stack(actions), uniforms=u, codes=codes,
                  decoded=o0["decoded_action"].reshape(B, T, W, -1)[:, S - 1].numpy())
    np.savez(out / name / "reference.npz", **arrays)
    meta = {"case": name, "lerobot_version": __import__("lerobot").__version__, "torch": torch.__version__,
            "script_sha256": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(), "n_chunks": len(heads),
            "distinct_codes": int(len({tuple(c) for c in codes.reshape(-1, 2)})),
            "std_actions": float(arrays["actions"].std())}
    (out / name / "meta.json").write_text(json.dumps(meta, indent=2))
    print(name, meta)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--cases", default=",".join(CASES))
    args = ap.parse_args()
    for name in args.cases.split(","):
        run_case(name, CASES[name], Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
