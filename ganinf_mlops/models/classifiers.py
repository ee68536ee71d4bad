"""Classifier builders (problem kind "classifier"): `CLASSIFIER_MODELS[arch](cfg, data_shape,
n_classes, seed, dtype, device)` returns a network from instances to class logits.

logreg  flatten -> linear (multinomial logistic regression, the convex case of Hara et al.)
mlp     flatten -> `hidden` layers with `activation` -> linear
cnn     the feature CNN of `features.classifier` (conv 8@5x5, pool, conv 8@5x5, pool, dense 128
        sigmoid, dense): the reference's MNIST classifier, images [C, H, W] only

`cfg` is a `problems.classifier.ClassifierModelConfig` (`hidden`, `bias`, `activation`).
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
