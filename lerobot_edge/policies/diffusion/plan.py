"""Diffusion Policy's graph plan: `encoder` (normalized observation history -> global_cond) and `denoise`
((x_t, t, global_cond) -> model output). The sampler loop is the runtime's (kernels/schedulers.py)."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from ...bundle import IOSpec
from ...checkpoint import LEGACY_STAT_PREFIXES, Checkpoint
from ..common.weights import load_strict
from ...runtime.observations import random_batch
from ..plan import Call, ChunkCheck, ExportPlan, GraphPlan, normal_sampler
from .config import DiffusionConfig
from .fused import fused_graph
from .model import DenoiseGraph, DiffusionPolicyModule, EncoderGraph

STATE, ENV = "observation.state", "observation.environment_state"
TOLERANCE_ENCODER = {"global_cond": {"atol": 1e-4, "min_cosine": 0.99999}}
TOLERANCE_DENOISE = {"model_output": {"atol": 1e-4, "min_cosine": 0.99999}}
CHECK_SEED = 20240602


def _observations(ckpt: Checkpoint, cfg: DiffusionConfig) -> dict[str, dict]:
    obs = {STATE: {"kind": "state", "shape": [cfg.state_dim], "graph_input": STATE}}
    if cfg.env_state_dim:
        obs[ENV] = {"kind": "env_state", "shape": [cfg.env_state_dim], "graph_input": ENV}
    for key in ckpt.image_keys:
        obs[key] = {"kind": "image", "shape": list(cfg.image_shape), "graph_input": key}
    return obs


def _denoise_sampler(cfg: DiffusionConfig, specs: list[IOSpec]):
    normal = normal_sampler(specs)
    def sample(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        x = normal(rng, batch)
        x["timestep"] = rng.integers(0, cfg.num_train_timesteps, batch).astype(np.float32)
        return x
    return sample


def _chunk_calls(bundle, rng: np.random.Generator) -> list[Call]:
    """One chunk at batch 1 with shared initial noise; DDPM's per-step noise comes from the same seed on both
    sides. The per-graph validation covers batch 2; the chunk costs 2 x num_inference_steps denoiser calls
    (DDPM-100 at LeRobot's PushT size: minutes on 2 CPU cores), so one is enough."""
    obs = random_batch(bundle.manifest["observations"], rng, 1)
    noise = rng.standard_normal((1, *bundle.manifest["noise_shape"][1:])).astype(np.float32)   # (1, horizon, A)
    return [Call(obs, {"noise": noise}, {"seed": CHECK_SEED})]


def build_plan(ckpt: Checkpoint, fuse_loop: bool = False) -> ExportPlan:
    """fuse_loop: export the DDIM loop unrolled into one graph (`denoise_loop`) instead of encoder + denoise."""
    cfg = DiffusionConfig.from_checkpoint(ckpt)
    policy = DiffusionPolicyModule(cfg)
    load_strict(policy, ckpt.load_weights(), unused_prefixes=LEGACY_STAT_PREFIXES, what=f"Diffusion {ckpt.path}")
    policy.eval()
    obs = _observations(ckpt, cfg)
    s = cfg.n_obs_steps
    enc_in = [IOSpec(o["graph_input"], ("batch", s, *o["shape"])) for o in obs.values()]
    g = policy.diffusion.unet.cond_dim - cfg.diffusion_step_embed_dim  # global_cond width
    den_in = [IOSpec("sample", ("batch", cfg.horizon, cfg.action_dim)), IOSpec("timestep", ("batch",)),
              IOSpec("global_cond", ("batch", g))]
    graphs = [
        GraphPlan("encoder", EncoderGraph(policy), enc_in, [IOSpec("global_cond", ("batch", g))], TOLERANCE_ENCODER,
                  normal_sampler(enc_in)),
        GraphPlan("denoise", DenoiseGraph(policy), den_in, [IOSpec("model_output", den_in[0].shape)],
                  TOLERANCE_DENOISE, _denoise_sampler(cfg, den_in)),
    ]
    keys = [*obs, "action"]
    scheduler = {k: getattr(cfg, k) for k in ("num_train_timesteps", "beta_schedule", "beta_start", "beta_end",
                                              "prediction_type", "clip_sample", "clip_sample_range")}
    runtime = {"kind": "diffusion", "n_obs_steps": s, "horizon": cfg.horizon, "n_action_steps": cfg.n_action_steps,
               "action_dim": cfg.action_dim, "scheduler": {"kind": cfg.noise_scheduler_type, **scheduler},
               "num_inference_steps": cfg.num_inference_steps or cfg.num_train_timesteps}
    exported = graphs
    if fuse_loop:  # one graph for the whole DDIM loop; the stepped graphs stay the validation reference
        exported = [fused_graph(*graphs, runtime)]
        runtime.update(kind="diffusion_fused", fuse_loop=True)  # api.validate_bundle rebuilds it so
    return ExportPlan(
        policy_type="diffusion",
        policy_config={k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        graphs=exported, observations=obs, action={"key": "action", "shape": [cfg.action_dim]},
        normalization={k: ckpt.norm_modes.get(k, "IDENTITY") for k in keys},
        stats={k: ckpt.stats[k] for k in keys if k in ckpt.stats},
        runtime=runtime,
        legacy_stats=ckpt.legacy_stats, noise_shape=["batch", cfg.horizon, cfg.action_dim],
        # the sampled chunk with shared noise, engine vs the stepped loop on PyTorch (also for a fused bundle)
        end_to_end=ChunkCheck(_chunk_calls, CHECK_SEED, graphs=graphs, runtime_kind="diffusion",
                              loop_graphs=("denoise",)),
    )
