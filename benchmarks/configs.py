"""Standard benchmark configurations: checkpoints with random weights in LeRobot's on-disk layout, at the sizes
users run (timing does not depend on trained weights). Each writer takes a directory and returns the
checkpoint path; `tables.py` and the pytest-benchmark suite both use them.

    act_aloha           ACT, aloha sim insertion: 1 camera 3x480x640, state 14, chunk 100 (LeRobot defaults)
    diffusion_pusht_*   Diffusion Policy, PushT: 1 camera 3x96x96 (crop 84), state 2, horizon 16, 2 obs steps,
                        LeRobot's default U-Net (down dims 512/1024/2048); DDIM 10 steps and DDPM 100 steps
    pi0_reduced         pi0 with openpi's `dummy` Gemma variants and a small SigLIP, 2 cameras (CI size)
    pi05_reduced        the same for pi0.5
    sac_default         SAC actor at LeRobot's default sizes, 1 camera 3x128x128, state 18, action 3
    tdmpc_xarm          TDMPC at LeRobot's defaults (xarm lift: camera 3x84x84, state 4, action 4; MPPI 6 iterations)
    vqbet_pusht         VQ-BeT at LeRobot's defaults (PushT: camera 3x96x96, crop 84, 5 obs steps, GPT 8x512)
    smolvla_reduced     SmolVLA with a tiny SmolVLM-like VLM (CI size; full size: benchmarks/smolvla_full.py)
Full-size VLAs are exported by their own scripts (one process per graph and backend: see README).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

PUSHT = dict(n_obs_steps=2, horizon=16, n_action_steps=8, crop_shape=[84, 84], crop_is_random=True,
             down_dims=[512, 1024, 2048], kernel_size=5, n_groups=8, diffusion_step_embed_dim=128,
             spatial_softmax_num_keypoints=32, num_train_timesteps=100)


def act_aloha(d: Path) -> Path:
    from lerobot_layout import write_act_checkpoint

    return write_act_checkpoint(d, cameras={"observation.images.top": (3, 480, 640)}, state_dim=14, action_dim=14,
                                with_type=True)


def _diffusion(d: Path, scheduler: str, steps: int) -> Path:
    from lerobot_layout import write_diffusion_checkpoint

    return write_diffusion_checkpoint(d, cameras={"observation.image": (3, 96, 96)}, state_dim=2, action_dim=2,
                                      **PUSHT, noise_scheduler_type=scheduler, num_inference_steps=steps)


def _pi(d: Path, kind: str) -> Path:
    from pi_layout import write_pi0_checkpoint, write_tokenizer

    tok = write_tokenizer(d.parent / f"{d.name}-tokenizer")
    return write_pi0_checkpoint(d, tok, kind=kind)


def sac_default(d: Path) -> Path:
    from sac_layout import write_sac_checkpoint

    hidden = {"hidden_dims": [256, 256], "activate_final": True}
    return write_sac_checkpoint(d, cameras={"observation.image": (3, 128, 128)}, state_dim=18, action_dim=3,
                                latent_dim=256, image_encoder_hidden_dim=32, image_embedding_pooling_dim=8,
                                actor_network_kwargs=hidden,
                                critic_network_kwargs={**hidden, "final_activation": None},
                                discrete_critic_network_kwargs={**hidden, "final_activation": None})


def tdmpc_xarm(d: Path) -> Path:
    from tdmpc_layout import write_tdmpc_checkpoint

    return write_tdmpc_checkpoint(d, camera=(3, 84, 84), state_dim=4, action_dim=4, latent_dim=50, mlp_dim=512,
                                  state_encoder_hidden_dim=256, image_encoder_hidden_dim=32, q_ensemble_size=5,
                                  horizon=5, n_gaussian_samples=512, n_pi_samples=51, n_elites=50,
                                  cem_iterations=6, n_action_repeats=2, n_action_steps=1, use_mpc=True)


def vqbet_pusht(d: Path) -> Path:
    from vqbet_layout import write_vqbet_checkpoint

    return write_vqbet_checkpoint(
        d, image_shape=(3, 96, 96), state_dim=2, action_dim=2, n_obs_steps=5, n_action_pred_token=3,
        action_chunk_size=5, crop_shape=[84, 84], spatial_softmax_num_keypoints=32, vqvae_n_embed=16,
        vqvae_embedding_dim=256, vqvae_enc_hidden_dim=128, gpt_block_size=500, gpt_input_dim=512,
        gpt_output_dim=512, gpt_n_layer=8, gpt_n_head=8, gpt_hidden_dim=512)


def smolvla_reduced(d: Path) -> Path:
    from smolvla_layout import write_smolvla_checkpoint, write_vlm_dir

    return write_smolvla_checkpoint(d, write_vlm_dir(d.parent / f"{d.name}-vlm"))


CONFIGS: dict[str, Callable[[Path], Path]] = {
    "act_aloha": act_aloha,
    "diffusion_pusht_ddim10": lambda d: _diffusion(d, "DDIM", 10),
    "diffusion_pusht_ddpm100": lambda d: _diffusion(d, "DDPM", 100),
    "pi0_reduced": lambda d: _pi(d, "pi0"),
    "pi05_reduced": lambda d: _pi(d, "pi05"),
    "sac_default": sac_default,
    "tdmpc_xarm": tdmpc_xarm,
    "vqbet_pusht": vqbet_pusht,
    "smolvla_reduced": smolvla_reduced,
}


def write(name: str, root: Path) -> Path:
    """The checkpoint of config `name` under `root` (written once, reused when present)."""
    d = Path(root) / name
    if not (d / "model.safetensors").is_file():
        CONFIGS[name](d)
    return d
