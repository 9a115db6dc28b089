"""SmolVLM's vision transformer and connector with transformers' parameter names:
`vision_model.{embeddings.patch_embedding, embeddings.position_embedding, encoder.layers.N.*, post_layernorm}`
and `connector.modality_projection.proj`.

The encoder layers are SigLIP's (pi0's modules, same names); the embeddings differ: SmolVLM looks positions up
through NaViT-style bucketing of fractional patch coordinates, which for a fixed image size is a constant index
vector computed once here with the same float32 arithmetic.
"""

from __future__ import annotations

import torch
from torch import nn

from ..common.siglip import SiglipEncoder
from .config import VisionDims


def patch_position_ids(image_size: int, patch_size: int, config_image_size: int) -> torch.Tensor:
    """(n*n,) int64 position ids of an image_size² input whose patches all count (SmolVLM's bucketing)."""
    side = config_image_size // patch_size                                            # position grid side
    n = image_size // patch_size                                                      # patches per side here
    boundaries = torch.arange(1 / side, 1.0, 1 / side)
    step = 1.0 / torch.tensor([n])                                                    # float32, as 1.0 / count
    coords = torch.clamp(torch.arange(n, dtype=torch.float32)[None, :] * step[:, None], max=1.0 - 1e-6)[0]
    bucket = torch.bucketize(coords, boundaries, right=True)                         # (n,)
    return (bucket[:, None] * side + bucket[None, :]).reshape(-1)                     # (n, n) -> (n*n,)


class VisionEmbeddings(nn.Module):
    def __init__(self, d: VisionDims, image_size: int):
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, d.hidden_size, d.patch_size, stride=d.patch_size)
        self.position_embedding = nn.Embedding((d.image_size // d.patch_size) ** 2, d.hidden_size)
        with torch.device("cpu"):  # a constant, also when the module is built on the meta device
            ids = patch_position_ids(image_size, d.patch_size, d.image_size)
        self.register_buffer("position_ids", ids, persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3, S, S) -> (B, N, C)."""
        x = self.patch_embedding(pixels).flatten(2).transpose(1, 2)                  # (B, C, h, w) -> (B, h*w, C)
        return x + self.position_embedding(self.position_ids)[None]


class VisionTransformer(nn.Module):
    """`vision_model`: pixels (B, 3, S, S) in [-1, 1] -> (B, (S/patch)², C)."""

    def __init__(self, d: VisionDims, image_size: int):
        super().__init__()
        self.embeddings = VisionEmbeddings(d, image_size)
        self.encoder = SiglipEncoder(d)
        self.post_layernorm = nn.LayerNorm(d.hidden_size, eps=d.layer_norm_eps)

    def forward(self, pixels):
        return self.post_layernorm(self.encoder(self.embeddings(pixels)))


class ModalityProjection(nn.Module):
    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.proj = nn.Linear(d_in, d_out, bias=False)


class Connector(nn.Module):
    """Pixel shuffle (scale_factor r: r×r neighbouring patches -> one token of r²·C) then a linear map."""

    def __init__(self, d: VisionDims, scale_factor: int, text_width: int):
        super().__init__()
        self.r = scale_factor
        self.modality_projection = ModalityProjection(d.hidden_size * scale_factor ** 2, text_width)

    def pixel_shuffle(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n*n, C) -> (B, n*n/r², C*r²) in SmolVLM's element order."""
        b, seq, c = x.shape
        n, r = int(seq ** 0.5), self.r
        x = x.reshape(b, n, n // r, c * r)                    # (B, rows, cols/r, r*C): r neighbours in a row
        x = x.permute(0, 2, 1, 3)                             # (B, cols/r, rows, r*C)
        x = x.reshape(b, n // r, n // r, c * r * r)           # (B, cols/r, rows/r, r²*C): r rows stacked
        x = x.permute(0, 2, 1, 3)                             # (B, rows/r, cols/r, r²*C)
        return x.reshape(b, seq // (r * r), c * r * r)        # (B, N/r², r²*C)

    def forward(self, x):
        return self.modality_projection.proj(self.pixel_shuffle(x))
