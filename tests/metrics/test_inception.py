"""The Inception Score against a direct NumPy formula and its limits; gradients of IS and FID
w.r.t. the logits and w.r.t. the input images through a random FeatureCNN (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import functional_call

from ganinf_mlops.features.classifier import FeatureCNN
from ganinf_mlops.metrics.frechet import GaussianFit, frechet_distance
from ganinf_mlops.metrics.inception import inception_score


def _numpy_is(logits: np.ndarray) -> float:
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    py = p.mean(0)
    return float(np.exp((p * (np.log(p) - np.log(py))).sum(1).mean()))


def test_matches_numpy_formula() -> None:
    logits = torch.randn(50, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    value = inception_score(3 * logits)
    assert float(value) == pytest.approx(_numpy_is(3 * logits.numpy()), rel=1e-12)


def test_limits() -> None:
    same = torch.randn(1, 5, dtype=torch.float64).expand(20, 5)
    assert float(inception_score(same)) == pytest.approx(1.0, abs=1e-12)
    confident = 60.0 * torch.eye(5, dtype=torch.float64).repeat(4, 1)  # 4 samples per class
    assert float(inception_score(confident)) == pytest.approx(5.0, rel=1e-12)


def test_stable_for_extreme_logits() -> None:
    logits = torch.tensor([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0]], dtype=torch.float64)
    logits.requires_grad_()
    value = inception_score(logits)
    (grad,) = torch.autograd.grad(value, logits)
    assert value.item() == pytest.approx(2.0) and torch.isfinite(grad).all()


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="logits"):
        inception_score(torch.zeros(5))
    with pytest.raises(ValueError, match="logits"):
        inception_score(torch.zeros(5, 1))


def test_gradient_wrt_logits() -> None:
    g = torch.Generator().manual_seed(1)
    logits = (2 * torch.randn(9, 4, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(inception_score, (logits,))


def _cnn(seed: int) -> tuple[FeatureCNN, dict[str, torch.Tensor]]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FeatureCNN((1, 8, 8), 4).double()
    # Larger weights than the default init: features away from 0.5, a non-trivial IS.
    params = {k: 3 * v.detach() for k, v in model.named_parameters()}
    return model, params


def _images(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g, dtype=torch.float64) * 2 - 1


def test_is_gradient_wrt_images_through_cnn() -> None:
    model, params = _cnn(0)

    def score(x: torch.Tensor) -> torch.Tensor:
        return inception_score(functional_call(model, params, (x,)))

    x = _images(5, 1).requires_grad_()
    assert float(score(x.detach())) > 1.001
    assert torch.autograd.gradcheck(score, (x,))


def test_fid_gradient_wrt_images_through_cnn() -> None:
    """Central differences on random coordinates and along random directions (a full gradcheck
    of 20 x 64 pixels through a 128x128 eigendecomposition would take too long)."""
    model, params = _cnn(2)

    def feats(x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, params, (x,), {"layer": "features"})

    ref = GaussianFit.of(feats(_images(60, 3)))
    x = _images(20, 4)

    def fd(x: torch.Tensor) -> torch.Tensor:
        return frechet_distance(feats(x), ref)

    xg = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(fd(xg), xg)
    # Steps: one pixel moves no max-pool/ReLU kink at 1e-3; a direction moves all pixels, so a
    # smaller step. Below ~1e-5 round-off of the ~100 zero eigenvalues (1e-11 in FD) dominates.
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for flat in torch.randperm(x.numel(), generator=g)[:12].tolist():
            e = torch.zeros(x.numel(), dtype=x.dtype)
            e[flat] = 1e-3
            e = e.view_as(x)
            numeric = (fd(x + e) - fd(x - e)) / 2e-3
            assert float(numeric) == pytest.approx(float(grad.view(-1)[flat]), rel=1e-5, abs=5e-8)
        for _ in range(3):
            v = torch.randn(x.shape, generator=g, dtype=x.dtype)
            numeric = (fd(x + 1e-5 * v) - fd(x - 1e-5 * v)) / 2e-5
            assert float(numeric) == pytest.approx(float((grad * v).sum()), rel=1e-4)
