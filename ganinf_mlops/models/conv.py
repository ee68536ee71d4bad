"""Convolutional GANs for images [C, H, W] with pixels in [-1, 1] (generator output: tanh).

"dcgan": a small DCGAN (Radford et al. 2016). With k = len(g_hidden) channel counts (k >= 2) the
generator maps the latent to `g_hidden[0]` maps of H/2^k x W/2^k and doubles the resolution k
times with 4x4 transposed convolutions (channels g_hidden[0] -> ... -> g_hidden[-1] -> C); the
discriminator mirrors it with k strided convolutions (C -> d_hidden[0] -> ... -> d_hidden[-1],
layer norm after all but the first) and a linear logit. H and W must be multiples of 2^k. Two
counts (8x8 digits, 28x28 MNIST: 2x2 / 7x7 maps) are the CPU size; three are the DCGAN of
32x32 colour images (CIFAR-10: 4x4 -> 8x8 -> 16x16 -> 32x32).

"paper-mnist": the MNIST GAN of Terashita et al.'s reference implementation, for 28 x 28: seven
(de)convolutions with kernels [4, 3, 3, 2, 3, 3, 2] and strides [1, 2, 1, 1, 2, 1, 1]
(1 -> 4 -> 9 -> 11 -> 12 -> 25 -> 27 -> 28), `g_hidden[0]` channels, layer norm and the configured
activation (sigmoid in the paper) between them; the discriminator runs the same layers backwards.

Normalisation is per instance (see blocks.py): a removed instance's weight then acts on its own
loss term only, and the step stays a pure function of the parameters.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganinf_mlops.errors import ConfigError
from ganinf_mlops.models import GAN_MODELS
from ganinf_mlops.models.blocks import activation, norm2d

PAPER_KERNELS = (4, 3, 3, 2, 3, 3, 2)
PAPER_STRIDES = (1, 2, 1, 1, 2, 1, 1)


def _image_shape(arch: str, data_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(data_shape) != 3:
        raise ConfigError(
            f"model arch {arch!r} takes images [N, C, H, W]; this data has instances of shape "
            f"{tuple(data_shape)} (vectors need arch 'mlp')"
        )
    c, h, w = (int(s) for s in data_shape)
    return c, h, w


def _widths(arch: str, g_hidden: tuple[int, ...], d_hidden: tuple[int, ...]) -> int:
    """The number of resolution doublings: one per channel count, the same for both networks."""
    if len(g_hidden) < 2 or len(d_hidden) != len(g_hidden):
        raise ConfigError(
            f"model arch {arch!r} needs g_hidden and d_hidden of the same number (two or more) "
            f"of channel counts, one per doubling of the resolution; got {g_hidden}, {d_hidden}"
        )
    return len(g_hidden)


class Unflatten(nn.Module):
    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


def dcgan(cfg: Any, data_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    c, h, w = _image_shape("dcgan", data_shape)
    k = _widths("dcgan", tuple(cfg.g_hidden), tuple(cfg.d_hidden))
    scale = 2**k
    if h % scale or w % scale:
        raise ConfigError(
            f"model arch 'dcgan' with {k} channel counts needs H and W divisible by {scale}, "
            f"got {h}x{w}"
        )
    gh, dh = tuple(cfg.g_hidden), tuple(cfg.d_hidden)
    b, act, norm = cfg.bias, cfg.activation, cfg.norm
    # Modules are built in the same order as the two-level network always was, so a seed gives
    # the same initial weights as before the depth became a parameter.
    g_layers: list[nn.Module] = [
        nn.Linear(cfg.latent_dim, gh[0] * (h // scale) * (w // scale), bias=b),
        Unflatten((gh[0], h // scale, w // scale)),
    ]
    for cin, cout in zip(gh, gh[1:], strict=False):
        g_layers += [*norm2d(norm, cin), activation(act)]
        g_layers.append(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=b))
    g_layers += [*norm2d(norm, gh[-1]), activation(act)]
    g_layers += [nn.ConvTranspose2d(gh[-1], c, 4, stride=2, padding=1, bias=b), nn.Tanh()]
    d_layers: list[nn.Module] = [nn.Conv2d(c, dh[0], 4, stride=2, padding=1, bias=b)]
    d_layers.append(activation(act))
    for cin, cout in zip(dh, dh[1:], strict=False):
        d_layers.append(nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=b))
        d_layers += [*norm2d(norm, cout), activation(act)]
    d_layers += [nn.Flatten(), nn.Linear(dh[-1] * (h // scale) * (w // scale), 1, bias=b)]
    return nn.Sequential(*g_layers), nn.Sequential(*d_layers)


def paper_mnist(cfg: Any, data_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    c, h, w = _image_shape("paper-mnist", data_shape)
    if (h, w) != (28, 28):
        raise ConfigError(f"model arch 'paper-mnist' is for 28x28 images, got {h}x{w}")
    ch, b, act, norm = cfg.g_hidden[0], cfg.bias, cfg.activation, cfg.norm
    n = len(PAPER_KERNELS)
    g_layers: list[nn.Module] = [Unflatten((cfg.latent_dim, 1, 1))]
    for i, (k, s) in enumerate(zip(PAPER_KERNELS, PAPER_STRIDES, strict=True)):
        last = i == n - 1
        g_layers.append(
            nn.ConvTranspose2d(cfg.latent_dim if i == 0 else ch, c if last else ch, k, s, bias=b)
        )
        g_layers += [nn.Tanh()] if last else [*norm2d(norm, ch), activation(act)]
    d_layers: list[nn.Module] = []
    for i, (k, s) in enumerate(zip(PAPER_KERNELS[::-1], PAPER_STRIDES[::-1], strict=True)):
        last = i == n - 1
        d_layers.append(nn.Conv2d(c if i == 0 else ch, 1 if last else ch, k, s, bias=b))
        d_layers += [nn.Flatten()] if last else [*norm2d(norm, ch), activation(act)]
    return nn.Sequential(*g_layers), nn.Sequential(*d_layers)


def _seeded(build):
    def builder(
        cfg: Any,
        data_shape: tuple[int, ...],
        seed: int,
        dtype: torch.dtype,
        device: torch.device | str,
    ) -> tuple[nn.Module, nn.Module]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            gen, disc = build(cfg, tuple(data_shape))
        return gen.to(dtype=dtype, device=device), disc.to(dtype=dtype, device=device)

    builder.__doc__ = build.__doc__
    return builder


GAN_MODELS.add("dcgan", _seeded(dcgan))
GAN_MODELS.add("paper-mnist", _seeded(paper_mnist))
