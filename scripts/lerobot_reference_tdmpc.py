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

import sys
from pathlib import Path

import numpy as np
import torch
from reference_common import (cli, lerobot_version, min_max_stats, observation_batch, observations,
                              offset_generator, patched, policy_features, redraw, reload, save_checkpoint,
                              sha256_file, snapshot, sources_sha256, write_json, write_reference)

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
    from lerobot.policies.factory import make_pre_post_processors
    from lerobot.policies.tdmpc.configuration_tdmpc import TDMPCConfig
    from lerobot.policies.tdmpc.modeling_tdmpc import TDMPCPolicy

    seed, ckpt = case["seed"], out / name / "checkpoint"
    input_features, output_features = policy_features(case["inputs"], case["action_dim"])
    cfg = TDMPCConfig(input_features=input_features, output_features=output_features, device="cpu",
                      **case["config"])
    torch.manual_seed(seed)
    policy = TDMPCPolicy(cfg)
    redraw(policy, offset_generator(seed, "weights"))  # LeRobot zero-initializes the reward and Q heads
    expected = snapshot(policy)
    stats = min_max_stats(case["inputs"], case["action_dim"], offset_generator(seed, "stats"))
    save_checkpoint(ckpt, policy, *make_pre_post_processors(cfg, dataset_stats=stats), "tdmpc")
    policy, pre, post = reload(TDMPCPolicy, ckpt, expected)
    steps = observations(case["inputs"], case["batch"], case["n_steps"], stats,
                         offset_generator(seed, "observations"), state_draw="uniform")
    arrays = {"n_steps": np.array(case["n_steps"]), "draw_seed": np.array(DRAW_SEED)}
    draws = Draws(DRAW_SEED)
    with torch.no_grad():
        b0 = observation_batch(pre, steps[0])
        enc = {k: b0[k] for k in b0 if k in ("observation.state", "observation.environment_state")}
        if cfg.image_features:
            enc["observation.image"] = b0[next(iter(cfg.image_features))]
        z = policy.model.encode(enc)
        arrays.update(z=z.numpy(), pi=policy.model.pi(z).numpy())
        policy.reset()
        actions = []
        with patched(torch, **{n: getattr(draws, n) for n in ("randn", "randn_like", "randint", "multinomial")}):
            for i, obs in enumerate(steps):
                actions.append(post(policy.select_action(observation_batch(pre, obs))).numpy())
                arrays.update({f"obs.{i}.{k}": v.numpy() for k, v in obs.items()})
    arrays["actions"] = np.stack(actions)
    write_reference(out / name / "reference.npz", arrays)
    meta = {"case": name, "lerobot_version": lerobot_version(), "torch": torch.__version__,
            "script_sha256": sha256_file(Path(__file__)), "sources_sha256": sources_sha256(),
            "std_actions": float(arrays["actions"].std())}
    write_json(out / name / "meta.json", meta)
    print(name, meta)


if __name__ == "__main__":
    sys.exit(cli(CASES, run_case, __doc__))
