"""VQ-BeT's settings, read from a LeRobot config.json (unknown fields ignored, LeRobot's defaults otherwise)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ...checkpoint import Checkpoint
from ...errors import CheckpointError

STATE = "observation.state"
N_VQ_LAYERS = 2        # LeRobot fixes the residual VQ at two quantizers (primary, secondary code)
TOKENS_PER_STEP = 3    # one camera token, one state token, one action query token


@dataclass
class VQBeTConfig:
    state_dim: int = 0
    action_dim: int = 0
    image_key: str = ""
    image_shape: tuple = ()             # (C, H, W) of the one camera LeRobot's VQ-BeT accepts
    n_obs_steps: int = 5
    n_action_pred_token: int = 3
    action_chunk_size: int = 5
    vision_backbone: str = "resnet18"
    crop_shape: tuple | None = (84, 84)
    use_group_norm: bool = True
    spatial_softmax_num_keypoints: int = 32
    vqvae_n_embed: int = 16
    vqvae_embedding_dim: int = 256
    vqvae_enc_hidden_dim: int = 128
    gpt_block_size: int = 500
    gpt_input_dim: int = 512
    gpt_output_dim: int = 512
    gpt_n_layer: int = 8
    gpt_n_head: int = 8
    gpt_hidden_dim: int = 512
    bet_softmax_temperature: float = 0.1
    sequentially_select: bool = False
    resize_shape: tuple | None = None   # VQ-BeT never resizes; the shared RGB encoder reads this field

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint) -> "VQBeTConfig":
        names = {f.name for f in fields(cls)} - {"resize_shape"}
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in ckpt.config.items() if k in names}
        feats = ckpt.input_features
        extra = sorted(set(feats) - {STATE, *ckpt.image_keys})
        if STATE not in feats or len(ckpt.image_keys) != 1 or extra:
            # LeRobot indexes the action tokens by len(input_features): any other feature shifts them
            raise CheckpointError(f"VQ-BeT input_features: expected exactly 'observation.state' and one camera "
                                  f"(as LeRobot), got {sorted(feats)}")
        kw.update(state_dim=ckpt.dim(STATE), action_dim=ckpt.action_feature.shape[0], image_key=ckpt.image_keys[0],
                  image_shape=tuple(feats[ckpt.image_keys[0]].shape))
        cfg = cls(**kw)
        cfg.check()
        return cfg

    @property
    def n_tokens(self) -> int:
        """GPT sequence length LeRobot builds: TOKENS_PER_STEP per observation step + the future action tokens."""
        return self.n_obs_steps * TOKENS_PER_STEP + self.n_action_pred_token - 1

    def check(self) -> None:
        if not self.vision_backbone.startswith("resnet"):
            raise CheckpointError(f"VQ-BeT vision_backbone={self.vision_backbone!r}: expected a ResNet (as LeRobot)")
        if len(self.image_shape) != 3:
            raise CheckpointError(f"VQ-BeT camera {self.image_key} shape {self.image_shape}: expected (C, H, W)")
        if self.crop_shape is not None and (self.crop_shape[0] > self.image_shape[1]
                                            or self.crop_shape[1] > self.image_shape[2]):
            raise CheckpointError(f"VQ-BeT crop_shape {self.crop_shape} does not fit the image {self.image_shape}")
        if self.n_tokens > self.gpt_block_size:
            raise CheckpointError(f"VQ-BeT gpt_block_size={self.gpt_block_size}: expected >= {self.n_tokens} "
                                  "(n_obs_steps * 3 + n_action_pred_token - 1 tokens)")
        if self.gpt_hidden_dim % self.gpt_n_head:
            raise CheckpointError(f"VQ-BeT gpt_hidden_dim={self.gpt_hidden_dim}: expected a multiple of "
                                  f"gpt_n_head={self.gpt_n_head}")
        for k in ("n_obs_steps", "n_action_pred_token", "action_chunk_size", "vqvae_n_embed"):
            if getattr(self, k) < 1:
                raise CheckpointError(f"VQ-BeT {k}={getattr(self, k)}: expected >= 1")
        if self.bet_softmax_temperature <= 0:
            raise CheckpointError(f"VQ-BeT bet_softmax_temperature={self.bet_softmax_temperature}: expected > 0")
