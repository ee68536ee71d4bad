"""Baselines that score instances without a trajectory: Isolation Forest, instance selection
(DeVries et al.) and random.

Each returns harmfulness in the scores-table convention (higher = remove first), never negative,
so that the cleanse's default policy ("positive": harmfulness > 0) removes the full budget; none
predicts a metric change.
"""

from __future__ import annotations

import math

import numpy as np

from ganinf_mlops.errors import ConfigError, DataError


def isolation_forest_harmfulness(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Anomaly score: the negated `score_samples` (higher = more abnormal)."""
    from sklearn.ensemble import IsolationForest  # imported here: 2 s that most commands skip

    forest = IsolationForest(n_estimators=200, random_state=seed).fit(x)
    return -forest.score_samples(x)


def _gaussian_fit(features: np.ndarray, shrinkage: float | None) -> tuple[np.ndarray, float]:
    """Fit a Gaussian to `features` [N, ...] (flattened to [N, d]); return the instances'
    squared Mahalanobis distances m2 [N] and the log of its normaliser (log p = -m2 / 2 - it).

    The mean and covariance are the sample's (maximum likelihood), the covariance shrunk towards
    its own diagonal: Sigma = D^1/2 ((1 - s) R + s I) D^1/2, R the sample correlation, D the
    variances, s the Ledoit-Wolf shrinkage of the standardised features unless given. Shrunk
    because N may be below d (128-d classifier features of a few hundred images, fewer after
    cleansing), where the sample covariance is singular; and a fixed small ridge would not do:
    as it goes to 0 there, every instance's squared distance goes to N - 1 (the N instances span
    the space they are measured in), so a small ridge ranks by differences of its own size, set
    by the directions the sample barely spans. Ledoit-Wolf picks s from the data (about 0 when
    N >> d: the plain sample Gaussian). Shrinking the correlation rather than the covariance
    keeps the ranking independent of each feature's units. A feature with one value for all
    instances carries no density and is left out."""
    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    n = len(x)
    if n < 2:
        raise DataError(f"a Gaussian fit (instance selection) needs >= 2 instances, got {n}")
    if not np.isfinite(x).all():
        raise DataError("a Gaussian fit (instance selection): the features are not all finite")
    varying = np.ptp(x, axis=0) > 0
    if not varying.any():
        raise DataError(f"a Gaussian fit (instance selection): all {n} instances are identical")
    x = x[:, varying]
    std = x.std(axis=0)
    z = (x - x.mean(axis=0)) / std
    d = z.shape[1]
    if shrinkage is None:
        from sklearn.covariance import ledoit_wolf_shrinkage  # 2 s that most commands skip

        shrinkage = float(ledoit_wolf_shrinkage(z, assume_centered=True))
    if not 0 <= shrinkage <= 1:
        raise ConfigError(f"the covariance shrinkage must be in [0, 1], got {shrinkage}")
    cov = (1 - shrinkage) * (z.T @ z / n) + shrinkage * np.eye(d)
    vals, vecs = np.linalg.eigh(cov)
    # Unshrunk with N <= d the correlation is singular: its null directions (where no instance
    # lies) are held at the rank tolerance so that the distances stay finite.
    vals = np.maximum(vals, vals.max() * d * np.finfo(np.float64).eps)
    m2 = ((z @ vecs) ** 2 / vals).sum(axis=1)
    log_norm = 0.5 * (d * math.log(2 * math.pi) + np.log(vals).sum()) + np.log(std).sum()
    return m2, float(log_norm)


def gaussian_log_density(features: np.ndarray, shrinkage: float | None = None) -> np.ndarray:
    """Log-density [N] of each instance under the Gaussian fitted to all of them (`_gaussian_fit`:
    sample mean, covariance shrunk towards its diagonal by `shrinkage`, by default Ledoit-Wolf's),
    over the features that vary."""
    m2, log_norm = _gaussian_fit(features, shrinkage)
    return -0.5 * m2 - log_norm


def instance_selection_harmfulness(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Instance selection for GANs (DeVries et al., NeurIPS 2020): fit a Gaussian to the
    instances' embedding and drop the lowest-density ones first. Harmfulness is the negative
    log-density relative to the Gaussian's peak, log p(mean) - log p(x) = half the squared
    Mahalanobis distance: the ranking of -log p(x), but >= 0 whatever the features' scale (a
    tight 128-d embedding has log p(x) > 0 everywhere, and the default policy would then remove
    nothing). Deterministic (`seed` is unused)."""
    m2, _ = _gaussian_fit(x, None)
    return 0.5 * m2


def random_harmfulness(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(n)
