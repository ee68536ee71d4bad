"""ALL (average log-likelihood under a Gaussian KDE) and moment errors against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from ganinf_mlops.metrics.all import average_log_likelihood
from ganinf_mlops.metrics.moments import moment_errors


def _t(a: np.ndarray | list[list[float]]) -> torch.Tensor:
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64)


def test_single_generated_point_is_one_gaussian():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 3))
    g = np.array([[0.3, -1.2, 0.5]])
    h = 0.7
    expected = np.mean(multivariate_normal(mean=g[0], cov=h**2 * np.eye(3)).logpdf(x))
    got = average_log_likelihood(_t(x), _t(g), h)
    assert got.dtype == torch.float64 and got.shape == ()
    assert float(got) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_single_point_at_origin_by_hand():
    # log N(x; 0, h^2 I) = -|x|^2 / (2 h^2) - (d/2) log(2 pi h^2)
    x = [[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]]
    h = 2.0
    by_hand = [-sq / (2 * h**2) - math.log(2 * math.pi * h**2) for sq in (1.0, 4.0, 25.0)]
    got = average_log_likelihood(_t(x), _t([[0.0, 0.0]]), h)
    assert float(got) == pytest.approx(sum(by_hand) / 3, rel=1e-14)


def test_matches_brute_force_mixture():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 2))
    gen = rng.normal(size=(5, 2)) * 1.5
    h = 0.8
    total = 0.0
    for xm in x:
        dens = 0.0
        for gk in gen:
            sq = float(np.sum((xm - gk) ** 2))
            dens += math.exp(-sq / (2 * h**2)) / (2 * math.pi * h**2)  # d = 2
        total += math.log(dens / len(gen))
    got = average_log_likelihood(_t(x), _t(gen), h)
    assert float(got) == pytest.approx(total / len(x), rel=1e-12)


def test_order_of_generated_points_does_not_matter_but_duplicates_do():
    rng = np.random.default_rng(2)
    x, gen = _t(rng.normal(size=(4, 2))), _t(rng.normal(size=(3, 2)))
    a = average_log_likelihood(x, gen, 1.0)
    assert torch.allclose(a, average_log_likelihood(x, gen.flip(0), 1.0), rtol=0, atol=1e-14)
    # Duplicating one point changes the mixture weights (a 1/K normalisation, not 1/#distinct).
    doubled = torch.cat([gen, gen[:1]])
    assert not torch.allclose(a, average_log_likelihood(x, doubled, 1.0))


def test_far_points_do_not_underflow():
    # exp(-50^2 / (2 * 0.1^2)) underflows to 0; the log-sum-exp form stays exact.
    x = _t([[50.0, 0.0]])
    h = 0.1
    expected = -(50.0**2) / (2 * h**2) - math.log(2 * math.pi * h**2)
    got = average_log_likelihood(x, _t([[0.0, 0.0]]), h)
    assert math.isfinite(float(got))
    assert float(got) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize(
    ("x_shape", "g_shape"),
    [((5,), (3, 2)), ((5, 2), (3,)), ((5, 2), (3, 3)), ((5, 2, 1), (3, 2)), ((5, 2), (1, 3, 2))],
)
def test_shape_errors(x_shape, g_shape):
    with pytest.raises(ValueError, match="expected"):
        average_log_likelihood(torch.zeros(x_shape), torch.zeros(g_shape), 1.0)


def test_gradient_is_finite_and_exact_at_zero_distance():
    x = _t([[0.5, -1.0], [2.0, 1.0], [-1.0, 0.0]])
    h = 0.9
    g = x[:1].clone().requires_grad_(True)  # zero distance to x[0]
    value = average_log_likelihood(x, g, h)
    (grad,) = torch.autograd.grad(value, g)
    assert torch.isfinite(grad).all()
    # One kernel: d/dg mean_m log N(x_m; g, h^2 I) = mean_m (x_m - g) / h^2.
    expected = (x - x[:1]).mean(0, keepdim=True) / h**2
    assert torch.allclose(grad, expected, rtol=1e-12, atol=1e-14)


def test_gradient_matches_finite_differences_with_coincident_points():
    rng = np.random.default_rng(3)
    x = _t(rng.normal(size=(4, 2)))
    g = torch.cat([x[:2], _t(rng.normal(size=(2, 2)))]).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda gg: average_log_likelihood(x, gg, 0.6), (g,))


# ---- moment errors ---------------------------------------------------------------------------


def test_moment_errors_known_means_and_covariances():
    # Unbiased covariance of these 4 points: diag(2/3, 2/3), mean 0.
    real = _t([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    generated = 2 * real + _t([[3.0, 4.0]])  # mean (3, 4), covariance diag(8/3, 8/3)
    mean_err, cov_err = moment_errors(generated, real)
    assert isinstance(mean_err, float) and isinstance(cov_err, float)
    assert mean_err == pytest.approx(5.0, rel=1e-14)
    assert cov_err == pytest.approx(2 * math.sqrt(2), rel=1e-14)  # ||diag(2, 2)||_F


def test_moment_errors_of_a_shift_and_against_numpy():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(50, 3))
    shifted = real + np.array([1.0, -2.0, 2.0])
    mean_err, cov_err = moment_errors(_t(shifted), _t(real))
    assert mean_err == pytest.approx(3.0, rel=1e-12)
    assert cov_err == pytest.approx(0.0, abs=1e-12)

    gen = rng.normal(size=(40, 3)) @ np.array([[1.0, 0.5, 0], [0, 1, 0], [0, 0, 2]])
    mean_err, cov_err = moment_errors(_t(gen), _t(real))
    assert mean_err == pytest.approx(np.linalg.norm(gen.mean(0) - real.mean(0)), rel=1e-12)
    expected_cov = np.linalg.norm(np.cov(gen.T) - np.cov(real.T), "fro")
    assert cov_err == pytest.approx(expected_cov, rel=1e-12)


def test_collapsed_generator_has_the_full_covariance_error():
    rng = np.random.default_rng(5)
    real = _t(rng.normal(size=(30, 2)))
    collapsed = real.mean(0, keepdim=True).repeat(10, 1)  # every sample at the data mean
    mean_err, cov_err = moment_errors(collapsed, real)
    assert mean_err == pytest.approx(0.0, abs=1e-12)
    assert cov_err == pytest.approx(float(torch.linalg.matrix_norm(torch.cov(real.T))), rel=1e-12)
