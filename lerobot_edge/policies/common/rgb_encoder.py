"""The image encoder Diffusion Policy and VQ-BeT share (LeRobot's DiffusionRgbEncoder, with its parameter names):
[resize] -> center crop -> ResNet trunk (torchvision child indices) -> spatial softmax keypoints -> Linear + ReLU.

Its config is any object with `vision_backbone`, `use_group_norm`, `resize_shape`, `crop_shape`, `image_shape`
and `spatial_softmax_num_keypoints` (DiffusionConfig, VQBeTConfig).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .resnet import ResNetTrunk


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

    def __init__(self, cfg):
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
