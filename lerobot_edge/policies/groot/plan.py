"""GR00T N1.5's graph plan: `vision` (one camera per call) -> `backbone` (prompt ids + image tokens + state ->
VL features, state features; once per chunk, kept on the backend) -> `denoise` (one Euler velocity), run by
runtime/policies/groot.py.

The prompt length is a dynamic axis ("seq"): LeRobot runs the Eagle prompt unpadded (a batch shares the first
task, so its prompts are equal), and the DiT cross-attends to every VL token without a mask, so padding would
change the actions. The chat template is rendered here (jinja2, as transformers renders it) for 1..N cameras with
a marker where the task goes; the runtime substitutes the task and expands the image placeholders as the Eagle
processor does, then tokenizes with the bundle's tokenizer.json.

Weights load strictly; the allow-list: the language model's `lm_head.weight` (GR00T never decodes tokens) and
the SigLIP pooling head `vision_model.vision_model.head.*` when the tower has one (Eagle uses the patch tokens).
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from ...bundle import IOSpec
from ...checkpoint import Checkpoint
from ...errors import CheckpointError
from ...kernels.groot_time import time_code
from ...runtime.observations import random_observation
from ..common.vla import CHECK_SEED, CHECK_TASK, TOL_ACTION, TOL_TOKENS
from ..common.weights import load_strict
from ..plan import Call, ChunkCheck, ExportPlan, FrameSteps, GraphPlan
from .config import GrootConfig
from .head import time_freqs
from .model import BackboneGraph, DenoiseGraph, GR00TN15, GrootWeights, VisionGraph

EAGLE = "_groot_model.backbone.eagle_model."
UNUSED = (EAGLE + "language_model.lm_head.", EAGLE + "vision_model.vision_model.head.")
TASK_MARKER = "\x00TASK\x00"
FREQS_FILE = "time_freqs.npz"   # the timestep codes' float32 frequencies ("action", "dit"), as torch computes them
IMAGE_TOKEN, IMAGE_START, IMAGE_END = "<IMG_CONTEXT>", "<img>", "</img>"


def load_core(ckpt: Checkpoint, cfg: GrootConfig) -> GR00TN15:
    """Our modules on the meta device given the checkpoint's memory-mapped tensors (assign): no second copy."""
    import torch

    weights = ckpt.load_weights(mmap=True)
    with torch.device("meta"):
        root = GrootWeights(cfg)
    load_strict(root, weights, unused_prefixes=UNUSED, what=f"groot {ckpt.path}", assign=True)
    for m in root.modules():   # non-persistent buffers (sinusoidal tables) were made on meta: rebuild them
        if getattr(m, "pos", None) is not None and m.pos.is_meta:
            from .head import sinusoidal_table

            m.pos = sinusoidal_table(*m.pos.shape)
    return root.eval()._groot_model


def render_prompts(cfg: GrootConfig) -> dict[str, str]:
    """The chat template rendered (trim_blocks, lstrip_blocks, loopcontrols: transformers' settings) for k = 1..N
    cameras then the task (TASK_MARKER), with the generation prompt, as LeRobot's GrootEagleEncodeStep asks."""
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def fail(msg):
        raise CheckpointError(f"Eagle chat template: {msg}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.globals["raise_exception"] = fail
    tpl = env.from_string(cfg.chat_template)
    out = {}
    for k in range(1, len(cfg.image_keys) + 1):
        content = [{"type": "image", "image": None}] * k + [{"type": "text", "text": TASK_MARKER}]
        text = tpl.render(messages=[{"role": "user", "content": content}], add_generation_prompt=True)
        if TASK_MARKER not in text or f"<image-{k}>" not in text:
            raise CheckpointError(f"Eagle chat template ({cfg.eagle_dir}): rendering {k} image(s) and a task gave "
                                  f"no task or no <image-{k}> placeholder: {text[:120]!r}")
        out[str(k)] = text
    return out


def graph_specs(cfg: GrootConfig):
    t, n = cfg.text, cfg.tokens_per_image
    vision = ([IOSpec("image", ("batch", 3, cfg.image_size, cfg.image_size))],
              [IOSpec("image_tokens", ("batch", n, t.width))])
    vl = IOSpec("vl_features", ("batch", "seq", cfg.backbone_dim if cfg.project_to_dim is None else cfg.project_to_dim))
    sf = IOSpec("state_features", ("batch", 1, cfg.input_embedding_dim))
    emb = IOSpec("embodiment_id", ("batch",), "int64")
    backbone = ([IOSpec("input_ids", ("batch", "seq"), "int64"), IOSpec("image_tokens", ("batch", "img_seq", t.width)),
                 IOSpec("state", ("batch", 1, cfg.max_state_dim)), emb], [vl, sf])
    denoise = ([IOSpec("x_t", ("batch", cfg.action_horizon, cfg.max_action_dim)),
                IOSpec("action_time", ("batch", cfg.input_embedding_dim)), IOSpec("dit_time", ("batch", 256)),
                vl, sf, emb],
               [IOSpec("velocity", ("batch", cfg.action_horizon, cfg.max_action_dim))])
    return vision, backbone, denoise


def sampler(inputs: list[IOSpec], cfg: GrootConfig):
    """Seeded inputs: pixels in [-1, 1], prompts of 2 images' tokens + 13 text ids, valid embodiment ids, the
    codes of random timestep buckets, N(0, 1) elsewhere."""
    n = cfg.tokens_per_image
    sizes = {"seq": 2 * n + 13, "img_seq": 2 * n}
    freqs = dict(zip(("action_time", "dit_time"), (f.numpy() for f in time_freqs(cfg.input_embedding_dim))))

    def sample(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        out = {}
        for i in inputs:
            shape = tuple(batch if s == "batch" else sizes.get(s, s) for s in i.shape)
            if i.name == "input_ids":
                ids = rng.integers(0, cfg.text.vocab_size, shape, dtype=np.int64)
                ids[ids == cfg.image_token_index] = 0
                ids[:, 5:5 + 2 * n] = cfg.image_token_index
                out[i.name] = ids
            elif i.name == "embodiment_id":
                out[i.name] = rng.integers(0, cfg.max_num_embodiments, shape, dtype=np.int64)
            elif i.name in ("action_time", "dit_time"):   # the codes of random buckets
                b = rng.integers(0, cfg.num_timestep_buckets, shape[0])
                out[i.name] = time_code(b, freqs[i.name], cos_first=i.name == "dit_time")
            elif i.name == "image":
                out[i.name] = rng.uniform(-1, 1, shape).astype(np.float32)
            else:
                out[i.name] = rng.standard_normal(shape).astype(np.float32)
        return out
    return sample


def runtime_settings(cfg: GrootConfig, prompts: dict[str, str]) -> dict:
    return {"kind": "groot", "action_horizon": cfg.action_horizon, "chunk_size": cfg.action_horizon,
            "n_action_steps": cfg.n_action_steps, "max_action_dim": cfg.max_action_dim,
            "max_state_dim": cfg.max_state_dim, "num_inference_steps": cfg.num_inference_timesteps,
            "num_timestep_buckets": cfg.num_timestep_buckets, "embodiment_id": cfg.embodiment_id,
            "embodiment_tag": cfg.embodiment_tag, "cameras": list(cfg.image_keys), "image_size": cfg.image_size,
            "image_mean": list(cfg.image_mean), "image_std": list(cfg.image_std),
            "tokens_per_image": cfg.tokens_per_image, "prompts": prompts, "task_marker": TASK_MARKER,
            "default_task": "Perform the task.", "image_token": IMAGE_TOKEN, "image_start": IMAGE_START,
            "image_end": IMAGE_END,
            "time_freqs": {"file": FREQS_FILE},
            "tokenizer": {"file": "tokenizer.json", "source": cfg.eagle_dir, "max_length": 0}}


def _chunk_calls(bundle, rng: np.random.Generator) -> list[Call]:
    """Two cameras, then the first camera only: same task and noise on both sides."""
    obs = {**random_observation(bundle.manifest["observations"], rng), "task": CHECK_TASK}
    noise = rng.standard_normal((1, *bundle.manifest["noise_shape"][1:])).astype(np.float32)
    first = bundle.manifest["runtime"]["cameras"][0]
    partial = {k: v for k, v in obs.items() if not k.startswith("observation.images.") or k == first}
    return [Call(obs, {"noise": noise}), Call(partial, {"noise": noise})]


def _write_freqs(cfg: GrootConfig):
    def write(path) -> None:
        action, dit = time_freqs(cfg.input_embedding_dim)
        with open(path, "wb") as f:   # a file object: np.savez would append ".npz" to a path
            np.savez(f, action=action.numpy(), dit=dit.numpy())
    return write


def build_plan(ckpt: Checkpoint, vlm: str | None = None) -> ExportPlan:
    cfg = GrootConfig.from_checkpoint(ckpt, vlm)
    cfg.check()
    core = load_core(ckpt, cfg)
    prompts = render_prompts(cfg)
    (vi, vo), (bi, bo), (di, do) = graph_specs(cfg)
    graphs = [GraphPlan("vision", VisionGraph(core), vi, vo, {"image_tokens": TOL_TOKENS}, sampler(vi, cfg)),
              GraphPlan("backbone", BackboneGraph(core), bi, bo,
                        {"vl_features": TOL_TOKENS, "state_features": TOL_TOKENS}, sampler(bi, cfg)),
              GraphPlan("denoise", DenoiseGraph(core), di, do, {"velocity": TOL_ACTION}, sampler(di, cfg))]
    obs = {k: {"kind": "image", "shape": list(ckpt.input_features[k].shape), "graph_input": "image"}
           for k in cfg.image_keys}
    if cfg.state_dim:
        obs["observation.state"] = {"kind": "state", "shape": [cfg.state_dim], "graph_input": "state"}
    keys = [*obs, "action"]
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()
              if k not in ("vision", "text", "dit", "vl_self_attention", "chat_template")}
    config.update(vision_dims=asdict(cfg.vision), text_dims=asdict(cfg.text), vlm_source=cfg.eagle_dir)
    return ExportPlan(policy_type=ckpt.policy_type, policy_config=config, graphs=graphs, observations=obs,
                      action={"key": "action", "shape": [cfg.action_dim]},
                      normalization={k: ckpt.norm_modes.get(k, "IDENTITY") for k in keys},
                      stats={k: ckpt.stats[k] for k in keys if k in ckpt.stats},
                      runtime=runtime_settings(cfg, prompts),
                      noise_shape=["batch", cfg.action_horizon, cfg.max_action_dim],
                      extra={"tokenizer": cfg.eagle_dir, "vlm": cfg.eagle_dir, "base": cfg.base_source},
                      end_to_end=ChunkCheck(_chunk_calls, CHECK_SEED, loop_graphs=("denoise",)),
                      extra_files={FREQS_FILE: _write_freqs(cfg)},
                      frame_steps=FrameSteps(normalize=False, fuse=False))
