"""Diffusion Policy for export, with LeRobot's `DiffusionPolicy` parameter names (`diffusion.rgb_encoder…`,
`diffusion.unet…`). Eval path only: center crop, no randomness (noise is an input of the host loop)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..common.resnet import ResNetTrunk
from .config import DiffusionConfig


class SpatialSoftmax(nn.Module):
    """Keypoints as the softmax-weighted mean of a fixed [-1, 1] grid. (B, C, H, W) -> (B, K, 2)."""

    def __init__(self, c: int, h: int, w: int, num_kp: int | None):
        super().__init__()
        self.nets = nn.Conv2d(c, num_kp, kernel_size=1) if num_kp is not None else None
        self.h, self.w, self.k = h, w, num_kp or c
        pos_x, pos_y = np.meshgrid(np.linspace(-1.0, 1.0, w), np.linspace(-1.0, 1.0, h))
        grid = np.stack([pos_x.reshape(-1), pos_y.reshape(-1)], axis=1)          # (H*W, 2)
        self.register_buffer("pos_grid", torch.from_numpy(grid).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.nets is not None:
            x = self.nets(x)
        attention = F.softmax(x.reshape(-1, self.h * self.w), dim=-1)             # (B*K, H*W)
        return (attention @ self.pos_grid).reshape(-1, self.k, 2)                # (B, K, 2)


def resize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in): torchvision's tensor Resize (bilinear, antialias, align_corners=False) along one axis.

    Taken from torch's own kernel applied to unit impulses (channel i holds an impulse at row i; the other
    axis is 2 wide and unchanged, since torch's antialiased kernel treats a 1-wide axis differently)."""
    eye = torch.eye(n_in).reshape(1, n_in, n_in, 1).expand(1, n_in, n_in, 2).contiguous()  # (1, n_in, n_in, 2)
    out = F.interpolate(eye, size=(n_out, 2), mode="bilinear", antialias=True, align_corners=False)
    return out[0, :, :, 0].T.contiguous()                                           # (n_in, n_out) -> (n_out, n_in)


class RgbEncoder(nn.Module):
    """[resize] -> center crop -> ResNet trunk (torchvision child indices) -> spatial softmax -> Linear + ReLU."""

    def __init__(self, cfg: DiffusionConfig):
        super().__init__()
        norm = (lambda c: nn.GroupNorm(c // 16, c)) if cfg.use_group_norm else nn.BatchNorm2d
        t = ResNetTrunk(cfg.vision_backbone, norm=norm)
        self.backbone = nn.Sequential(t.conv1, t.bn1, t.relu, t.maxpool, t.layer1, t.layer2, t.layer3, t.layer4)
        self.resize = tuple(cfg.resize_shape) if cfg.resize_shape else None
        self.crop = tuple(cfg.crop_shape) if cfg.crop_shape else None
        c, h, w = cfg.image_shape
        if self.resize is not None:  # as two constant MatMuls: OpenVINO ignores an ONNX Resize's antialias
            self.register_buffer("resize_h", resize_matrix(h, self.resize[0]), persistent=False)      # (h', H)
            self.register_buffer("resize_w", resize_matrix(w, self.resize[1]).T.contiguous(),  # (W, w')
                                 persistent=False)
        with torch.no_grad():
            fmap = self.backbone(torch.zeros(1, c, *(self.crop or self.resize or (h, w))))
        self.pool = SpatialSoftmax(fmap.shape[1], fmap.shape[2], fmap.shape[3], cfg.spatial_softmax_num_keypoints)
        self.feature_dim = cfg.spatial_softmax_num_keypoints * 2
        self.out = nn.Linear(self.feature_dim, self.feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, feature_dim)."""
        if self.resize is not None:  # torchvision's Resize on tensors: bilinear with antialiasing
            x = self.resize_h @ x @ self.resize_w                                # (N, 3, h', w')
        if self.crop is not None:  # eval: torchvision CenterCrop
            h, w = x.shape[-2:]
            top, left = int(round((h - self.crop[0]) / 2.0)), int(round((w - self.crop[1]) / 2.0))
            x = x[..., top:top + self.crop[0], left:left + self.crop[1]]
        return F.relu(self.out(torch.flatten(self.pool(self.backbone(x)), start_dim=1)))


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
        self.block = nn.Sequential(nn.Conv1d(cin, cout, k, padding=k // 2), nn.GroupNorm(n_groups, cout), nn.Mish())

    def forward(self, x):
        return self.block(x)


class CondResidualBlock1d(nn.Module):
    """Two conv blocks with FiLM conditioning (scale + bias, or bias only) in between."""

    def __init__(self, cin: int, cout: int, cond_dim: int, k: int, n_groups: int, film_scale: bool):
        super().__init__()
        self.film_scale, self.cout = film_scale, cout
        self.conv1 = Conv1dBlock(cin, cout, k, n_groups)
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, cout * 2 if film_scale else cout))
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
        self.diffusion_step_encoder = nn.Sequential(SinusoidalPosEmb(e), nn.Linear(e, e * 4), nn.Mish(),
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
