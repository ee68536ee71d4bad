"""Baselines that score instances without a trajectory: Isolation Forest and random.

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


def random_harmfulness(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(n)
