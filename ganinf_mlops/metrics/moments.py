"""Moment errors of generated samples against real data: they expose a collapsing generator."""

from __future__ import annotations

import torch

from ganinf_mlops import keys
from ganinf_mlops.metrics.specs import Metric, register

register(Metric(keys.GEN_MEAN_ERROR, False, "distance of generated from held-out mean"))
register(Metric(keys.GEN_COV_ERROR, False, "distance of generated from held-out covariance"))


def moment_errors(generated: torch.Tensor, real: torch.Tensor) -> tuple[float, float]:
    """(||mean_g - mean_r||_2, ||cov_g - cov_r||_F)."""
    mean_err = torch.linalg.vector_norm(generated.mean(0) - real.mean(0))
    cov_err = torch.linalg.matrix_norm(torch.cov(generated.T) - torch.cov(real.T))
    return float(mean_err), float(cov_err)
