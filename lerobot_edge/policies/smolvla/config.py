"""SmolVLA's settings: the policy's config.json (LeRobot 0.6 field names, LeRobot's defaults otherwise) plus the
architecture of the VLM that `vlm_model_name` names (a SmolVLM2 config.json: a Llama text model, a SigLIP-like
vision transformer and a pixel-shuffle connector).

The VLM config comes from, in order: `--vlm PATH_OR_ID` (API `vlm=`), else `vlm_model_name` — a local directory
(or config.json file) or a Hub id, of which only config.json is downloaded. Missing fields take transformers'
defaults for SmolVLMConfig / LlamaConfig.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from ...checkpoint import Checkpoint
from ...errors import CheckpointError, HubUnavailableError
from ..common.dims import DecoderDims

DEFAULT_VLM = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"


@dataclass(frozen=True)
class TextDims(DecoderDims):
    """A Llama decoder (SmolVLM's text model, and the action expert at a reduced width)."""

    rms_eps: float = 1e-5
    attention_bias: bool = False
    mlp_bias: bool = False


@dataclass(frozen=True)
class VisionDims:
    hidden_size: int = 1152
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 16
    patch_size: int = 32
    image_size: int = 224
    layer_norm_eps: float = 1e-6


@dataclass(frozen=True)
class VLMDims:
    text: TextDims
    vision: VisionDims
    scale_factor: int
    vocab_size: int


def expert_mlp_dim(width: int, multiplier: int = 4, multiple_of: int = 256) -> int:
    """LeRobot's get_intermediate_size: 2/3 · 4 · width, rounded up to a multiple of 256."""
    hidden = int(multiplier * int(2 * width / 3))
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def _locate_vlm_config(name: str) -> Path:
    p = Path(name).expanduser()
    if p.is_file():
        return p
    if (p / "config.json").is_file():
        return p / "config.json"
    hint = ("pass --vlm PATH_OR_ID (API: vlm=...) with a directory holding the VLM's config.json (e.g. a local "
            f"copy of {DEFAULT_VLM}) or a reachable Hub id")
    if p.exists() or name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise CheckpointError(f"SmolVLA VLM config {name!r}: no config.json there; {hint}")
    try:
        from ...hub import hub_download

        found = hub_download(name, None, ["config.json"]) / "config.json"
    except HubUnavailableError as e:
        raise CheckpointError(f"SmolVLA VLM config {name!r} cannot be had ({e}); {hint}") from e
    if not found.is_file():
        raise CheckpointError(f"SmolVLA VLM config {name!r}: the Hub repo has no config.json; {hint}")
    return found


def read_vlm_dims(name: str) -> VLMDims:
    """SmolVLM2 config.json -> dimensions (transformers' defaults for absent fields)."""
    path = _locate_vlm_config(name)
    try:
        raw = json.loads(path.read_text())
        tc, vc = dict(raw.get("text_config") or {}), dict(raw.get("vision_config") or {})
        heads = int(tc.get("num_attention_heads", 32))
        width = int(tc.get("hidden_size", 4096))
        text = TextDims(width=width, depth=int(tc.get("num_hidden_layers", 32)),
                        mlp_dim=int(tc.get("intermediate_size", 11008)), num_heads=heads,
                        num_kv_heads=int(tc.get("num_key_value_heads") or heads),
                        head_dim=int(tc.get("head_dim") or width // heads), rms_eps=float(tc.get("rms_norm_eps", 1e-6)),
                        attention_bias=bool(tc.get("attention_bias", False)), mlp_bias=bool(tc.get("mlp_bias", False)))
        vkeys = {f.name for f in fields(VisionDims)}
        vision = VisionDims(**{k: type(getattr(VisionDims, k))(v) for k, v in vc.items() if k in vkeys})
        dims = VLMDims(text, vision, int(raw.get("scale_factor", 2)), int(tc.get("vocab_size", 32000)))
    except (ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path}: not a SmolVLM config.json ({e})") from e
    for what, act in (("text_config.hidden_act", tc.get("hidden_act", "silu")),
                      ("vision_config.hidden_act", vc.get("hidden_act", "gelu_pytorch_tanh"))):
        if act not in ("silu", "gelu_pytorch_tanh"):
            raise CheckpointError(f"{path}: {what}={act!r} is not supported (SmolVLM uses silu / gelu_pytorch_tanh)")
    return dims


@dataclass
class SmolVLAConfig:
    state_dim: int = 0
    action_dim: int = 0
    image_keys: tuple = ()
    vlm_model_name: str = DEFAULT_VLM
    chunk_size: int = 50
    n_action_steps: int = 50
    max_state_dim: int = 32
    max_action_dim: int = 32
    resize_imgs_with_padding: tuple = (512, 512)
    tokenizer_max_length: int = 48
    num_steps: int = 10
    min_period: float = 4e-3
    max_period: float = 4.0
    attention_mode: str = "cross_attn"
    num_expert_layers: int = -1
    num_vlm_layers: int = 16
    self_attn_every_n_layers: int = 2
    expert_width_multiplier: float = 0.75
    add_image_special_tokens: bool = False
    prefix_length: int = -1
    pad_language_to: str = "longest"
    adapt_to_pi_aloha: bool = False
    use_cache: bool = True
    empty_cameras: int = 0
    rtc_config: dict | None = None
    vlm: VLMDims | None = field(default=None, repr=False)

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint, vlm: str | None = None) -> "SmolVLAConfig":
        names = {f.name for f in fields(cls)} - {"state_dim", "action_dim", "image_keys", "vlm"}
        kw = {k: v for k, v in ckpt.config.items() if k in names and v is not None}
        kw["state_dim"] = ckpt.dim("observation.state")
        kw["action_dim"] = ckpt.action_feature.shape[0]
        kw["image_keys"] = tuple(ckpt.image_keys)
        kw["resize_imgs_with_padding"] = tuple(kw.get("resize_imgs_with_padding", (512, 512)))
        cfg = cls(**kw)
        cfg.vlm = read_vlm_dims(vlm or cfg.vlm_model_name)
        cfg.check()
        return cfg

    @property
    def text(self) -> TextDims:
        """The VLM's text model truncated to num_vlm_layers."""
        t = self.vlm.text
        depth = t.depth if self.num_vlm_layers <= 0 else min(self.num_vlm_layers, t.depth)
        return TextDims(t.width, depth, t.mlp_dim, t.num_heads, t.num_kv_heads, t.head_dim, t.rms_eps,
                        t.attention_bias, t.mlp_bias)

    @property
    def expert(self) -> TextDims:
        """The action expert: the text config at expert_width_multiplier width (heads and head_dim kept)."""
        t = self.text
        width = int(t.width * self.expert_width_multiplier)
        depth = self.num_expert_layers if self.num_expert_layers > 0 else t.depth
        return TextDims(width, depth, expert_mlp_dim(width), t.num_heads, t.num_kv_heads, t.head_dim, t.rms_eps,
                        t.attention_bias, t.mlp_bias)

    @property
    def image_size(self) -> int:
        return int(self.resize_imgs_with_padding[0])

    @property
    def tokens_per_image(self) -> int:
        side = self.image_size // self.vlm.vision.patch_size
        return side * side // (self.vlm.scale_factor ** 2)

    def expert_layer(self, i: int) -> int | None:
        """Index of the expert layer that runs beside VLM layer i (None: the expert skips that layer)."""
        every = self.text.depth // self.expert.depth
        return None if (every > 0 and i % every) else i // every

    def is_cross(self, vlm_layer: int) -> bool:
        """Cross-attention (expert reads the re-projected prefix K/V only) or joint self-attention."""
        n = self.self_attn_every_n_layers
        return "cross" in self.attention_mode and not (n > 0 and vlm_layer % n == 0)

    def check(self) -> None:
        side, p = self.image_size, self.vlm.vision.patch_size
        if self.resize_imgs_with_padding[0] != self.resize_imgs_with_padding[1]:
            raise CheckpointError(f"smolvla resize_imgs_with_padding {self.resize_imgs_with_padding}: the vision "
                                  "graph needs a square size")
        if side % p or (side // p) % self.vlm.scale_factor:
            raise CheckpointError(f"smolvla: image size {side} must be a multiple of patch_size {p} x scale_factor "
                                  f"{self.vlm.scale_factor}")
        if not self.image_keys or not self.state_dim:
            raise CheckpointError("smolvla needs at least one camera feature and observation.state (its prefix "
                                  "ends with the state token)")
        if self.add_image_special_tokens or self.prefix_length > 0 or self.adapt_to_pi_aloha or not self.use_cache:
            raise CheckpointError("smolvla: add_image_special_tokens, prefix_length > 0, adapt_to_pi_aloha and "
                                  "use_cache=False are not supported by lerobot-edge yet")
        if self.attention_mode not in ("cross_attn", "self_attn"):
            raise CheckpointError(f"smolvla attention_mode {self.attention_mode!r}: expected cross_attn or self_attn")
        if self.text.depth % self.expert.depth:
            raise CheckpointError(f"smolvla: num_vlm_layers {self.text.depth} is not a multiple of num_expert_layers "
                                  f"{self.expert.depth}")
        for i in range(self.text.depth):  # LeRobot sizes k/v_proj by expert index, picks the mode by VLM index
            j = self.expert_layer(i)
            if j is not None and self.is_cross(i) != self.is_cross(j):
                raise CheckpointError(f"smolvla: expert layer {j} beside VLM layer {i} mixes cross and self "
                                      "attention (LeRobot cannot run this configuration either)")
        if self.state_dim > self.max_state_dim or self.action_dim > self.max_action_dim:
            raise CheckpointError(f"smolvla: state {self.state_dim} / action {self.action_dim} exceed max_state_dim "
                                  f"{self.max_state_dim} / max_action_dim {self.max_action_dim}")
        if self.n_action_steps > self.chunk_size:
            raise CheckpointError(f"smolvla n_action_steps {self.n_action_steps} > chunk_size {self.chunk_size}")
