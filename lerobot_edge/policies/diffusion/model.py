"""Diffusion Policy for export, with LeRobot's `DiffusionPolicy` parameter names (`diffusion.rgb_encoder…`,
`diffusion.unet…`). Eval path only: center crop, no randomness (noise is an input of the host loop)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..common.activations import Mish
from ..common.rgb_encoder import RgbEncoder
from .config import DiffusionConfig


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """(B,) -> (B, dim): sin then cos of t * 10000^(-i/(half-1))."""
        half = self.dim // 2
        freq = torch.exp(torch.arange(half, device=t.device) * -(math.log(10000) / (half - 1)))
        arg = t.unsqueeze(-1) * freq.unsqueeze(0)
        return torch.cat((arg.sin(), arg.cos()), dim=-1)


class Conv1dBlock(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, n_groups: int = 8):
        super().__init__()
        self.block = nn.Sequential(nn.Conv1d(cin, cout, k, padding=k // 2), nn.GroupNorm(n_groups, cout), Mish())

    def forward(self, x):
        return self.block(x)


class CondResidualBlock1d(nn.Module):
    """Two conv blocks with FiLM conditioning (scale + bias, or bias only) in between."""

    def __init__(self, cin: int, cout: int, cond_dim: int, k: int, n_groups: int, film_scale: bool):
        super().__init__()
        self.film_scale, self.cout = film_scale, cout
        self.conv1 = Conv1dBlock(cin, cout, k, n_groups)
        self.cond_encoder = nn.Sequential(Mish(), nn.Linear(cond_dim, cout * 2 if film_scale else cout))
        self.conv2 = Conv1dBlock(cout, cout, k, n_groups)
        self.residual_conv = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, Cin, T), cond (B, cond_dim) -> (B, Cout, T)."""
        out = self.conv1(x)
        c = self.cond_encoder(cond).unsqueeze(-1)                                # (B, C or 2C, 1)
        out = c[:, : self.cout] * out + c[:, self.cout:] if self.film_scale else out + c
        return self.conv2(out) + self.residual_conv(x)


class ConditionalUnet1d(nn.Module):
    def __init__(self, cfg: DiffusionConfig, global_cond_dim: int):
        super().__init__()
        e = cfg.diffusion_step_embed_dim
        self.diffusion_step_encoder = nn.Sequential(SinusoidalPosEmb(e), nn.Linear(e, e * 4), Mish(),
                                                    nn.Linear(e * 4, e))
        dims = list(cfg.down_dims)
        in_out = [(cfg.action_dim, dims[0]), *zip(dims[:-1], dims[1:])]
        self.cond_dim = e + global_cond_dim
        kw = dict(cond_dim=self.cond_dim, k=cfg.kernel_size, n_groups=cfg.n_groups,
                  film_scale=cfg.use_film_scale_modulation)
        self.down_modules = nn.ModuleList(nn.ModuleList([
            CondResidualBlock1d(a, b, **kw), CondResidualBlock1d(b, b, **kw),
            nn.Conv1d(b, b, 3, 2, 1) if i < len(in_out) - 1 else nn.Identity()]) for i, (a, b) in enumerate(in_out))
        self.mid_modules = nn.ModuleList([CondResidualBlock1d(dims[-1], dims[-1], **kw) for _ in range(2)])
        # as in LeRobot, every up stage upsamples (its is_last test never holds)
        self.up_modules = nn.ModuleList(nn.ModuleList([
            CondResidualBlock1d(b * 2, a, **kw), CondResidualBlock1d(a, a, **kw),
            nn.ConvTranspose1d(a, a, 4, 2, 1)]) for a, b in reversed(in_out[1:]))
        self.final_conv = nn.Sequential(Conv1dBlock(dims[0], dims[0], cfg.kernel_size),
                                        nn.Conv1d(dims[0], cfg.action_dim, 1))

    def forward(self, x: torch.Tensor, timestep: torch.Tensor, global_cond: torch.Tensor) -> torch.Tensor:
        """x (B, T, A), timestep (B,), global_cond (B, G) -> (B, T, A)."""
        x = x.transpose(1, 2)                                                    # (B, A, T)
        cond = torch.cat([self.diffusion_step_encoder(timestep), global_cond], dim=-1)
        skips = []
        for res1, res2, down in self.down_modules:
            x = res2(res1(x, cond), cond)
            skips.append(x)
            x = down(x)
        for mid in self.mid_modules:
            x = mid(x, cond)
        for res1, res2, up in self.up_modules:
            x = up(res2(res1(torch.cat((x, skips.pop()), dim=1), cond), cond))
        return self.final_conv(x).transpose(1, 2)                                # (B, T, A)


class DiffusionModel(nn.Module):
    def __init__(self, cfg: DiffusionConfig):
        super().__init__()
        self.cfg = cfg
        per_step = cfg.state_dim + cfg.env_state_dim
        if cfg.n_cameras:
            if cfg.use_separate_rgb_encoder_per_camera:
                self.rgb_encoder = nn.ModuleList(RgbEncoder(cfg) for _ in range(cfg.n_cameras))
                per_step += self.rgb_encoder[0].feature_dim * cfg.n_cameras
            else:
                self.rgb_encoder = RgbEncoder(cfg)
                per_step += self.rgb_encoder.feature_dim * cfg.n_cameras
        self.unet = ConditionalUnet1d(cfg, per_step * cfg.n_obs_steps)

    def global_cond(self, state: torch.Tensor, env: torch.Tensor | None, cams: list[torch.Tensor]) -> torch.Tensor:
        """state (B, S, Ds), env (B, S, De), cams [(B, S, 3, H, W)] -> (B, S * (Ds + N*F + De))."""
        b, s = state.shape[:2]
        feats = [state]
        if cams:
            if self.cfg.use_separate_rgb_encoder_per_camera:
                per_cam = [enc(c.flatten(0, 1)).reshape(b, s, -1) for enc, c in zip(self.rgb_encoder, cams)]
                feats.append(torch.cat(per_cam, dim=-1))                         # (B, S, N*F), camera order
            else:
                stacked = torch.stack(cams, dim=2)                               # (B, S, N, 3, H, W)
                f = self.rgb_encoder(stacked.flatten(0, 2))                      # (B*S*N, F)
                feats.append(f.reshape(b, s, -1))                                # (B, S, N*F)
        if env is not None:
            feats.append(env)
        return torch.cat(feats, dim=-1).flatten(1)                               # (B, S*per_step)


class DiffusionPolicyModule(nn.Module):
    """LeRobot's key layout (`diffusion.*`); the two graphs below share its parameters."""

    def __init__(self, cfg: DiffusionConfig):
        super().__init__()
        self.diffusion = DiffusionModel(cfg)


class EncoderGraph(nn.Module):
    def __init__(self, policy: DiffusionPolicyModule):
        super().__init__()
        self.policy = policy

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """[state (B,S,Ds)] [env (B,S,De)] cam0 (B,S,3,H,W) … -> global_cond (B, G)."""
        cfg = self.policy.diffusion.cfg
        state, rest = inputs[0], list(inputs[1:])
        env = rest.pop(0) if cfg.env_state_dim else None
        return self.policy.diffusion.global_cond(state, env, rest)


class DenoiseGraph(nn.Module):
    def __init__(self, policy: DiffusionPolicyModule):
        super().__init__()
        self.policy = policy

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, global_cond: torch.Tensor) -> torch.Tensor:
        return self.policy.diffusion.unet(sample, timestep, global_cond)
