"""The MLP GAN (models/mlp.py): widths, parameter counts, seeding, and the shapes it refuses."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganinf_mlops.errors import ConfigError
from ganinf_mlops.models import GAN_MODELS
from ganinf_mlops.models.mlp import mlp
from ganinf_mlops.problems.gan import ModelConfig

build = GAN_MODELS.get("mlp")


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_widths_and_parameter_counts():
    cfg = ModelConfig(latent_dim=3, g_hidden=(5,), d_hidden=(6,))
    gen, disc = build(cfg, (2,), 0, torch.float64, "cpu")
    # No biases: generator 3*5 + 5*2, discriminator 2*6 + 6*1.
    assert n_params(gen) == 25 and n_params(disc) == 18
    gen_b, disc_b = build(
        ModelConfig(latent_dim=3, g_hidden=(5,), d_hidden=(6,), bias=True), (2,), 0,
        torch.float64, "cpu",
    )  # fmt: skip
    assert n_params(gen_b) == 25 + 5 + 2 and n_params(disc_b) == 18 + 6 + 1
    # The defaults (latent 10, 32-32 generator, 64-64 discriminator, no bias).
    gen_d, disc_d = build(ModelConfig(), (2,), 0, torch.float64, "cpu")
    assert n_params(gen_d) == 10 * 32 + 32 * 32 + 32 * 2
    assert n_params(disc_d) == 2 * 64 + 64 * 64 + 64 * 1


def test_output_shapes_and_dtype():
    cfg = ModelConfig(latent_dim=4, g_hidden=(8, 8), d_hidden=(8,))
    gen, disc = build(cfg, (3,), 0, torch.float64, "cpu")
    z = torch.randn(7, 4, dtype=torch.float64)
    assert gen(z).shape == (7, 3) and gen(z).dtype == torch.float64
    assert disc(gen(z)).shape == (7, 1)
    assert all(p.dtype == torch.float64 for p in (*gen.parameters(), *disc.parameters()))


def test_activation_between_layers_none_after_the_last():
    net = mlp([2, 4, 4, 1], bias=True, activation_name="tanh")
    kinds = [type(m) for m in net]
    assert kinds == [nn.Linear, nn.Tanh, nn.Linear, nn.Tanh, nn.Linear]
    # An unbounded last layer: a logit (discriminator) or a point (generator) can leave [-1, 1].
    with torch.no_grad():
        for layer in net[::2]:
            layer.weight.fill_(1.0)
            layer.bias.zero_()
    hidden = torch.tanh(4 * torch.tanh(torch.tensor(2.0)))  # each unit of the second layer
    assert net(torch.ones(1, 2)).item() == pytest.approx(4 * hidden.item()) and 4 * hidden > 1


def test_seeded_from_the_seed_alone():
    cfg = ModelConfig(latent_dim=3, g_hidden=(5,), d_hidden=(6,))
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = build(cfg, (2,), 4, torch.float64, "cpu")
    # Building does not consume the global generator (so training noise is independent of it).
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(999)
    b = build(cfg, (2,), 4, torch.float64, "cpu")
    c = build(cfg, (2,), 5, torch.float64, "cpu")
    for net_a, net_b, net_c in zip(a, b, c, strict=True):
        pa, pb, pc = (
            torch.cat([p.flatten() for p in n.parameters()]) for n in (net_a, net_b, net_c)
        )
        assert torch.equal(pa, pb)
        assert not torch.allclose(pa, pc)


def test_images_are_refused():
    with pytest.raises(ConfigError, match="takes vectors"):
        build(ModelConfig(), (1, 8, 8), 0, torch.float64, "cpu")


def test_unknown_architecture_lists_the_kinds_registry():
    """A GAN's model config names a GAN architecture (a classifier's, a classifier's)."""
    from ganinf_mlops.problems.classifier import ClassifierModelConfig

    with pytest.raises(ConfigError, match="unknown GAN architecture 'resnet'") as exc:
        ModelConfig(arch="resnet")
    assert all(name in str(exc.value) for name in ("mlp", "dcgan", "paper-mnist"))
    with pytest.raises(ConfigError, match="unknown GAN architecture 'logreg'"):
        ModelConfig(arch="logreg")
    with pytest.raises(ConfigError, match="unknown classifier architecture 'dcgan'") as exc:
        ClassifierModelConfig(arch="dcgan")
    assert all(name in str(exc.value) for name in ("logreg", "mlp", "cnn"))
    with pytest.raises(ConfigError, match="hidden sizes must be >= 1"):
        ModelConfig(g_hidden=(0,))
