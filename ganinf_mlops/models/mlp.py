"""MLP generator and discriminator for low-dimensional data (the 2D setting of Terashita et al.)."""

from __future__ import annotations

import torch
from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "tanh": nn.Tanh}


def mlp(sizes: list[int], *, bias: bool, activation: str) -> nn.Sequential:
    """Linear layers of the given widths with `activation` between them (none after the last)."""
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def build_gan(
    *,
    data_dim: int,
    latent_dim: int,
    g_hidden: tuple[int, ...],
    d_hidden: tuple[int, ...],
    bias: bool,
    activation: str,
    seed: int,
    dtype: torch.dtype,
    device: torch.device | str,
) -> tuple[nn.Module, nn.Module]:
    """Generator latent -> data and discriminator data -> logit, initialised from `seed` alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = mlp([latent_dim, *g_hidden, data_dim], bias=bias, activation=activation)
        disc = mlp([data_dim, *d_hidden, 1], bias=bias, activation=activation)
    return gen.to(dtype=dtype, device=device), disc.to(dtype=dtype, device=device)
