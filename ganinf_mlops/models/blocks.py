"""Activations and normalisations shared by the architectures, by config name.

Only per-instance normalisation is offered: batch norm mixes the instances of a minibatch (so a
weight w_j would act on every other instance's activations too) and keeps running statistics
outside the parameters, which a pure `torch.func` step would have to carry as state.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ganinf_mlops.registry import check_choice

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}
NORMS = ("none", "layer")


def activation(name: str) -> nn.Module:
    check_choice("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]()


def norm2d(name: str, channels: int) -> list[nn.Module]:
    """Layer norm over (C, H, W) of each instance, with a per-channel affine map; or nothing."""
    check_choice("norm", name, NORMS)
    return [nn.GroupNorm(1, channels)] if name == "layer" else []
