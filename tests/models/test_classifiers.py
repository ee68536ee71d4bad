"""The classifiers (models/classifiers.py): logits per class, parameter counts, seeding, and
the cnn's refusal of vectors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganinf_mlops.errors import ConfigError
from ganinf_mlops.models import CLASSIFIER_MODELS
from ganinf_mlops.problems.classifier import ClassifierModelConfig as ModelConfig


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_logreg_is_one_linear_map():
    net = CLASSIFIER_MODELS.get("logreg")(ModelConfig(arch="logreg"), (1, 8, 8), 10, 0,
                                          torch.float64, "cpu")  # fmt: skip
    assert n_params(net) == 64 * 10 + 10
    x = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    assert net(x).shape == (6, 10)
    # Linear: the logits of a sum are the sum of the logits, less one bias.
    lin = net[1]
    assert torch.allclose(net(x[:1] + x[1:2]), net(x[:1]) + net(x[1:2]) - lin.bias, atol=1e-12)


def test_mlp_classifier_reads_its_model_fields():
    cfg = ModelConfig(arch="mlp", hidden=(6,), bias=True, activation="tanh")
    net = CLASSIFIER_MODELS.get("mlp")(cfg, (2,), 3, 0, torch.float64, "cpu")
    assert n_params(net) == (2 * 6 + 6) + (6 * 3 + 3)
    assert net(torch.randn(4, 2, dtype=torch.float64)).shape == (4, 3)
    assert any(isinstance(m, nn.Tanh) for m in net.modules())


def test_cnn_on_images_and_not_on_vectors():
    build = CLASSIFIER_MODELS.get("cnn")
    net = build(ModelConfig(arch="cnn"), (1, 8, 8), 10, 0, torch.float32, "cpu")
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ConfigError, match="takes images"):
        build(ModelConfig(arch="cnn"), (2,), 3, 0, torch.float32, "cpu")


@pytest.mark.parametrize("arch", ["logreg", "mlp", "cnn"])
def test_seeded_from_the_seed_alone(arch):
    build = CLASSIFIER_MODELS.get(arch)
    cfg = ModelConfig(arch=arch)
    nets = [build(cfg, (1, 8, 8), 10, s, torch.float32, "cpu") for s in (3, 3, 4)]
    flat = [torch.cat([p.flatten() for p in n.parameters()]) for n in nets]
    assert torch.equal(flat[0], flat[1]) and not torch.allclose(flat[0], flat[2])
