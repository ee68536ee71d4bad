"""The minibatch schedule and latent noise of a run: everything a replay needs besides the state.

Minibatches: each epoch is a permutation of the N instances drawn from a generator seeded with
(seed, epoch), cut into batches of B; an incomplete last batch is dropped so every step has the
same shape (what vmap and the LOO replays need). Latents: step t draws z ~ N(0, I) of shape
[B, latent_dim] from a CPU generator seeded with noise_seeds[t], so noise is the same on any device.
`mask[t, i]` is 1 when the i-th slot of step t holds a live instance and 0 when a counterfactual
replay dropped it (its removed instance); the slot's real-data term then has weight 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ganinf_mlops.errors import ConfigError, TrajectoryError


@dataclass(frozen=True)
class Schedule:
    indices: torch.Tensor  # int64 [T, B], positions into the dataset version's arrays
    noise_seeds: torch.Tensor  # int64 [T]
    mask: torch.Tensor  # float64 [T, B], 1 = live slot, 0 = dropped

    def __post_init__(self) -> None:
        t, b = self.indices.shape if self.indices.ndim == 2 else (-1, -1)
        if t < 1 or self.noise_seeds.shape != (t,) or self.mask.shape != (t, b):
            raise TrajectoryError(
                f"inconsistent schedule shapes: indices {tuple(self.indices.shape)}, "
                f"noise_seeds {tuple(self.noise_seeds.shape)}, mask {tuple(self.mask.shape)}"
            )

    @property
    def n_steps(self) -> int:
        return self.indices.shape[0]

    @property
    def batch_size(self) -> int:
        return self.indices.shape[1]


def make_schedule(
    n: int, batch_size: int, epochs: int, seed: int, steps: int | None = None
) -> Schedule:
    """`epochs` passes over the data, or exactly `steps` steps (as many epochs as they need):
    a fixed step budget lets a retraining on less data take as many optimizer steps."""
    if batch_size > n:
        raise ConfigError(f"batch size {batch_size} exceeds the number of instances {n}")
    per_epoch = n // batch_size
    if steps is not None:
        epochs = -(-steps // per_epoch)
    batches = []
    for epoch in range(epochs):
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        perm = torch.randperm(n, generator=g)[: per_epoch * batch_size]
        batches.append(perm.view(per_epoch, batch_size))
    indices = torch.cat(batches)[:steps]
    g = torch.Generator().manual_seed(seed * 1_000_003 + 999_983)
    seeds = torch.randint(0, 2**62, (indices.shape[0],), generator=g, dtype=torch.int64)
    return Schedule(indices, seeds, torch.ones(indices.shape, dtype=torch.float64))


def latent(
    seed: int, batch: int, dim: int, dtype: torch.dtype, device: torch.device | str
) -> torch.Tensor:
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(batch, dim, generator=g, dtype=dtype).to(device)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return n // batch_size
