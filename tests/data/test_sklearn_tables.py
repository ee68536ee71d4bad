"""The shipped tables (wine, breast_cancer): shapes, the split, label noise marked exactly where
labels were flipped, and determinism by seed."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_wine

from ganinf_mlops.data.datasets import DATASETS
from ganinf_mlops.data.version import create_raw_version
from ganinf_mlops.errors import ConfigError, DataError

TABLES = {"wine": (load_wine, 178, 13, 3), "breast_cancer": (load_breast_cancer, 569, 30, 2)}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_shapes_split_and_clean_labels(name):
    load, rows, cols, classes = TABLES[name]
    raw = DATASETS.get(name)(n_eval=40, seed=1)
    assert raw.x.shape == (rows - 40, cols) and raw.x_eval.shape == (40, cols)
    assert raw.x.dtype == np.float64 and raw.y.dtype == np.int64
    assert set(np.unique(np.concatenate([raw.y, raw.y_eval]))) == set(range(classes))
    # ids are source rows, values in their own units; the held-out rows are all the others.
    src = load()
    np.testing.assert_array_equal(raw.x, src.data[raw.ids])
    np.testing.assert_array_equal(raw.x_eval, np.delete(src.data, raw.ids, axis=0))
    np.testing.assert_array_equal(raw.y, src.target[raw.ids])
    assert not raw.is_anomaly.any()
    assert raw.params == {"n_eval": 40, "train_size": None, "label_noise": 0.0, "seed": 1}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_label_noise_flips_exactly_the_marked_rows(name):
    load, *_ = TABLES[name]
    raw = DATASETS.get(name)(n_eval=40, label_noise=0.1, seed=3)
    true = load().target[raw.ids]
    flipped = raw.y != true
    assert flipped.sum() == round(0.1 * raw.x.shape[0])
    np.testing.assert_array_equal(raw.is_anomaly, flipped)  # marked == flipped, both ways
    # The held-out labels are never touched.
    eval_ids = np.setdiff1d(np.arange(load().target.size), raw.ids)
    np.testing.assert_array_equal(raw.y_eval, load().target[eval_ids])


def test_determinism_by_seed_and_train_size():
    wine = DATASETS.get("wine")
    a, b, c = (wine(label_noise=0.1, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.is_anomaly, b.is_anomaly)
    assert not np.array_equal(a.ids, c.ids)
    small = wine(train_size=50, seed=5)
    assert small.x.shape[0] == 50 and set(small.ids) <= set(a.ids)


def test_versioned_table_records_the_flipped_ids(tmp_path):
    v = create_raw_version(tmp_path / "v0", "breast_cancer", label_noise=0.1, seed=0)
    raw = DATASETS.get("breast_cancer")(label_noise=0.1, seed=0)
    assert sorted(v.manifest.is_anomaly_ids) == sorted(raw.ids[raw.is_anomaly].tolist())
    assert len(v.manifest.is_anomaly_ids) == 38


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"label_noise": 1.0}, ConfigError),
        ({"n_eval": 178}, ConfigError),
        ({"seed": -1}, ConfigError),
        ({"train_size": 500}, ConfigError),
        ({"train_size": 1, "label_noise": 0.5}, DataError),  # one row: no other class to flip to
    ],
)
def test_bad_parameters_are_refused(kwargs, error):
    with pytest.raises(error):
        DATASETS.get("wine")(**kwargs)
