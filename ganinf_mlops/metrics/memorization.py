"""Data-copying test statistic C_T (Meehan, Chaudhuri & Dasgupta, "A Non-Parametric Test to Detect
Data-Copying in Generative Models", AISTATS 2020).

The instance space is cut into k cells by k-means fitted on the training set T. In each cell pi,
the distances to the nearest training point of generated samples Q and of held-out test samples
P_n are compared by a Mann-Whitney U test, normalised to a z-score

    Z_U(pi) = (U_pi - m_pi l_pi / 2) / sqrt(m_pi l_pi (m_pi + l_pi + 1) / 12),

with U_pi the number of (generated, test) pairs whose generated distance is the larger (ties 1/2).
Cells with fewer than `min_generated` generated samples, or with no test sample, are dropped, and

    C_T = sum_pi P_n(pi) Z_U(pi) / sum_pi P_n(pi)    (kept cells, P_n(pi) = test fraction in pi).

Sign: strongly negative (e.g. < -3) = data copying, generated samples sit closer to the training
points than fresh data would; about 0 = samples as far from T as fresh data; positive =
underfitting, samples farther from T than the data distribution is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import mannwhitneyu
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors

from ganinf_mlops import keys
from ganinf_mlops.errors import ConfigError, DataError
from ganinf_mlops.metrics.specs import Metric, register

COPYING_CT_SPEC = register(
    Metric(
        keys.COPYING_CT,
        higher_is_better=None,
        meaning="data copying C_T (Meehan et al.): << 0 = copies training images",
        best="near 0",
    )
)


@dataclass(frozen=True)
class CopyingResult:
    """C_T, the per-cell Z_U (NaN for dropped cells), which cells were kept, and k."""

    ct: float
    z_per_cell: np.ndarray
    kept: np.ndarray
    n_cells: int


def _as_matrix(name: str, x: object) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim < 2 or a.shape[0] < 1:
        raise DataError(f"{name}: expected [n >= 1, ...] samples, got shape {a.shape}")
    a = a.reshape(a.shape[0], -1)  # images [N, C, H, W] -> vectors [N, C*H*W]
    if not np.isfinite(a).all():
        raise DataError(f"{name}: contains NaN or infinite values")
    return a


def z_u(q_dist: np.ndarray, p_dist: np.ndarray) -> float:
    """Normal approximation of the Mann-Whitney U of generated vs test distances (no tie term)."""
    m, ell = len(q_dist), len(p_dist)
    # scipy's statistic is U of the FIRST sample: #pairs q > p, ties counting 1/2.
    u = mannwhitneyu(q_dist, p_dist, alternative="two-sided").statistic
    return float((u - m * ell / 2) / np.sqrt(m * ell * (m + ell + 1) / 12))


def ct_score(
    train: np.ndarray,
    generated: np.ndarray,
    test: np.ndarray,
    *,
    n_cells: int = 10,
    min_generated: int = 20,
    seed: int = 0,
) -> CopyingResult:
    """C_T of `generated` against training set `train`, with held-out `test` as the reference."""
    t = _as_matrix("train", train)
    q = _as_matrix("generated", generated)
    p = _as_matrix("test", test)
    if not (t.shape[1] == q.shape[1] == p.shape[1]):
        raise DataError(
            f"feature dimensions differ: train {t.shape[1]}, generated {q.shape[1]}, "
            f"test {p.shape[1]}"
        )
    if not 2 <= n_cells <= len(t):
        raise ConfigError(f"n_cells must be in [2, n_train={len(t)}], got {n_cells}")
    if min_generated < 1:
        raise ConfigError(f"min_generated must be >= 1, got {min_generated}")

    # Cells come from T alone, so the partition does not depend on the samples under test.
    km = KMeans(n_clusters=n_cells, n_init=10, random_state=seed).fit(t)
    q_cell, p_cell = km.predict(q), km.predict(p)
    # sklearn computes neighbours in chunks: memory stays bounded for thousands x 784 dims.
    nn = NearestNeighbors(n_neighbors=1).fit(t)
    q_dist = nn.kneighbors(q, return_distance=True)[0][:, 0]
    p_dist = nn.kneighbors(p, return_distance=True)[0][:, 0]

    m_cell = np.bincount(q_cell, minlength=n_cells)
    l_cell = np.bincount(p_cell, minlength=n_cells)
    # Too few generated samples make Z_U's normal approximation meaningless (paper's tau).
    kept = (m_cell >= min_generated) & (l_cell > 0)
    if not kept.any():
        raise DataError(
            f"no cell has >= {min_generated} generated and >= 1 test samples "
            f"(generated per cell {m_cell.tolist()}); use fewer cells or more samples"
        )
    z = np.full(n_cells, np.nan)
    for c in np.flatnonzero(kept):
        z[c] = z_u(q_dist[q_cell == c], p_dist[p_cell == c])
    weights = l_cell[kept] / len(p)
    ct = float((weights * z[kept]).sum() / weights.sum())
    return CopyingResult(ct=ct, z_per_cell=z, kept=kept, n_cells=n_cells)


def copying_ct(
    train: np.ndarray, generated: np.ndarray, test: np.ndarray, *, seed: int = 0
) -> float | None:
    """C_T with as many cells (2 to 10) as the generated samples fill with `min_generated` = 20
    on average; None when there are too few samples (< 40) for any cell to be tested."""
    n_cells = min(10, len(generated) // 40, len(np.asarray(train)))
    if n_cells < 2:
        return None
    return ct_score(train, generated, test, n_cells=n_cells, seed=seed).ct
