"""The baselines without a trajectory (influence/baselines.py): Isolation Forest flags planted
outliers, random scores are seed-deterministic; both are harmfulness (higher = remove first)."""

from __future__ import annotations

import numpy as np
from scipy.stats import kendalltau

from ganinf_mlops.influence.baselines import isolation_forest_harmfulness, random_harmfulness


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


def test_instance_selection_is_the_negative_gaussian_log_density():
    """DeVries et al.: drop the lowest-density instances under a Gaussian fitted to the
    embedding. Harmfulness = -log N(x; mu, Sigma) up to its constant, Sigma Ledoit-Wolf shrunk."""
    from scipy.stats import multivariate_normal
    from sklearn.covariance import LedoitWolf

    from ganinf_mlops.influence.baselines import instance_selection_harmfulness

    x, outliers = _planted(3)
    h = instance_selection_harmfulness(x)
    assert set(np.argsort(-h)[:10]) == set(outliers)
    fit = LedoitWolf().fit(x)
    logpdf = multivariate_normal(fit.location_, fit.covariance_).logpdf(x)
    np.testing.assert_allclose(h + logpdf, (h + logpdf)[0], rtol=0, atol=1e-9)  # a constant
    # Images: a [N, C, H, W] embedding is flattened; deterministic whatever the seed.
    imgs = np.random.default_rng(0).normal(size=(30, 1, 4, 4))
    np.testing.assert_array_equal(
        instance_selection_harmfulness(imgs, 0), instance_selection_harmfulness(imgs, 5)
    )


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
    far = int(np.argmax(np.linalg.norm(tiny_version.x - tiny_version.x.mean(0), axis=1)))
    assert table.ids[np.argmax(table.harmfulness)] == tiny_version.ids[far]
