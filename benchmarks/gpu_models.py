"""The policies `gpu_check.py` times on a GPU: our PyTorch modules (LeRobot's math and parameter names) built
straight on the device, with random weights at the test checkpoints' scales (no checkpoint file: pi0 full size
is 13 GB of fp32), and one chunk computed entirely on the device as LeRobot's eager policy does it (vision,
language embedding, prefix / encoder, every denoise step and the sampler update).

Needs torch and numpy only (plus the lerobot_edge source tree): the configs come from lerobot_edge.testing's
checkpoint writers (their module level imports numpy only) and the modules from lerobot_edge.policies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Callable

import numpy as np
import torch
from torch import nn

# (name, full-size config, what it is) in the order gpu_check runs them
POLICIES = {
    "act_aloha": "ACT, aloha sim insertion: 1 camera 480x640, state 14, chunk 100 (LeRobot's defaults)",
    "diffusion_pusht_ddim10": "Diffusion Policy, PushT: 1 camera 96x96 (crop 84), 2 obs steps, horizon 16, "
                              "U-Net 512/1024/2048, DDIM 10 steps",
    "smolvla_full": "SmolVLA: SmolVLM2-500M (16 of 32 layers), 2 cameras 512x512 (64 tokens each), prompt 48, "
                    "chunk 50, 10 steps",
    "pi0_full": "pi0: PaliGemma (SigLIP So400m/14 + Gemma 2B) + Gemma 300M expert, 3 cameras 224x224, prompt 48, "
                "chunk 50, 10 steps",
}


@dataclass
class Policy:
    """graphs: name -> module (what a bundle exports); chunk(graphs, inputs) -> (B, T, A) float32 normalized
    actions; inputs: tensors on the device (images in the graphs' range, tokens, state, noise)."""

    name: str
    graphs: dict[str, nn.Module]
    chunk: Callable[[dict, dict], torch.Tensor]
    inputs: dict[str, torch.Tensor]
    make: Callable[[], dict[str, nn.Module]]      # the same graphs, built again (under a device context)
    config: dict
    extra: dict = field(default_factory=dict)     # what the engine sections reuse (Diffusion's DDIM constants)


def _pick(cls, values: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in names}


# -- random weights -----------------------------------------------------------------------------------
@torch.no_grad()
def redraw(module: nn.Module, seed: int = 0) -> nn.Module:
    """Parameters at lerobot_edge.testing.checkpoints.layout.random_weights' scales (N(0, 1/fan_in) matrices,
    norm scales ~1 (Gemma/Llama offsets ~0), small biases, N(0, 1) embeddings), drawn on the module's device."""
    gen = None
    for name, p in module.named_parameters():
        if gen is None:
            gen = torch.Generator(device=p.device).manual_seed(seed)
        if name.endswith("bias"):
            p.normal_(0.0, 0.1, generator=gen)
        elif p.ndim == 1:
            offset = ("language_model" in name or "gemma_expert" in name) and "norm" in name
            p.normal_(0.0, 0.1, generator=gen).add_(0.0 if offset else 1.0)
        elif "embed" in name:
            p.normal_(0.0, 1.0, generator=gen)
        else:
            p.normal_(0.0, 1.0 / math.sqrt(max(1, p[0].numel())), generator=gen)
    return module


@torch.no_grad()
def clone_as(graphs: dict[str, nn.Module], make: Callable[[], dict[str, nn.Module]], dtype: torch.dtype,
             device: torch.device) -> dict[str, nn.Module]:
    """The same graphs with their tensors cast to `dtype` (as Module.to(dtype)), built on the meta device and
    materialized once at `dtype`: peak memory = source + copy, never two full-precision copies."""
    with torch.device("meta"):
        copy = make()
    roots = {name: m for name, m in copy.items()}
    src_root = _root(graphs)
    dst_root = _root(roots)
    dst_root.to(dtype).to_empty(device=device)
    src = dict(src_root.named_parameters(remove_duplicate=False)) | dict(src_root.named_buffers(remove_duplicate=False))
    for name, t in [*dst_root.named_parameters(remove_duplicate=False), *dst_root.named_buffers(remove_duplicate=False)]:
        t.copy_(src[name])
    return {k: v.eval() for k, v in roots.items()}


def _root(graphs: dict[str, nn.Module]) -> nn.Module:
    """The graphs share one core (e.g. pi0's vision / prefix / denoise): a container holding each once."""
    return nn.ModuleDict(graphs)


# -- ACT ----------------------------------------------------------------------------------------------
def act(device: torch.device, tiny: bool) -> Policy:
    from lerobot_edge.policies.act.config import ACTConfig
    from lerobot_edge.policies.act.model import ACTPolicyModule
    from lerobot_edge.testing.checkpoints.act import ACT_DEFAULTS, TINY_ACT

    image = (3, 48, 64) if tiny else (3, 480, 640)
    cfg = ACTConfig(state_dim=14, action_dim=14, image_shapes=(image,),
                    **_pick(ACTConfig, {**ACT_DEFAULTS, **(TINY_ACT if tiny else {})}))

    def make():
        return {"act": ACTPolicyModule(cfg).eval()}

    gen = torch.Generator(device=device).manual_seed(1)
    inputs = {"state": torch.randn(1, 14, generator=gen, device=device),
              "image": torch.randn(1, *image, generator=gen, device=device)}
    with torch.device(device):
        graphs = make()
    redraw(graphs["act"])
    return Policy("act_aloha", graphs, lambda g, x: g["act"](x["state"], x["image"]).float(), inputs, make,
                  {"image": image, "chunk_size": cfg.chunk_size, "dim_model": cfg.dim_model})


# -- Diffusion ----------------------------------------------------------------------------------------
def diffusion(device: torch.device, tiny: bool) -> Policy:
    from lerobot_edge.policies.diffusion.config import DiffusionConfig
    from lerobot_edge.policies.diffusion.fused import ddim_constants
    from lerobot_edge.policies.diffusion.model import DenoiseGraph, DiffusionPolicyModule, EncoderGraph
    from lerobot_edge.testing.checkpoints.diffusion import DIFFUSION_TINY, PUSHT

    image = (3, 32, 32) if tiny else (3, 96, 96)
    body = DIFFUSION_TINY if tiny else {**PUSHT, "noise_scheduler_type": "DDIM", "num_inference_steps": 10}
    cfg = DiffusionConfig(state_dim=2, action_dim=2, image_shape=image, n_cameras=1, **_pick(DiffusionConfig, body))
    sched = {k: getattr(cfg, k) for k in ("num_train_timesteps", "beta_schedule", "beta_start", "beta_end",
                                          "prediction_type", "clip_sample", "clip_sample_range")}
    steps = ddim_constants(sched, cfg.num_inference_steps)

    def make():
        policy = DiffusionPolicyModule(cfg).eval()
        return {"encoder": EncoderGraph(policy), "denoise": DenoiseGraph(policy)}

    def chunk(g, x):
        """DDIM (eta 0) in float32 as the runtime's scheduler: the graphs' outputs are cast up each step."""
        cond = g["encoder"](x["state"], x["image"])
        s = x["noise"]
        for t, sa, sb, sap, sbp in steps:
            eps = g["denoise"](s, torch.full_like(s[:, 0, 0], t), cond).float()
            x0 = ((s - sb * eps) / sa).clamp(-cfg.clip_sample_range, cfg.clip_sample_range)
            s = sap * x0 + sbp * eps
        return s

    s = cfg.n_obs_steps
    gen = torch.Generator(device=device).manual_seed(1)
    inputs = {"state": torch.randn(1, s, 2, generator=gen, device=device),
              "image": torch.randn(1, s, *image, generator=gen, device=device),
              "noise": torch.randn(1, cfg.horizon, 2, generator=gen, device=device)}
    with torch.device(device):
        graphs = make()
    redraw(_root(graphs))
    return Policy("diffusion_pusht_ddim10", graphs, chunk, inputs, make,
                  {"image": image, "horizon": cfg.horizon, "down_dims": list(cfg.down_dims), "steps": len(steps)},
                  {"ddim": steps, "clip": cfg.clip_sample_range})


# -- the VLAs (pi0, SmolVLA): vision per camera, prefix -> KV cache, Euler over the denoise step ----------
def flow_time_embedding(t: float, dim: int, min_period: float, max_period: float, device) -> torch.Tensor:
    """kernels.flow_time on the device (float64, as LeRobot computes it) -> (1, dim) float32."""
    fraction = torch.linspace(0.0, 1.0, dim // 2, dtype=torch.float64, device=device)
    period = min_period * (max_period / min_period) ** fraction
    arg = (1.0 / period * 2 * math.pi) * float(np.float32(t))      # t rounded to float32, as the runtime's
    return torch.cat([torch.sin(arg), torch.cos(arg)])[None].float()


class Embed(nn.Module):
    """ids (B, L) -> (B, L, W) * sqrt(W) in the table's dtype (transformers' scaled embedding; the bundle does
    this gather on the host, LeRobot on the device)."""

    def __init__(self, table: nn.Embedding):
        super().__init__()
        self.table = table

    def forward(self, ids):
        w = self.table.weight
        return self.table(ids) * torch.tensor(w.shape[1] ** 0.5, dtype=w.dtype, device=w.device)


def _vla_chunk(n_tok: int, state_token: bool, steps: int, time_dim: int, periods: tuple[float, float],
               specs: dict[str, list[str]]) -> Callable:
    def chunk(g, x):
        tokens = torch.cat([g["vision"](img) for img in x["images"]], dim=1)          # (B, C*N, W)
        lang = g["embed"](x["lang_tokens"])                                           # (B, L, W)
        feed = {"image_tokens": tokens, "image_mask": x["image_mask"], "lang_embeds": lang,
                "lang_mask": x["lang_mask"], "state": x["state"]}
        k, v = g["prefix"](*[feed[n] for n in specs["prefix"]])
        masks = [x["image_mask"].repeat_interleave(n_tok, dim=1), x["lang_mask"]]
        if state_token:
            masks.append(torch.ones_like(x["lang_mask"][:, :1]))
        feed = {"k_cache": k, "v_cache": v, "prefix_mask": torch.cat(masks, dim=1), "state": x["state"]}
        xt, dt = x["noise"], -1.0 / steps
        for step in range(steps):
            feed["x_t"], feed["time_emb"] = xt, flow_time_embedding(1.0 + step * dt, time_dim, *periods, xt.device)
            xt = xt + dt * g["denoise"](*[feed[n] for n in specs["denoise"]]).float()
        return xt
    return chunk


def _vla_inputs(device, n_cams: int, image: int, lang: int, vocab: int, noise: tuple) -> dict:
    gen = torch.Generator(device=device).manual_seed(1)
    mask = torch.ones(1, lang, device=device)
    mask[:, lang * 2 // 3:] = 0.0                                                      # a padded prompt
    return {"images": [torch.rand(1, 3, image, image, generator=gen, device=device) * 2 - 1 for _ in range(n_cams)],
            "image_mask": torch.ones(1, n_cams, device=device),
            "lang_tokens": torch.randint(0, vocab, (1, lang), generator=gen, device=device), "lang_mask": mask,
            "state": torch.randn(1, 32, generator=gen, device=device),
            "noise": torch.randn(1, *noise, generator=gen, device=device)}


def pi0(device: torch.device, tiny: bool) -> Policy:
    from lerobot_edge.policies.common.paligemma.config import PiConfig
    from lerobot_edge.policies.common.paligemma.model import PiWeights, PrefixGraph, VisionGraph
    from lerobot_edge.policies.common.paligemma.plan import graph_specs
    from lerobot_edge.policies.pi0.model import PI0Core, PI0DenoiseGraph
    from lerobot_edge.testing.checkpoints.pi import TINY_VISION

    cams = ("observation.images.top", "observation.images.left_wrist", "observation.images.right_wrist")
    small = {"paligemma_variant": "dummy", "action_expert_variant": "dummy", "edge_vision_config": TINY_VISION,
             "vocab_size": 1024, "chunk_size": 8, "n_action_steps": 8, "tokenizer_max_length": 12}
    cfg = PiConfig(state_dim=14, action_dim=14, image_keys=cams, **(small if tiny else {}))
    cfg.check()
    npatch, lang = cfg.vision.num_patches, cfg.tokenizer_max_length
    (vi, _), (pi, _), (di, _) = graph_specs(cfg, len(cams), len(cams) * npatch + lang, True)

    def make():
        core = PiWeights(cfg, PI0Core(cfg)).eval().model
        table = core.paligemma_with_expert.paligemma.model.language_model.embed_tokens
        return {"vision": VisionGraph(core), "embed": Embed(table), "prefix": PrefixGraph(core, npatch),
                "denoise": PI0DenoiseGraph(core, cfg)}

    with torch.device(device):
        graphs = make()
    redraw(_root(graphs))
    chunk = _vla_chunk(npatch, False, cfg.num_inference_steps, cfg.expert.width,
                       (cfg.min_period, cfg.max_period), {"prefix": [i.name for i in pi], "denoise": [i.name for i in di]})
    inputs = _vla_inputs(device, len(cams), cfg.vision.image_size, lang, cfg.vocab_size,
                         (cfg.chunk_size, cfg.max_action_dim))
    return Policy("pi0_full", graphs, chunk, inputs, make,
                  {"cameras": len(cams), "image": cfg.vision.image_size, "prompt": lang, "chunk_size": cfg.chunk_size,
                   "vlm": cfg.paligemma_variant, "expert": cfg.action_expert_variant, "vocab": cfg.vocab_size})


def smolvla(device: torch.device, tiny: bool) -> Policy:
    from lerobot_edge.policies.smolvla.config import SmolVLAConfig, TextDims, VisionDims, VLMDims
    from lerobot_edge.policies.smolvla.model import DenoiseGraph, PrefixGraph, SmolVLAWeights, VisionGraph
    from lerobot_edge.policies.smolvla.plan import graph_specs
    from lerobot_edge.testing.checkpoints.smolvla import FULL_VLM, TINY_VLM

    dims = TINY_VLM if tiny else FULL_VLM
    t = dims["text"]
    text = TextDims(t["hidden_size"], t["num_hidden_layers"], t["intermediate_size"], t["num_attention_heads"],
                    t["num_key_value_heads"], t["head_dim"], t["rms_norm_eps"])
    vlm = VLMDims(text, VisionDims(**_pick(VisionDims, dims["vision"])), dims["scale_factor"], t["vocab_size"])
    cams = ("observation.images.top", "observation.images.wrist")
    size = dims["vision"]["image_size"]
    cfg = SmolVLAConfig(state_dim=6, action_dim=6, image_keys=cams, resize_imgs_with_padding=(size, size),
                        num_vlm_layers=4 if tiny else 16, chunk_size=8 if tiny else 50,
                        n_action_steps=8 if tiny else 50, tokenizer_max_length=16 if tiny else 48, vlm=vlm)
    cfg.check()
    n, lang = cfg.tokens_per_image, cfg.tokenizer_max_length
    (vi, _), (pi, _), (di, _) = graph_specs(cfg, len(cams), lang)

    def make():
        core = SmolVLAWeights(cfg).eval().model
        table = core.vlm_with_expert.vlm.model.text_model.embed_tokens
        return {"vision": VisionGraph(core), "embed": Embed(table), "prefix": PrefixGraph(core, cfg),
                "denoise": DenoiseGraph(core, cfg)}

    with torch.device(device):
        graphs = make()
    redraw(_root(graphs))
    chunk = _vla_chunk(n, True, cfg.num_steps, cfg.expert.width, (cfg.min_period, cfg.max_period),
                       {"prefix": [i.name for i in pi], "denoise": [i.name for i in di]})
    inputs = _vla_inputs(device, len(cams), size, lang, vlm.vocab_size, (cfg.chunk_size, cfg.max_action_dim))
    return Policy("smolvla_full", graphs, chunk, inputs, make,
                  {"cameras": len(cams), "image": size, "prompt": lang, "chunk_size": cfg.chunk_size,
                   "vlm_layers": cfg.text.depth, "width": cfg.text.width, "vocab": vlm.vocab_size})


BUILDERS = {"act_aloha": act, "diffusion_pusht_ddim10": diffusion, "smolvla_full": smolvla, "pi0_full": pi0}


def param_count(graphs: dict[str, nn.Module]) -> int:
    return sum(p.numel() for p in _root(graphs).parameters())
