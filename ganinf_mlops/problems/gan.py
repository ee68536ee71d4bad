"""The GAN problem: one training step as a pure function of its state and the instance weights.

    step(state, w_batch, (x_batch, z), t) -> (state', (d_loss, g_loss))

`state` = {"d": D params, "g": G params, "d_opt": D optimizer state, "g_opt": G optimizer state}.
`w_batch` weighs each real instance's term of the discriminator loss (1 during training, 0 for a
removed instance): removing instance j is w_j = 0, and d metric / d w_j is what the reverse pass
computes. The loss is normalised by the batch size, not by sum(w), so that a weight of 0 is exactly
"the instance was not in the minibatch" while the other terms keep their scale.

Non-saturating GAN loss (Goodfellow et al. 2014), with D returning logits:
    L_D = (1/B) sum_i w_i softplus(-D(x_i)) + (1/B) sum_i softplus(D(G(z_i)))
    L_G = (1/B) sum_i softplus(-D(G(z_i)))
With memorization rejection (Bai et al.; train.reject_threshold), L_G averages only over the
samples whose cosine distance to their nearest training instance (pixels, or an image run's
classifier features) is at least the threshold: the 0/1 mask is a function of G_t and z (so a
replay recomputes it) and a constant of the derivatives, and its rate is a third aux loss.
"simultaneous": both gradients at (D_t, G_t). "alternating": D first, then G's gradient at
(D_{t+1}, G_t). The same latent batch z serves both updates.

Targets (harmfulness = predicted improvement; directions in their `metrics.specs` registrations):
ALL, the Fréchet distance of Gaussian fits of generated and held-out points and the discriminator
loss on held-out data (the baseline of Terashita et al.).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value

from ganinf_mlops import keys, optim
from ganinf_mlops.config import TrainConfig, help_field
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.limits import check_max, check_widths
from ganinf_mlops.metrics.all import ALL_SPEC, average_log_likelihood
from ganinf_mlops.metrics.frechet import FD_SPEC, GaussianFit, frechet_distance
from ganinf_mlops.metrics.moments import moment_errors
from ganinf_mlops.metrics.specs import Metric, register
from ganinf_mlops.models import GAN_MODELS
from ganinf_mlops.models.blocks import ACTIVATIONS, NORMS
from ganinf_mlops.optim import OptimConfig
from ganinf_mlops.problems import PROBLEMS
from ganinf_mlops.problems.base import GENERATOR, Problem, Served, State, Target
from ganinf_mlops.problems.schedule import latent
from ganinf_mlops.registry import check_choice

UPDATES = ("simultaneous", "alternating")
EMBEDDINGS = ("pixels", "classifier")  # spaces of memorization rejection


@dataclass(frozen=True)
class ModelConfig:
    """The networks of a GAN: `arch` names a builder in `models.GAN_MODELS`; `g_hidden` and
    `d_hidden` are layer widths (mlp) or channel counts (convolutional architectures)."""

    arch: str = "mlp"
    latent_dim: int = 10
    g_hidden: tuple[int, ...] = (32, 32)
    d_hidden: tuple[int, ...] = (64, 64)
    bias: bool = False
    activation: str = "relu"
    norm: str = "none"  # "layer": per-instance layer norm in convolutional architectures

    def __post_init__(self) -> None:
        GAN_MODELS.check(self.arch)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("norm", self.norm, NORMS)
        if self.latent_dim < 1 or not all(w >= 1 for w in (*self.g_hidden, *self.d_hidden)):
            raise ConfigError("latent_dim and the hidden sizes must be >= 1")
        check_max("width", self.latent_dim, "latent_dim")
        check_widths("g_hidden", self.g_hidden)
        check_widths("d_hidden", self.d_hidden)


@dataclass(frozen=True)
class GanConfig(TrainConfig):
    """How a GAN trains (problem kinds "gan" and "image_gan"): its networks, one optimizer per
    network, the update order, memorization rejection and R1."""

    model: ModelConfig = field(default_factory=ModelConfig)
    d_optim: OptimConfig = field(default_factory=OptimConfig)
    g_optim: OptimConfig = field(default_factory=OptimConfig)
    update: str = help_field("simultaneous", "D/G update order.", choices=UPDATES)
    # Memorization rejection (Bai et al.): generated samples whose cosine distance to the nearest
    # training instance in `reject_embedding` space is below the threshold do not train the
    # generator. None: off.
    reject_threshold: float | None = None
    reject_embedding: str = "pixels"  # "pixels" or "classifier" (image runs' feature classifier)
    # R1 gradient penalty (Mescheder et al. 2018) on the discriminator's real instances: makes
    # GAN training locally convergent, so a removal's effect does not grow chaotically. 0: off.
    r1: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("update", self.update, UPDATES)
        check_choice("reject_embedding", self.reject_embedding, EMBEDDINGS)
        if self.reject_threshold is not None and not 0 <= self.reject_threshold <= 2:
            raise ConfigError(
                f"reject_threshold is a cosine distance in [0, 2], got {self.reject_threshold}"
            )
        if not (self.r1 >= 0 and math.isfinite(self.r1)):
            raise ConfigError(f"r1 must be >= 0, got {self.r1}")


DISC_LOSS_SPEC = register(
    Metric(
        keys.DISC_LOSS,
        higher_is_better=False,
        meaning="discriminator loss on held-out real and fixed fake samples",
        influence="influence on the discriminator loss",
    )
)


def build_networks(
    cfg: GanConfig, data_shape: tuple[int, ...], dtype: torch.dtype, device: torch.device | str
) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) for instances of `data_shape`, initialised from cfg.seed: what
    training starts from, and what a logged model loads its final parameters into."""
    return GAN_MODELS.get(cfg.model.arch)(cfg.model, data_shape, cfg.seed, dtype, device)


def params_of(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


Keep = Callable[[torch.Tensor], torch.Tensor]  # generated samples -> [B] 0/1, detached


def create_loss_functions(
    gen: nn.Module,
    disc: nn.Module,
    keep: Keep | None = None,
    r1: float = 0.0,
    x_all: torch.Tensor | None = None,
):
    """Pure D and G losses as functions of parameter dicts. With `keep` (memorization
    rejection), G's loss averages over the kept samples only. With `r1` > 0, D's loss adds the
    R1 penalty (r1/2) ||grad_x D(x_i)||^2 on each real instance, weighted by w_i like its term.

    With `x_all` (every training instance), D's loss takes weights `w_all` [N] of an extra real
    term for each of them, normalised like the batch's: at w_all = 0 the loss is the batch's,
    and d/dw_all[j] is the step's response to instance j as if it were in this minibatch (the
    reverse pass's order-averaged influence)."""

    def real_logits(dp, x):
        return functional_call(disc, dp, (x,)).squeeze(-1)

    def logit_sum(dp, x):  # the sum, and the logits as aux
        logits = real_logits(dp, x)
        return logits.sum(), logits

    input_grad = grad_and_value(logit_sum, argnums=1, has_aux=True)

    def real_terms(dp, w, x):  # (sum of weighted real-data terms, sum of weighted penalties)
        if r1:
            # D acts on each row alone, so the gradient of the sum is each instance's gradient.
            gx, (_, real) = input_grad(dp, x)
            penalty = (0.5 * r1) * (w * gx.pow(2).flatten(1).sum(1)).sum()
            return (w * F.softplus(-real)).sum(), penalty
        return (w * F.softplus(-real_logits(dp, x))).sum(), 0.0

    def d_loss(dp, gp, w, x, z, w_all=None):
        real, penalty = real_terms(dp, w, x)
        fake = functional_call(disc, dp, (functional_call(gen, gp, (z,)),)).squeeze(-1)
        loss = real / x.shape[0] + F.softplus(fake).mean() + penalty / x.shape[0]
        if w_all is None:
            return loss
        if x_all is None:
            raise ConfigError("w_all weighs every training instance: build the loss with x_all")
        extra_real, extra_penalty = real_terms(dp, w_all, x_all)
        return loss + (extra_real + extra_penalty) / x.shape[0]

    def g_loss(gp, dp, z):
        samples = functional_call(gen, gp, (z,))
        fake = functional_call(disc, dp, (samples,)).squeeze(-1)
        if keep is None:
            return F.softplus(-fake).mean(), torch.zeros((), dtype=fake.dtype)
        k = keep(samples)
        # The mask is a function of the state and z (replayable), held constant in derivatives.
        loss = (k * F.softplus(-fake)).sum() / k.sum().clamp(min=1)
        return loss, 1 - k.mean()

    return d_loss, g_loss


def create_step_function(
    gen: nn.Module,
    disc: nn.Module,
    cfg,
    keep: Keep | None = None,
    x_all: torch.Tensor | None = None,
):
    """The pure step `(state, w, (x, z), t[, w_all]) -> (state', (d_loss, g_loss[, reject_rate]))`
    (`w_all`: see `create_loss_functions`)."""
    d_loss, g_loss = create_loss_functions(gen, disc, keep, cfg.r1, x_all)
    d_grad, g_grad = grad_and_value(d_loss), grad_and_value(g_loss, has_aux=True)
    alternating = cfg.update == "alternating"

    def step(
        state: State,
        w: torch.Tensor,
        data: tuple[torch.Tensor, ...],
        t: int,
        w_all: torch.Tensor | None = None,
    ):
        x, z = data
        dp, gp = state["d"], state["g"]
        gd, ld = d_grad(dp, gp, w, x, z, w_all)
        dp_new, d_opt = optim.update(cfg.d_optim, dp, gd, state["d_opt"], t)
        gg, (lg, rejected) = g_grad(gp, dp_new if alternating else dp, z)
        gp_new, g_opt = optim.update(cfg.g_optim, gp, gg, state["g_opt"], t)
        new = {"d": dp_new, "g": gp_new, "d_opt": d_opt, "g_opt": g_opt}
        if keep is None:
            return new, (ld.detach(), lg.detach())
        return new, (ld.detach(), lg.detach(), rejected.detach())

    return step


@PROBLEMS.register("gan")
class GanProblem(Problem):
    """A GAN on vector data; the networks come from `models.GAN_MODELS[cfg.model.arch]`.
    Subclasses change what is measured (targets, evaluate), not how it trains."""

    config_class = GanConfig
    target_names = (keys.ALL, keys.FD, keys.DISC_LOSS)
    result_names = (keys.ALL, keys.FD, keys.DISC_LOSS, keys.GEN_MEAN_ERROR, keys.GEN_COV_ERROR)
    instance_ndim = 1  # dimensions of one instance: vectors here, [C, H, W] images in image_gan

    def __init__(self, cfg, metric, x, x_eval, schedule, y=None, y_eval=None) -> None:
        super().__init__(cfg, metric, x, x_eval, schedule, y, y_eval)
        if self.x.ndim - 1 != self.instance_ndim:
            kind = "vectors [N, d]" if self.instance_ndim == 1 else "images [N, C, H, W]"
            other = "image_gan" if self.instance_ndim == 1 else "gan"
            raise ConfigError(
                f"problem {cfg.problem!r} trains on {kind}; this data has shape "
                f"{tuple(self.x.shape)} (use train.problem {other!r})"
            )
        if self.instance_ndim == 1 and getattr(metric, "inception_weights", None) is not None:
            raise ConfigError(
                "metric.inception_weights: Inception FID is for images; this run is on vectors "
                "(set it to null)"
            )
        self.gen, self.disc = build_networks(cfg, tuple(self.x.shape[1:]), self.dtype, self.device)
        # Fixed latents of the evaluation metrics.
        self.z_eval = latent(
            metric.seed, metric.n_gen, cfg.model.latent_dim, self.dtype, self.device
        )

    def step_data(self, t: int, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        s = self.schedule
        z = latent(
            int(s.noise_seeds[t]), s.batch_size, self.cfg.model.latent_dim, self.dtype, self.device
        )
        return self.x[idx], z

    @cached_property
    def _step(self):
        # One step function for both: without w_all the every-instance term is not built.
        return create_step_function(self.gen, self.disc, self.cfg, self.rejection(), self.x)

    def step(self, state, w, data, t):
        return self._step(state, w, data, t)

    def step_with_all(self, state, w, w_all, data, t):
        return self._step(state, w, data, t, w_all)

    @property
    def loss_names(self) -> tuple[str, ...]:  # type: ignore[override]
        base = ("d_loss", "g_loss")
        return base if self.cfg.reject_threshold is None else (*base, "reject_rate")

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """Instances in the space of memorization rejection: flattened pixels or coordinates."""
        if self.cfg.reject_embedding != "pixels":
            raise ConfigError(
                f"reject_embedding {self.cfg.reject_embedding!r} needs an image_gan run's "
                "feature classifier; use 'pixels'"
            )
        return x.flatten(1)

    def rejection(self) -> Keep | None:
        """Memorization rejection (Bai et al.): keep a generated sample when its cosine distance
        to the nearest training instance is at least cfg.reject_threshold. The training set is
        the version's (a replay that drops instances still compares with all of them)."""
        threshold = self.cfg.reject_threshold
        if threshold is None:
            return None
        with torch.no_grad():
            bank = F.normalize(self.embedding(self.x), dim=1)

        def keep(samples: torch.Tensor) -> torch.Tensor:
            e = F.normalize(self.embedding(samples.detach()), dim=1)
            distance = 1 - (e @ bank.T).max(dim=1).values
            return (distance >= threshold).to(samples.dtype)

        return keep

    def initial_state(self) -> State:
        dp, gp = params_of(self.disc), params_of(self.gen)
        return {
            "d": dp,
            "g": gp,
            "d_opt": optim.init_state(self.cfg.d_optim, dp),
            "g_opt": optim.init_state(self.cfg.g_optim, gp),
        }

    def generate(self, state: State) -> torch.Tensor:
        return functional_call(self.gen, state["g"], (self.z_eval,))

    def targets(self) -> dict[str, Target]:
        gen, x_eval, z = self.gen, self.x_eval, self.z_eval
        bandwidth = self.metric.bandwidth
        ref = GaussianFit.of(x_eval)

        def all_value(state: State) -> torch.Tensor:
            generated = functional_call(gen, state["g"], (z,))
            return average_log_likelihood(x_eval, generated, bandwidth)

        def fd_value(state: State) -> torch.Tensor:
            return frechet_distance(functional_call(gen, state["g"], (z,)), ref)

        return {
            keys.ALL: Target(ALL_SPEC, all_value),
            keys.FD: Target(FD_SPEC, fd_value),
            keys.DISC_LOSS: self.disc_loss_target(),
        }

    def disc_loss_target(self) -> Target:
        """The discriminator's loss on held-out real instances and fixed generated ones: the
        baseline target of Terashita et al., for vectors and images alike."""
        gen, disc, x_eval, z = self.gen, self.disc, self.x_eval, self.z_eval

        def value(state: State) -> torch.Tensor:
            real = functional_call(disc, state["d"], (x_eval,)).squeeze(-1)
            fake = functional_call(disc, state["d"], (functional_call(gen, state["g"], (z,)),))
            return F.softplus(-real).mean() + F.softplus(fake.squeeze(-1)).mean()

        return Target(DISC_LOSS_SPEC, value)

    def fit_references(self) -> dict[str, float]:
        """fd and ALL between two halves of the training data: one half in the place of the
        generated samples, the other in that of the held-out data."""
        a, b = self.halves()
        if len(a) < 2:
            return {}
        with torch.no_grad():
            return {
                keys.FD: float(frechet_distance(a, GaussianFit.of(b))),
                keys.ALL: float(average_log_likelihood(b, a, self.metric.bandwidth)),
            }

    def evaluate(self, state: State) -> dict[str, float]:
        with torch.no_grad():
            out = {name: float(t.value(state)) for name, t in self.targets().items()}
            mean_err, cov_err = moment_errors(self.generate(state), self.x_eval)
        out[keys.GEN_MEAN_ERROR], out[keys.GEN_COV_ERROR] = mean_err, cov_err
        return out

    def samples(self, state: State) -> np.ndarray:
        with torch.no_grad():
            return self.generate(state).cpu().numpy()

    def served(self, state: State) -> Served:
        shape = [int(s) for s in self.x.shape[1:]]
        spec = {"data_shape": shape, "latent_dim": self.cfg.model.latent_dim}
        return Served(GENERATOR, self.gen, state["g"], spec)

    @classmethod
    def rebuild_served(cls, cfg, spec, params, device="cpu") -> Served:
        shape = tuple(int(s) for s in spec["data_shape"])
        gen, _ = build_networks(cfg, shape, getattr(torch, cfg.dtype), device)
        return Served(GENERATOR, gen, params, spec)
