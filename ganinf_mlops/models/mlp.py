"""MLP generator and discriminator for low-dimensional data (the 2D setting of Terashita et al.)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganinf_mlops.models import GAN_MODELS
from ganinf_mlops.registry import check_choice

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "tanh": nn.Tanh}


def mlp(sizes: list[int], *, bias: bool, activation: str) -> nn.Sequential:
    """Linear layers of the given widths with `activation` between them (none after the last)."""
    check_choice("activation", activation, ACTIVATIONS)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


@GAN_MODELS.register("mlp")
def build_gan(
    cfg: Any, data_dim: int, seed: int, dtype: torch.dtype, device: torch.device | str
) -> tuple[nn.Module, nn.Module]:
    """Generator latent -> data and discriminator data -> logit, initialised from `seed` alone.

    `cfg` is a `config.ModelConfig` (latent_dim, g_hidden, d_hidden, bias, activation).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = mlp(
            [cfg.latent_dim, *cfg.g_hidden, data_dim], bias=cfg.bias, activation=cfg.activation
        )
        disc = mlp([data_dim, *cfg.d_hidden, 1], bias=cfg.bias, activation=cfg.activation)
    return gen.to(dtype=dtype, device=device), disc.to(dtype=dtype, device=device)
