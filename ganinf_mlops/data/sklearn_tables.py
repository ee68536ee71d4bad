"""Labelled tables shipped with scikit-learn, registered in `DATASETS`: `wine` (178 rows, 13
columns, 3 classes) and `breast_cancer` (569 rows, 30 columns, 2 classes).

x [N, d] float64 keeps the columns' own units (wine's proline is ~1,000, its hue ~1): a
classifier standardizes them with its training set's statistics (`ClassifierModelConfig.
standardize`), so a cleansed version is standardized by what remains of it. The split, the
subsample and the label noise are the image datasets' (`images._labelled`): `n_eval` rows held
out (the classifier's validation and test halves), `label_noise` of the training labels flipped
to another class and marked in `is_anomaly`; the held-out labels are never touched.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ganinf_mlops.data.datasets import DATASETS, RawData
from ganinf_mlops.data.images import _labelled, corruption


def _table(load, n_eval: int, train_size: int | None, label_noise: float, seed: int) -> RawData:
    # No class filter or noise images on tables: the label noise is their corruption.
    c = corruption(n_classes=None, label_noise=label_noise)
    data = load()
    raw = _labelled(np.asarray(data.data, dtype=np.float64), data.target, n_eval, train_size,
                    c, seed)  # fmt: skip
    # The manifest records this source's parameters, not the image corruptions it cannot take.
    own = ("n_eval", "train_size", "label_noise", "seed")
    return dataclasses.replace(raw, params={k: raw.params.get(k, 0.0) for k in own})


@DATASETS.register("wine")
def wine(
    n_eval: int = 78, train_size: int | None = None, label_noise: float = 0.0, seed: int = 0
) -> RawData:
    """scikit-learn's wine recognition table: 178 wines, 13 chemical measurements, 3 cultivars.

    `n_eval` rows are held out at random (default 78: 39 validation, 39 test); of the other 100,
    a random `train_size` are kept for training (None: all).
    """
    from sklearn.datasets import load_wine  # heavy import, only for this source

    return _table(load_wine, n_eval, train_size, label_noise, seed)


@DATASETS.register("breast_cancer")
def breast_cancer(
    n_eval: int = 189, train_size: int | None = None, label_noise: float = 0.0, seed: int = 0
) -> RawData:
    """scikit-learn's Wisconsin breast cancer table: 569 tumours, 30 features of cell nuclei,
    malignant (0) or benign (1).

    `n_eval` rows are held out at random (default 189: 95 validation, 94 test); of the other
    380, a random `train_size` are kept for training (None: all).
    """
    from sklearn.datasets import load_breast_cancer  # heavy import, only for this source

    return _table(load_breast_cancer, n_eval, train_size, label_noise, seed)
