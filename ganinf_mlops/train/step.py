"""One GAN training step as a pure function of its state and the minibatch instance weights.

    step(state, w_batch, x_batch, z, t) -> (state', (d_loss, g_loss))

`state` = {"d": D params, "g": G params, "d_opt": D optimizer state, "g_opt": G optimizer state}.
`w_batch` weighs each real instance's term of the discriminator loss (1 during training, 0 for a
removed instance): removing instance j is w_j = 0, and d metric / d w_j is what the reverse pass
computes. The loss is normalised by the batch size, not by sum(w), so that a weight of 0 is exactly
"the instance was not in the minibatch" while the other terms keep their scale.

Non-saturating GAN loss (Goodfellow et al. 2014), with D returning logits:
    L_D = (1/B) sum_i w_i softplus(-D(x_i)) + (1/B) sum_i softplus(D(G(z_i)))
    L_G = (1/B) sum_i softplus(-D(G(z_i)))
"simultaneous": both gradients at (D_t, G_t). "alternating": D first, then G's gradient at
(D_{t+1}, G_t). The same latent batch z serves both updates.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value

from ganinf_mlops.config import TrainConfig
from ganinf_mlops.train import optim

State = dict[str, dict]
StepFn = Callable[
    [State, torch.Tensor, torch.Tensor, torch.Tensor, int],
    tuple[State, tuple[torch.Tensor, torch.Tensor]],
]


def params_of(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def create_loss_functions(gen: nn.Module, disc: nn.Module):
    """Pure D and G losses as functions of parameter dicts."""

    def d_loss(dp, gp, w, x, z):
        real = functional_call(disc, dp, (x,)).squeeze(-1)
        fake = functional_call(disc, dp, (functional_call(gen, gp, (z,)),)).squeeze(-1)
        return (w * F.softplus(-real)).sum() / x.shape[0] + F.softplus(fake).mean()

    def g_loss(gp, dp, z):
        fake = functional_call(disc, dp, (functional_call(gen, gp, (z,)),)).squeeze(-1)
        return F.softplus(-fake).mean()

    return d_loss, g_loss


def create_step_function(gen: nn.Module, disc: nn.Module, cfg: TrainConfig) -> StepFn:
    d_loss, g_loss = create_loss_functions(gen, disc)
    d_grad, g_grad = grad_and_value(d_loss), grad_and_value(g_loss)
    alternating = cfg.update == "alternating"

    def step(state: State, w: torch.Tensor, x: torch.Tensor, z: torch.Tensor, t: int):
        dp, gp = state["d"], state["g"]
        gd, ld = d_grad(dp, gp, w, x, z)
        dp_new, d_opt = optim.update(cfg.d_optim, dp, gd, state["d_opt"], t)
        gg, lg = g_grad(gp, dp_new if alternating else dp, z)
        gp_new, g_opt = optim.update(cfg.g_optim, gp, gg, state["g_opt"], t)
        new = {"d": dp_new, "g": gp_new, "d_opt": d_opt, "g_opt": g_opt}
        return new, (ld.detach(), lg.detach())

    return step


def initial_state(gen: nn.Module, disc: nn.Module, cfg: TrainConfig) -> State:
    dp, gp = params_of(disc), params_of(gen)
    return {
        "d": dp,
        "g": gp,
        "d_opt": optim.init_state(cfg.d_optim, dp),
        "g_opt": optim.init_state(cfg.g_optim, gp),
    }
