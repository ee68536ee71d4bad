"""Samples of a run's final generator, from the fixed evaluation latents."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.func import functional_call

from ganinf_mlops.influence.targets import eval_latents
from ganinf_mlops.train.problem import models_of
from ganinf_mlops.train.trajectory import Trajectory


def final_samples(run: str | Path, data_dim: int) -> np.ndarray:
    traj = Trajectory(run)
    cfg = traj.train_config
    gen, _ = models_of(cfg, data_dim)
    state = traj.load_state(traj.n_steps, cfg.device)
    z = eval_latents(
        traj.metric_config, cfg.model.latent_dim, getattr(torch, cfg.dtype), cfg.device
    )
    with torch.no_grad():
        return functional_call(gen, state["g"], (z,)).cpu().numpy()
