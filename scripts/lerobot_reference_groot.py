#!/usr/bin/env python3
"""Reference checkpoint and actions for GR00T N1.5 (LeRobot's `groot`) from LeRobot 0.4.4 (.venv-lerobot, with
the groot extra's transformers<5 / huggingface_hub<0.36 / datasets<5 / peft / dm-tree on PYTHONPATH: mk/parity_groot.mk).

Builds a reduced GR00T with LeRobot's own classes, offline: the Eagle processor directory that LeRobot's groot reads
from HF_LEROBOT_HOME/<tokenizer_assets_repo> is written here (tiny SigLIP vision tower, 4-layer Qwen3, synthetic
tokenizer, chat template; lerobot_edge.testing.checkpoints.groot), HF_LEROBOT_HOME points into OUT. A GR00T base
model (GR00TN15 from a base config.json: select_layer 3, a 4-layer DiT, 1 VL self-attention layer) is built by
LeRobot, every weight redrawn with a seed and saved with save_pretrained; GrootPolicy(base_model_path=that dir)
loads it as LeRobot does, and the policy is saved with save_pretrained and its processors. use_bf16=False (fp32).
LeRobot draws the initial noise inside get_action with torch.randn: it is replaced for the call by draws from a
seeded generator, recorded. Eagle forces flash_attention_2 on its SigLIP tower, and flash-attn (CUDA only) cannot
be installed here: SiglipVisionModel is replaced, for this process, by a subclass that selects PyTorch's SDPA
attention (the same math) before LeRobot builds it. LeRobot's code is not changed.

OUT/lerobot_home/<repo>/  the Eagle processor directory (pass it as --vlm)
OUT/base/                 the GR00T base model (config.json, model.safetensors; pass as --base)
OUT/groot/checkpoint/     the LeRobot checkpoint
OUT/groot/<case>.npz      plain (B 2, two cameras, two tasks: LeRobot uses the first for both), missing_camera
                          (B 1, the first camera only), resized_camera (B 1, both cameras 40x48: resized by the
                          Eagle processor): obs.<key>, task, noise, chunk_normalized (policy output,
                          (B, horizon, A)), chunk (robot units, LeRobot's unnormalize of it), input_ids;
                          select (B 1, 3 chunks through select_action with n_action_steps < horizon):
                          obs.<key> (T, ...), task, noise (chunks, 1, horizon, 32), actions (T, 1, A)
OUT/meta.json, OUT/DONE
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parents[1]
sys.path.insert(0, str(REPO))   # lerobot_edge.testing's fixture writers (json, numpy, tokenizers only)
from lerobot_edge.testing.checkpoints.groot import base_config, groot_random_weights, write_eagle_dir  # noqa: E402
from reference_common import lerobot_version, patched, sha256_file, sources_sha256, write_done, write_json  # noqa: E402
from reference_common import write_reference  # noqa: E402

SEED = 23
ASSETS_REPO = "lerobot/eagle2hg-processor-groot-n1p5"  # LeRobot's default (its backbone always reads that one)
CAMERAS = {"observation.images.front": (3, 32, 32), "observation.images.wrist": (3, 32, 32)}
STATE_DIM, ACTION_DIM, N_ACTION_STEPS = 6, 5, 6  # horizon 8: LeRobot's queue (maxlen 6) keeps a chunk's last 6
TASKS = ["pick the red cube", "open the drawer"]
RESIZED = {k: (3, 40, 48) for k in CAMERAS}   # LeRobot stacks the cameras: they must share one size


def sdpa_siglip():
    """transformers' SiglipVisionModel, but built with SDPA attention whatever the config says (see the top)."""
    from transformers.models.siglip import modeling_siglip

    class SdpaSiglipVisionModel(modeling_siglip.SiglipVisionModel):
        def __init__(self, config):
            config._attn_implementation = "sdpa"
            super().__init__(config)

    return patched(modeling_siglip, SiglipVisionModel=SdpaSiglipVisionModel)


def build_base(base_dir: Path):
    """LeRobot's GR00TN15 from the reduced base config, weights redrawn, saved as a base model directory."""
    from lerobot.policies.groot.groot_n1 import GR00TN15, GR00TN15Config

    cfg = GR00TN15Config(**base_config())
    model = GR00TN15(cfg, local_model_path=str(base_dir))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    new = {k: torch.from_numpy(v) for k, v in groot_random_weights(shapes, SEED).items()}
    model.load_state_dict(new, strict=True)
    model.save_pretrained(str(base_dir), safe_serialization=True)
    return shapes


def build_policy(base_dir: Path):
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.groot.configuration_groot import GrootConfig
    from lerobot.policies.groot.modeling_groot import GrootPolicy

    feats = {"observation.state": PolicyFeature(type=FeatureType.STATE, shape=(STATE_DIM,)),
             **{k: PolicyFeature(type=FeatureType.VISUAL, shape=s) for k, s in CAMERAS.items()}}
    cfg = GrootConfig(input_features=feats,
                      output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(ACTION_DIM,))},
                      base_model_path=str(base_dir), tokenizer_assets_repo=ASSETS_REPO, use_bf16=False,
                      chunk_size=8, n_action_steps=N_ACTION_STEPS, image_size=(32, 32), device="cpu")
    return GrootPolicy(cfg).eval(), cfg


def stats(rng: np.random.Generator) -> dict:
    lo = {k: rng.normal(0, 1, d).astype(np.float32) for k, d in (("observation.state", STATE_DIM),
                                                                   ("action", ACTION_DIM))}
    out = {k: {"min": torch.from_numpy(v), "max": torch.from_numpy(v + rng.uniform(0.5, 3, v.shape).astype(np.float32))}
           for k, v in lo.items()}
    out["action"]["max"][1] = out["action"]["min"][1]  # a constant action dim: LeRobot maps it to min
    return out


def observation(rng: np.random.Generator, batch: int, cams: list[str], shapes: dict | None = None) -> dict:
    obs = {k: rng.random((batch, *(shapes or CAMERAS)[k])).astype(np.float32) for k in cams}
    obs["observation.state"] = rng.normal(0, 2, (batch, STATE_DIM)).astype(np.float32)
    return obs


class Noise:
    """Stands in for torch.randn during get_action: the (B, horizon, 32) initial noise comes from the given array
    (any other draw is an error: none is expected at inference)."""

    def __init__(self):
        self.queue: list[np.ndarray] = []
        self.used: list[np.ndarray] = []
        self._randn = torch.randn

    def __call__(self, *args, size=None, dtype=None, device=None, **kw):
        shape = tuple(size if size is not None else (args[0] if len(args) == 1 else args))
        x = self.queue.pop(0)
        if x.shape != shape:
            raise RuntimeError(f"unexpected randn{shape}, queued {x.shape}")
        self.used.append(x)
        return torch.from_numpy(x.copy()).to(dtype or torch.float32)


def to_batch(obs: dict, task) -> dict:
    return {**{k: torch.from_numpy(v) for k, v in obs.items()}, "task": task}


def chunk_case(policy, pre, post, noise: Noise, path: Path, obs: dict, task, rng) -> dict:
    """predict_action_chunk on pre(obs) with recorded noise; robot units via the post-processor per step."""
    b = next(iter(obs.values())).shape[0]
    draw = rng.standard_normal((b, policy._groot_model.action_horizon, 32)).astype(np.float32)
    noise.queue.append(draw)
    with torch.no_grad(), patched(torch, randn=noise):
        processed = pre(to_batch(obs, task))
        normalized = policy.predict_action_chunk(processed)
    robot = torch.stack([post(normalized[:, t]) for t in range(normalized.shape[1])], 1)
    write_reference(path, {**{f"obs.{k}": v for k, v in obs.items()}, "task": np.array(task), "noise": draw,
                           "chunk_normalized": normalized.numpy(), "chunk": robot.numpy(),
                           "input_ids": processed["eagle_input_ids"].numpy(),
                           "pixel_values": processed["eagle_pixel_values"].numpy()}, compressed=True)
    return {"len": int(processed["eagle_input_ids"].shape[1]), "absmax": float(normalized.abs().max())}


def select_case(policy, pre, post, noise: Noise, path: Path, rng, steps: int) -> dict:
    """select_action over `steps` observations (a new chunk whenever LeRobot's queue is empty)."""
    policy.reset()
    horizon = policy._groot_model.action_horizon
    obs_list, actions, draws = [], [], []
    with torch.no_grad(), patched(torch, randn=noise):
        for _ in range(steps):
            obs = observation(rng, 1, list(CAMERAS))
            if not policy._action_queue:
                draws.append(rng.standard_normal((1, horizon, 32)).astype(np.float32))
                noise.queue.append(draws[-1])
            actions.append(post(policy.select_action(pre(to_batch(obs, TASKS[1])))).numpy())
            obs_list.append(obs)
    arrays = {f"obs.{k}": np.stack([o[k] for o in obs_list]) for k in obs_list[0]}
    write_reference(path, {**arrays, "task": np.array(TASKS[1]), "noise": np.stack(draws),
                           "actions": np.stack(actions)}, compressed=True)
    return {"chunks": len(draws)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=Path)
    out = ap.parse_args().out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["HF_LEROBOT_HOME"] = str(out / "lerobot_home")
    os.environ["HF_HUB_OFFLINE"] = "1"
    torch.manual_seed(SEED)
    write_eagle_dir(out / "lerobot_home" / ASSETS_REPO)
    import lerobot.utils.constants as constants  # read HF_LEROBOT_HOME at import: check it took

    assert str(constants.HF_LEROBOT_HOME) == os.environ["HF_LEROBOT_HOME"], constants.HF_LEROBOT_HOME
    from lerobot.policies.groot.processor_groot import make_groot_pre_post_processors

    with sdpa_siglip():
        build_base(out / "base")
        policy, cfg = build_policy(out / "base")
    rng = np.random.default_rng(SEED)
    pre, post = make_groot_pre_post_processors(cfg, dataset_stats=stats(rng))
    ck = out / "groot" / "checkpoint"
    for obj in (policy, pre, post):
        obj.save_pretrained(str(ck))
    noise = Noise()
    checks = {"plain": chunk_case(policy, pre, post, noise, out / "groot" / "plain.npz",
                                  observation(rng, 2, list(CAMERAS)), TASKS, rng),
              "missing_camera": chunk_case(policy, pre, post, noise, out / "groot" / "missing_camera.npz",
                                           observation(rng, 1, list(CAMERAS)[:1]), TASKS[:1], rng),
              "select": select_case(policy, pre, post, noise, out / "groot" / "select.npz", rng, 15),
              # a frame not at the tile size: the Eagle processor resizes it (bicubic, antialiased, uint8)
              "resized_camera": chunk_case(policy, pre, post, noise, out / "groot" / "resized_camera.npz",
                                           observation(rng, 1, list(CAMERAS), RESIZED), TASKS[:1], rng)}
    meta = {"lerobot": lerobot_version(), "transformers": __import__("transformers").__version__,
            "torch": torch.__version__, "seed": SEED, "script_sha256": sha256_file(SCRIPT),
            "sources_sha256": sources_sha256(), "assets_repo": ASSETS_REPO, "checks": checks}
    write_json(out / "meta.json", meta)
    write_done(out, {"script_sha256": meta["script_sha256"]})
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
