"""The machinery every flow-matching VLA shares (pi0, pi05, SmolVLA, and GR00T to come): the tokenizer and
language-embedding-table files of the bundle, the observation spec, seeded validation inputs, RTC defaults,
tolerances, and the end-to-end chunk check (vision -> prefix -> N denoise steps with the host's Euler loop and
RTC, engine vs PyTorch, shared noise) that the generic harness in exporters/chunk_check.py runs.
"""

from __future__ import annotations

import json

import numpy as np

from ...bundle import Bundle, IOSpec
from ...checkpoint import Checkpoint
from ...runtime.observations import random_observation
from ..plan import Call, ChunkCheck, FrameSteps

STATE = "observation.state"
TOL_TOKENS = {"atol": 1e-3, "min_cosine": 0.99999}
# one velocity on random KV/weights (activations O(10)); the 1e-4 contract is checked on the full chunk
TOL_ACTION = {"atol": 1e-3, "min_cosine": 0.99999}
CHECK_SEED = 20240603
CHECK_TASK = "pick the red cube"


def tokenizer_settings(ckpt: Checkpoint, cfg, default: str) -> dict:
    """The saved preprocessor's tokenizer step (name, max_length, padding side); LeRobot's defaults otherwise."""
    p = ckpt.path / "policy_preprocessor.json"
    step = {}
    if p.is_file():
        for s in json.loads(p.read_text()).get("steps", []):
            if s.get("registry_name") == "tokenizer_processor":
                step = s.get("config") or {}
    return {"name": step.get("tokenizer_name") or default,
            "max_length": int(step.get("max_length") or cfg.tokenizer_max_length),
            "padding_side": step.get("padding_side", "right")}


def embedding_file(table, file: str = "embedding.npy") -> tuple[dict, dict]:
    """The (vocab, width) language embedding table as a bundle file the runtime memory-maps and gathers from
    (the prefix graphs take embeddings, not ids). -> (ExportPlan.extra_files entry, runtime["embedding"]); the
    scale is sqrt(width) rounded to float32, as transformers multiplies in the table's dtype."""
    def write(path) -> None:
        np.save(path, table.detach().numpy(), allow_pickle=False)   # streams from the memory-mapped weights

    scale = float(np.float32(table.shape[1] ** 0.5))
    return {file: write}, {"file": file, "scale": scale, "rows": int(table.shape[0]), "width": int(table.shape[1])}


def vla_observations(ckpt: Checkpoint, cfg) -> dict:
    """The manifest's observation spec of a VLA: every camera feeds the per-camera `image` input (resized on the
    host, so any size is accepted), the state (when the checkpoint has one) the `state` input."""
    obs = {k: {"kind": "image", "shape": list(ckpt.input_features[k].shape), "graph_input": "image"}
           for k in cfg.image_keys}
    if cfg.state_dim:
        obs[STATE] = {"kind": "state", "shape": [cfg.state_dim], "graph_input": "state"}
    return obs


def frame_steps(runtime: dict) -> FrameSteps:
    """The flow runtime's host steps for a camera frame, from the plan's runtime section (no per-feature
    normalization; resize with pad to `image_size`; [-1, 1]), for preprocess_in_graph: one `frames_<H>x<W>`
    graph per frame size feeds the shared vision graph."""
    return FrameSteps(normalize=False, resize_with_pad=int(runtime["image_size"]),
                      center=runtime.get("padding", "center") == "center", clamp=bool(runtime.get("clamp", True)),
                      signed=True, fuse=False)


def rtc_settings(rtc_config: dict | None) -> dict:
    """The manifest's RTC defaults from the checkpoint's `rtc_config` (LeRobot's defaults where absent)."""
    rtc = dict(rtc_config or {})
    return {"enabled": bool(rtc.get("enabled", False)),
            "prefix_attention_schedule": str(rtc.get("prefix_attention_schedule", "LINEAR")).upper(),
            "max_guidance_weight": float(rtc.get("max_guidance_weight", 10.0)),
            "execution_horizon": int(rtc.get("execution_horizon", 10))}


def sampler(inputs: list[IOSpec], vocab: int):
    """Seeded, non-trivial inputs for validation: masks keep the first row valid, tokens within the vocab."""
    def sample(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        out = {}
        for i in inputs:
            shape = tuple(batch if s == "batch" else s for s in i.shape)
            if i.dtype == "int64":
                out[i.name] = rng.integers(0, vocab, shape, dtype=np.int64)
            elif i.name.endswith("mask"):
                m = (rng.random(shape) < 0.7).astype(np.float32)
                m[..., 0] = 1.0
                out[i.name] = m
            elif i.name in ("image", "time_emb"):  # pixels in [-1, 1]; sin/cos values
                out[i.name] = rng.uniform(-1, 1, shape).astype(np.float32)
            else:
                out[i.name] = rng.standard_normal(shape).astype(np.float32)
        return out
    return sample


def _chunk_calls(bundle: Bundle, rng: np.random.Generator) -> list[Call]:
    """A plain chunk, then one with RTC guidance from a seeded leftover per RTC mode the bundle has (guided;
    exact too when it has the `denoise_rtc` graph): same observation, task and noise on both sides."""
    obs = {**random_observation(bundle.manifest["observations"], rng), "task": CHECK_TASK}
    noise = rng.standard_normal((1, *bundle.manifest["noise_shape"][1:])).astype(np.float32)   # (1, T, Amax)
    a = bundle.manifest["action"]["shape"][0]
    left = {"inference_delay": 2, "prev_chunk_left_over": rng.standard_normal((4, a)).astype(np.float32)}
    modes = ["guided", "exact"] if "denoise_rtc" in bundle.graphs else ["guided"]
    calls = [Call(obs, {"noise": noise}, {"rtc": "guided", "seed": CHECK_SEED})]
    return calls + [Call(obs, {"noise": noise, **left}, {"rtc": m, "seed": CHECK_SEED}) for m in modes]


# the ExportPlan.end_to_end of a flow-matching VLA (the denoise graphs run once per Euler step)
FLOW_CHUNK_CHECK = ChunkCheck(_chunk_calls, CHECK_SEED, loop_graphs=("denoise", "denoise_rtc"))
