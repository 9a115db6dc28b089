#!/usr/bin/env python3
"""LeRobot 0.4.4 reference checkpoints and outputs for SAC (runs ONLY in the LeRobot venv; lerobot_edge is
never imported). For every case it writes OUT/<case>/checkpoint/ (saved by LeRobot, reloaded with
from_pretrained before anything is computed), OUT/<case>/reference.npz and OUT/<case>/meta.json:

    obs.<key>        float32 (B, …) robot units / images in [0, 1], fed to LeRobot's pre-processor
    mean, std        float32 (B, A) the actor's outputs (normalized units)
    action_mean      float32 (B, A) robot units: post(tanh(mean))      (the deterministic mode)
    noise            float32 (B, A) the standard-normal draws LeRobot's rsample used (tapped, seeded)
    action_sampled   float32 (B, A) robot units: post(policy.select_action(pre(obs)))[:, :A] with that noise
    discrete_q       float32 (B, N) discrete critic Q-values (cases with num_discrete_actions)
    discrete_action  int64   (B,)   argmax, the column LeRobot appends
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

# Every case keeps LeRobot's defaults except the sizes it names; in particular use_torch_compile stays on (its
# default), so the critic ensemble and its target are saved under `critic_*._orig_mod.*` as real training runs
# save them. The sac_default_* cases set nothing at all; sac_state_eager is the one deliberate compile-off case.
CASES = {
    "sac_default_state": {"seed": 2104, "batch": 3, "inputs": [("observation.state", "STATE", (6,))],
                          "action_dim": 4, "config": {}},
    "sac_default_image": {
        "seed": 2105, "batch": 2,
        "inputs": [("observation.state", "STATE", (5,)), ("observation.image", "VISUAL", (3, 128, 128))],
        "action_dim": 3, "config": {}},
    "sac_state_eager": {"seed": 2106, "batch": 3, "inputs": [("observation.state", "STATE", (6,))], "action_dim": 4,
                        "config": {"latent_dim": 32, "actor_network_kwargs": {"hidden_dims": [64, 64]},
                                   "use_torch_compile": False}},
    "sac_state": {"seed": 2101, "batch": 3, "inputs": [("observation.state", "STATE", (6,))], "action_dim": 4,
                  "config": {"latent_dim": 32, "actor_network_kwargs": {"hidden_dims": [64, 64]}}},
    "sac_image_gripper": {
        "seed": 2102, "batch": 2,
        "inputs": [("observation.state", "STATE", (5,)), ("observation.images.front", "VISUAL", (3, 64, 64)),
                   ("observation.images.wrist", "VISUAL", (3, 64, 64))],
        "action_dim": 3,
        "config": {"latent_dim": 32, "image_encoder_hidden_dim": 16, "image_embedding_pooling_dim": 4,
                   "num_discrete_actions": 3, "actor_network_kwargs": {"hidden_dims": [64, 64]},
                   "discrete_critic_network_kwargs": {"hidden_dims": [48, 48]}}},
    "sac_unshared": {
        "seed": 2103, "batch": 2,
        "inputs": [("observation.images.top", "VISUAL", (3, 48, 48)),
                   ("observation.environment_state", "ENV", (4,))],
        "action_dim": 2,
        "config": {"latent_dim": 16, "image_encoder_hidden_dim": 8, "shared_encoder": False,
                   "num_discrete_actions": 2}},
}


def generator(seed: int, what: str) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1000 + int(hashlib.sha256(what.encode()).hexdigest()[:6], 16))


def sha256_file(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@torch.no_grad()
def redraw(policy: torch.nn.Module, g: torch.Generator) -> None:
    """Every weight at a scale where it changes the output (LeRobot's init_final=0.05 hides the heads)."""
    def normal_(t, std, mean=0.0):
        t.copy_(mean + std * torch.randn(t.shape, generator=g))
    for mod in policy.modules():
        if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)):
            normal_(mod.weight, 1.0 / math.sqrt(mod.weight[0].numel()))
            normal_(mod.bias, 0.1)
        elif isinstance(mod, torch.nn.LayerNorm):
            normal_(mod.weight, 0.1, 1.0)
            normal_(mod.bias, 0.1)
        elif hasattr(mod, "kernel"):                                  # SpatialLearnedEmbeddings
            normal_(mod.kernel, 0.3)


def make_stats(case: dict, g: torch.Generator) -> dict:
    stats = {}
    for key, kind, shape in [*case["inputs"], ("action", "ACTION", (case["action_dim"],))]:
        if kind == "VISUAL":
            stats[key] = {"mean": torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1),
                          "std": torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)}
            continue
        mean, std = torch.randn(shape, generator=g), 0.5 + torch.rand(shape, generator=g)
        stats[key] = {"mean": mean, "std": std, "min": mean - 2 * std, "max": mean + 2 * std}
    return stats


def saved_key_groups(path: Path) -> dict[str, int]:
    """Key count per top-level group as saved (`critic_ensemble._orig_mod.critics`, `log_alpha`, ...)."""
    from safetensors import safe_open

    groups: dict[str, int] = {}
    with safe_open(str(path), "pt") as f:
        for k in f.keys():
            parts = k.split(".")
            head = ".".join(parts[:3] if parts[1:2] == ["_orig_mod"] else parts[:2] if len(parts) > 1 else parts)
            groups[head] = groups.get(head, 0) + 1
    return groups


class NoiseTap:
    """Replaces torch.distributions' _standard_normal in MultivariateNormal (this script only)."""

    def __init__(self, g: torch.Generator):
        self.g, self.draws = g, []

    def __call__(self, shape, dtype=None, device=None):
        x = torch.randn(tuple(shape), generator=self.g, dtype=torch.float32)
        self.draws.append(x.numpy().copy())
        return x


def run_case(name: str, case: dict, out: Path) -> None:
    import torch.distributions.multivariate_normal as mvn
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.factory import make_pre_post_processors
    from lerobot.policies.sac.configuration_sac import ActorNetworkConfig, CriticNetworkConfig, SACConfig
    from lerobot.policies.sac.modeling_sac import SACPolicy

    seed, B, A = case["seed"], case["batch"], case["action_dim"]
    kw = dict(case["config"])
    if "actor_network_kwargs" in kw:
        kw["actor_network_kwargs"] = ActorNetworkConfig(**kw["actor_network_kwargs"])
    if "discrete_critic_network_kwargs" in kw:
        kw["discrete_critic_network_kwargs"] = CriticNetworkConfig(**kw["discrete_critic_network_kwargs"])
    cfg = SACConfig(input_features={k: PolicyFeature(type=FeatureType(t), shape=s) for k, t, s in case["inputs"]},
                    output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(A,))},
                    device="cpu", **kw)
    torch.manual_seed(seed)
    policy = SACPolicy(cfg)
    redraw(policy, generator(seed, "weights"))
    stats = make_stats(case, generator(seed, "stats"))
    pre, post = make_pre_post_processors(cfg, dataset_stats=stats)
    ckpt = out / name / "checkpoint"
    policy.save_pretrained(ckpt)
    pre.save_pretrained(ckpt)
    post.save_pretrained(ckpt)
    conf = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({"type": "sac", **conf}, indent=4))
    policy = SACPolicy.from_pretrained(str(ckpt)).eval()
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(ckpt),
                                         preprocessor_overrides={"device_processor": {"device": "cpu"}})
    g = generator(seed, "observations")
    obs = {k: (torch.rand((B, *s), generator=g) if t == "VISUAL" else
               stats[k]["mean"] + stats[k]["std"] * torch.randn((B, *s), generator=g)) for k, t, s in case["inputs"]}
    tap, orig = NoiseTap(generator(seed, "noise")), mvn._standard_normal
    mvn._standard_normal = tap
    try:
        with torch.no_grad():
            batch = {k: v for k, v in pre(dict(obs)).items() if k.startswith("observation.")}
            _, _, mean = policy.actor(batch, None)
            enc = policy.actor.encoder(batch)
            h = policy.actor.network(enc)
            std = torch.clamp(torch.exp(policy.actor.std_layer(h)), policy.actor.std_min, policy.actor.std_max)
            tap.draws.clear()
            action = policy.select_action(batch)                             # (B, A[+1]) normalized
            arrays = {f"obs.{k}": v.numpy() for k, v in obs.items()}
            arrays.update(mean=mean.numpy(), std=std.numpy(), noise=tap.draws[0],
                          action_mean=post(torch.tanh(mean)).numpy(), action_sampled=post(action[:, :A]).numpy())
            if cfg.num_discrete_actions is not None:
                arrays["discrete_q"] = policy.discrete_critic(batch, None).numpy()
                arrays["discrete_action"] = action[:, A].long().numpy()
    finally:
        mvn._standard_normal = orig
    assert len(tap.draws) == 1 and tap.draws[0].shape == (B, A), [d.shape for d in tap.draws]
    np.savez(out / name / "reference.npz", **arrays)
    meta = {"case": name, "lerobot_version": __import__("lerobot").__version__, "torch": torch.__version__,
            "weights_sha256": sha256_file(ckpt / "model.safetensors"),
            "script_sha256": sha256_file(Path(__file__)), "std_mean": float(arrays["mean"].std()),
            "use_torch_compile": cfg.use_torch_compile, "saved_keys": saved_key_groups(ckpt / "model.safetensors")}
    # the layout a default training run saves, checked here so a reference can never silently lose it
    assert cfg.use_torch_compile == any("._orig_mod." in k for k in meta["saved_keys"]), meta["saved_keys"]
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
