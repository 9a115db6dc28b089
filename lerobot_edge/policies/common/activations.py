"""Activations written for the engines that run the exported graphs.

Mish, x * tanh(softplus(x)), exports as ONNX's Mish function, which ONNX Runtime's CPU provider expands into
Softplus + Tanh + Mul; its Softplus kernel is scalar (log1p(exp(x)) per element) and took 28 % of TDMPC's
large-batch value graph. With e = exp(x), tanh(softplus(x)) = e(e + 2) / (e(e + 2) + 2) = 1 - 2 / (e(e + 2) + 2):
vectorized Exp/Mul/Add/Div only, 2.4x faster in ORT and as fast in OpenVINO. When exp overflows (x > 88 in
fp32, > 11 in fp16) the fraction is 0 and the value is x, mish's own limit, so no NaN at any precision; the
difference from torch's mish is float32 rounding (<= 1e-6 absolute over [-100, 100]). Eager PyTorch keeps
F.mish (its fused kernel); the graph form is used only while torch.export traces.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def graph_mish(x: torch.Tensor) -> torch.Tensor:
    """Mish as exported graphs compute it (same shape as x)."""
    e = torch.exp(x)
    return x * (1.0 - 2.0 / (e * (e + 2.0) + 2.0))


class Mish(nn.Module):
    """nn.Mish in eager PyTorch; `graph_mish` inside an exported graph. No parameters (state-dict keys as
    nn.Mish's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return graph_mish(x) if torch.compiler.is_exporting() else F.mish(x)
