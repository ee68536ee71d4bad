"""Activations and normalisations by config name (models/blocks.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganinf_mlops.errors import ConfigError
from ganinf_mlops.models.blocks import ACTIVATIONS, NORMS, activation, norm2d


def test_activations_by_name():
    x = torch.tensor([-1.0, 0.0, 2.0])
    assert torch.equal(activation("relu")(x), torch.tensor([0.0, 0.0, 2.0]))
    assert torch.allclose(activation("leaky_relu")(x), torch.tensor([-0.2, 0.0, 2.0]))
    assert torch.allclose(activation("tanh")(x), torch.tanh(x))
    assert torch.allclose(activation("sigmoid")(x), torch.sigmoid(x))
    assert set(ACTIVATIONS) == {"relu", "leaky_relu", "tanh", "sigmoid"}
    # A fresh module each time (no state shared between layers).
    assert activation("relu") is not activation("relu")


def test_unknown_names_list_the_choices():
    with pytest.raises(ConfigError, match="unknown activation 'gelu'; choose from: relu"):
        activation("gelu")
    with pytest.raises(ConfigError, match="unknown norm 'batch'"):
        norm2d("batch", 4)


def test_norms():
    assert NORMS == ("none", "layer")
    assert norm2d("none", 4) == []
    (gn,) = norm2d("layer", 4)
    assert isinstance(gn, nn.GroupNorm) and gn.num_groups == 1 and gn.num_channels == 4
    out = gn(torch.randn(3, 4, 5, 5) * 7 + 2)
    # Each instance normalised over (C, H, W): mean 0, variance 1 (affine starts at identity).
    assert torch.allclose(out.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(out.var(dim=(1, 2, 3), unbiased=False), torch.ones(3), atol=1e-3)
