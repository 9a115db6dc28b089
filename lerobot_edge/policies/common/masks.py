"""Attention masks as the pi family and SmolVLA build them: bool "may attend" -> additive float masks."""

from __future__ import annotations

import torch

MASK_VALUE = -2.3819763e38  # openpi's attention mask constant (LeRobot's OPENPI_ATTENTION_MASK_VALUE)


def additive(allowed: torch.Tensor) -> torch.Tensor:
    """bool (B, Q, K) -> additive float mask (B, 1, Q, K): 0 where attention is allowed, MASK_VALUE elsewhere."""
    return torch.where(allowed[:, None], 0.0, MASK_VALUE).to(torch.float32)
