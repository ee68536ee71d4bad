"""The convolutional GANs (models/conv.py): image shapes, parameter counts, the paper's layer
sizes, and the data they refuse."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganinf_mlops.errors import ConfigError
from ganinf_mlops.models import GAN_MODELS
from ganinf_mlops.problems.gan import ModelConfig

DCGAN = ModelConfig(
    arch="dcgan", latent_dim=8, g_hidden=(8, 4), d_hidden=(4, 8), bias=True,
    activation="leaky_relu", norm="layer",
)  # fmt: skip


# Three channel counts: the 32x32 colour DCGAN (4x4 -> 8x8 -> 16x16 -> 32x32).
DCGAN32 = ModelConfig(
    arch="dcgan", latent_dim=8, g_hidden=(8, 4, 2), d_hidden=(2, 4, 8), bias=True,
    activation="leaky_relu", norm="layer",
)  # fmt: skip


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_dcgan_shapes_range_and_parameter_counts():
    gen, disc = GAN_MODELS.get("dcgan")(DCGAN, (1, 8, 8), 0, torch.float32, "cpu")
    fake = gen(torch.randn(5, 8))
    assert fake.shape == (5, 1, 8, 8)
    assert fake.abs().max() <= 1.0  # tanh: pixels in [-1, 1]
    assert disc(fake).shape == (5, 1)
    # Generator: linear 8 -> 8*2*2 (+bias), layer norm over 8 maps (affine 2*8), 4x4 transposed
    # conv 8 -> 4 (+bias), layer norm 2*4, 4x4 transposed conv 4 -> 1 (+bias).
    assert n_params(gen) == (8 * 32 + 32) + 16 + (8 * 4 * 16 + 4) + 8 + (4 * 1 * 16 + 1)
    # Discriminator: 4x4 conv 1 -> 4, 4x4 conv 4 -> 8, layer norm 2*8, linear 8*2*2 -> 1.
    assert n_params(disc) == (16 * 4 + 4) + (4 * 8 * 16 + 8) + 16 + (32 + 1)


def test_dcgan_rgb_and_rectangular_images():
    gen, disc = GAN_MODELS.get("dcgan")(DCGAN, (3, 12, 8), 0, torch.float32, "cpu")
    assert gen(torch.randn(2, 8)).shape == (2, 3, 12, 8)
    assert disc(torch.zeros(2, 3, 12, 8)).shape == (2, 1)


def test_dcgan_with_three_channel_counts_doubles_three_times():
    """32x32 colour images: the generator starts at 4x4 and doubles three times, the
    discriminator halves three times (layer norm after each but its first convolution)."""
    gen, disc = GAN_MODELS.get("dcgan")(DCGAN32, (3, 32, 32), 0, torch.float32, "cpu")
    sizes: list[tuple[int, ...]] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape[1:])))
        for m in [*gen.modules(), *disc.modules()]
        if isinstance(m, nn.ConvTranspose2d | nn.Conv2d)
    ]
    fake = gen(torch.randn(5, 8))
    assert disc(fake).shape == (5, 1)
    for h in hooks:
        h.remove()
    assert sizes == [(4, 8, 8), (2, 16, 16), (3, 32, 32), (2, 16, 16), (4, 8, 8), (8, 4, 4)]
    assert fake.abs().max() <= 1.0
    # Generator: linear 8 -> 8*4*4, then per level a layer norm (2*C) and a transposed conv.
    g = (8 * 128 + 128) + 16 + (8 * 4 * 16 + 4) + 8 + (4 * 2 * 16 + 2) + 4 + (2 * 3 * 16 + 3)
    assert n_params(gen) == g
    # Discriminator: conv 3 -> 2 (no norm), conv 2 -> 4 + norm, conv 4 -> 8 + norm, linear.
    d = (3 * 2 * 16 + 2) + (2 * 4 * 16 + 4) + 8 + (4 * 8 * 16 + 8) + 16 + (8 * 16 + 1)
    assert n_params(disc) == d
    assert sum(isinstance(m, nn.GroupNorm) for m in disc.modules()) == 2


def test_layer_norm_is_per_instance():
    """An instance's discriminator output does not depend on the other instances of its batch
    (what lets a weight w_j act on instance j's loss term alone)."""
    _, disc = GAN_MODELS.get("dcgan")(DCGAN, (1, 8, 8), 0, torch.float64, "cpu")
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    alone = torch.cat([disc(x[i : i + 1]) for i in range(4)])
    assert torch.allclose(disc(x), alone, atol=1e-12)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in disc.modules())


@pytest.mark.parametrize(
    "shape, cfg, match",
    [
        ((2,), DCGAN, "takes images"),
        ((1, 10, 8), DCGAN, "divisible by 4"),
        ((1, 8, 8), ModelConfig(arch="dcgan", g_hidden=(8,), d_hidden=(4,)), "two or more"),
        ((1, 8, 8), ModelConfig(arch="dcgan", g_hidden=(8, 4, 2), d_hidden=(4, 8)), "same number"),
        ((3, 12, 32), DCGAN32, "divisible by 8"),
    ],
)
def test_dcgan_refuses(shape, cfg, match):
    with pytest.raises(ConfigError, match=match):
        GAN_MODELS.get("dcgan")(cfg, shape, 0, torch.float32, "cpu")


def test_paper_mnist_layer_sizes():
    """Seven (de)convolutions take 1 -> 4 -> 9 -> 11 -> 12 -> 25 -> 27 -> 28 (and back)."""
    cfg = ModelConfig(
        arch="paper-mnist", latent_dim=6, g_hidden=(4,), d_hidden=(4,), bias=True,
        activation="sigmoid", norm="layer",
    )  # fmt: skip
    gen, disc = GAN_MODELS.get("paper-mnist")(cfg, (1, 28, 28), 0, torch.float32, "cpu")
    sizes: list[int] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: sizes.append(out.shape[-1]))
        for m in gen.modules()
        if isinstance(m, nn.ConvTranspose2d)
    ]
    fake = gen(torch.randn(3, 6))
    for h in hooks:
        h.remove()
    assert sizes == [4, 9, 11, 12, 25, 27, 28]
    assert fake.shape == (3, 1, 28, 28) and fake.abs().max() <= 1.0
    assert disc(fake).shape == (3, 1)
    assert sum(isinstance(m, nn.Conv2d) for m in disc.modules()) == 7


def test_paper_mnist_is_for_28x28_only():
    cfg = ModelConfig(arch="paper-mnist", g_hidden=(4,), d_hidden=(4,))
    with pytest.raises(ConfigError, match="28x28"):
        GAN_MODELS.get("paper-mnist")(cfg, (1, 8, 8), 0, torch.float32, "cpu")


def test_seeded():
    build = GAN_MODELS.get("dcgan")
    a, b, c = (build(DCGAN, (1, 8, 8), s, torch.float32, "cpu")[0] for s in (1, 1, 2))
    flat = [torch.cat([p.flatten() for p in n.parameters()]) for n in (a, b, c)]
    assert torch.equal(flat[0], flat[1]) and not torch.allclose(flat[0], flat[2])
