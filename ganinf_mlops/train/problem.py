"""A training problem: models, pure step, data on the device and the schedule, ready to replay.

The trainer, the reverse pass and the leave-one-out replays all take their per-step inputs from
here, so the three see bit-identical minibatches and latents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ganinf_mlops.config import TrainConfig
from ganinf_mlops.models.mlp import build_gan
from ganinf_mlops.train.schedule import Schedule, latent
from ganinf_mlops.train.step import StepFn, create_step_function


def models_of(cfg: TrainConfig, data_dim: int) -> tuple[nn.Module, nn.Module]:
    """The (generator, discriminator) of a config, on its device and dtype."""
    m = cfg.model
    return build_gan(
        data_dim=data_dim,
        latent_dim=m.latent_dim,
        g_hidden=m.g_hidden,
        d_hidden=m.d_hidden,
        bias=m.bias,
        activation=m.activation,
        seed=cfg.seed,
        dtype=getattr(torch, cfg.dtype),
        device=torch.device(cfg.device),
    )


@dataclass
class Problem:
    cfg: TrainConfig
    gen: nn.Module
    disc: nn.Module
    step: StepFn
    x: torch.Tensor  # [N, d] on device
    schedule: Schedule
    device: torch.device

    @classmethod
    def create(cls, cfg: TrainConfig, x: np.ndarray, schedule: Schedule) -> Problem:
        device = torch.device(cfg.device)
        gen, disc = models_of(cfg, x.shape[1])
        data = torch.tensor(x, dtype=getattr(torch, cfg.dtype), device=device)
        return cls(cfg, gen, disc, create_step_function(gen, disc, cfg), data, schedule, device)

    @property
    def dtype(self) -> torch.dtype:
        return self.x.dtype

    def tensor(self, arr: np.ndarray) -> torch.Tensor:
        """A copy of `arr` in the problem's dtype and device (npz arrays are read-only)."""
        return torch.tensor(arr, dtype=self.dtype, device=self.device)

    def inputs(self, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(indices [B], x batch [B, d], slot mask [B], latents [B, latent_dim]) of step t."""
        s = self.schedule
        idx = s.indices[t].to(self.device)
        mask = s.mask[t].to(device=self.device, dtype=self.dtype)
        z = latent(
            int(s.noise_seeds[t]), s.batch_size, self.cfg.model.latent_dim, self.dtype, self.device
        )
        return idx, self.x[idx], mask, z
