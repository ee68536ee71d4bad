"""Pure optimizers reproduce torch.optim's updates."""

from __future__ import annotations

import pytest
import torch

from ganinf_mlops import optim
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.optim import OptimConfig


@pytest.mark.parametrize(
    "cfg,make",
    [
        (OptimConfig("sgd", lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
        (
            OptimConfig("momentum", lr=0.1, momentum=0.7),
            lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.7),
        ),
        (
            OptimConfig("adam", lr=0.01, beta1=0.5, beta2=0.9, eps=1e-8),
            lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.5, 0.9), eps=1e-8),
        ),
    ],
)
def test_matches_torch_optim(cfg, make):
    gen = torch.Generator().manual_seed(0)
    start = {
        "a": torch.randn(3, 4, generator=gen, dtype=torch.float64),
        "b": torch.randn(5, generator=gen, dtype=torch.float64),
    }
    grads = [
        {k: torch.randn(v.shape, generator=gen, dtype=torch.float64) for k, v in start.items()}
        for _ in range(6)
    ]
    grads[0]["b"][0] = 0.0  # a zero gradient must not break Adam's square root
    ref = {k: v.clone().requires_grad_() for k, v in start.items()}
    opt = make(list(ref.values()))
    params, state = dict(start), optim.init_state(cfg, start)
    for t, g in enumerate(grads):
        for k, p in ref.items():
            p.grad = g[k].clone()
        opt.step()
        params, state = optim.update(cfg, params, g, state, t)
        for k in params:
            torch.testing.assert_close(params[k], ref[k].detach(), rtol=1e-13, atol=1e-15)


def test_rejects_bad_config():
    with pytest.raises(ConfigError, match="unknown optimizer"):
        OptimConfig("rmsprop")
    with pytest.raises(ConfigError, match="learning rate"):
        OptimConfig("sgd", lr=0.0)
    with pytest.raises(ConfigError, match="beta1"):
        OptimConfig("adam", beta1=1.0)
