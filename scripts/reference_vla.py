"""Blocks shared by the LeRobot 0.6.1 chunk-policy reference scripts (lerobot_reference_pi.py for pi0 / pi05,
lerobot_reference_smolvla.py): observations with a task, LeRobot's predict_action_chunk on given noise, the
per-case npz files (plain, missing camera, RTC-guided) and meta.json + DONE.

Runs ONLY in .venv-lerobot06 (torch + lerobot 0.6.1 + numpy; LeRobot imported where used); never imports
lerobot_edge. Those scripts' cache keys (mk/parity06.mk, mk/smolvla.mk) hash this file and reference_common.py.
Every draw comes from one numpy default_rng(seed), in the order below: keep that order, or the references change.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from reference_common import lerobot_version, sha256_file, sources_sha256, write_done, write_json, write_reference

TASKS = ["pick the red cube", "open the drawer and put the blue block into it"]
# name: (prefix attention schedule, inference_delay, execution_horizon, max_guidance_weight)
RTC_CASES = {"rtc_linear": ("LINEAR", 2, 5, 10.0), "rtc_exp": ("EXP", 3, 6, 5.0)}
MAX_ACTION_DIM = 32  # the noise's last dim: LeRobot pads actions to max_action_dim (pi0, pi05, SmolVLA: 32)
LANGUAGE_TOKENS = "observation.language.tokens"


def random_state_dict(policy, random_weights, seed: int) -> dict[str, torch.Tensor]:
    """A new state dict for policy from lerobot_edge.testing's numpy random_weights(shapes, seed) (passed in:
    this module imports no lerobot_edge): every tensor redrawn, as torch tensors."""
    shapes = {k: tuple(t.shape) for k, t in policy.state_dict().items()}
    return {k: torch.from_numpy(v) for k, v in random_weights(shapes, seed).items()}


def feature_types(cameras: dict, state_dim: int, action_dim: int) -> dict:
    """The features as lerobot_edge.testing's random_stats takes them (config.json's input/output features)."""
    return {**{k: {"type": "VISUAL"} for k in cameras}, "observation.state": {"type": "STATE", "shape": [state_dim]},
            "action": {"type": "ACTION", "shape": [action_dim]}}


def torch_stats(stats: dict) -> dict:
    """{feature: {stat: ndarray}} -> the same with torch tensors, as make_pre_post_processors takes them."""
    return {k: {s: torch.from_numpy(v) for s, v in st.items()} for k, st in stats.items()}


def observations(rng: np.random.Generator, batch: int, cameras: dict, state_dim: int) -> dict:
    """Images (B, C, H, W) U(0, 1) per camera in order, state (B, D) N(0, 2^2), task: the first B of TASKS."""
    obs = {k: rng.random((batch, *shape)).astype(np.float32) for k, shape in cameras.items()}
    obs["observation.state"] = rng.normal(0, 2, (batch, state_dim)).astype(np.float32)
    obs["task"] = TASKS[:batch]
    return obs


def run_chunk(policy, pre, post, obs: dict, noise: np.ndarray, **rtc):
    """post(policy.predict_action_chunk(pre(obs), noise=noise, **rtc)): (robot units (B, T, A), normalized
    (B, T, A), the pre-processor's padded language length or None)."""
    batch = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in obs.items()}
    with torch.no_grad():
        processed = pre(batch)
        normalized = policy.predict_action_chunk(processed, noise=torch.from_numpy(noise), **rtc)
        robot = post(normalized)
    lang_len = int(processed[LANGUAGE_TOKENS].shape[1]) if LANGUAGE_TOKENS in processed else None
    return robot.numpy(), normalized.numpy(), lang_len


def save_chunk_case(path: Path, obs: dict, noise: np.ndarray, robot, normalized, **extra) -> None:
    """<case>.npz: obs.<key>, task, noise, chunk (robot units), chunk_normalized, then extra in order."""
    arrays = {f"obs.{k}": v for k, v in obs.items() if k != "task"}
    write_reference(path, {**arrays, "task": np.array(obs["task"]), "noise": noise, "chunk": robot,
                           "chunk_normalized": normalized, **{k: np.asarray(v) for k, v in extra.items()}},
                    compressed=True)


def chunk_cases(policy, pre, post, out: Path, cameras: dict, state_dim: int, chunk: int, seed: int,
                with_lang_len: bool = False) -> dict:
    """plain.npz (B 2, every camera), missing_camera.npz (B 1, the first camera only) and the RTC cases into out.
    with_lang_len: each npz also holds lang_len. Returns {"noise_moves_chunk": max |change| of the normalized
    plain chunk when the noise is reversed over the batch (must be > 0), "lang_len": plain's language length}."""
    rng = np.random.default_rng(seed)
    obs = observations(rng, 2, cameras, state_dim)
    noise = rng.standard_normal((2, chunk, MAX_ACTION_DIM)).astype(np.float32)
    robot, normalized, lang_len = run_chunk(policy, pre, post, obs, noise)
    save_chunk_case(out / "plain.npz", obs, noise, robot, normalized, **_lang(with_lang_len, lang_len))
    moved = float(np.abs(run_chunk(policy, pre, post, obs, noise[::-1].copy())[1] - normalized).max())
    obs1 = observations(rng, 1, dict(list(cameras.items())[:1]), state_dim)
    noise1 = rng.standard_normal((1, chunk, MAX_ACTION_DIM)).astype(np.float32)
    robot1, normalized1, lang_len1 = run_chunk(policy, pre, post, obs1, noise1)
    save_chunk_case(out / "missing_camera.npz", obs1, noise1, robot1, normalized1, **_lang(with_lang_len, lang_len1))
    rtc_cases(policy, pre, post, out, obs, normalized, rng, (2, chunk, MAX_ACTION_DIM), with_lang_len)
    return {"noise_moves_chunk": moved, "lang_len": lang_len}


def _lang(with_lang_len: bool, lang_len) -> dict:
    return {"lang_len": lang_len} if with_lang_len else {}


def rtc_cases(policy, pre, post, out: Path, obs: dict, first: np.ndarray, rng, noise_shape: tuple,
              with_lang_len: bool = False) -> None:
    """<name>.npz for each RTC_CASES entry: LeRobot's RTC-guided chunk given first[:, 2:] (the normalized plain
    chunk (B, T, A) after two executed steps) as the previous chunk's leftover; RTC is off again afterwards."""
    from lerobot.configs import RTCAttentionSchedule
    from lerobot.policies.rtc.configuration_rtc import RTCConfig

    for name, (schedule, delay, horizon, max_gw) in RTC_CASES.items():
        policy.config.rtc_config = RTCConfig(enabled=True, prefix_attention_schedule=RTCAttentionSchedule[schedule],
                                             max_guidance_weight=max_gw, execution_horizon=horizon)
        policy.init_rtc_processor()
        left_norm = torch.from_numpy(first[:, 2:].copy())                    # (B, T-2, A) normalized
        left_robot = post(left_norm).numpy()
        noise = rng.standard_normal(noise_shape).astype(np.float32)
        robot, normalized, lang_len = run_chunk(policy, pre, post, obs, noise, inference_delay=delay,
                                                prev_chunk_left_over=left_norm, execution_horizon=horizon)
        save_chunk_case(out / f"{name}.npz", obs, noise, robot, normalized, **_lang(with_lang_len, lang_len),
                        leftover_normalized=left_norm.numpy(), leftover=left_robot, inference_delay=delay,
                        execution_horizon=horizon, max_guidance_weight=max_gw, schedule=schedule)
    policy.config.rtc_config = None
    policy.init_rtc_processor()


def finish(out: Path, script: Path, seed: int, checks: dict) -> dict:
    """OUT/meta.json (versions, seed, hashes, checks), then OUT/DONE; returns the meta."""
    meta = {"lerobot": lerobot_version(), "transformers": __import__("transformers").__version__,
            "torch": torch.__version__, "seed": seed, "script_sha256": sha256_file(script),
            "sources_sha256": sources_sha256(), "checks": checks}
    write_json(out / "meta.json", meta)
    write_done(out, {"script_sha256": meta["script_sha256"]})
    return meta
