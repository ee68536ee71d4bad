"""Classifier builders (problem kind "classifier"): `CLASSIFIER_MODELS[arch](cfg, data_shape,
n_classes, seed, dtype, device)` returns a network from instances to class logits.

logreg  flatten -> linear (multinomial logistic regression, the convex case of Hara et al.)
mlp     flatten -> `hidden` layers with `activation` -> linear
cnn     the feature CNN of `features.classifier` (conv 8@5x5, pool, conv 8@5x5, pool, dense 128
        sigmoid, dense): the reference's MNIST classifier, images [C, H, W] only

`cfg` is a `problems.classifier.ClassifierModelConfig` (`hidden`, `bias`, `activation`). With its
`standardize`, the problem puts a `Standardize` layer in front of any of them, built from the
training set's `input_stats`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ganinf_mlops.errors import ConfigError
from ganinf_mlops.features.classifier import FeatureCNN
from ganinf_mlops.models import CLASSIFIER_MODELS
from ganinf_mlops.models.mlp import mlp


class Standardize(nn.Module):
    """x -> (x - mean) / std per feature: a fixed input layer, its statistics buffers (never
    trained), so that columns of very different scales start on one footing."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("std", std.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def input_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and (population) std of instances x [N, ...]; a constant feature gets
    std 1, so it is centred rather than divided by a rounding error."""
    mean = x.mean(0)
    std = x.std(0, correction=0)
    return mean, torch.where(std > 1e-8 * (1.0 + mean.abs()), std, torch.ones_like(std))


def _seeded(seed: int, build, dtype: torch.dtype, device: torch.device | str) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build()
    return net.to(dtype=dtype, device=device)


@CLASSIFIER_MODELS.register("logreg")
def logreg(cfg: Any, data_shape, n_classes: int, seed: int, dtype, device) -> nn.Module:
    d = math.prod(data_shape)
    return _seeded(
        seed, lambda: nn.Sequential(nn.Flatten(), nn.Linear(d, n_classes)), dtype, device
    )


@CLASSIFIER_MODELS.register("mlp")
def mlp_classifier(cfg: Any, data_shape, n_classes: int, seed: int, dtype, device) -> nn.Module:
    sizes = [math.prod(data_shape), *cfg.hidden, n_classes]

    def build() -> nn.Module:
        return nn.Sequential(
            nn.Flatten(), mlp(sizes, bias=cfg.bias, activation_name=cfg.activation)
        )

    return _seeded(seed, build, dtype, device)


@CLASSIFIER_MODELS.register("cnn")
def cnn(cfg: Any, data_shape, n_classes: int, seed: int, dtype, device) -> nn.Module:
    if len(data_shape) != 3:
        raise ConfigError(
            f"model arch 'cnn' takes images [N, C, H, W]; this data has instances of shape "
            f"{tuple(data_shape)} (vectors need arch 'logreg' or 'mlp')"
        )
    return _seeded(seed, lambda: FeatureCNN(tuple(data_shape), n_classes), dtype, device)
