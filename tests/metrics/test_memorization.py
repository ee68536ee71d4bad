"""The C_T data-copying statistic: its sign on copied / fresh / too-wide samples, Z_U against a
hand computation (the U convention), input validation and image-shaped input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from ganinf_mlops.errors import ConfigError, DataError
from ganinf_mlops.metrics.memorization import CopyingResult, ct_score, z_u


def _gaussian(seed: int, n: int = 1000, d: int = 2) -> tuple[np.random.Generator, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng, rng.normal(size=(n, d))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_copied_training_points_score_strongly_negative(seed: int) -> None:
    rng, train = _gaussian(seed)
    test = rng.normal(size=(1000, 2))
    copies = train + 1e-3 * rng.normal(size=train.shape)
    res = ct_score(train, copies, test, seed=seed)
    assert res.ct < -5  # measured about -12.7


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_fresh_samples_score_near_zero(seed: int) -> None:
    rng, train = _gaussian(seed)
    test = rng.normal(size=(1000, 2))
    res = ct_score(train, rng.normal(size=(1000, 2)), test, seed=seed)
    assert abs(res.ct) < 2.0  # measured |C_T| <= 0.83 over 8 seeds (sd about 0.35)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_too_wide_samples_score_positive(seed: int) -> None:
    rng, train = _gaussian(seed)
    test = rng.normal(size=(1000, 2))
    res = ct_score(train, 3.0 * rng.normal(size=(1000, 2)), test, seed=seed)
    assert res.ct > 2  # measured 3.8 .. 7.2


def test_scipy_u_counts_pairs_where_generated_is_farther() -> None:
    rng = np.random.default_rng(0)
    q = rng.integers(0, 5, size=30).astype(float)  # small integers: many ties
    p = rng.integers(0, 5, size=20).astype(float)
    u = (q[:, None] > p[None, :]).sum() + 0.5 * (q[:, None] == p[None, :]).sum()
    assert mannwhitneyu(q, p, alternative="two-sided").statistic == u
    expected = (u - 30 * 20 / 2) / math.sqrt(30 * 20 * (30 + 20 + 1) / 12)
    assert z_u(q, p) == pytest.approx(expected, rel=1e-12)


def test_z_u_per_cell_and_ct_match_hand_computation() -> None:
    # Two training clusters (at x=0 and x=10); samples on the x-axis so NN distances are exact.
    train = np.array([[0.0, 0.0], [0.0, 0.1], [10.0, 0.0], [10.0, 0.1]])
    # Cell at 0: generated distances [0.5, 1, 2, 3], test [1, 1.5, 4] (one tie at 1).
    # Cell at 10: generated distances [1, 2], test [0.5].
    gen = np.array([[-0.5, 0], [-1, 0], [-2, 0], [-3, 0], [11, 0], [12, 0]])
    test = np.array([[-1, 0], [-1.5, 0], [-4, 0], [10.5, 0]])
    # min_generated=2: the cell at 10 has exactly 2 generated samples and is kept.
    res = ct_score(train, gen, test, n_cells=2, min_generated=2)
    # U0 = 0 + 0.5 + 2 + 2 = 4.5, m=4, l=3;  U1 = 2, m=2, l=1.
    z0 = (4.5 - 6) / math.sqrt(4 * 3 * 8 / 12)
    z1 = (2 - 1) / math.sqrt(2 * 1 * 4 / 12)
    assert isinstance(res, CopyingResult) and res.n_cells == 2 and res.kept.all()
    assert sorted(res.z_per_cell) == pytest.approx(sorted([z0, z1]), rel=1e-12)
    assert res.ct == pytest.approx(0.75 * z0 + 0.25 * z1, rel=1e-12)
    # The same data with min_generated=3 drops the cell at 10: C_T is that of the other cell.
    res3 = ct_score(train, gen, test, n_cells=2, min_generated=3)
    assert res3.kept.sum() == 1 and np.isnan(res3.z_per_cell[~res3.kept]).all()
    assert res3.ct == pytest.approx(z0, rel=1e-12)


@pytest.mark.parametrize(
    ("gen", "kwargs", "error", "match"),
    [
        (np.zeros((30, 3)), {}, DataError, "feature dimensions differ"),
        (np.full((30, 2), np.nan), {}, DataError, "NaN"),
        (np.zeros(30), {}, DataError, "expected"),
        (np.zeros((30, 2)), {"n_cells": 51}, ConfigError, "n_cells"),
        (np.zeros((30, 2)), {"n_cells": 1}, ConfigError, "n_cells"),
        (np.zeros((30, 2)), {"min_generated": 0}, ConfigError, "min_generated"),
        (np.zeros((30, 2)), {"min_generated": 31}, DataError, "no cell"),
    ],
)
def test_bad_input_raises(
    gen: np.ndarray, kwargs: dict[str, int], error: type[Exception], match: str
) -> None:
    rng, train = _gaussian(0, n=50)
    with pytest.raises(error, match=match):
        ct_score(train, gen, rng.normal(size=(20, 2)), **{"n_cells": 2, **kwargs})


def test_image_shaped_input_is_flattened() -> None:
    rng = np.random.default_rng(0)
    train = rng.random((400, 1, 8, 8))
    test = rng.random((400, 1, 8, 8))
    copies = train + 1e-3 * rng.normal(size=train.shape)
    res = ct_score(train, copies, test, n_cells=4)
    flat = ct_score(
        train.reshape(400, -1), copies.reshape(400, -1), test.reshape(400, -1), n_cells=4
    )
    assert res.ct == flat.ct
    assert res.ct < -5
