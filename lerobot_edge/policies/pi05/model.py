"""Pi0.5 on the shared PaliGemma stack (common/paligemma): no state token (the state is in the prompt, discretized on the host), the time
enters the action expert through adaptive RMSNorm (`…input_layernorm.dense`, gated residuals) after
`time_mlp_in` / `time_mlp_out`; action tokens attend to each other bidirectionally.

Keys: model.paligemma_with_expert.*, model.{action_in_proj, action_out_proj, time_mlp_in, time_mlp_out}."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..common.paligemma.config import PiConfig
from ..common.paligemma.model import DenoiseGraph, PaliGemmaWithExpert


@dataclass
class PI05Config(PiConfig):
    tokenizer_max_length: int = 200


class PI05Core(nn.Module):
    """LeRobot's PI05Pytorch parameters."""

    def __init__(self, cfg: PiConfig):
        super().__init__()
        w = cfg.expert.width
        self.paligemma_with_expert = PaliGemmaWithExpert(cfg, expert_cond_dim=w)
        self.action_in_proj = nn.Linear(cfg.max_action_dim, w)
        self.action_out_proj = nn.Linear(w, cfg.max_action_dim)
        self.time_mlp_in = nn.Linear(w, w)
        self.time_mlp_out = nn.Linear(w, w)


class DenoiseGraph05(DenoiseGraph):
    """x_t (B, T, Amax), time_emb (B, W), k/v_cache (depth, B, Hkv, P, D), prefix_mask (B, P) -> v_t (B, T, Amax)."""

    def suffix(self, x_t, time_emb, state=None):
        c = self.core
        cond = F.silu(c.time_mlp_out(F.silu(c.time_mlp_in(time_emb))))               # (B, W) adaRMS condition
        blocks = torch.ones(x_t.shape[1], dtype=torch.int64)                          # one bidirectional block
        return c.action_in_proj(x_t), blocks, cond

    def forward(self, x_t, time_emb, k_cache, v_cache, prefix_mask):
        x, blocks, cond = self.suffix(x_t, time_emb)
        return self.velocity(x, blocks, cond, x_t.shape[1], k_cache, v_cache, prefix_mask)
