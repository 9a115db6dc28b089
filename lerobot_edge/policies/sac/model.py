"""SAC actor as an export-friendly torch module whose state-dict keys equal LeRobot's `SACPolicy`
(`actor.encoder.*`, `actor.network.net.*`, `actor.mean_layer`, `actor.std_layer`, and
`discrete_critic.{net.net,output_layer}.*` when num_discrete_actions is set).

Graph: normalized observations -> mean (B, A), std (B, A) [, discrete_q (B, N)]. The tanh squash, the
sampling (mean + std * noise) and the argmax run on the host, so the noise is an explicit input.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import MLPConfig, SACConfig


def _activation(name: str | None) -> nn.Module:
    return nn.SiLU() if name is None else getattr(nn, name)()


class MLP(nn.Module):
    """LeRobot's SAC MLP: `net` = Sequential(Linear, [Dropout], LayerNorm, act, …)."""

    def __init__(self, input_dim: int, cfg: MLPConfig):
        super().__init__()
        layers: list[nn.Module] = []
        for i, out_dim in enumerate(cfg.hidden_dims):
            layers.append(nn.Linear(input_dim, out_dim))
            last = i == len(cfg.hidden_dims) - 1
            if not last or cfg.activate_final:
                if cfg.dropout_rate and cfg.dropout_rate > 0:
                    layers.append(nn.Dropout(cfg.dropout_rate))
                layers.append(nn.LayerNorm(out_dim))
                layers.append(_activation(cfg.final_activation if last and cfg.final_activation else None))
            input_dim = out_dim
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DefaultImageEncoder(nn.Module):
    """Four stride-2 convs (7, 5, 3, 3) with ReLU: (B, C, H, W) -> (B, hidden, h, w)."""

    def __init__(self, in_channels: int, hidden: int):
        super().__init__()
        k = (7, 5, 3, 3)
        layers: list[nn.Module] = []
        for i, ks in enumerate(k):
            layers += [nn.Conv2d(in_channels if i == 0 else hidden, hidden, ks, stride=2), nn.ReLU()]
        self.image_enc_layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.image_enc_layers(x)


class SpatialLearnedEmbeddings(nn.Module):
    """(B, C, H, W) -> (B, C*F): per-channel learned spatial pooling with F features."""

    def __init__(self, channel: int, height: int, width: int, num_features: int):
        super().__init__()
        self.kernel = nn.Parameter(torch.zeros(channel, height, width, num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = (x.unsqueeze(-1) * self.kernel.unsqueeze(0)).sum(dim=(2, 3))   # (B, C, F)
        return y.flatten(1)                                                 # (B, C*F)


def _latent_block(in_dim: int, latent: int, dropout: bool = False) -> nn.Sequential:
    mods = [nn.Dropout(0.1)] if dropout else []
    return nn.Sequential(*mods, nn.Linear(in_dim, latent), nn.LayerNorm(latent), nn.Tanh())


class SACObservationEncoder(nn.Module):
    """[cam features…, env_state, state] -> concatenated latents (B, n_parts * latent_dim)."""

    def __init__(self, cfg: SACConfig):
        super().__init__()
        self.image_names = [k.replace(".", "_") for k in cfg.image_keys]
        self.has_env, self.has_state = bool(cfg.env_state_dim), bool(cfg.state_dim)
        if self.image_names:
            c, h, w = cfg.image_shapes[0]
            self.image_encoder = DefaultImageEncoder(c, cfg.image_encoder_hidden_dim)
            with torch.no_grad():
                _, ch, hh, ww = self.image_encoder(torch.zeros(1, c, h, w)).shape
            f = cfg.image_embedding_pooling_dim
            self.spatial_embeddings = nn.ModuleDict(
                {n: SpatialLearnedEmbeddings(ch, hh, ww, f) for n in self.image_names})
            self.post_encoders = nn.ModuleDict(
                {n: _latent_block(ch * f, cfg.latent_dim, dropout=True) for n in self.image_names})
        if self.has_env:
            self.env_encoder = _latent_block(cfg.env_state_dim, cfg.latent_dim)
        if self.has_state:
            self.state_encoder = _latent_block(cfg.state_dim, cfg.latent_dim)

    def forward(self, state: torch.Tensor | None, env: torch.Tensor | None, images: list[torch.Tensor]):
        parts = []
        if self.image_names:
            # LeRobot batches the cameras through the shared conv encoder; per camera is the same math and
            # keeps the batch axis symbolic at export
            for n, img in zip(self.image_names, images):
                f = self.image_encoder(img)                                   # (B, ch, h, w)
                parts.append(self.post_encoders[n](self.spatial_embeddings[n](f)))
        if self.has_env:
            parts.append(self.env_encoder(env))
        if self.has_state:
            parts.append(self.state_encoder(state))
        return torch.cat(parts, dim=-1)


class Actor(nn.Module):
    """LeRobot's SAC `Policy`: encoder -> MLP -> mean, std = clamp(exp(log_std), std_min, std_max)."""

    def __init__(self, cfg: SACConfig, encoder: SACObservationEncoder):
        super().__init__()
        self.encoder = encoder
        n_parts = len(cfg.image_keys) + bool(cfg.env_state_dim) + bool(cfg.state_dim)
        self.network = MLP(n_parts * cfg.latent_dim, cfg.actor)
        self.mean_layer = nn.Linear(cfg.actor.hidden_dims[-1], cfg.action_dim)
        self.std_layer = nn.Linear(cfg.actor.hidden_dims[-1], cfg.action_dim)
        self.std_min, self.std_max = cfg.std_min, cfg.std_max

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.network(z)
        std = torch.clamp(torch.exp(self.std_layer(h)), self.std_min, self.std_max)
        return self.mean_layer(h), std


class DiscreteCritic(nn.Module):
    """Q-values of the discrete (gripper) action: encoder -> MLP -> (B, N)."""

    def __init__(self, cfg: SACConfig, in_dim: int):
        super().__init__()
        self.net = MLP(in_dim, cfg.discrete_critic)
        self.output_layer = nn.Linear(cfg.discrete_critic.hidden_dims[-1], cfg.num_discrete_actions)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.output_layer(self.net(z))


class SACActorModule(nn.Module):
    """forward(*inputs in `input_names` order) -> (mean, std[, discrete_q]), all normalized units.

    Shared encoder (LeRobot's default): the discrete critic reads the actor's encoder output. Otherwise the
    critic's own encoder is kept under `critic_ensemble.encoder.*`, the name LeRobot's save keeps for it.
    """

    def __init__(self, cfg: SACConfig):
        super().__init__()
        self.cfg = cfg
        self.actor = Actor(cfg, SACObservationEncoder(cfg))
        self.input_names = ([k for k in ("observation.state",) if cfg.state_dim]
                            + [k for k in ("observation.environment_state",) if cfg.env_state_dim]
                            + list(cfg.image_keys))
        if cfg.num_discrete_actions is not None:
            if not cfg.shared_encoder:
                self.critic_ensemble = nn.Module()
                self.critic_ensemble.encoder = SACObservationEncoder(cfg)
            self.discrete_critic = DiscreteCritic(cfg, self.actor.network.net[0].in_features)

    def forward(self, *inputs: torch.Tensor):
        x = dict(zip(self.input_names, inputs))
        state, env = x.get("observation.state"), x.get("observation.environment_state")
        images = [x[k] for k in self.cfg.image_keys]
        z = self.actor.encoder(state, env, images)                           # (B, n_parts*latent)
        mean, std = self.actor(z)
        if self.cfg.num_discrete_actions is None:
            return mean, std
        zc = z if self.cfg.shared_encoder else self.critic_ensemble.encoder(state, env, images)
        return mean, std, self.discrete_critic(zc)
