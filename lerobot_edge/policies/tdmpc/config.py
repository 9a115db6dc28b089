"""TDMPC's settings, read from a LeRobot config.json (unknown fields ignored, LeRobot's defaults otherwise)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ...checkpoint import Checkpoint
from ...errors import CheckpointError


@dataclass
class TDMPCConfig:
    state_dim: int = 0                  # 0: no observation.state
    env_state_dim: int = 0              # 0: no observation.environment_state
    action_dim: int = 0
    image_key: str | None = None        # LeRobot's TDMPC encodes only the first camera
    image_shape: tuple = ()
    n_action_repeats: int = 2
    horizon: int = 5
    n_action_steps: int = 1
    image_encoder_hidden_dim: int = 32
    state_encoder_hidden_dim: int = 256
    latent_dim: int = 50
    q_ensemble_size: int = 5
    mlp_dim: int = 512
    discount: float = 0.9
    use_mpc: bool = True
    cem_iterations: int = 6
    max_std: float = 2.0
    min_std: float = 0.05
    n_gaussian_samples: int = 512
    n_pi_samples: int = 51
    uncertainty_regularizer_coeff: float = 1.0
    n_elites: int = 50
    elite_weighting_temperature: float = 0.5
    gaussian_mean_momentum: float = 0.1

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint) -> "TDMPCConfig":
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in ckpt.config.items() if k in names}
        feats = ckpt.input_features
        kw["state_dim"] = ckpt.dim("observation.state")
        kw["env_state_dim"] = ckpt.dim("observation.environment_state")
        kw["action_dim"] = ckpt.action_feature.shape[0]
        if ckpt.image_keys:
            kw["image_key"] = ckpt.image_keys[0]
            kw["image_shape"] = tuple(feats[ckpt.image_keys[0]].shape)
        cfg = cls(**kw)
        cfg.check(len(ckpt.image_keys))
        return cfg

    def check(self, n_cameras: int) -> None:
        if n_cameras > 1:
            raise CheckpointError(f"TDMPC supports one camera (as LeRobot), the checkpoint has {n_cameras}")
        if not (self.state_dim or self.env_state_dim or self.image_key):
            raise CheckpointError("TDMPC needs observation.state, environment_state or a camera")
        if self.n_action_repeats > 1 and self.n_action_steps > 1:
            raise CheckpointError("TDMPC: n_action_repeats > 1 needs n_action_steps == 1 (as LeRobot)")
        if self.use_mpc and self.n_elites > self.n_gaussian_samples + self.n_pi_samples:
            raise CheckpointError("TDMPC n_elites exceeds the number of planner samples")
