"""ACT's settings, read from a LeRobot config.json (unknown fields ignored, LeRobot's defaults otherwise)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ...checkpoint import Checkpoint
from ...errors import CheckpointError


@dataclass
class ACTConfig:
    state_dim: int = 0                 # 0: no observation.state
    env_state_dim: int = 0             # 0: no observation.environment_state
    action_dim: int = 0
    image_shapes: tuple = ()           # ((3, H, W), …) in camera order
    chunk_size: int = 100
    n_action_steps: int = 100
    vision_backbone: str = "resnet18"
    replace_final_stride_with_dilation: bool = False
    pre_norm: bool = False
    dim_model: int = 512
    n_heads: int = 8
    dim_feedforward: int = 3200
    feedforward_activation: str = "relu"
    n_encoder_layers: int = 4
    n_decoder_layers: int = 1
    use_vae: bool = True
    latent_dim: int = 32
    n_vae_encoder_layers: int = 4
    temporal_ensemble_coeff: float | None = None

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint) -> "ACTConfig":
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in ckpt.config.items() if k in names}
        feats = ckpt.input_features
        kw["state_dim"] = ckpt.dim("observation.state")
        kw["env_state_dim"] = ckpt.dim("observation.environment_state")
        kw["action_dim"] = ckpt.action_feature.shape[0]
        kw["image_shapes"] = tuple(feats[k].shape for k in ckpt.image_keys)
        cfg = cls(**kw)
        cfg.check()
        return cfg

    def check(self) -> None:
        if not self.image_shapes and not self.env_state_dim:
            raise CheckpointError("ACT needs at least one camera or observation.environment_state")
        if self.dim_model % self.n_heads:
            raise CheckpointError(f"ACT dim_model {self.dim_model} is not divisible by n_heads {self.n_heads}")
        if self.feedforward_activation not in ("relu", "gelu"):
            raise CheckpointError(f"ACT feedforward_activation {self.feedforward_activation!r}: "
                                  "expected relu or gelu")
        if self.n_action_steps > self.chunk_size:
            raise CheckpointError(f"ACT n_action_steps {self.n_action_steps} > chunk_size {self.chunk_size}")
        if self.temporal_ensemble_coeff is not None and self.n_action_steps != 1:
            raise CheckpointError("ACT temporal ensembling needs n_action_steps == 1 (as in LeRobot)")
        for s in self.image_shapes:
            if len(s) != 3 or s[0] != 3:
                raise CheckpointError(f"ACT camera shape {s}: expected (3, H, W)")
