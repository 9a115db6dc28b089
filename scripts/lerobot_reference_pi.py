#!/usr/bin/env python3
"""Reference checkpoints and actions for pi0 from LeRobot 0.6.1 (runs ONLY in .venv-lerobot06, Python 3.12).

Builds a reduced pi0 with LeRobot's own classes (openpi's `dummy` Gemma for the VLM and the expert, a tiny
SigLIP), redraws every weight with a seed, saves it in LeRobot's layout (config.json + model.safetensors +
processor files whose tokenizer step points at a local synthetic tokenizer), then records LeRobot's
`predict_action_chunk` on shared noise, with and without RTC guidance (reference_vla.py, shared with SmolVLA).
Of lerobot_edge only the numpy checkpoint writers of lerobot_edge.testing are imported.

LeRobot needs three patches to build a reduced model, all confined to this process:
  - `get_gemma_config` learns openpi's `dummy` variant (LeRobot only knows gemma_2b / gemma_300m);
  - PaliGemma's SigLIP sizes and projector width are shrunk where transformers builds them from the config;
  - the tokenizer step is pointed at OUT/tokenizer instead of the gated google/paligemma-3b-pt-224.

OUT/pi0/checkpoint/   the checkpoint (config.json gains the test-only "edge_vision_config")
OUT/pi0/<case>.npz    obs.<key>, task, noise, chunk (robot units), chunk_normalized; RTC cases also
                      leftover_normalized (what LeRobot's RTC is fed), leftover (robot units), inference_delay,
                      execution_horizon, max_guidance_weight, schedule
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
from lerobot_edge.testing.checkpoints.pi import TINY_VISION, write_tokenizer  # noqa: E402  (numpy + tokenizers)
from reference_vla import chunk_cases, feature_types, finish, random_state_dict, torch_stats  # noqa: E402

SEED = 7
CAMERAS = {"observation.images.top": (3, 96, 128), "observation.images.wrist": (3, 64, 64)}
STATE_DIM, ACTION_DIM, CHUNK = 6, 5, 8
TOK_LEN = {"pi0": 12, "pi05": 96}
DUMMY = dict(width=64, depth=4, mlp_dim=128, num_heads=8, num_kv_heads=1, head_dim=16)


def patch_lerobot(tokenizer_dir: Path) -> None:
    import lerobot.policies.pi0.modeling_pi0 as m0
    import lerobot.policies.pi0.processor_pi0 as p0
    import lerobot.policies.pi05.modeling_pi05 as m5
    import lerobot.policies.pi05.processor_pi05 as p5

    for m in (m0, m5):
        orig_cfg, orig_pg = m.get_gemma_config, m.PaliGemmaForConditionalGenerationWithPiGemma
        m.get_gemma_config = (lambda o, mod: lambda v: mod.GemmaConfig(**DUMMY) if v == "dummy" else o(v))(orig_cfg, m)

        def small_paligemma(config, _orig=orig_pg):
            vc = config.vision_config
            for k, v in TINY_VISION.items():
                setattr(vc, k, v)
            vc.projection_dim = config.text_config.hidden_size
            return _orig(config=config)

        m.PaliGemmaForConditionalGenerationWithPiGemma = small_paligemma
    for pp in (p0, p5):
        pp.TokenizerProcessorStep = (lambda o: lambda **kw: o(**{**kw, "tokenizer_name": str(tokenizer_dir)}))(
            pp.TokenizerProcessorStep)


def build_policy(kind: str):
    from lerobot.configs.types import FeatureType, PolicyFeature

    if kind == "pi0":
        from lerobot.policies.pi0.configuration_pi0 import PI0Config as Config
        from lerobot.policies.pi0.modeling_pi0 import PI0Policy as Policy
    else:
        from lerobot.policies.pi05.configuration_pi05 import PI05Config as Config
        from lerobot.policies.pi05.modeling_pi05 import PI05Policy as Policy
    feats = {"observation.state": PolicyFeature(type=FeatureType.STATE, shape=(STATE_DIM,)),
             **{k: PolicyFeature(type=FeatureType.VISUAL, shape=s) for k, s in CAMERAS.items()}}
    cfg = Config(input_features=feats, output_features={"action": PolicyFeature(type=FeatureType.ACTION,
                                                                                shape=(ACTION_DIM,))},
                 chunk_size=CHUNK, n_action_steps=CHUNK, tokenizer_max_length=TOK_LEN[kind], device="cpu")
    cfg.paligemma_variant = cfg.action_expert_variant = "dummy"  # set after __post_init__'s check
    policy = Policy(cfg)
    new = random_state_dict(policy, random_weights, SEED)
    for k in new:  # Gemma stores RMSNorm scales as offsets (x * (1 + w)): keep the scale near 1
        if k.endswith("norm.weight") and ("language_model" in k or "gemma_expert" in k):
            new[k] = new[k] - 1.0
    embed = "model.paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight"
    new["model.paligemma_with_expert.paligemma.lm_head.weight"] = new[embed]  # tied
    policy.load_state_dict(new, strict=True)
    return policy.eval(), cfg


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    out = args.out
    tok_dir = write_tokenizer(out / "tokenizer", vocab_size=1024)
    patch_lerobot(tok_dir)
    checks = {}
    for kind in ("pi0", "pi05"):
        torch.manual_seed(SEED)
        checks[f"{kind}_noise_moves_chunk"] = make_cases(kind, out)["noise_moves_chunk"]
    print(json.dumps(finish(out, SCRIPT, SEED, checks), indent=2))


def make_cases(kind: str, out: Path) -> dict:
    policy, cfg = build_policy(kind)
    ck = out / kind / "checkpoint"
    policy.save_pretrained(ck)
    body = json.loads((ck / "config.json").read_text())
    body["edge_vision_config"] = dict(TINY_VISION)  # test-only lerobot-edge extension
    (ck / "config.json").write_text(json.dumps(body, indent=4))
    if kind == "pi0":
        from lerobot.policies.pi0.processor_pi0 import make_pi0_pre_post_processors as make
    else:
        from lerobot.policies.pi05.processor_pi05 import make_pi05_pre_post_processors as make
    stats = torch_stats(random_stats(feature_types(CAMERAS, STATE_DIM, ACTION_DIM), SEED))
    pre, post = make(cfg, dataset_stats=stats)
    pre.save_pretrained(ck)
    post.save_pretrained(ck)
    return chunk_cases(policy, pre, post, out / kind, CAMERAS, STATE_DIM, CHUNK, SEED)


if __name__ == "__main__":
    main()
