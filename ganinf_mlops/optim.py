"""Optimizers as pure state updates, so a training step is a differentiable function of its state.

Formulas follow torch.optim (SGD, SGD with momentum without dampening, Adam) so a trajectory
trained here matches one trained with torch.optim up to rounding. Optimizers are registered by
name in `OPTIMIZERS`; a new one is an `Optimizer(init, update)` entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ganinf_mlops.errors import ConfigError
from ganinf_mlops.registry import Registry

Params = dict[str, torch.Tensor]
OptState = dict[str, Params]


@dataclass(frozen=True)
class OptimConfig:
    name: str = field(default="sgd", metadata={"help": "Optimizer."})
    lr: float = field(default=1e-3, metadata={"help": "Learning rate."})
    momentum: float = 0.9
    beta1: float = 0.5
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0  # L2 penalty added to the gradient, as torch.optim's weight_decay

    def __post_init__(self) -> None:
        OPTIMIZERS.check(self.name)
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"learning rate must be positive, got {self.lr}")
        for name in ("momentum", "beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")


@dataclass(frozen=True)
class Optimizer:
    init: Callable[[OptimConfig, Params], OptState]
    # (cfg, params, grads, state, step counted from 0) -> (params, state)
    update: Callable[[OptimConfig, Params, Params, OptState, int], tuple[Params, OptState]]


OPTIMIZERS: Registry[Optimizer] = Registry("optimizer")


def _zeros(params: Params) -> Params:
    return {k: torch.zeros_like(p) for k, p in params.items()}


def _sqrt(v: torch.Tensor) -> torch.Tensor:
    # sqrt with derivative 0 (not inf) at v == 0, so a parameter whose gradient has always been
    # exactly zero (a dead ReLU unit) gives 0 rather than NaN in the reverse pass.
    pos = v > 0
    return torch.where(
        pos, torch.sqrt(torch.where(pos, v, torch.ones_like(v))), torch.zeros_like(v)
    )


def _sgd(cfg: OptimConfig, params: Params, grads: Params, state: OptState, step: int):
    return {k: p - cfg.lr * grads[k] for k, p in params.items()}, {}


def _momentum(cfg: OptimConfig, params: Params, grads: Params, state: OptState, step: int):
    buf = {k: cfg.momentum * state["buf"][k] + grads[k] for k in params}
    return {k: p - cfg.lr * buf[k] for k, p in params.items()}, {"buf": buf}


def _adam(cfg: OptimConfig, params: Params, grads: Params, state: OptState, step: int):
    b1, b2 = cfg.beta1, cfg.beta2
    m = {k: b1 * state["m"][k] + (1 - b1) * grads[k] for k in params}
    v = {k: b2 * state["v"][k] + (1 - b2) * grads[k] * grads[k] for k in params}
    bc1 = 1 - b1 ** (step + 1)
    bc2_sqrt = math.sqrt(1 - b2 ** (step + 1))
    new = {
        k: p - (cfg.lr / bc1) * m[k] / (_sqrt(v[k]) / bc2_sqrt + cfg.eps) for k, p in params.items()
    }
    return new, {"m": m, "v": v}


OPTIMIZERS.add("sgd", Optimizer(lambda cfg, p: {}, _sgd))
OPTIMIZERS.add("momentum", Optimizer(lambda cfg, p: {"buf": _zeros(p)}, _momentum))
OPTIMIZERS.add("adam", Optimizer(lambda cfg, p: {"m": _zeros(p), "v": _zeros(p)}, _adam))


def init_state(cfg: OptimConfig, params: Params) -> OptState:
    return OPTIMIZERS.get(cfg.name).init(cfg, params)


def update(
    cfg: OptimConfig, params: Params, grads: Params, state: OptState, step: int
) -> tuple[Params, OptState]:
    """One optimizer update; `step` counts from 0 (Adam's bias correction uses step + 1)."""
    if cfg.weight_decay:
        grads = {k: g + cfg.weight_decay * params[k] for k, g in grads.items()}
    return OPTIMIZERS.get(cfg.name).update(cfg, params, grads, state, step)
