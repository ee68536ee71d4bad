"""Baselines that score instances without a trajectory: Isolation Forest, instance selection
(DeVries et al.) and random.

Both return harmfulness in the scores-table convention (higher = remove first); neither predicts
a metric change.
"""

from __future__ import annotations

import numpy as np


def isolation_forest_harmfulness(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Anomaly score: the negated `score_samples` (higher = more abnormal)."""
    from sklearn.ensemble import IsolationForest  # imported here: 2 s that most commands skip

    forest = IsolationForest(n_estimators=200, random_state=seed).fit(x)
    return -forest.score_samples(x)


def instance_selection_harmfulness(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Instance selection for GANs (DeVries et al., NeurIPS 2020): fit a Gaussian to the
    instances' embedding and drop the lowest-density ones first. Harmfulness is the negative
    log-density under that Gaussian up to a constant, half the squared Mahalanobis distance; the
    covariance is Ledoit-Wolf shrunk, so a 128-d embedding of a few hundred images stays well
    posed. Deterministic (`seed` is unused)."""
    from sklearn.covariance import LedoitWolf

    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    fit = LedoitWolf().fit(x)
    return 0.5 * fit.mahalanobis(x)


def random_harmfulness(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(n)
