"""Influence targets: differentiable evaluation metrics V(final state) of a GAN run.

Each target knows whether higher is better, which fixes the sign of harmfulness:
harmfulness = predicted improvement of V if the instance is removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ganinf_mlops.config import MetricConfig
from ganinf_mlops.metrics.all import average_log_likelihood
from ganinf_mlops.metrics.moments import moment_errors
from ganinf_mlops.train.schedule import latent
from ganinf_mlops.train.step import State

# Result keys: the same names in metrics.json, score tables, MLflow metrics and DVC metrics.
KEY_ALL = "all"
KEY_DISC_LOSS = "disc_loss"
KEY_MEAN_ERROR = "gen_mean_error"
KEY_COV_ERROR = "gen_cov_error"


@dataclass(frozen=True)
class Target:
    name: str
    higher_is_better: bool
    value: Callable[[State], torch.Tensor]

    def harmfulness(self, predicted_change: torch.Tensor) -> torch.Tensor:
        return predicted_change if self.higher_is_better else -predicted_change


def eval_latents(metric: MetricConfig, latent_dim: int, dtype: torch.dtype, device) -> torch.Tensor:
    return latent(metric.seed, metric.n_gen, latent_dim, dtype, device)


def create_targets(
    gen: nn.Module,
    disc: nn.Module,
    x_eval: torch.Tensor,
    metric: MetricConfig,
    latent_dim: int,
) -> dict[str, Target]:
    z = eval_latents(metric, latent_dim, x_eval.dtype, x_eval.device)

    def all_value(state: State) -> torch.Tensor:
        generated = functional_call(gen, state["g"], (z,))
        return average_log_likelihood(x_eval, generated, metric.bandwidth)

    def disc_loss_value(state: State) -> torch.Tensor:
        # The discriminator's loss on held-out real points and fixed generated ones (the
        # "influence on the discriminator loss" baseline of Terashita et al.); lower is better.
        real = functional_call(disc, state["d"], (x_eval,)).squeeze(-1)
        fake = functional_call(disc, state["d"], (functional_call(gen, state["g"], (z,)),))
        return F.softplus(-real).mean() + F.softplus(fake.squeeze(-1)).mean()

    return {
        KEY_ALL: Target(KEY_ALL, True, all_value),
        KEY_DISC_LOSS: Target(KEY_DISC_LOSS, False, disc_loss_value),
    }


TARGET_NAMES = (KEY_ALL, KEY_DISC_LOSS)


def evaluate(
    gen: nn.Module,
    disc: nn.Module,
    state: State,
    x_eval: torch.Tensor,
    metric: MetricConfig,
    latent_dim: int,
) -> dict[str, float]:
    """All final metrics of a state (no gradients)."""
    targets = create_targets(gen, disc, x_eval, metric, latent_dim)
    with torch.no_grad():
        out = {name: float(t.value(state)) for name, t in targets.items()}
        z = eval_latents(metric, latent_dim, x_eval.dtype, x_eval.device)
        generated = functional_call(gen, state["g"], (z,))
        out[KEY_MEAN_ERROR], out[KEY_COV_ERROR] = moment_errors(generated, x_eval)
    return out
