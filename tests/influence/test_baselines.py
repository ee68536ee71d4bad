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
