"""ResNet trunk with torchvision's parameter names, written here so that neither export nor tests need
torchvision. Only the layers a policy backbone uses (conv1 … layer4); no avgpool/fc.

State-dict keys: conv1.weight, bn1.{weight,bias,running_mean,running_var}, layer{1-4}.{i}.conv{1,2[,3]}.weight,
layer{1-4}.{i}.bn{1,2[,3]}.*, layer{1-4}.0.downsample.{0.weight,1.*}.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

# name -> (block kind, blocks per stage)
RESNETS = {"resnet18": ("basic", (2, 2, 2, 2)), "resnet34": ("basic", (3, 4, 6, 3)),
           "resnet50": ("bottleneck", (3, 4, 6, 3)), "resnet101": ("bottleneck", (3, 4, 23, 3)),
           "resnet152": ("bottleneck", (3, 8, 36, 3))}


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics (torchvision.ops.FrozenBatchNorm2d semantics, eps 1e-5)."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)  # (C,) -> (1, C, 1, 1)


NormFactory = Callable[[int], nn.Module]


def _conv3x3(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int, dilation: int, downsample: nn.Module | None,
                 norm: NormFactory):
        super().__init__()
        if dilation > 1:
            raise ValueError("dilation > 1 is not supported by ResNet basic blocks (as in torchvision)")
        self.conv1 = _conv3x3(cin, width, stride)
        self.bn1 = norm(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(width, width)
        self.bn2 = norm(width)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int, dilation: int, downsample: nn.Module | None,
                 norm: NormFactory):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = norm(width)
        self.conv2 = _conv3x3(width, width, stride, dilation)
        self.bn2 = norm(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = norm(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetTrunk(nn.Module):
    """conv1 → bn1 → relu → maxpool → layer1..layer4. Input (B, 3, H, W), output (B, C, H/32, W/32)."""

    def __init__(self, name: str = "resnet18", norm: NormFactory = FrozenBatchNorm2d,
                 dilate_last: bool = False):
        super().__init__()
        if name not in RESNETS:
            raise ValueError(f"vision backbone {name!r} is not supported; expected one of {sorted(RESNETS)}")
        kind, depths = RESNETS[name]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = norm(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self._cin, self._dilation = 64, 1
        self.layer1 = self._stage(block, 64, depths[0], 1, False, norm)
        self.layer2 = self._stage(block, 128, depths[1], 2, False, norm)
        self.layer3 = self._stage(block, 256, depths[2], 2, False, norm)
        self.layer4 = self._stage(block, 512, depths[3], 2, dilate_last, norm)
        self.out_channels = 512 * block.expansion

    def _stage(self, block, width: int, n: int, stride: int, dilate: bool, norm: NormFactory) -> nn.Sequential:
        prev_dilation = self._dilation
        if dilate:  # torchvision's replace_stride_with_dilation: keep resolution, dilate instead
            self._dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self._cin != width * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self._cin, width * block.expansion, 1, stride=stride, bias=False),
                                       norm(width * block.expansion))
        layers = [block(self._cin, width, stride, prev_dilation, downsample, norm)]
        self._cin = width * block.expansion
        layers += [block(self._cin, width, 1, self._dilation, None, norm) for _ in range(1, n)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))
