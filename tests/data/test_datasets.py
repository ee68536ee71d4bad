from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ganinf_mlops.data.datasets import DATASETS, gaussian2d, npz
from ganinf_mlops.errors import ConfigError, DataError


def test_registered_names() -> None:
    assert {"gaussian2d", "npz"} <= set(DATASETS.names())
    assert DATASETS.get("gaussian2d") is gaussian2d


def test_gaussian2d_statistics_match_parameters() -> None:
    mean, cov = (1.0, -2.0), ((2.0, 0.6), (0.6, 0.5))
    raw = gaussian2d(n=100_000, n_eval=50_000, mean=mean, cov=cov, seed=3)
    assert raw.x.shape == (100_000, 2) and raw.x.dtype == np.float64
    assert raw.x_eval.shape == (50_000, 2)
    for x in (raw.x, raw.x_eval):
        np.testing.assert_allclose(x.mean(axis=0), mean, atol=0.03)
        np.testing.assert_allclose(np.cov(x, rowvar=False), cov, atol=0.04)
    assert not raw.is_anomaly.any()
    assert raw.params["mean"] == [1.0, -2.0] and raw.params["seed"] == 3


def test_gaussian2d_anomalies_count_and_distance() -> None:
    raw = gaussian2d(n=1001, anomaly_frac=0.05, anomaly_distance=8.0, seed=1)
    assert raw.is_anomaly.sum() == round(0.05 * 1001)  # 50.05 -> 50
    dist = np.linalg.norm(raw.x - np.array([1.0, 1.0]), axis=1)
    anomalous = dist[raw.is_anomaly]
    assert np.all(np.abs(anomalous - 8.0) < 1.5)  # noise sd 0.3 per coordinate
    assert abs(anomalous.mean() - 8.0) < 0.1
    # Clean points stay near the mode; the anomalies are the far ones.
    assert dist[~raw.is_anomaly].max() < anomalous.min()
    # Anomalies do not change the evaluation stream.
    np.testing.assert_array_equal(raw.x_eval, gaussian2d(n=1001, seed=1).x_eval)


def test_gaussian2d_cluster_layout_puts_every_anomaly_in_one_place() -> None:
    ring = gaussian2d(n=1000, anomaly_frac=0.05, seed=2)
    raw = gaussian2d(n=1000, anomaly_frac=0.05, anomaly_distance=4.0, anomaly_layout="cluster",
                     seed=2)  # fmt: skip
    a = raw.x[raw.is_anomaly]
    assert len(a) == 50 and np.all(a.std(0) < 0.45)  # one blob of noise sd 0.3
    assert abs(np.linalg.norm(a.mean(0) - np.array([1.0, 1.0])) - 4.0) < 0.2
    assert ring.x[ring.is_anomaly].std(0).min() > 2  # the ring: spread all around
    np.testing.assert_array_equal(raw.x[~raw.is_anomaly], ring.x[~ring.is_anomaly])
    assert raw.params["anomaly_layout"] == "cluster" and "anomaly_layout" not in ring.params
    with pytest.raises(ConfigError, match="anomaly_layout must be one of ring, cluster"):
        gaussian2d(n=10, anomaly_layout="line")


def test_gaussian2d_half_rounds_up() -> None:
    assert gaussian2d(n=10, anomaly_frac=0.25).is_anomaly.sum() == 3  # 2.5 -> 3


def test_gaussian2d_is_deterministic_per_seed() -> None:
    a, b, c = gaussian2d(n=20, seed=5), gaussian2d(n=20, seed=5), gaussian2d(n=20, seed=6)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    assert not np.array_equal(a.x[:20], a.x_eval[:20])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n must be"),
        ({"n_eval": 0}, "n_eval must be"),
        ({"anomaly_frac": 1.0}, "anomaly_frac"),
        ({"anomaly_frac": -0.1}, "anomaly_frac"),
        ({"cov": ((1.0, 2.0), (2.0, 1.0))}, "positive definite"),
        ({"cov": ((1.0, 0.1), (0.2, 1.0))}, "symmetric"),
        ({"mean": (1.0, 2.0, 3.0)}, "mean"),
        ({"seed": -1}, "seed"),
    ],
)
def test_gaussian2d_rejects_bad_args(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        gaussian2d(**kwargs)


def test_npz_with_eval_and_ids(tmp_path: Path) -> None:
    x = np.arange(12, dtype=np.int32).reshape(6, 2)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, x_eval=np.ones((3, 2), np.float32), ids=np.arange(10, 16))
    raw = npz(path)
    assert raw.x.dtype == np.float64 and raw.x_eval.dtype == np.float64
    np.testing.assert_array_equal(raw.x, x)
    np.testing.assert_array_equal(raw.ids, np.arange(10, 16))
    assert raw.is_anomaly is None and raw.params["eval_source"] == "file"


def test_npz_splits_eval_and_keeps_row_ids(tmp_path: Path) -> None:
    x = np.arange(20.0).reshape(10, 2)
    path = tmp_path / "d.npz"
    np.savez(path, x=x)
    raw = npz(path, eval_frac=0.3, seed=1)
    assert raw.x.shape == (7, 2) and raw.x_eval.shape == (3, 2)
    # ids are the original row numbers, so each kept row maps back to the file.
    np.testing.assert_array_equal(raw.x, x[raw.ids])
    assert sorted(set(range(10)) - set(raw.ids.tolist())) == sorted((raw.x_eval[:, 0] / 2).tolist())


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"y": np.ones((3, 2))}, "missing array 'x'"),
        ({"x": np.ones(3)}, r"expected shape \[N, d\].*got \(3,\)"),
        ({"x": np.ones((0, 2))}, r"expected shape \[N, d\].*got \(0, 2\)"),
        ({"x": np.array([[1.0, np.nan], [np.inf, 2.0], [0, 0]])}, r"2 non-finite.*\(0, 1\)"),
        ({"x": np.array([["a", "b"]])}, "real numbers"),
        ({"x": np.ones((3, 2)), "ids": np.array([1, 1, 2])}, "unique"),
        ({"x": np.ones((3, 2)), "ids": np.array([1.0, 2.0, 3.0])}, "integers"),
        ({"x": np.ones((3, 2)), "x_eval": np.ones((2, 3))}, "columns"),
        ({"x": np.ones((3, 2)), "x_eval": np.full((2, 2), np.nan)}, "x_eval"),
    ],
)
def test_npz_rejects_bad_content(tmp_path: Path, arrays: dict, match: str) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=match):
        npz(path)


def test_npz_rejects_missing_corrupt_and_non_npz(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        npz(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(DataError, match="bad.npz"):
        npz(bad)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(DataError, match="text.npz"):
        npz(text)
    npy = tmp_path / "a.npy"
    np.save(npy, np.ones((2, 2)))
    with pytest.raises(DataError, match="not an .npz"):
        npz(npy)


def test_npz_rejects_bad_eval_frac(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((4, 2)))
    with pytest.raises(ConfigError, match="eval_frac"):
        npz(path, eval_frac=1.0)
    np.savez(path, x=np.ones((1, 2)))
    with pytest.raises(DataError, match="too few"):
        npz(path)


def test_npz_whose_header_declares_more_than_it_holds(tmp_path: Path) -> None:
    """A two-line .npy header can ask numpy for terabytes: refused before allocating."""
    import io
    import zipfile

    from ganinf_mlops.data.datasets import load_npz

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 2)}
    )
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", header.getvalue() + b"\0" * 64)
    with pytest.raises(DataError, match=r"declares shape \(1000000000000, 2\)"):
        load_npz(path, "bomb")
    np.savez_compressed(tmp_path / "fine.npz", x=np.zeros((3, 2)))
    assert load_npz(tmp_path / "fine.npz", "fine")["x"].shape == (3, 2)
