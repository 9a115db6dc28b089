#!/usr/bin/env python3
"""Reference checkpoint and action chunks for SmolVLA from LeRobot 0.6.1 (runs ONLY in .venv-lerobot06, Python 3.12).

Builds a reduced SmolVLA with LeRobot's own classes: `vlm_model_name` points at a tiny SmolVLM2-like directory
written here (config.json, synthetic tokenizer, processor files; tests/smolvla_layout.write_vlm_dir),
`load_vlm_weights=False`, 4 VLM layers (2 joint self-attention, 2 cross-attention for the expert), 64x64 images
-> 16 tokens per camera. Every weight is redrawn with a seed, then saved in LeRobot's layout with its processors
(language padded to the "longest" prompt, as LeRobot does), and LeRobot's `predict_action_chunk` is recorded on
shared noise, with and without RTC guidance. Of lerobot_edge only the numpy checkpoint writers of lerobot_edge.testing are imported. No patches to LeRobot are needed.

OUT/vlm/                  the VLM directory (pass it as --vlm: the checkpoint records the path it was built at)
OUT/smolvla/checkpoint/   the checkpoint
OUT/smolvla/<case>.npz    obs.<key>, task, noise, chunk (robot units), chunk_normalized, lang_len (LeRobot's
                          padded length); RTC cases also leftover_normalized, leftover (robot units),
                          inference_delay, execution_horizon, max_guidance_weight, schedule
OUT/meta.json, OUT/DONE
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parents[1]
sys.path.insert(0, str(REPO))   # lerobot_edge.testing's checkpoint writers (numpy + tokenizers only)
from lerobot_edge.testing.checkpoints.layout import random_stats, random_weights  # noqa: E402  (numpy only)
from lerobot_edge.testing.checkpoints.smolvla import write_vlm_dir  # noqa: E402  (json + tokenizers)

SEED = 11
CAMERAS = {"observation.images.top": (3, 48, 64), "observation.images.wrist": (3, 40, 40)}
STATE_DIM, ACTION_DIM, CHUNK, TOK_LEN, IMAGE = 6, 5, 8, 24, 64  # prompts: 8 and 20 tokens
RTC_CASES = {"rtc_linear": ("LINEAR", 2, 5, 10.0), "rtc_exp": ("EXP", 3, 6, 5.0)}
TASKS = ["pick the red cube", "open the drawer and put the blue block into it"]


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
    new = {k: torch.from_numpy(v) for k, v in random_weights({k: tuple(t.shape) for k, t in own.items()}, SEED).items()}
    head, embed = "model.vlm_with_expert.vlm.lm_head.weight", "model.vlm_with_expert.vlm.model.text_model.embed_tokens.weight"
    if head in new and own[head].data_ptr() == own[embed].data_ptr():  # tied: one tensor
        new[head] = new[embed]
    policy.load_state_dict(new, strict=True)
    return policy.eval(), cfg


def observations(rng: np.random.Generator, batch: int, cameras: list[str]) -> dict:
    obs = {k: rng.random((batch, *CAMERAS[k])).astype(np.float32) for k in cameras}
    obs["observation.state"] = rng.normal(0, 2, (batch, STATE_DIM)).astype(np.float32)
    obs["task"] = TASKS[:batch]
    return obs


def run(policy, pre, post, obs: dict, noise: np.ndarray, **rtc):
    batch = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in obs.items()}
    with torch.no_grad():
        processed = pre(batch)
        normalized = policy.predict_action_chunk(processed, noise=torch.from_numpy(noise), **rtc)
        robot = post(normalized)
    lang_len = int(processed["observation.language.tokens"].shape[1])
    return robot.numpy(), normalized.numpy(), lang_len


def save_case(path: Path, obs: dict, noise: np.ndarray, robot, normalized, lang_len: int, **extra) -> None:
    arrays = {f"obs.{k}": v for k, v in obs.items() if k != "task"}
    np.savez_compressed(path, **arrays, task=np.array(obs["task"]), noise=noise, chunk=robot,
                        chunk_normalized=normalized, lang_len=lang_len, **{k: np.asarray(v) for k, v in extra.items()})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    out = args.out
    torch.manual_seed(SEED)
    vlm_dir = write_vlm_dir(out / "vlm")
    checks = make_cases(out, vlm_dir)
    meta = {"lerobot": __import__("lerobot").__version__, "transformers": __import__("transformers").__version__,
            "torch": torch.__version__, "seed": SEED, "script_sha256": hashlib.sha256(SCRIPT.read_bytes()).hexdigest(),
            "checks": checks}
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    (out / "DONE").write_text("ok\n")
    print(json.dumps(meta, indent=2))


def make_cases(out: Path, vlm_dir: Path) -> dict:
    from lerobot.policies.smolvla.processor_smolvla import make_smolvla_pre_post_processors

    policy, cfg = build_policy(vlm_dir)
    ck = out / "smolvla" / "checkpoint"
    policy.save_pretrained(ck)
    feats = {**{k: {"type": "VISUAL"} for k in CAMERAS}, "observation.state": {"type": "STATE", "shape": [STATE_DIM]},
             "action": {"type": "ACTION", "shape": [ACTION_DIM]}}
    stats = {k: {s: torch.from_numpy(v) for s, v in st.items()} for k, st in random_stats(feats, SEED).items()}
    pre, post = make_smolvla_pre_post_processors(cfg, dataset_stats=stats)
    pre.save_pretrained(ck)
    post.save_pretrained(ck)
    rng = np.random.default_rng(SEED)
    obs = observations(rng, 2, list(CAMERAS))
    noise = rng.standard_normal((2, CHUNK, 32)).astype(np.float32)
    robot, normalized, lang_len = run(policy, pre, post, obs, noise)
    save_case(out / "smolvla" / "plain.npz", obs, noise, robot, normalized, lang_len)
    checks = {"plain_lang_len": lang_len, "tokenizer_max_length": TOK_LEN,
              "noise_moves_chunk": float(np.abs(run(policy, pre, post, obs, noise[::-1].copy())[1] - normalized).max())}
    obs1 = observations(rng, 1, ["observation.images.top"])  # LeRobot drops the missing camera (empty_cameras=0)
    noise1 = rng.standard_normal((1, CHUNK, 32)).astype(np.float32)
    save_case(out / "smolvla" / "missing_camera.npz", obs1, noise1, *run(policy, pre, post, obs1, noise1))
    _rtc_cases(policy, pre, post, out / "smolvla", obs, normalized, rng)
    return checks


def _rtc_cases(policy, pre, post, out: Path, obs: dict, first: np.ndarray, rng) -> None:
    from lerobot.configs import RTCAttentionSchedule
    from lerobot.policies.rtc.configuration_rtc import RTCConfig

    for name, (schedule, delay, horizon, max_gw) in RTC_CASES.items():
        policy.config.rtc_config = RTCConfig(enabled=True, prefix_attention_schedule=RTCAttentionSchedule[schedule],
                                             max_guidance_weight=max_gw, execution_horizon=horizon)
        policy.init_rtc_processor()
        left_norm = torch.from_numpy(first[:, 2:].copy())                    # (B, T-2, A) normalized
        left_robot = post(left_norm).numpy()
        noise = rng.standard_normal((2, CHUNK, 32)).astype(np.float32)
        robot, normalized, lang_len = run(policy, pre, post, obs, noise, inference_delay=delay,
                                          prev_chunk_left_over=left_norm, execution_horizon=horizon)
        save_case(out / f"{name}.npz", obs, noise, robot, normalized, lang_len,
                  leftover_normalized=left_norm.numpy(), leftover=left_robot, inference_delay=delay,
                  execution_horizon=horizon, max_guidance_weight=max_gw, schedule=schedule)
    policy.config.rtc_config = None
    policy.init_rtc_processor()


if __name__ == "__main__":
    main()
