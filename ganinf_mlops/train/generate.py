"""Samples of a run's final generator, from the fixed evaluation latents."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.func import functional_call

from ganinf_mlops.influence.targets import eval_latents
from ganinf_mlops.models.mlp import build_gan
from ganinf_mlops.train.trajectory import Trajectory


def final_samples(run: str | Path, data_dim: int) -> np.ndarray:
    traj = Trajectory(run)
    cfg, m = traj.train_config, traj.train_config.model
    dtype = getattr(torch, cfg.dtype)
    gen, _ = build_gan(
        data_dim=data_dim,
        latent_dim=m.latent_dim,
        g_hidden=m.g_hidden,
        d_hidden=m.d_hidden,
        bias=m.bias,
        activation=m.activation,
        seed=cfg.seed,
        dtype=dtype,
        device=cfg.device,
    )
    state = traj.load_state(traj.n_steps, cfg.device)
    z = eval_latents(traj.metric_config, m.latent_dim, dtype, cfg.device)
    with torch.no_grad():
        return functional_call(gen, state["g"], (z,)).cpu().numpy()
