"""The Fréchet distance: against scipy's matrix square root, and its gradient against finite
differences (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from ganinf_mlops.metrics.frechet import GaussianFit, frechet_distance, symmetric_sqrt


def _reference(a: np.ndarray, b: np.ndarray) -> float:
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.atleast_2d(np.cov(a.T)), np.atleast_2d(np.cov(b.T))
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real))


@pytest.mark.parametrize("d", [1, 2, 5])
def test_matches_scipy_sqrtm(d: int) -> None:
    g = torch.Generator().manual_seed(d)
    x = torch.randn(40, d, generator=g, dtype=torch.float64) @ torch.randn(
        d, d, generator=g, dtype=torch.float64
    )
    r = torch.randn(70, d, generator=g, dtype=torch.float64) + 0.5
    fd = frechet_distance(x, GaussianFit.of(r))
    assert float(fd) == pytest.approx(_reference(x.numpy(), r.numpy()), rel=1e-10, abs=1e-12)


def test_zero_for_the_same_sample_and_symmetric_sqrt() -> None:
    r = torch.randn(100, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert float(frechet_distance(r, GaussianFit.of(r))) == pytest.approx(0.0, abs=1e-10)
    a = torch.cov(r.T)
    s = symmetric_sqrt(a)
    assert torch.allclose(s @ s, a, atol=1e-12)


def test_gradient_matches_finite_differences() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(12, 2, generator=g, dtype=torch.float64) * torch.tensor([1.0, 0.3])
    ref = GaussianFit.of(torch.randn(30, 2, generator=g, dtype=torch.float64) + 1.0)
    x.requires_grad_()
    (grad,) = torch.autograd.grad(frechet_distance(x, ref), x)
    h = 1e-6
    fd_grad = torch.zeros_like(x)
    with torch.no_grad():
        for i in range(x.shape[0]):
            for j in range(x.shape[1]):
                e = torch.zeros_like(x)
                e[i, j] = h
                fd_grad[i, j] = (frechet_distance(x + e, ref) - frechet_distance(x - e, ref)) / (
                    2 * h
                )
    assert torch.allclose(grad, fd_grad, rtol=1e-6, atol=1e-8)


def test_gradient_finite_for_a_collapsed_sample() -> None:
    """All generated points on a line: a rank-deficient covariance, eigenvalue 0."""
    t = torch.linspace(-1, 1, 20, dtype=torch.float64)
    x = torch.stack([t, 2 * t], 1).requires_grad_()
    ref = GaussianFit.of(torch.randn(50, 2, dtype=torch.float64))
    (grad,) = torch.autograd.grad(frechet_distance(x, ref), x)
    assert torch.isfinite(grad).all()


def test_shape_errors() -> None:
    ref = GaussianFit.of(torch.randn(10, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="features"):
        frechet_distance(torch.randn(10, 3, dtype=torch.float64), ref)
    with pytest.raises(ValueError, match="samples"):
        frechet_distance(torch.randn(1, 2, dtype=torch.float64), ref)
