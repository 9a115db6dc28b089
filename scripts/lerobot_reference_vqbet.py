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

import sys
from pathlib import Path

import numpy as np
import torch
from reference_common import (cli, lerobot_version, min_max_stats, normal_, observation_batch, observations,
                              offset_generator, patched, policy_features, redraw, reload, save_checkpoint,
                              sha256_file, snapshot, sources_sha256, write_json, write_reference)

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


@torch.no_grad()
def redraw_vqbet(policy: torch.nn.Module, g: torch.Generator) -> None:
    """Every tensor at a scale where it changes the actions (minGPT initializes at std 0.02), the action token
    and the codebooks included; then LeRobot's state after training phase 1 (VQBeTHead.discretize): inference
    uses the trained VQ-VAE."""
    redraw(policy, g, embedding_std=0.5)
    vqbet = policy.vqbet
    normal_(vqbet.action_token, g, 1.0)
    vq = vqbet.action_head.vqvae_model
    for layer in vq.vq_layer.layers:
        normal_(layer._codebook.embed, g, 1.0)
    vq.discretized.fill_(True)
    vq.vq_layer.freeze_codebook.fill_(True)


def case_inputs(case: dict) -> list:
    """The case's camera and state as [(key, type, shape)], in LeRobot's input_features order."""
    cam, shape = case["camera"]
    return [(cam, "VISUAL", shape), ("observation.state", "STATE", (case["state_dim"],))]


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
    from lerobot.policies.factory import make_pre_post_processors
    from lerobot.policies.vqbet.configuration_vqbet import VQBeTConfig
    from lerobot.policies.vqbet.modeling_vqbet import VQBeTPolicy

    seed, A = case["seed"], case["action_dim"]
    input_features, output_features = policy_features(case_inputs(case), A)
    cfg = VQBeTConfig(input_features=input_features, output_features=output_features, device="cpu",
                      **case["config"])
    torch.manual_seed(seed)
    policy = VQBeTPolicy(cfg)
    redraw_vqbet(policy, offset_generator(seed, "weights"))
    expected = snapshot(policy)
    stats = min_max_stats(case_inputs(case), A, offset_generator(seed, "stats"))
    ckpt = out / "checkpoint"
    save_checkpoint(ckpt, policy, *make_pre_post_processors(cfg, dataset_stats=stats), "vqbet")
    policy, pre, post = reload(VQBeTPolicy, ckpt, expected)
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
    steps = observations(case_inputs(case), B, case["n_steps"], stats, offset_generator(case["seed"], "observations"),
                         state_draw="uniform")
    heads: list[tuple] = []
    hook = policy.vqbet.action_head.register_forward_hook(lambda m, a, o: heads.append((a[0], o)))
    draws = InverseCDF(DRAW_SEED)
    arrays: dict[str, np.ndarray] = {"n_steps": np.array(case["n_steps"])}
    actions = []
    try:
        with patched(torch, multinomial=draws), torch.no_grad():
            policy.reset()
            for i, obs in enumerate(steps):
                actions.append(post(policy.select_action(observation_batch(pre, obs))).numpy())
                arrays.update({f"obs.{i}.{k}": v.numpy() for k, v in obs.items()})
    finally:
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
    write_reference(out / name / "reference.npz", arrays)
    meta = {"case": name, "lerobot_version": lerobot_version(), "torch": torch.__version__,
            "script_sha256": sha256_file(Path(__file__)), "sources_sha256": sources_sha256(), "n_chunks": len(heads),
            "distinct_codes": int(len({tuple(c) for c in codes.reshape(-1, 2)})),
            "std_actions": float(arrays["actions"].std())}
    write_json(out / name / "meta.json", meta)
    print(name, meta)


if __name__ == "__main__":
    sys.exit(cli(CASES, run_case, __doc__))
