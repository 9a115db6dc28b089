"""Pi0 on the shared PaliGemma stack (common/paligemma): its own projections, in LeRobot 0.6's PI0Policy keys

    model.{state_proj, action_in_proj, action_out_proj, action_time_mlp_in, action_time_mlp_out}

and its denoise step: the suffix is a state token followed by the action tokens (time fused by an MLP), causal
by block (state | actions).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..common.paligemma.config import PiConfig
from ..common.paligemma.model import DenoiseGraph, PaliGemmaWithExpert


class PI0Core(nn.Module):
    """LeRobot's PI0Pytorch parameters (pi0: state token + action-time MLP)."""

    def __init__(self, cfg: PiConfig):
        super().__init__()
        w = cfg.expert.width
        self.paligemma_with_expert = PaliGemmaWithExpert(cfg)
        self.state_proj = nn.Linear(cfg.max_state_dim, w)
        self.action_in_proj = nn.Linear(cfg.max_action_dim, w)
        self.action_out_proj = nn.Linear(w, cfg.max_action_dim)
        self.action_time_mlp_in = nn.Linear(2 * w, w)
        self.action_time_mlp_out = nn.Linear(w, w)


class PI0DenoiseGraph(DenoiseGraph):
    """x_t (B, T, Amax), time_emb (B, W), k/v_cache (depth, B, Hkv, P, D), prefix_mask (B, P), state (B, Smax)
    -> v_t (B, T, Amax)."""

    def suffix(self, x_t, time_emb, state):
        """-> suffix embeddings (B, 1+T, W), block ids (1+T,) for the causal-by-block mask, adaRMS cond (None)."""
        c = self.core
        act = c.action_in_proj(x_t)                                                   # (B, T, W)
        fused = torch.cat([act, time_emb[:, None, :].expand_as(act)], dim=2)         # (B, T, 2W)
        act = c.action_time_mlp_out(F.silu(c.action_time_mlp_in(fused)))
        x = torch.cat([c.state_proj(state)[:, None, :], act], dim=1)                 # (B, 1+T, W)
        blocks = torch.tensor([1] + [2] * x_t.shape[1])                               # state | actions
        return x, blocks, None

    def forward(self, x_t, time_emb, k_cache, v_cache, prefix_mask, state):
        x, blocks, cond = self.suffix(x_t, time_emb, state)
        return self.velocity(x, blocks, cond, x_t.shape[1], k_cache, v_cache, prefix_mask)
