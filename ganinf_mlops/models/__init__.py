"""Network builders by architecture name: `GAN_MODELS[arch](cfg, data_shape, seed, dtype, device)`
returns a (generator, discriminator) pair for instances of shape `data_shape` ((d,) for vectors,
(C, H, W) for images); `CLASSIFIER_MODELS[arch](cfg, data_shape, n_classes, seed, dtype, device)`
a network to class logits. A new architecture is one registered builder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ganinf_mlops.registry import Registry

GanBuilder = Callable[
    [Any, tuple[int, ...], int, torch.dtype, torch.device], tuple[nn.Module, nn.Module]
]
GAN_MODELS: Registry[GanBuilder] = Registry("GAN architecture")
ClassifierBuilder = Callable[[Any, tuple[int, ...], int, int, torch.dtype, torch.device], nn.Module]
CLASSIFIER_MODELS: Registry[ClassifierBuilder] = Registry("classifier architecture")


from ganinf_mlops.models import classifiers as _classifiers  # noqa: E402, F401  ("logreg", "mlp", "cnn")
from ganinf_mlops.models import conv as _conv  # noqa: E402, F401  (registers "dcgan", "paper-mnist")
from ganinf_mlops.models import mlp as _mlp  # noqa: E402, F401  (registers "mlp")
