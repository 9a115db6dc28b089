#!/usr/bin/env python3
"""LeRobot 0.4.4 reference checkpoints and outputs for TDMPC (runs ONLY in the LeRobot venv).

OUT/<case>/checkpoint/ (saved by LeRobot, reloaded with from_pretrained), reference.npz, meta.json:
    obs.<i>.<key>   float32 (B, …) observations of step i (robot units, images in [0, 1])
    z               float32 (B, D) LeRobot's latent of step 0;  pi  (B, A) tanh(pi(z)) of step 0
    actions         float32 (n_steps, B, A) robot units: post(policy.select_action(pre(obs.i))) after reset()
With use_mpc, every draw LeRobot's planner makes (torch.randn / randn_like / randint / multinomial) is served
from numpy's default_rng(DRAW_SEED) in the order lerobot_edge's runtime consumes its own generator, so
`load_policy(..., seed=DRAW_SEED)` must reproduce `actions` exactly (injected draws, not statistics).
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

DRAW_SEED = 4242
CASES = {
    "tdmpc_pi": {"seed": 3101, "batch": 2, "n_steps": 3,
                 "inputs": [("observation.image", "VISUAL", (3, 48, 48)), ("observation.state", "STATE", (4,))],
                 "action_dim": 3, "config": {"use_mpc": False, "latent_dim": 16, "mlp_dim": 32,
                                             "state_encoder_hidden_dim": 32, "image_encoder_hidden_dim": 8}},
    "tdmpc_mpc": {"seed": 3102, "batch": 2, "n_steps": 4,
                  "inputs": [("observation.state", "STATE", (5,)), ("observation.environment_state", "ENV", (3,))],
                  "action_dim": 2, "config": {"use_mpc": True, "latent_dim": 16, "mlp_dim": 32,
                                              "state_encoder_hidden_dim": 32, "horizon": 4, "n_gaussian_samples": 24,
                                              "n_pi_samples": 6, "n_elites": 8, "cem_iterations": 3,
                                              "q_ensemble_size": 4, "n_action_repeats": 2}},
}


def generator(seed: int, what: str) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1000 + int(hashlib.sha256(what.encode()).hexdigest()[:6], 16))


@torch.no_grad()
def redraw(policy: torch.nn.Module, g: torch.Generator) -> None:
    """Every weight at a scale where it matters (LeRobot zero-initializes the reward and Q heads)."""
    def normal_(t, std, mean=0.0):
        t.copy_(mean + std * torch.randn(t.shape, generator=g))
    for mod in policy.modules():
        if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)):
            normal_(mod.weight, 1.0 / math.sqrt(mod.weight[0].numel()))
            normal_(mod.bias, 0.1)
        elif isinstance(mod, torch.nn.LayerNorm):
            normal_(mod.weight, 0.1, 1.0)
            normal_(mod.bias, 0.1)


class Draws:
    """numpy-backed stand-ins for torch's RNG calls inside LeRobot's planner."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def randn(self, *shape, **kw):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return torch.from_numpy(self.rng.standard_normal(tuple(shape)).astype(np.float32))

    def randn_like(self, x, **kw):
        return self.randn(tuple(x.shape))

    def randint(self, low, high, size, **kw):
        return torch.from_numpy(self.rng.integers(low, high, size=size))

    def multinomial(self, probs, n, **kw):
        p = probs.double().numpy()
        return torch.tensor([[self.rng.choice(p.shape[1], p=row / row.sum())] for row in p])


def run_case(name: str, case: dict, out: Path) -> None:
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.factory import make_pre_post_processors
    from lerobot.policies.tdmpc.configuration_tdmpc import TDMPCConfig
    from lerobot.policies.tdmpc.modeling_tdmpc import TDMPCPolicy

    seed, B, A = case["seed"], case["batch"], case["action_dim"]
    cfg = TDMPCConfig(input_features={k: PolicyFeature(type=FeatureType(t), shape=s) for k, t, s in case["inputs"]},
                      output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(A,))},
                      device="cpu", **case["config"])
    torch.manual_seed(seed)
    policy = TDMPCPolicy(cfg)
    redraw(policy, generator(seed, "weights"))
    stats = {}
    g = generator(seed, "stats")
    for key, kind, shape in [*case["inputs"], ("action", "ACTION", (A,))]:
        if kind != "VISUAL":
            lo = torch.randn(shape, generator=g)
            stats[key] = {"min": lo, "max": lo + 1 + torch.rand(shape, generator=g)}
    pre, post = make_pre_post_processors(cfg, dataset_stats=stats)
    ckpt = out / name / "checkpoint"
    for obj in (policy, pre, post):
        obj.save_pretrained(ckpt)
    conf = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({"type": "tdmpc", **conf}, indent=4))
    policy = TDMPCPolicy.from_pretrained(str(ckpt)).eval()
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(ckpt),
                                         preprocessor_overrides={"device_processor": {"device": "cpu"}})
    g = generator(seed, "observations")
    steps = [{k: (torch.rand((B, *s), generator=g) if t == "VISUAL" else
                  stats[k]["min"] + (stats[k]["max"] - stats[k]["min"]) * torch.rand((B, *s), generator=g))
              for k, t, s in case["inputs"]} for _ in range(case["n_steps"])]
    arrays = {"n_steps": np.array(case["n_steps"]), "draw_seed": np.array(DRAW_SEED)}
    draws, saved = Draws(DRAW_SEED), {n: getattr(torch, n) for n in ("randn", "randn_like", "randint", "multinomial")}
    with torch.no_grad():
        b0 = {k: v for k, v in pre(dict(steps[0])).items() if k.startswith("observation.")}
        enc = {k: b0[k] for k in b0 if k in ("observation.state", "observation.environment_state")}
        if cfg.image_features:
            enc["observation.image"] = b0[next(iter(cfg.image_features))]
        z = policy.model.encode(enc)
        arrays.update(z=z.numpy(), pi=policy.model.pi(z).numpy())
        policy.reset()
        actions = []
        for n in saved:
            setattr(torch, n, getattr(draws, n))
        try:
            for i, obs in enumerate(steps):
                batch = {k: v for k, v in pre(dict(obs)).items() if k.startswith("observation.")}
                actions.append(post(policy.select_action(batch)).numpy())
                arrays.update({f"obs.{i}.{k}": v.numpy() for k, v in obs.items()})
        finally:
            for n, f in saved.items():
                setattr(torch, n, f)
    arrays["actions"] = np.stack(actions)
    np.savez(out / name / "reference.npz", **arrays)
    meta = {"case": name, "lerobot_version": __import__("lerobot").__version__, "torch": torch.__version__,
            "script_sha256": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
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
