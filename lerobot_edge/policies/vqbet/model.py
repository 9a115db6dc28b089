"""VQ-BeT for export, with LeRobot's `VQBeTPolicy` parameter names (`vqbet.rgb_encoder…`, `vqbet.state_projector`,
`vqbet.rgb_feature_projector`, `vqbet.action_token`, `vqbet.policy.transformer.*` (minGPT),
`vqbet.action_head.{map_to_cbet_preds_*, vqvae_model.{vq_layer, decoder}}`). Eval path only: center crop,
dropout off, and no sampling: the code draws happen on the host, between the two graphs below.

  policy graph: state (B, S, Ds), image (B, S, C, H, W) -> code logits and offsets of the current step's token
  decode graph: one-hot codes (B, G, K) -> VQ-VAE decoder output (B, W, A)
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..common.rgb_encoder import RgbEncoder
from .config import N_VQ_LAYERS, TOKENS_PER_STEP, VQBeTConfig


def mlp(dims: list[int]) -> nn.Sequential:
    """LeRobot's VQ-BeT MLP: Linear (+ ReLU between layers), keys `0.*`, `2.*`, …"""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: VQBeTConfig):
        super().__init__()
        self.n_head, self.dim = cfg.gpt_n_head, cfg.gpt_hidden_dim
        self.c_attn = nn.Linear(self.dim, 3 * self.dim)
        self.c_proj = nn.Linear(self.dim, self.dim)
        n = cfg.gpt_block_size  # saved in LeRobot's checkpoints, so kept (and loaded) under its name
        self.register_buffer("bias", torch.tril(torch.ones(n, n)).view(1, 1, n, n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, D), each token attending to itself and the tokens before it."""
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(self.dim, dim=2)
        q = q.view(b, t, self.n_head, d // self.n_head).transpose(1, 2)     # (B, nh, T, hs)
        k = k.view(b, t, self.n_head, d // self.n_head).transpose(1, 2)     # (B, nh, T, hs)
        v = v.view(b, t, self.n_head, d // self.n_head).transpose(1, 2)     # (B, nh, T, hs)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))     # (B, nh, T, T)
        att = F.softmax(att.masked_fill(self.bias[:, :, :t, :t] == 0, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)                      # (B, nh, T, hs) -> (B, T, D)
        return self.c_proj(y)


class Block(nn.Module):
    def __init__(self, cfg: VQBeTConfig):
        super().__init__()
        d = cfg.gpt_hidden_dim
        self.ln_1 = nn.LayerNorm(d)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """minGPT as LeRobot's VQ-BeT uses it: Linear token embedding + learned positions, pre-LN blocks."""

    def __init__(self, cfg: VQBeTConfig):
        super().__init__()
        self.transformer = nn.ModuleDict({
            "wte": nn.Linear(cfg.gpt_input_dim, cfg.gpt_hidden_dim),
            "wpe": nn.Embedding(cfg.gpt_block_size, cfg.gpt_hidden_dim),
            "h": nn.ModuleList(Block(cfg) for _ in range(cfg.gpt_n_layer)),
            "ln_f": nn.LayerNorm(cfg.gpt_hidden_dim),
        })
        self.lm_head = nn.Linear(cfg.gpt_hidden_dim, cfg.gpt_output_dim, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, gpt_input_dim) -> (B, T, gpt_output_dim)."""
        x = self.transformer.wte(tokens) + self.transformer.wpe.weight[: tokens.shape[1]]
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


class Codebook(nn.Module):
    """One residual-VQ layer's codebook, under LeRobot's `_codebook.embed` name: (1, K, E)."""

    def __init__(self, n_embed: int, dim: int):
        super().__init__()
        self.register_buffer("embed", torch.zeros(1, n_embed, dim))


class VectorQuantize(nn.Module):
    def __init__(self, n_embed: int, dim: int):
        super().__init__()
        self._codebook = Codebook(n_embed, dim)


class ResidualVQ(nn.Module):
    def __init__(self, cfg: VQBeTConfig):
        super().__init__()
        self.layers = nn.ModuleList(VectorQuantize(cfg.vqvae_n_embed, cfg.vqvae_embedding_dim)
                                    for _ in range(N_VQ_LAYERS))

    def embed(self, onehot: torch.Tensor) -> torch.Tensor:
        """One-hot codes (B, G, K) -> the sum of the chosen codebook vectors (B, E).

        A one-hot product picks each vector exactly (x * 1 + 0 * …), so this equals LeRobot's gather + sum,
        while the graph input stays float (any backend, any precision, random validation inputs)."""
        books = torch.cat([layer._codebook.embed for layer in self.layers], dim=0)   # (G, K, E)
        return torch.einsum("bgk,gke->be", onehot, books)


class VqVae(nn.Module):
    """The inference half of LeRobot's VqVae: codebooks and decoder (the action encoder trains the codes)."""

    def __init__(self, cfg: VQBeTConfig):
        super().__init__()
        self.vq_layer = ResidualVQ(cfg)
        h = cfg.vqvae_enc_hidden_dim
        self.decoder = mlp([cfg.vqvae_embedding_dim, h, h, cfg.action_dim * cfg.action_chunk_size])


class VQBeTHead(nn.Module):
    def __init__(self, cfg: VQBeTConfig):
        super().__init__()
        self.cfg = cfg
        g, k, d = N_VQ_LAYERS, cfg.vqvae_n_embed, cfg.gpt_output_dim
        self.vqvae_model = VqVae(cfg)
        if cfg.sequentially_select:
            self.map_to_cbet_preds_primary_bin = mlp([d, k])
            self.map_to_cbet_preds_secondary_bin = mlp([d + k, k])
        else:
            self.map_to_cbet_preds_bin = mlp([d, g * k])
        self.map_to_cbet_preds_offset = mlp([d, g * k * cfg.action_chunk_size * cfg.action_dim])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """x (B, D) -> offsets (B, G, K, W, A) and code logits: (B, G, K), or with sequential selection the
        primary (B, K) and the secondary logits for every possible primary code (B, K, K)."""
        cfg, b = self.cfg, x.shape[0]
        k, w, a = cfg.vqvae_n_embed, cfg.action_chunk_size, cfg.action_dim
        offsets = self.map_to_cbet_preds_offset(x).reshape(b, N_VQ_LAYERS, k, w, a)   # (B, G*K*W*A) -> (B,G,K,W,A)
        if not cfg.sequentially_select:
            logits = self.map_to_cbet_preds_bin(x).reshape(b, N_VQ_LAYERS, k)          # (B, G*K) -> (B, G, K)
            return logits, offsets
        primary = self.map_to_cbet_preds_primary_bin(x)
        # LeRobot feeds [x, one_hot(primary)] after drawing the primary code; evaluating that Linear for all K
        # possible primaries keeps the draw on the host and needs no second engine call
        eye = torch.eye(k, dtype=x.dtype).expand(b, k, k)                              # (B, K, K)
        secondary = self.map_to_cbet_preds_secondary_bin(torch.cat([x.unsqueeze(1).expand(b, k, x.shape[1]), eye],
                                                                   dim=-1))            # (B, K, K)
        return primary, secondary, offsets


class VQBeTModel(nn.Module):
    def __init__(self, cfg: VQBeTConfig):
        super().__init__()
        self.cfg = cfg
        self.rgb_encoder = RgbEncoder(cfg)
        self.action_token = nn.Parameter(torch.zeros(1, 1, cfg.gpt_input_dim))
        self.state_projector = mlp([cfg.state_dim, cfg.gpt_input_dim])
        self.rgb_feature_projector = mlp([self.rgb_encoder.feature_dim, cfg.gpt_input_dim])
        self.policy = GPT(cfg)
        self.action_head = VQBeTHead(cfg)

    def current_features(self, state: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """state (B, S, Ds), image (B, S, C, H, W) -> GPT features of the last step's action token (B, D).

        LeRobot appends n_action_pred_token - 1 future action tokens and runs the head on every action token,
        but its rollout reads only this one; attention is causal, so the tokens after it cannot change it and
        are left out of the graph."""
        b, s = state.shape[:2]
        img = self.rgb_encoder(image.flatten(0, 1)).reshape(b, s, -1)            # (B*S, F) -> (B, S, F)
        tokens = torch.stack([self.rgb_feature_projector(img), self.state_projector(state),
                              self.action_token.expand(b, s, -1)], dim=2)        # (B, S, 3, Din)
        tokens = tokens.reshape(b, s * TOKENS_PER_STEP, -1)                      # (B, S*3, Din), step-major
        return self.policy(tokens)[:, -1]                                        # the last action token


class VQBeTPolicyModule(nn.Module):
    """LeRobot's key layout (`vqbet.*`); the two graphs below share its parameters."""

    def __init__(self, cfg: VQBeTConfig):
        super().__init__()
        self.vqbet = VQBeTModel(cfg)


class PolicyGraph(nn.Module):
    def __init__(self, policy: VQBeTPolicyModule):
        super().__init__()
        self.policy = policy

    def forward(self, state: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """state (B, S, Ds), image (B, S, C, H, W) -> (code logits…, offsets (B, G, K, W, A)), normalized."""
        m = self.policy.vqbet
        return m.action_head(m.current_features(state, image))


class DecodeGraph(nn.Module):
    def __init__(self, policy: VQBeTPolicyModule):
        super().__init__()
        self.policy = policy

    def forward(self, codes_onehot: torch.Tensor) -> torch.Tensor:
        """codes_onehot (B, G, K) -> decoded actions (B, W, A), before the offsets are added."""
        vqvae = self.policy.vqbet.action_head.vqvae_model
        cfg = self.policy.vqbet.cfg
        out = vqvae.decoder(vqvae.vq_layer.embed(codes_onehot))                  # (B, W*A)
        return out.reshape(-1, cfg.action_chunk_size, cfg.action_dim)            # (B, W*A) -> (B, W, A)
