"""SAC's settings, read from a LeRobot 0.4 `sac` config.json (unknown fields ignored, LeRobot's defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...checkpoint import Checkpoint
from ...errors import CheckpointError

STATE, ENV = "observation.state", "observation.environment_state"


@dataclass
class MLPConfig:
    """LeRobot's Actor/CriticNetworkConfig: Linear -> [Dropout] -> LayerNorm -> activation per layer."""

    hidden_dims: tuple = (256, 256)
    activate_final: bool = True
    final_activation: str | None = None
    dropout_rate: float | None = None

    @classmethod
    def from_dict(cls, d: dict | None) -> "MLPConfig":
        d = d or {}
        return cls(tuple(d.get("hidden_dims", (256, 256))), bool(d.get("activate_final", True)),
                   d.get("final_activation"), d.get("dropout_rate"))


@dataclass
class SACConfig:
    state_dim: int = 0                  # 0: no observation.state
    env_state_dim: int = 0              # 0: no observation.environment_state
    action_dim: int = 0                 # continuous action dims (LeRobot: output_features["action"])
    image_keys: tuple = ()              # camera order = config.input_features order
    image_shapes: tuple = ()            # ((C, H, W), …)
    latent_dim: int = 256
    image_encoder_hidden_dim: int = 32
    image_embedding_pooling_dim: int = 8
    shared_encoder: bool = True
    num_discrete_actions: int | None = None
    std_min: float = 1e-5
    std_max: float = 10.0
    actor: MLPConfig = field(default_factory=MLPConfig)
    discrete_critic: MLPConfig = field(default_factory=MLPConfig)

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint) -> "SACConfig":
        c = ckpt.config
        if c.get("vision_encoder_name"):
            raise CheckpointError(f"SAC vision_encoder_name={c['vision_encoder_name']!r}: pretrained (transformers) "
                                  "image encoders are not supported; only LeRobot's default conv encoder is")
        if c.get("fixed_std") is not None or (c.get("policy_kwargs") or {}).get("fixed_std") is not None:
            raise CheckpointError("SAC fixed_std is not supported")
        feats = ckpt.input_features
        pol = c.get("policy_kwargs") or {}
        cfg = cls(
            state_dim=ckpt.dim(STATE),
            env_state_dim=ckpt.dim(ENV),
            action_dim=ckpt.action_feature.shape[0],
            image_keys=tuple(ckpt.image_keys),
            image_shapes=tuple(tuple(feats[k].shape) for k in ckpt.image_keys),
            **{k: c[k] for k in ("latent_dim", "image_encoder_hidden_dim", "image_embedding_pooling_dim",
                                 "shared_encoder", "num_discrete_actions") if k in c},
            std_min=float(pol.get("std_min", 1e-5)), std_max=float(pol.get("std_max", 10.0)),
            actor=MLPConfig.from_dict(c.get("actor_network_kwargs")),
            discrete_critic=MLPConfig.from_dict(c.get("discrete_critic_network_kwargs")),
        )
        cfg.check()
        return cfg

    def check(self) -> None:
        if not (self.state_dim or self.image_keys):
            raise CheckpointError("SAC needs observation.state or at least one camera (as LeRobot requires)")
        if len(set(self.image_shapes)) > 1:
            raise CheckpointError(f"SAC cameras share one encoder and must have one shape, got {self.image_shapes}")
        for s in self.image_shapes:
            if len(s) != 3:
                raise CheckpointError(f"SAC camera shape {s}: expected (C, H, W)")
