"""The pi family's settings (pi0, pi05), read from a LeRobot 0.6 config.json (unknown fields ignored, LeRobot's
defaults otherwise).

Gemma sizes come from the variant names LeRobot uses (`gemma_2b`, `gemma_300m`) plus openpi's `dummy`
variant (test-only: width 64, depth 4). `edge_vision_config` in config.json is a test-only lerobot-edge
extension that shrinks SigLIP (hidden_size, intermediate_size, num_hidden_layers, num_attention_heads);
real checkpoints never carry it and get So400m/14.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from ....checkpoint import Checkpoint
from ....errors import CheckpointError
from ..siglip import SiglipDims
from ..dims import DecoderDims


GemmaDims = DecoderDims  # Gemma adds nothing to the shared sizes


GEMMA_VARIANTS = {  # openpi gemma.py get_config
    "gemma_2b": GemmaDims(2048, 18, 16_384, 8, 1, 256),
    "gemma_300m": GemmaDims(1024, 18, 4096, 8, 1, 256),
    "dummy": GemmaDims(64, 4, 128, 8, 1, 16),  # test-only
}


def gemma_dims(variant: str) -> GemmaDims:
    if variant not in GEMMA_VARIANTS:
        raise CheckpointError(f"Gemma variant {variant!r} unknown; expected one of {sorted(GEMMA_VARIANTS)}")
    return GEMMA_VARIANTS[variant]


@dataclass
class PiConfig:
    state_dim: int = 0
    action_dim: int = 0
    image_keys: tuple = ()
    paligemma_variant: str = "gemma_2b"
    action_expert_variant: str = "gemma_300m"
    chunk_size: int = 50
    n_action_steps: int = 50
    max_state_dim: int = 32
    max_action_dim: int = 32
    num_inference_steps: int = 10
    min_period: float = 4e-3
    max_period: float = 4.0
    tokenizer_max_length: int = 48
    image_resolution: tuple = (224, 224)
    empty_cameras: int = 0
    rtc_config: dict | None = None
    edge_vision_config: dict = field(default_factory=dict)
    vocab_size: int = 257_152

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint) -> "PiConfig":
        names = {f.name for f in fields(cls)} - {"state_dim", "action_dim", "image_keys"}
        kw = {k: v for k, v in ckpt.config.items() if k in names and v is not None}
        kw["state_dim"] = ckpt.dim("observation.state")
        kw["action_dim"] = ckpt.action_feature.shape[0]
        kw["image_keys"] = tuple(ckpt.image_keys)
        kw["image_resolution"] = tuple(kw.get("image_resolution", (224, 224)))
        cfg = cls(**kw)
        cfg.check()
        return cfg

    @property
    def vlm(self) -> GemmaDims:
        return gemma_dims(self.paligemma_variant)

    @property
    def expert(self) -> GemmaDims:
        return gemma_dims(self.action_expert_variant)

    @property
    def vision(self) -> SiglipDims:
        extra = {k: int(v) for k, v in (self.edge_vision_config or {}).items()
                 if k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")}
        return SiglipDims(image_size=self.image_resolution[0], **extra)

    def check(self) -> None:
        if self.image_resolution[0] != self.image_resolution[1]:
            raise CheckpointError(f"pi0 image_resolution {self.image_resolution}: PaliGemma needs a square size")
        if not self.image_keys:
            raise CheckpointError("pi0 needs at least one camera feature")
        v, e = self.vlm, self.expert
        if (v.num_kv_heads, v.head_dim, v.depth) != (e.num_kv_heads, e.head_dim, e.depth):
            raise CheckpointError(f"pi0: the VLM ({self.paligemma_variant}) and expert ({self.action_expert_variant})"
                                  " must share depth, KV heads and head_dim (the expert reads the VLM's KV cache)")
        if self.state_dim > self.max_state_dim or self.action_dim > self.max_action_dim:
            raise CheckpointError(f"pi0: state {self.state_dim} / action {self.action_dim} exceed max_state_dim "
                                  f"{self.max_state_dim} / max_action_dim {self.max_action_dim}")
        if self.n_action_steps > self.chunk_size:
            raise CheckpointError(f"pi0 n_action_steps {self.n_action_steps} > chunk_size {self.chunk_size}")
