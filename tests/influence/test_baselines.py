"""The baselines without a trajectory (influence/baselines.py): Isolation Forest flags planted
outliers, instance selection is a Gaussian's negative log-density, random scores are
seed-deterministic; all are harmfulness (higher = remove first)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau

from ganinf_mlops.errors import ConfigError, DataError
from ganinf_mlops.influence.baselines import (
    gaussian_log_density,
    instance_selection_harmfulness,
    isolation_forest_harmfulness,
    random_harmfulness,
)


def _planted(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """200 points of a standard 2D normal with 10 outliers planted 8 units out."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 2))
    outliers = rng.choice(200, size=10, replace=False)
    angle = rng.uniform(0, 2 * np.pi, size=10)
    x[outliers] = 8.0 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return x, outliers


def test_isolation_forest_ranks_planted_outliers_first():
    x, outliers = _planted()
    h = isolation_forest_harmfulness(x, seed=0)
    assert h.shape == (200,)
    top = np.argsort(-h)[:10]
    assert set(top) == set(outliers)
    # The negated score_samples of scikit-learn: in (0, 1], larger for the more isolated points.
    assert np.all((h > 0) & (h <= 1))
    assert h[outliers].min() > np.median(h) + 0.1


def test_isolation_forest_is_seeded():
    x, _ = _planted(1)
    a, b = isolation_forest_harmfulness(x, seed=3), isolation_forest_harmfulness(x, seed=3)
    c = isolation_forest_harmfulness(x, seed=4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # Another forest ranks the points much the same way.
    assert kendalltau(a, c).statistic > 0.8


def test_isolation_forest_on_images_flattened_features():
    """Baselines score the problem's feature space, [N, d]; on images that is the flattened
    pixels: a constant-white image among dark noise stands out."""
    rng = np.random.default_rng(2)
    x = rng.normal(-0.8, 0.05, size=(60, 64))
    x[17] = 1.0
    assert np.argmax(isolation_forest_harmfulness(x)) == 17


def test_random_is_seed_deterministic_and_uniform():
    a, b, c = random_harmfulness(1000, 5), random_harmfulness(1000, 5), random_harmfulness(1000, 6)
    assert a.shape == (1000,) and np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all((a >= 0) & (a < 1))
    # Uniform on [0, 1): mean 1/2 (sd of the mean ~0.009), and no ties to break.
    assert abs(a.mean() - 0.5) < 0.05 and len(np.unique(a)) == 1000
    # Unrelated to the order of the instances.
    assert abs(kendalltau(np.arange(1000), a).statistic) < 0.1
    assert random_harmfulness(0, 1).shape == (0,)


def _correlated(n: int, seed: int = 0) -> np.ndarray:
    """n points of a correlated 3-D Gaussian in mixed units (scales 1, 100, 0.01)."""
    rng = np.random.default_rng(seed)
    a = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [-0.5, 0.3, 0.8]])
    return (rng.normal(size=(n, 3)) @ a.T) * np.array([1.0, 100.0, 0.01]) + 5.0


def test_gaussian_log_density_is_scipys_logpdf():
    """The log-density under the sample Gaussian (shrinkage 0: the maximum-likelihood mean and
    covariance), and under the covariance shrunk towards its diagonal."""
    from scipy.stats import multivariate_normal

    x = _correlated(40)
    mean, cov = x.mean(axis=0), np.cov(x.T, bias=True)
    np.testing.assert_allclose(
        gaussian_log_density(x, shrinkage=0.0),
        multivariate_normal(mean, cov).logpdf(x),
        rtol=1e-10,
    )
    d = np.sqrt(np.diag(cov))
    corr = cov / np.outer(d, d)
    shrunk = np.outer(d, d) * (0.7 * corr + 0.3 * np.eye(3))
    np.testing.assert_allclose(
        gaussian_log_density(x, shrinkage=0.3),
        multivariate_normal(mean, shrunk).logpdf(x),
        rtol=1e-10,
    )
    # By default Ledoit-Wolf's shrinkage of the standardised features; near 0 for N >> d.
    x = _correlated(5000, 1)
    np.testing.assert_allclose(
        gaussian_log_density(x),
        multivariate_normal(x.mean(axis=0), np.cov(x.T, bias=True)).logpdf(x),
        rtol=1e-2,
    )


def test_instance_selection_ranks_an_obvious_outlier_first():
    """Harmfulness = -log density relative to the peak: the planted outliers first, also with
    fewer instances than features (N = 40 < d = 100), where a near-zero ridge cannot rank."""
    x, outliers = _planted(3)
    h = instance_selection_harmfulness(x)
    assert set(np.argsort(-h)[:10]) == set(outliers)
    assert np.ptp(h + gaussian_log_density(x)) < 1e-9  # -log p up to its constant
    rng = np.random.default_rng(4)
    emb = rng.normal(size=(40, 5)) @ rng.normal(size=(5, 100)) + 0.3 * rng.normal(size=(40, 100))
    emb[29] += 4.0 * rng.normal(size=100)
    h = instance_selection_harmfulness(emb)
    assert np.argmax(h) == 29 and h[29] > 2 * np.median(h)
    # Why the default shrinks: with a ridge of 1e-9 every instance sits at squared distance N - 1.
    ridge = -2 * (gaussian_log_density(emb, shrinkage=1e-9) - gaussian_log_density(emb, 1e-9)[0])
    assert np.abs(ridge).max() < 1e-3


def test_instance_selection_is_positive_and_free_of_units():
    """Harmfulness >= 0 even where every log-density is > 0 (a tight embedding: -log p alone
    would be negative everywhere and the default policy would remove nothing); the same ranking
    in any units; a constant feature changes nothing; deterministic whatever the seed."""
    x, _ = _planted(5)
    h = instance_selection_harmfulness(x)
    tight = x * 1e-6
    assert (gaussian_log_density(tight) > 0).all()
    np.testing.assert_allclose(instance_selection_harmfulness(tight), h, rtol=1e-9)
    np.testing.assert_allclose(instance_selection_harmfulness(x * [1e3, 1e-3]), h, rtol=1e-9)
    assert (h >= 0).all() and (h > 0).sum() == len(h)
    with_constant = np.column_stack([x, np.full(len(x), 7.0)])
    np.testing.assert_allclose(instance_selection_harmfulness(with_constant), h, rtol=1e-12)
    # Images: a [N, C, H, W] embedding is flattened.
    imgs = np.random.default_rng(0).normal(size=(30, 1, 4, 4))
    np.testing.assert_array_equal(
        instance_selection_harmfulness(imgs, 0), instance_selection_harmfulness(imgs, 5)
    )
    np.testing.assert_array_equal(
        instance_selection_harmfulness(imgs), instance_selection_harmfulness(imgs.reshape(30, -1))
    )


@pytest.mark.parametrize(
    "x,match",
    [
        (np.ones((1, 3)), ">= 2 instances"),
        (np.ones((5, 3)), "all 5 instances are identical"),
        (np.array([[0.0, 1.0], [np.inf, 2.0], [3.0, 4.0]]), "not all finite"),
    ],
)
def test_instance_selection_refuses_what_has_no_gaussian(x, match):
    with pytest.raises(DataError, match=match):
        instance_selection_harmfulness(x)
    with pytest.raises(ConfigError, match="shrinkage"):
        gaussian_log_density(_correlated(10), shrinkage=1.5)


def test_instance_selection_is_a_scoring_method_with_no_predicted_change(tiny_version, tmp_path):
    from ganinf_mlops.config import MetricConfig
    from ganinf_mlops.influence.methods import METHODS, score
    from ganinf_mlops.influence.options import ScoringOptions
    from ganinf_mlops.problems.gan import GanConfig, ModelConfig
    from ganinf_mlops.train.trainer import train

    assert not METHODS.get("instance_selection").predicts_change
    cfg = GanConfig(batch_size=4, epochs=1, model=ModelConfig(g_hidden=(3,), d_hidden=(3,)))
    run = train(tiny_version, cfg, MetricConfig(), tmp_path / "r", progress=False)
    table = score(run, tiny_version, ScoringOptions("instance_selection", progress=False))
    assert table.metric is None and np.isnan(table.predicted_change).all()
    # A vector run's embedding is its raw coordinates.
    np.testing.assert_array_equal(table.harmfulness, instance_selection_harmfulness(tiny_version.x))
    assert table.extra == {"seed": 0}
