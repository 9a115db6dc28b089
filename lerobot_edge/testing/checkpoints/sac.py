"""SAC checkpoints in LeRobot 0.4's on-disk layout, written without LeRobot (critic keys included)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from .layout import random_stats, random_weights, save_safetensors, write_processors

SAC_TINY = dict(latent_dim=16, image_encoder_hidden_dim=8, image_embedding_pooling_dim=4,
                actor_network_kwargs={"hidden_dims": [32, 32], "activate_final": True},
                critic_network_kwargs={"hidden_dims": [32, 32], "activate_final": True, "final_activation": None},
                discrete_critic_network_kwargs={"hidden_dims": [32, 32], "activate_final": True,
                                                "final_activation": None},
                policy_kwargs={"use_tanh_squash": True, "std_min": 1e-5, "std_max": 10.0, "init_final": 0.05},
                shared_encoder=True, num_discrete_actions=None, vision_encoder_name=None, num_critics=2)


def _critic_shapes(prefix: str, in_dim: int, hidden: list[int], out: int) -> dict[str, tuple]:
    """A LeRobot SAC critic MLP (`net.net.{0,1,3,4}` + `output_layer`)."""
    shapes, i = {}, 0
    for h in hidden:
        shapes[f"{prefix}.net.net.{i}.weight"], shapes[f"{prefix}.net.net.{i}.bias"] = (h, in_dim), (h,)
        shapes[f"{prefix}.net.net.{i + 1}.weight"], shapes[f"{prefix}.net.net.{i + 1}.bias"] = (h,), (h,)
        in_dim, i = h, i + 3
    shapes[f"{prefix}.output_layer.weight"], shapes[f"{prefix}.output_layer.bias"] = (out, in_dim), (out,)
    return shapes


# where LeRobot 0.4's default config (use_torch_compile=True) puts torch.compile's `_orig_mod`
LEROBOT_COMPILED = ("critic_ensemble", "critic_target")


def compiled_names(weights: dict[str, np.ndarray], modules: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Keys as torch.compile'd `modules` save them: `m.x` -> `m._orig_mod.x` for each dotted module path `m`
    ("" = the whole policy: `_orig_mod.x`); a module inside another compiled one nests (`a._orig_mod.b._orig_mod.x`)."""
    out = {}
    for k, v in weights.items():
        parts = k.split(".")
        for m in sorted(modules, key=lambda m: -len(m.split(".")) if m else 0):     # innermost first
            n = len(m.split(".")) if m else 0
            if parts[:n] == (m.split(".") if m else []):
                parts = parts[:n] + ["_orig_mod"] + parts[n:]
        out[".".join(parts)] = v
    return out


def write_sac_checkpoint(d: Path, *, cameras: dict[str, tuple] | None = None, state_dim: int = 5,
                         action_dim: int = 3, seed: int = 0, orig_mod: tuple[str, ...] = (), **config) -> Path:
    """A 0.4 `sac` checkpoint: actor, critic ensemble + target, discrete critic (+ target) and log_alpha.
    `orig_mod`: modules saved as torch.compile'd (`LEROBOT_COMPILED` is what LeRobot's defaults write)."""
    from lerobot_edge.policies.sac.config import MLPConfig, SACConfig
    from lerobot_edge.policies.sac.model import SACActorModule

    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    cameras = {} if cameras is None else cameras
    inputs = {"observation.state": {"type": "STATE", "shape": [state_dim]}} if state_dim else {}
    inputs.update({k: {"type": "VISUAL", "shape": list(s)} for k, s in cameras.items()})
    outputs = {"action": {"type": "ACTION", "shape": [action_dim]}}
    norm_map = {"VISUAL": "MEAN_STD", "STATE": "MIN_MAX", "ENV": "MIN_MAX", "ACTION": "MIN_MAX"}
    cfg = {**SAC_TINY, **config}
    body = {"type": "sac", "n_obs_steps": 1, "input_features": inputs, "output_features": outputs,
            "device": "cpu", "normalization_mapping": norm_map, **cfg}
    (d / "config.json").write_text(json.dumps(body, indent=4))
    ours = SACConfig(state_dim=state_dim, action_dim=action_dim, image_keys=tuple(cameras),
                     image_shapes=tuple(tuple(s) for s in cameras.values()), latent_dim=cfg["latent_dim"],
                     image_encoder_hidden_dim=cfg["image_encoder_hidden_dim"],
                     image_embedding_pooling_dim=cfg["image_embedding_pooling_dim"],
                     shared_encoder=cfg["shared_encoder"], num_discrete_actions=cfg["num_discrete_actions"],
                     actor=MLPConfig.from_dict(cfg["actor_network_kwargs"]),
                     discrete_critic=MLPConfig.from_dict(cfg["discrete_critic_network_kwargs"]))
    module = SACActorModule(ours)
    shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    z = module.actor.network.net[0].in_features
    hidden = list(cfg["critic_network_kwargs"]["hidden_dims"])
    for i in range(cfg["num_critics"]):
        for p in ("critic_ensemble", "critic_target"):
            shapes.update(_critic_shapes(f"{p}.critics.{i}", z + action_dim, hidden, 1))
    if ours.num_discrete_actions is not None:
        shapes.update(_critic_shapes("discrete_critic_target", z, hidden, ours.num_discrete_actions))
    weights = random_weights(shapes, seed)
    for k in [k for k in weights if k.endswith("spatial_embeddings") or ".kernel" in k]:
        weights[k] = np.random.default_rng(seed).normal(0, 0.3, shapes[k]).astype(np.float32)
    weights["log_alpha"] = np.zeros((1,), np.float32)
    stats = random_stats({**inputs, **outputs}, seed)
    write_processors(d, inputs, outputs, norm_map, stats, step_index=3)
    save_safetensors(d / "model.safetensors", compiled_names(weights, orig_mod))
    return d


GA_06 = dict(storage_device="cpu", freeze_vision_encoder=True, state_encoder_hidden_dim=256, online_steps=1000000,
             dataset_stats=None, actor_network_kwargs={"hidden_dims": [32, 32], "activate_final": True})


def write_gaussian_actor_checkpoint(d: Path, *, cameras: dict[str, tuple] | None = None, state_dim: int = 5,
                                    env_dim: int = 0, action_dim: int = 3, seed: int = 0, **config) -> Path:
    """A LeRobot 0.6 `gaussian_actor` checkpoint (SAC's policy side): `actor.*`, `discrete_critic.{net,
    output_layer}.*` and, with separate encoders, `discrete_critic.encoder.*`; no critics, targets or
    temperature (0.6 keeps those on the algorithm side)."""
    from lerobot_edge.policies.sac.config import MLPConfig, SACConfig
    from lerobot_edge.policies.sac.model import SACActorModule

    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    cameras = {} if cameras is None else cameras
    inputs = {"observation.state": {"type": "STATE", "shape": [state_dim]}} if state_dim else {}
    if env_dim:
        inputs["observation.environment_state"] = {"type": "ENV", "shape": [env_dim]}
    inputs.update({k: {"type": "VISUAL", "shape": list(s)} for k, s in cameras.items()})
    outputs = {"action": {"type": "ACTION", "shape": [action_dim]}}
    norm_map = {"VISUAL": "MEAN_STD", "STATE": "MIN_MAX", "ENV": "MIN_MAX", "ACTION": "MIN_MAX"}
    cfg = {**{k: v for k, v in SAC_TINY.items() if k not in ("critic_network_kwargs", "num_critics")},
           **GA_06, **config}
    body = {"type": "gaussian_actor", "n_obs_steps": 1, "input_features": inputs, "output_features": outputs,
            "device": "cpu", "use_amp": False, "use_peft": False, "normalization_mapping": norm_map, **cfg}
    (d / "config.json").write_text(json.dumps(body, indent=4))
    ours = SACConfig(state_dim=state_dim, env_state_dim=env_dim, action_dim=action_dim, image_keys=tuple(cameras),
                     image_shapes=tuple(tuple(s) for s in cameras.values()), latent_dim=cfg["latent_dim"],
                     image_encoder_hidden_dim=cfg["image_encoder_hidden_dim"],
                     image_embedding_pooling_dim=cfg["image_embedding_pooling_dim"],
                     shared_encoder=cfg["shared_encoder"], num_discrete_actions=cfg["num_discrete_actions"],
                     actor=MLPConfig.from_dict(cfg["actor_network_kwargs"]),
                     discrete_critic=MLPConfig.from_dict(cfg["discrete_critic_network_kwargs"]))
    # 0.6 saves the separate critic encoder under the discrete critic that owns it
    shapes = {k.replace("critic_ensemble.encoder.", "discrete_critic.encoder."): tuple(v.shape)
              for k, v in SACActorModule(ours).state_dict().items()}
    weights = random_weights(shapes, seed)
    for k in [k for k in weights if k.endswith(".kernel")]:
        weights[k] = np.random.default_rng(seed).normal(0, 0.3, shapes[k]).astype(np.float32)
    write_processors(d, inputs, outputs, norm_map, random_stats({**inputs, **outputs}, seed), step_index=3)
    save_safetensors(d / "model.safetensors", weights)
    return d


def tiny(d: Path) -> Path:
    """The suites' tiny SAC: one camera 3x64x64 + state, discrete gripper critic (3 actions)."""
    return write_sac_checkpoint(d, seed=7, cameras={"observation.image": (3, 64, 64)}, num_discrete_actions=3)


def default(d: Path) -> Path:
    """SAC's actor at LeRobot's default sizes, 1 camera 3x128x128, state 18, action 3."""
    hidden = {"hidden_dims": [256, 256], "activate_final": True}
    return write_sac_checkpoint(d, cameras={"observation.image": (3, 128, 128)}, state_dim=18, action_dim=3,
                                latent_dim=256, image_encoder_hidden_dim=32, image_embedding_pooling_dim=8,
                                actor_network_kwargs=hidden,
                                critic_network_kwargs={**hidden, "final_activation": None},
                                discrete_critic_network_kwargs={**hidden, "final_activation": None})
