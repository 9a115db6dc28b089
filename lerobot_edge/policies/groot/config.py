"""GR00T N1.5's settings (LeRobot's `groot`), from three files, since a LeRobot groot checkpoint's config.json
holds only the wrapper's settings:

- the checkpoint's config.json (GrootConfig: max_state_dim / max_action_dim, n_action_steps, embodiment_tag,
  base_model_path, tokenizer_assets_repo) and its saved preprocessor (embodiment mapping, min/max stats);
- the GR00T base model's config.json at `base_model_path` (backbone_cfg: select_layer, project_to_dim;
  action_head_cfg: the DiT, VL self-attention and encoder sizes, action_horizon, num_inference_timesteps);
- the Eagle processor directory LeRobot reads from `HF_LEROBOT_HOME/<tokenizer_assets_repo>` (config.json: the
  SigLIP vision tower, the pixel-shuffle connector, the Qwen3 language model; tokenizer; chat template; image
  processor settings). `--vlm PATH` (API `vlm=`) names it explicitly.

A directory is used where one exists, else the Hub id (config/tokenizer files only). Layer counts come from the
weights (LeRobot drops the language layers after select_layer before saving).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ...checkpoint import Checkpoint
from ...errors import CheckpointError, HubUnavailableError
from ..common.dims import DecoderDims
from ..common.siglip import SiglipDims

DEFAULT_ASSETS = "lerobot/eagle2hg-processor-groot-n1p5"
EAGLE_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.json",
               "preprocessor_config.json", "processor_config.json"]
EMBODIMENTS = {"new_embodiment": 31, "oxe_droid": 17, "agibot_genie1": 26, "gr1": 24, "so100": 2, "unitree_g1": 3}
LLM = "_groot_model.backbone.eagle_model.language_model.model."


@dataclass(frozen=True)
class QwenDims(DecoderDims):
    rms_eps: float
    rope_theta: float
    vocab_size: int


@dataclass(frozen=True)
class BlockStack:
    """A diffusers-style transformer stack (the DiT or the VL self-attention)."""

    num_heads: int
    head_dim: int
    depth: int
    sinusoidal: bool          # positional_embeddings == "sinusoidal" (added to each block's normed input)
    max_positions: int = 512

    @property
    def width(self) -> int:
        return self.num_heads * self.head_dim


@dataclass(frozen=True)
class GrootConfig:
    vision: SiglipDims
    text: QwenDims
    use_pixel_shuffle: bool
    downsample_ratio: float
    mlp_connector_layers: int
    vision_select_layer: int
    image_token_index: int
    tokens_per_image: int
    project_to_dim: int | None
    backbone_dim: int
    dit: BlockStack
    interleave_self_attention: bool
    vl_self_attention: BlockStack
    hidden_size: int
    input_embedding_dim: int
    action_horizon: int
    max_action_dim: int
    max_state_dim: int
    num_inference_timesteps: int
    num_timestep_buckets: int
    max_num_embodiments: int
    num_target_vision_tokens: int
    max_seq_len: int
    add_pos_embed: bool
    use_vlln: bool
    state_dim: int
    action_dim: int
    n_action_steps: int
    embodiment_tag: str
    embodiment_id: int
    image_keys: tuple[str, ...]      # sorted, as LeRobot's GrootPackInputsStep orders the cameras
    image_size: int                  # the Eagle image processor's tile size
    image_mean: tuple[float, ...]
    image_std: tuple[float, ...]
    chat_template: str
    eagle_dir: str
    base_source: str

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint, vlm: str | None = None) -> "GrootConfig":
        c = ckpt.config
        base = _read_json(_locate(str(c.get("base_model_path") or "nvidia/GR00T-N1.5-3B"), ["config.json"],
                                  "GR00T base model"), "config.json", "GR00T base model")
        eagle_dir = _locate(vlm or _default_eagle(c), EAGLE_FILES, "Eagle processor")
        eagle = _read_json(eagle_dir, "config.json", "Eagle processor")
        head, bb = base.get("action_head_cfg") or {}, base.get("backbone_cfg") or {}
        if not head or not bb:
            raise CheckpointError(f"GR00T base config {c.get('base_model_path')}: no action_head_cfg/backbone_cfg")
        dit, vsa = head.get("diffusion_model_cfg") or {}, head.get("vl_self_attention_cfg") or {}
        depth = _llm_depth(ckpt)
        text = _qwen(eagle.get("text_config") or {}, depth)
        vision = _siglip(eagle.get("vision_config") or {}, eagle)
        shuffle = bool(eagle.get("use_pixel_shuffle", True))
        side = vision.image_size // vision.patch_size
        ratio = float(eagle.get("downsample_ratio", 0.5))
        tokens = int(side * side * ratio * ratio) if shuffle else side * side
        proc = _read_json(eagle_dir, "processor_config.json", "Eagle processor")
        if int(proc.get("tokens_per_tile", 256)) != tokens:
            raise CheckpointError(f"Eagle processor {eagle_dir}: tokens_per_tile {proc.get('tokens_per_tile')} but "
                                  f"the vision tower makes {tokens} tokens per image")
        image = _read_json(eagle_dir, "preprocessor_config.json", "Eagle processor")
        tag, mapping = _embodiment(ckpt)
        return cls(
            vision=vision, text=text, use_pixel_shuffle=shuffle, downsample_ratio=ratio,
            mlp_connector_layers=int(eagle.get("mlp_connector_layers", 2)),
            vision_select_layer=int(eagle.get("select_layer", -1)),
            image_token_index=int(eagle["image_token_index"]), tokens_per_image=tokens,
            project_to_dim=bb.get("project_to_dim"), backbone_dim=int(head.get("backbone_embedding_dim", 1536)),
            dit=_stack(dit), interleave_self_attention=bool(dit.get("interleave_self_attention", False)),
            vl_self_attention=_stack(vsa), hidden_size=int(head.get("hidden_size", 1024)),
            input_embedding_dim=int(head.get("input_embedding_dim", 1536)),
            action_horizon=int(head["action_horizon"]), max_action_dim=int(head["action_dim"]),
            max_state_dim=int(head.get("max_state_dim", c.get("max_state_dim", 64))),
            num_inference_timesteps=int(head["num_inference_timesteps"]),
            num_timestep_buckets=int(head.get("num_timestep_buckets", 1000)),
            max_num_embodiments=int(head.get("max_num_embodiments", 32)),
            num_target_vision_tokens=int(head.get("num_target_vision_tokens", 32)),
            max_seq_len=int(head.get("max_seq_len", 1024)), add_pos_embed=bool(head.get("add_pos_embed", True)),
            use_vlln=bool(head.get("use_vlln", True)), state_dim=ckpt.dim("observation.state"),
            action_dim=int(ckpt.action_feature.shape[0]), n_action_steps=int(c.get("n_action_steps", 50)),
            embodiment_tag=tag, embodiment_id=int(mapping.get(tag, 0)), image_keys=tuple(sorted(ckpt.image_keys)),
            image_size=int((image.get("size") or {}).get("height", 448)),
            image_mean=tuple(image.get("image_mean", (0.5, 0.5, 0.5))),
            image_std=tuple(image.get("image_std", (0.5, 0.5, 0.5))),
            chat_template=_chat_template(eagle_dir), eagle_dir=str(eagle_dir),
            base_source=str(c.get("base_model_path")))

    def check(self) -> None:
        """Combinations our modules implement, as typed errors naming the field."""
        if self.vision_select_layer != -1:
            raise CheckpointError(f"Eagle select_layer {self.vision_select_layer}: only -1 (the tower's last "
                                  "layer, post-layernorm) is implemented")
        if self.max_action_dim < self.action_dim or self.max_state_dim < self.state_dim:
            raise CheckpointError(f"groot: action/state dims {self.action_dim}/{self.state_dim} exceed "
                                  f"max_action_dim/max_state_dim {self.max_action_dim}/{self.max_state_dim}")
        if self.dit.width != self.input_embedding_dim:
            raise CheckpointError(f"groot: DiT width {self.dit.width} != input_embedding_dim {self.input_embedding_dim}")
        if not 1 <= self.n_action_steps:
            raise CheckpointError(f"groot: n_action_steps {self.n_action_steps}: expected >= 1")


def _default_eagle(c: dict) -> str:
    """LeRobot's location: HF_LEROBOT_HOME (default ~/.cache/huggingface/lerobot) / tokenizer_assets_repo."""
    repo = str(c.get("tokenizer_assets_repo") or DEFAULT_ASSETS)
    home = os.environ.get("HF_LEROBOT_HOME") or str(Path(os.environ.get("HF_HOME", "~/.cache/huggingface"))
                                                     .expanduser() / "lerobot")
    local = Path(home).expanduser() / repo
    return str(local) if (local / "config.json").is_file() else repo


def _locate(name: str, files: list[str], what: str) -> Path:
    p = Path(name).expanduser()
    if (p / files[0]).is_file():
        return p
    hint = (f"pass the {what} directory explicitly" + (" (--vlm PATH, API vlm=...)" if what.startswith("Eagle")
                                                       else " (its config.json holds the GR00T sizes)"))
    if p.exists() or name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise CheckpointError(f"{what} {name!r}: no {files[0]} there; {hint}")
    try:
        from ...hub import hub_download

        d = hub_download(name, None, files)
    except HubUnavailableError as e:
        raise CheckpointError(f"{what} {name!r} cannot be had ({e}); {hint}") from e
    if not (Path(d) / files[0]).is_file():
        raise CheckpointError(f"{what} {name!r}: the Hub repo has no {files[0]}; {hint}")
    return Path(d)


def _read_json(d: Path, name: str, what: str) -> dict:
    try:
        out = json.loads((d / name).read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{what} {d}/{name}: not readable JSON ({e})") from e
    if not isinstance(out, dict):
        raise CheckpointError(f"{what} {d}/{name}: expected a JSON object")
    return out


def _chat_template(d: Path) -> str:
    tpl = _read_json(d, "chat_template.json", "Eagle processor").get("chat_template")
    if not isinstance(tpl, str) or not tpl:
        raise CheckpointError(f"Eagle processor {d}/chat_template.json: no chat_template string")
    return tpl


def _llm_depth(ckpt: Checkpoint) -> int:
    from ...checkpoint import mmap_safetensors

    names = mmap_safetensors(ckpt.weights_path).keys()
    layers = {int(k[len(LLM) + 7:].split(".")[0]) for k in names if k.startswith(LLM + "layers.")}
    if not layers or layers != set(range(len(layers))):
        raise CheckpointError(f"groot {ckpt.path}: language model layers {sorted(layers)[:8]}: expected 0..N-1")
    return len(layers)


def _qwen(t: dict, depth: int) -> QwenDims:
    if (t.get("architectures") or ["Qwen3ForCausalLM"])[0] != "Qwen3ForCausalLM":
        raise CheckpointError(f"Eagle text_config architecture {t.get('architectures')}: only Qwen3ForCausalLM "
                              "(GR00T N1.5) is implemented")
    heads = int(t.get("num_attention_heads", 32))
    width = int(t.get("hidden_size", 4096))
    return QwenDims(width=width, depth=depth, mlp_dim=int(t.get("intermediate_size", 22016)), num_heads=heads,
                    num_kv_heads=int(t.get("num_key_value_heads", heads)),
                    head_dim=int(t.get("head_dim") or width // heads), rms_eps=float(t.get("rms_norm_eps", 1e-6)),
                    rope_theta=float(t.get("rope_theta", 10000.0)), vocab_size=int(t.get("vocab_size", 151936)))


def _siglip(v: dict, eagle: dict) -> SiglipDims:
    return SiglipDims(hidden_size=int(v.get("hidden_size", 768)), intermediate_size=int(v.get("intermediate_size", 3072)),
                      num_hidden_layers=int(v.get("num_hidden_layers", 12)),
                      num_attention_heads=int(v.get("num_attention_heads", 12)),
                      patch_size=int(v.get("patch_size", 16)),
                      image_size=int(eagle.get("force_image_size") or v.get("image_size", 224)),
                      layer_norm_eps=float(v.get("layer_norm_eps", 1e-6)))


def _stack(cfg: dict) -> BlockStack:
    pos = cfg.get("positional_embeddings", "sinusoidal")
    if pos not in (None, "sinusoidal"):
        raise CheckpointError(f"groot: positional_embeddings {pos!r}: expected null or 'sinusoidal'")
    return BlockStack(num_heads=int(cfg.get("num_attention_heads", 8)), head_dim=int(cfg.get("attention_head_dim", 64)),
                      depth=int(cfg.get("num_layers", 12)), sinusoidal=pos == "sinusoidal",
                      max_positions=int(cfg.get("max_num_positional_embeddings", 512)))


def _embodiment(ckpt: Checkpoint) -> tuple[str, dict]:
    """(embodiment tag, tag -> id) of the saved preprocessor's groot_pack_inputs step (else the config's tag)."""
    tag, mapping = str(ckpt.config.get("embodiment_tag", "new_embodiment")), dict(EMBODIMENTS)
    p = ckpt.path / "policy_preprocessor.json"
    if p.is_file():
        for step in json.loads(p.read_text()).get("steps", []):
            if str(step.get("registry_name", "")).startswith("groot_pack_inputs"):
                cfg = step.get("config") or {}
                tag = str(cfg.get("embodiment_tag", tag))
                mapping = dict(cfg.get("embodiment_mapping") or mapping)
    return tag, mapping
