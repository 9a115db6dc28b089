"""TDMPC's TOLD model with LeRobot's keys (`model._encoder.*`, `model._dynamics`, `model._reward`,
`model._pi`, `model._Qs.<i>`, `model._V`), and the graph modules the planner calls.

Graphs (no randomness inside; noise is an input):
  encoder:    normalized observations -> z (B, D)
  pi:         z (B, D) -> tanh(pi(z)) (B, A)                                   (use_mpc=False)
  pi_rollout: z (M, D), noise (H, M, A) -> pi actions (H, M, A), M = n_pi_samples * B
  value:      z (M, D), actions (H, M, A), noise (M, A) -> G (M,), terminal Qs (Q, M),
              M = (n_gaussian + n_pi) * B: the whole trajectory value of one CEM iteration in one call
"""

from __future__ import annotations

import torch
from torch import nn

from ..common.activations import Mish
from .config import TDMPCConfig


def _mlp(sizes: list[int], acts: list[nn.Module | None], norms: list[bool]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, act, norm) in enumerate(zip(sizes[:-1], acts, norms)):
        layers.append(nn.Linear(a, sizes[i + 1]))
        if norm:
            layers.append(nn.LayerNorm(sizes[i + 1]))
        if act is not None:
            layers.append(act)
    return nn.Sequential(*layers)


class TDMPCObservationEncoder(nn.Module):
    """Image (first camera) / env_state / state, each -> (B, D) in (0, 1); z = their mean."""

    def __init__(self, cfg: TDMPCConfig):
        super().__init__()
        self.cfg = cfg
        D, h = cfg.latent_dim, cfg.image_encoder_hidden_dim
        if cfg.image_key:
            c = cfg.image_shape[0]
            convs: list[nn.Module] = []
            for i, k in enumerate((7, 5, 3, 3)):
                convs += [nn.Conv2d(c if i == 0 else h, h, k, stride=2), nn.ReLU()]
            self.image_enc_layers = nn.Sequential(*convs)
            with torch.no_grad():
                n = self.image_enc_layers(torch.zeros(1, *cfg.image_shape)).numel()
            self.image_enc_layers.extend([nn.Flatten(), nn.Linear(n, D), nn.LayerNorm(D), nn.Sigmoid()])
        hs = cfg.state_encoder_hidden_dim
        if cfg.state_dim:
            self.state_enc_layers = _mlp([cfg.state_dim, hs, D], [nn.ELU(), nn.Sigmoid()], [False, True])
        if cfg.env_state_dim:
            self.env_state_enc_layers = _mlp([cfg.env_state_dim, hs, D], [nn.ELU(), nn.Sigmoid()], [False, True])

    def forward(self, state, env, image) -> torch.Tensor:
        feats = []
        if self.cfg.image_key:
            feats.append(self.image_enc_layers(image))
        if self.cfg.env_state_dim:
            feats.append(self.env_state_enc_layers(env))
        if self.cfg.state_dim:
            feats.append(self.state_enc_layers(state))
        return torch.stack(feats, dim=0).mean(0)                             # (n_parts, B, D) -> (B, D)


class TOLD(nn.Module):
    """LeRobot's TDMPCTOLD networks."""

    def __init__(self, cfg: TDMPCConfig):
        super().__init__()
        D, A, M = cfg.latent_dim, cfg.action_dim, cfg.mlp_dim
        mish = [Mish(), Mish()]
        self._encoder = TDMPCObservationEncoder(cfg)
        self._dynamics = _mlp([D + A, M, M, D], [*mish, nn.Sigmoid()], [True, True, True])
        self._reward = _mlp([D + A, M, M, 1], [*mish, None], [True, True, False])
        self._pi = _mlp([D, M, M, A], [*mish, None], [True, True, False])
        self._Qs = nn.ModuleList([_mlp([D + A, M, M, 1], [nn.Tanh(), nn.ELU(), None], [True, False, False])
                                  for _ in range(cfg.q_ensemble_size)])
        self._V = _mlp([D, M, M, 1], [nn.Tanh(), nn.ELU(), None], [True, False, False])

    def Qs(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:  # noqa: N802
        x = torch.cat([z, a], dim=-1)
        return torch.stack([q(x).squeeze(-1) for q in self._Qs], dim=0)      # (Q, *)


class TDMPCModule(nn.Module):
    """Holds `model` (TOLD) so the state-dict keys are LeRobot's."""

    def __init__(self, cfg: TDMPCConfig):
        super().__init__()
        self.cfg = cfg
        self.model = TOLD(cfg)


class EncoderGraph(nn.Module):
    def __init__(self, m: TDMPCModule, input_names: list[str]):
        super().__init__()
        self.m, self.input_names = m, input_names

    def forward(self, *inputs):
        x = dict(zip(self.input_names, inputs))
        cfg = self.m.cfg
        return self.m.model._encoder(x.get("observation.state"), x.get("observation.environment_state"),
                                     x.get(cfg.image_key))


class PiGraph(nn.Module):
    def __init__(self, m: TDMPCModule):
        super().__init__()
        self.m = m

    def forward(self, z):
        return torch.tanh(self.m.model._pi(z))                               # (B, A)


class PiRolloutGraph(nn.Module):
    """pi with min_std noise rolled through the dynamics for H steps, as LeRobot's plan() does."""

    def __init__(self, m: TDMPCModule):
        super().__init__()
        self.m = m

    def forward(self, z, noise):
        told, std, out = self.m.model, self.m.cfg.min_std, []
        for t in range(noise.shape[0]):
            a = torch.tanh(told._pi(z)) + noise[t] * std                     # (M, A)
            out.append(a)
            z = told._dynamics(torch.cat([z, a], dim=-1))
        return torch.stack(out, dim=0)                                       # (H, M, A)


class ValueGraph(nn.Module):
    """LeRobot's estimate_value up to the terminal min: G (M,) and the terminal Qs (Q, M)."""

    def __init__(self, m: TDMPCModule):
        super().__init__()
        self.m = m

    def forward(self, z, actions, noise):
        told, cfg = self.m.model, self.m.cfg
        G, disc = torch.zeros_like(z[:, 0]), 1.0
        for t in range(actions.shape[0]):
            x = torch.cat([z, actions[t]], dim=-1)
            reg = -cfg.uncertainty_regularizer_coeff * told.Qs(z, actions[t]).std(0) \
                if cfg.uncertainty_regularizer_coeff > 0 else 0.0
            z, r = told._dynamics(x), told._reward(x).squeeze(-1)
            G = G + disc * (r + reg)
            disc *= cfg.discount
        next_a = torch.tanh(told._pi(z)) + noise * cfg.min_std                # (M, A)
        return G, told.Qs(z, next_a)                                          # (M,), (Q, M)
