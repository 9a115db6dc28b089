"""TDMPC checkpoints in LeRobot 0.4's on-disk layout, written without LeRobot (target model keys included)."""

from __future__ import annotations

import json
from pathlib import Path

from .layout import random_stats, random_weights, save_safetensors, write_processors

TDMPC_TINY = dict(latent_dim=8, mlp_dim=16, state_encoder_hidden_dim=16, image_encoder_hidden_dim=4,
                  q_ensemble_size=3, horizon=3, n_gaussian_samples=16, n_pi_samples=4, n_elites=6,
                  cem_iterations=2, n_action_repeats=2, n_action_steps=1, use_mpc=True)


def write_tdmpc_checkpoint(d: Path, *, camera: tuple | None = None, state_dim: int = 4, env_dim: int = 0,
                           action_dim: int = 2, seed: int = 0, **config) -> Path:
    """A 0.4 `tdmpc` checkpoint: `model.*` and its `model_target.*` copy (not exported)."""
    from lerobot_edge.policies.tdmpc.config import TDMPCConfig
    from lerobot_edge.policies.tdmpc.model import TDMPCModule

    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    inputs = {}
    if camera:
        inputs["observation.image"] = {"type": "VISUAL", "shape": list(camera)}
    if state_dim:
        inputs["observation.state"] = {"type": "STATE", "shape": [state_dim]}
    if env_dim:
        inputs["observation.environment_state"] = {"type": "ENV", "shape": [env_dim]}
    outputs = {"action": {"type": "ACTION", "shape": [action_dim]}}
    norm_map = {"VISUAL": "IDENTITY", "STATE": "MIN_MAX", "ENV": "MIN_MAX", "ACTION": "MIN_MAX"}
    cfg = {**TDMPC_TINY, **config}
    body = {"type": "tdmpc", "n_obs_steps": 1, "input_features": inputs, "output_features": outputs,
            "device": "cpu", "normalization_mapping": norm_map, **cfg}
    (d / "config.json").write_text(json.dumps(body, indent=4))
    ours = TDMPCConfig(state_dim=state_dim, env_state_dim=env_dim, action_dim=action_dim,
                       image_key="observation.image" if camera else None, image_shape=tuple(camera or ()),
                       **{k: v for k, v in cfg.items() if k in TDMPCConfig.__dataclass_fields__})
    shapes = {k: tuple(v.shape) for k, v in TDMPCModule(ours).state_dict().items()}
    weights = random_weights(shapes, seed)
    weights.update({"model_target." + k[len("model."):]: v.copy() for k, v in weights.items()})
    write_processors(d, inputs, outputs, norm_map, random_stats({**inputs, **outputs}, seed), step_index=3)
    save_safetensors(d / "model.safetensors", weights)
    return d


def tiny(d: Path) -> Path:
    """The suites' tiny TDMPC."""
    return write_tdmpc_checkpoint(d, seed=5)


def xarm(d: Path) -> Path:
    """TDMPC at LeRobot's defaults (xarm lift: camera 3x84x84, state 4, action 4; MPPI 6 iterations)."""
    return write_tdmpc_checkpoint(d, camera=(3, 84, 84), state_dim=4, action_dim=4, latent_dim=50, mlp_dim=512,
                                  state_encoder_hidden_dim=256, image_encoder_hidden_dim=32, q_ensemble_size=5,
                                  horizon=5, n_gaussian_samples=512, n_pi_samples=51, n_elites=50,
                                  cem_iterations=6, n_action_repeats=2, n_action_steps=1, use_mpc=True)
