"""MLP generator and discriminator for low-dimensional data (the 2D setting of Terashita et al.)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganinf_mlops.errors import ConfigError
from ganinf_mlops.models import GAN_MODELS
from ganinf_mlops.models.blocks import activation


def mlp(sizes: list[int], *, bias: bool, activation_name: str) -> nn.Sequential:
    """Linear layers of the given widths with the activation between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(sizes) - 2:
            layers.append(activation(activation_name))
    return nn.Sequential(*layers)


@GAN_MODELS.register("mlp")
def build_gan(
    cfg: Any, data_shape: tuple[int, ...], seed: int, dtype: torch.dtype, device: torch.device | str
) -> tuple[nn.Module, nn.Module]:
    """Generator latent -> data and discriminator data -> logit, initialised from `seed` alone.

    `cfg` is a `config.ModelConfig` (latent_dim, g_hidden, d_hidden, bias, activation).
    """
    if len(data_shape) != 1:
        raise ConfigError(
            f"model arch 'mlp' takes vectors [N, d]; this data has instances of shape "
            f"{tuple(data_shape)} (images need arch 'dcgan' or 'paper-mnist')"
        )
    (data_dim,) = data_shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = mlp(
            [cfg.latent_dim, *cfg.g_hidden, data_dim], bias=cfg.bias, activation_name=cfg.activation
        )
        disc = mlp([data_dim, *cfg.d_hidden, 1], bias=cfg.bias, activation_name=cfg.activation)
    return gen.to(dtype=dtype, device=device), disc.to(dtype=dtype, device=device)
