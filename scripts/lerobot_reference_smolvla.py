#!/usr/bin/env python3
"""Reference checkpoint and action chunks for SmolVLA from LeRobot 0.6.1 (runs ONLY in .venv-lerobot06, Python 3.12).

Builds a reduced SmolVLA with LeRobot's own classes: `vlm_model_name` points at a tiny SmolVLM2-like directory
written here (config.json, synthetic tokenizer, processor files; lerobot_edge.testing.checkpoints.smolvla),
`load_vlm_weights=False`, 4 VLM layers (2 joint self-attention, 2 cross-attention for the expert), 64x64 images
-> 16 tokens per camera. Every weight is redrawn with a seed, then saved in LeRobot's layout with its processors
(language padded to the "longest" prompt, as LeRobot does), and LeRobot's `predict_action_chunk` is recorded on
shared noise, with and without RTC guidance (reference_vla.py, shared with pi0 / pi05). Of lerobot_edge only the
numpy checkpoint writers of lerobot_edge.testing are imported. No patches to LeRobot are needed.

OUT/vlm/                  the VLM directory (pass it as --vlm: the checkpoint records the path it was built at)
OUT/smolvla/checkpoint/   the checkpoint
OUT/smolvla/<case>.npz    obs.<key>, task, noise, chunk (robot units), chunk_normalized, lang_len (LeRobot's
                          padded length); RTC cases also leftover_normalized, leftover (robot units),
                          inference_delay, execution_horizon, max_guidance_weight, schedule
OUT/meta.json, OUT/DONE
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parents[1]
sys.path.insert(0, str(REPO))   # lerobot_edge.testing's checkpoint writers (numpy + tokenizers only)
from lerobot_edge.testing.checkpoints.layout import random_stats, random_weights  # noqa: E402  (numpy only)
from lerobot_edge.testing.checkpoints.smolvla import write_vlm_dir  # noqa: E402  (json + tokenizers)
from reference_vla import chunk_cases, feature_types, finish, random_state_dict, torch_stats  # noqa: E402

SEED = 11
CAMERAS = {"observation.images.top": (3, 48, 64), "observation.images.wrist": (3, 40, 40)}
STATE_DIM, ACTION_DIM, CHUNK, TOK_LEN, IMAGE = 6, 5, 8, 24, 64  # prompts: 8 and 20 tokens


def build_policy(vlm_dir: Path):
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

    feats = {"observation.state": PolicyFeature(type=FeatureType.STATE, shape=(STATE_DIM,)),
             **{k: PolicyFeature(type=FeatureType.VISUAL, shape=s) for k, s in CAMERAS.items()}}
    cfg = SmolVLAConfig(input_features=feats,
                        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(ACTION_DIM,))},
                        chunk_size=CHUNK, n_action_steps=CHUNK, tokenizer_max_length=TOK_LEN,
                        resize_imgs_with_padding=(IMAGE, IMAGE), vlm_model_name=str(vlm_dir), load_vlm_weights=False,
                        num_vlm_layers=4, device="cpu")
    policy = SmolVLAPolicy(cfg)
    own = policy.state_dict()
    new = random_state_dict(policy, random_weights, SEED)
    head, embed = ("model.vlm_with_expert.vlm.lm_head.weight",
                   "model.vlm_with_expert.vlm.model.text_model.embed_tokens.weight")
    if head in new and own[head].data_ptr() == own[embed].data_ptr():  # tied: one tensor
        new[head] = new[embed]
    policy.load_state_dict(new, strict=True)
    return policy.eval(), cfg


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    out = args.out
    torch.manual_seed(SEED)
    vlm_dir = write_vlm_dir(out / "vlm")
    checks = make_cases(out, vlm_dir)
    print(json.dumps(finish(out, SCRIPT, SEED, checks), indent=2))


def make_cases(out: Path, vlm_dir: Path) -> dict:
    from lerobot.policies.smolvla.processor_smolvla import make_smolvla_pre_post_processors

    policy, cfg = build_policy(vlm_dir)
    ck = out / "smolvla" / "checkpoint"
    policy.save_pretrained(ck)
    stats = torch_stats(random_stats(feature_types(CAMERAS, STATE_DIM, ACTION_DIM), SEED))
    pre, post = make_smolvla_pre_post_processors(cfg, dataset_stats=stats)
    pre.save_pretrained(ck)
    post.save_pretrained(ck)
    # missing_camera.npz: LeRobot drops the missing camera (empty_cameras=0)
    c = chunk_cases(policy, pre, post, out / "smolvla", CAMERAS, STATE_DIM, CHUNK, SEED, with_lang_len=True)
    return {"plain_lang_len": c["lang_len"], "tokenizer_max_length": TOK_LEN,
            "noise_moves_chunk": c["noise_moves_chunk"]}


if __name__ == "__main__":
    main()
