from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ganinf_mlops.cleanse import cleanse
from ganinf_mlops.data.datasets import DATASETS
from ganinf_mlops.data.images import MNIST_FILES, digits, images_npz, mnist, mnist_sample
from ganinf_mlops.data.manifest import content_digest
from ganinf_mlops.data.version import DATA_FILE, create_raw_version, load_version, write_version
from ganinf_mlops.errors import ConfigError, DataError, DigestMismatchError
from ganinf_mlops.influence.scores import ScoreTable, write_scores

# content_digest of _golden_arrays() before labels and images existed: versions written then
# must keep their digest.
GOLDEN_DIGEST = "1dcefd22a88d5d71abfa29af5030f222e6f86a0fe62e8e291274a947eb6b4373"


def _golden_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.arange(12, dtype=np.float64).reshape(6, 2) / 4 - 1
    return x, np.arange(10, 16, dtype=np.int64), np.array([[0.5, -0.25], [1.5, 2.0]])


def _images(n: int = 6, m: int = 3, c: int = 1) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(n, c, 4, 4))
    x_eval = rng.uniform(-1, 1, size=(m, c, 4, 4))
    return x, np.arange(100, 100 + n), x_eval, np.arange(n) % 3, np.arange(m) % 2


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path / DATA_FILE) as f:
        return {k: f[k] for k in f.files}


def _rewrite(path: Path, drop: tuple[str, ...] = (), **arrays: np.ndarray) -> None:
    data = {k: v for k, v in _npz_arrays(path).items() if k not in drop}
    np.savez(path / DATA_FILE, **{**data, **arrays})


def test_unlabelled_digest_is_unchanged(tmp_path: Path) -> None:
    x, ids, xe = _golden_arrays()
    assert content_digest(x, ids, xe) == GOLDEN_DIGEST
    v = write_version(tmp_path / "v", x, ids, xe, dataset="npz", params={})
    assert v.digest == GOLDEN_DIGEST and v.y is None and v.y_eval is None
    assert sorted(_npz_arrays(v.path)) == ["ids", "x", "x_eval"]


@pytest.mark.parametrize("channels", [1, 3])
def test_labelled_image_round_trip(tmp_path: Path, channels: int) -> None:
    x, ids, xe, y, ye = _images(c=channels)
    v = write_version(tmp_path / "v", x, ids, xe, dataset="t", params={}, y=y, y_eval=ye)
    assert v.digest == content_digest(x, ids, xe, y.astype(np.int64), ye.astype(np.int64))
    assert v.digest != content_digest(x, ids, xe)
    assert v.manifest.shape == [6, channels, 4, 4] and v.manifest.n_eval == 3
    loaded = load_version(v.path)
    assert loaded.digest == v.digest
    for got, want in ((loaded.x, x), (loaded.x_eval, xe), (loaded.y, y), (loaded.y_eval, ye)):
        np.testing.assert_array_equal(got, want)
        assert not got.flags.writeable
    assert loaded.y.dtype == np.int64 and loaded.y_eval.dtype == np.int64
    assert sorted(_npz_arrays(v.path)) == ["ids", "x", "x_eval", "y", "y_eval"]
    np.savez_compressed(v.path / DATA_FILE, **_npz_arrays(v.path))
    assert load_version(v.path).digest == v.digest


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"x": "scale"}, r"'x' holds images.* \[-1, 1\], found values in \[-1\.9"),
        ({"x": "nan"}, "'x' has 1 non-finite"),
        ({"x": "two_channels"}, r"\[N, C, H, W\] with C in \(1, 3\)"),
        ({"x_eval": "bigger"}, "'x_eval' has instances of shape"),
        ({"y_eval": None}, "both or neither"),
        ({"y": "short"}, r"'y' expected shape \(6,\)"),
        ({"y": "float"}, "'y' must hold integer class labels"),
        ({"y_eval": "negative"}, "'y_eval' labels must be non-negative"),
    ],
)
def test_write_rejects_bad_images_and_labels(tmp_path: Path, change: dict, match: str) -> None:
    x, ids, xe, y, ye = _images()
    arrays = {"x": x, "x_eval": xe, "y": y, "y_eval": ye}
    variants = {
        "scale": lambda a: a * 2,
        "nan": lambda a: np.where(np.arange(a.size).reshape(a.shape) == 5, np.nan, a),
        "two_channels": lambda a: np.concatenate([a, a], axis=1),
        "bigger": lambda a: np.zeros((3, 1, 5, 4)),
        "short": lambda a: a[:-1],
        "float": lambda a: a.astype(np.float64),
        "negative": lambda a: a - 1,
    }
    for name, how in change.items():
        arrays[name] = None if how is None else variants[how](arrays[name])
    with pytest.raises(DataError, match=match):
        write_version(
            tmp_path / "v",
            arrays["x"],
            ids,
            arrays["x_eval"],
            dataset="t",
            params={},
            y=arrays["y"],
            y_eval=arrays["y_eval"],
        )
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize(
    ("arrays", "drop", "match"),
    [
        ({"y": np.arange(5, dtype=np.int64)}, (), r"'y' has shape \(5,\)"),
        ({"y": -np.ones(6, dtype=np.int64)}, (), "'y' has negative class labels"),
        ({"y_eval": np.zeros(3)}, (), "'y_eval' has shape .* dtype <f8, expected"),
        ({"y": np.zeros(6, dtype=np.int32)}, (), "'y' has shape .* dtype <i4"),
        ({}, ("y_eval",), "holds arrays"),
        ({"x": np.full((6, 1, 4, 4), 1.5)}, (), "pixels must lie in"),
    ],
)
def test_load_rejects_tampered_labels_and_pixels(
    tmp_path: Path, arrays: dict, drop: tuple[str, ...], match: str
) -> None:
    x, ids, xe, y, ye = _images()
    v = write_version(tmp_path / "v", x, ids, xe, dataset="t", params={}, y=y, y_eval=ye)
    _rewrite(v.path, drop, **arrays)
    with pytest.raises(DataError, match=match):
        load_version(v.path, verify=False)


def test_changed_or_added_labels_break_the_digest(tmp_path: Path) -> None:
    x, ids, xe, y, ye = _images()
    v = write_version(tmp_path / "v", x, ids, xe, dataset="t", params={}, y=y, y_eval=ye)
    _rewrite(v.path, y=np.where(np.arange(6) == 0, 2, y).astype(np.int64))
    with pytest.raises(DigestMismatchError):
        load_version(v.path)
    gx, gids, gxe = _golden_arrays()
    u = write_version(tmp_path / "u", gx, gids, gxe, dataset="t", params={})
    _rewrite(u.path, y=np.zeros(6, dtype=np.int64), y_eval=np.zeros(2, dtype=np.int64))
    with pytest.raises(DigestMismatchError):
        load_version(u.path)


def test_digits_shapes_ranges_labels_and_split() -> None:
    raw = digits(seed=1)
    assert raw.x.shape == (1500, 1, 8, 8) and raw.x_eval.shape == (297, 1, 8, 8)
    assert raw.x.dtype == np.float64 and raw.x.min() == -1.0 and raw.x.max() == 1.0
    assert raw.y.dtype == np.int64 and set(raw.y.tolist()) == set(range(10))
    assert raw.y_eval.shape == (297,) and raw.y_eval.max() <= 9
    assert np.unique(raw.ids).size == 1500 and raw.ids.max() <= 1796
    assert not raw.is_anomaly.any()
    json.dumps(raw.params)
    assert raw.params == {
        "n_eval": 297,
        "train_size": None,
        "classes": None,
        "noise_frac": 0.0,
        "corrupt_class": None,
        "corrupt_frac": 0.0,
        "seed": 1,
    }
    # train_size draws from the same training pool; the eval set stays.
    small = digits(seed=1, train_size=300)
    assert small.x.shape[0] == 300 and np.isin(small.ids, raw.ids).all()
    np.testing.assert_array_equal(small.x_eval, raw.x_eval)
    with pytest.raises(ConfigError, match="train_size"):
        digits(train_size=2000)
    # The split and the eval set do not depend on the corruption.
    noisy = digits(seed=1, noise_frac=0.2)
    np.testing.assert_array_equal(noisy.ids, raw.ids)
    np.testing.assert_array_equal(noisy.x_eval, raw.x_eval)


def test_one_class_with_corrupt_class_and_noise(tmp_path: Path) -> None:
    kwargs = {"classes": [1], "corrupt_class": 7, "corrupt_frac": 0.1, "noise_frac": 0.05}
    raw = digits(**kwargs)
    clean = digits(classes=[1])
    n = clean.x.shape[0]
    k_corrupt, k_noise = int(np.floor(0.1 * n + 0.5)), int(np.floor(0.05 * n + 0.5))
    assert raw.x.shape[0] == n + k_corrupt
    assert sorted(set(raw.y.tolist())) == [1, 7] and int((raw.y == 7).sum()) == k_corrupt
    assert int(raw.is_anomaly.sum()) == k_corrupt + k_noise
    assert raw.is_anomaly[raw.y == 7].all()  # every injected other-class image is flagged
    noisy = raw.is_anomaly & (raw.y == 1)
    assert int(noisy.sum()) == k_noise
    # Noise replaced some clean images (same ids), the other clean ones are untouched.
    pos = np.searchsorted(clean.ids, raw.ids[raw.y == 1])
    same = (raw.x[raw.y == 1] == clean.x[pos]).all(axis=(1, 2, 3))
    np.testing.assert_array_equal(~same, noisy[raw.y == 1])
    assert (raw.y_eval == 1).all()
    np.testing.assert_array_equal(raw.x_eval, clean.x_eval)

    v = create_raw_version(tmp_path / "v", "digits", **kwargs)
    assert v.manifest.is_anomaly_ids == sorted(raw.ids[raw.is_anomaly].tolist())
    np.testing.assert_array_equal(v.y, raw.y)
    assert v.manifest.params["classes"] == [1] and v.manifest.params["corrupt_class"] == 7


def test_label_noise_flips_labels_only_and_records_them(tmp_path: Path) -> None:
    raw, clean = digits(label_noise=0.1, seed=3), digits(seed=3)
    k = int(np.floor(0.1 * clean.x.shape[0] + 0.5))
    flipped = raw.y != clean.y
    assert int(flipped.sum()) == k and int(raw.is_anomaly.sum()) == k
    np.testing.assert_array_equal(flipped, raw.is_anomaly)
    np.testing.assert_array_equal(raw.x, clean.x)  # only labels change, never images
    np.testing.assert_array_equal(raw.y_eval, clean.y_eval)  # nor held-out data
    assert set(raw.y[flipped].tolist()) <= set(range(10))
    assert raw.params["label_noise"] == 0.1 and "label_noise" not in clean.params
    np.testing.assert_array_equal(digits(label_noise=0.1, seed=3).y, raw.y)  # seeded

    # With one kept class plus a corrupt class, a flip goes to the other label present.
    mixed = digits(classes=[1], corrupt_class=7, corrupt_frac=0.1, label_noise=0.2)
    assert set(mixed.y.tolist()) == {1, 7}
    v = create_raw_version(tmp_path / "v", "digits", label_noise=0.1, seed=3)
    assert v.manifest.is_anomaly_ids == sorted(raw.ids[flipped].tolist())


def test_label_noise_needs_labels(tmp_path: Path) -> None:
    path = tmp_path / "u.npz"
    np.savez(path, x=np.zeros((10, 4, 4), dtype=np.uint8))
    with pytest.raises(DataError, match="no labels 'y'"):
        images_npz(path, label_noise=0.1)
    with pytest.raises(DataError, match="at least two classes"):
        digits(classes=[1], label_noise=0.1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"label_noise": 1.0}, r"label_noise must be in \[0, 1\)"),
        ({"noise_frac": 1.0}, r"noise_frac must be in \[0, 1\)"),
        ({"noise_frac": True}, "noise_frac"),
        ({"corrupt_frac": -0.1, "classes": [1], "corrupt_class": 2}, "corrupt_frac"),
        ({"corrupt_frac": 0.1}, "needs a corrupt_class"),
        ({"corrupt_class": 3}, "outside `classes`"),
        ({"corrupt_class": 1, "classes": [1, 2]}, "outside `classes`"),
        ({"corrupt_class": 10, "classes": [1]}, r"class label in 0\.\.9"),
        ({"classes": []}, "non-empty"),
        ({"classes": [1, 1]}, "distinct"),
        ({"classes": ["1"]}, "class label"),
        ({"seed": -1}, "seed"),
        ({"n_eval": 1797}, "n_eval must be below"),
        ({"n_eval": 0}, "n_eval must be an integer"),
    ],
)
def test_digits_rejects_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        digits(**kwargs)


def test_corruption_needs_enough_images() -> None:
    with pytest.raises(DataError, match="needs .* images of class 7"):
        digits(classes=[0, 1, 2, 3, 4, 5], corrupt_class=7, corrupt_frac=0.5)


def test_mnist_sample() -> None:
    raw = mnist_sample(classes=[3], seed=2)
    assert raw.x.shape[1:] == (1, 28, 28) and raw.x.shape[0] + raw.x_eval.shape[0] == 500
    assert raw.x.min() >= -1.0 and raw.x.max() == 1.0
    assert (raw.y == 3).all() and (raw.y_eval == 3).all()
    assert raw.params["n_eval"] == 1000 and raw.ids.max() < 5000
    assert "mnist_sample" in DATASETS


def _write_idx(path: Path, arr: np.ndarray) -> None:
    """torchvision's raw MNIST format: magic (0, 0, 8 = uint8, ndim), big-endian dims, data."""
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    path.write_bytes(header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes())


def _tiny_mnist(root: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    data = {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(40, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(40, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(20, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(20, dtype=np.uint8) % 10,
    }
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, arr in data.items():
        _write_idx(raw / name, arr)
    return data


def test_mnist_reads_torchvision_files(tmp_path: Path) -> None:
    data = _tiny_mnist(tmp_path)
    raw = mnist(tmp_path, classes=[1, 2], corrupt_class=5, corrupt_frac=0.25, seed=4)
    images, labels = data["train-images-idx3-ubyte"], data["train-labels-idx1-ubyte"]
    assert raw.x.shape == (10, 1, 28, 28) and raw.x_eval.shape == (4, 1, 28, 28)
    np.testing.assert_array_equal(raw.y, labels[raw.ids])
    np.testing.assert_array_equal(raw.x[:, 0], images[raw.ids] / 127.5 - 1.0)
    assert sorted(raw.ids[raw.is_anomaly].tolist()) == raw.ids[raw.y == 5].tolist()
    assert int((raw.y == 5).sum()) == 2  # round_half_up(0.25 * 8)
    assert set(raw.y_eval.tolist()) == {1, 2}
    assert raw.params["root"] == str(tmp_path.resolve()) and len(raw.params["sha256"]) == 4

    sub = mnist(tmp_path, train_size=15, n_eval=7, seed=1)
    assert sub.x.shape[0] == 15 and sub.x_eval.shape[0] == 7
    assert (sub.params["train_size"], sub.params["n_eval"]) == (15, 7)
    with pytest.raises(ConfigError, match="train_size=41 exceeds the 40"):
        mnist(tmp_path, train_size=41)


def test_mnist_missing_or_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"MNIST not found: .*MNIST/raw.*Nothing is downloaded"):
        mnist(tmp_path / "nowhere")
    _tiny_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / MNIST_FILES[3]).unlink()
    with pytest.raises(DataError, match=f"missing: {MNIST_FILES[3]}"):
        mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / MNIST_FILES[3]).write_bytes(b"\x00\x00\x08\x01garbage")
    with pytest.raises(DataError, match="corrupt or unreadable"):
        mnist(tmp_path)


def test_images_npz_split_uint8_with_labels(tmp_path: Path) -> None:
    x = np.arange(10 * 3 * 3, dtype=np.uint8).reshape(10, 3, 3) * 2
    y = np.arange(10) % 2
    np.savez(tmp_path / "d.npz", x=x, y=y)
    raw = images_npz(tmp_path / "d.npz", eval_frac=0.3, seed=0)
    assert raw.x.shape == (7, 1, 3, 3) and raw.x_eval.shape == (3, 1, 3, 3)
    np.testing.assert_array_equal(raw.x[:, 0], x[raw.ids] / 127.5 - 1.0)
    np.testing.assert_array_equal(raw.y, y[raw.ids])
    assert raw.is_anomaly is None and raw.params["eval_source"] == "split"
    one = images_npz(tmp_path / "d.npz", classes=[1], noise_frac=0.5)
    assert (one.y == 1).all() and (one.y_eval == 1).all() and one.is_anomaly.sum() > 0


def test_images_npz_float_rgb_with_eval_and_ids(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, xe = rng.uniform(-1, 1, (5, 3, 2, 2)), rng.uniform(-1, 1, (2, 3, 2, 2))
    np.savez(tmp_path / "d.npz", x=x, x_eval=xe, ids=np.array([9, 4, 7, 1, 0]))
    v = create_raw_version(tmp_path / "v", "images_npz", path=tmp_path / "d.npz")
    np.testing.assert_array_equal(v.x, x)
    np.testing.assert_array_equal(v.x_eval, xe)
    assert v.ids.tolist() == [9, 4, 7, 1, 0] and v.y is None and v.manifest.is_anomaly_ids is None


@pytest.mark.parametrize(
    ("arrays", "kwargs", "match"),
    [
        ({"x": np.zeros((4, 9))}, {}, r"expected images \[N, H, W\]"),
        ({"x": np.zeros((4, 2, 5, 5))}, {}, r"C in \(1, 3\), got shape \(4, 2, 5, 5\)$"),
        ({"x": np.zeros((4, 5, 5, 3))}, {}, "channels last"),
        ({"x": np.full((4, 2, 2), np.nan)}, {}, "non-finite"),
        ({"x": np.full((4, 2, 2), 2.0)}, {}, r"must lie in \[-1, 1\] \(or store uint8 0\.\.255\)"),
        ({"x": np.zeros((4, 2, 2), dtype=np.int32)}, {}, "must be uint8"),
        ({"y": np.zeros(3, dtype=np.int64)}, {}, r"'y' expected shape \(4,\)"),
        ({"y": -np.ones(4, dtype=np.int64)}, {}, "non-negative class labels"),
        ({"y": np.full(4, 0.5)}, {}, "'y' must hold integer class labels, found 0.5"),
        ({"y": np.array(list("abcd"))}, {}, "'y' must hold integer class labels, got dtype"),
        ({"y_eval": np.zeros(2, dtype=np.int64)}, {}, "'y_eval' needs"),
        ({"y": np.zeros(4, dtype=np.int64), "x_eval": np.zeros((2, 2, 2))}, {}, "needs labels"),
        ({"x_eval": np.zeros((2, 3, 3))}, {}, "'x_eval' images are"),
        ({}, {"classes": [0]}, "has no labels"),
        ({}, {"eval_frac": 1.0}, "eval_frac"),
        ({"missing_x": True}, {}, "missing array 'x'"),
    ],
)
def test_images_npz_rejects_bad_input(
    tmp_path: Path, arrays: dict, kwargs: dict, match: str
) -> None:
    data = {"x": np.zeros((4, 2, 2))}
    if arrays.pop("missing_x", False):
        data = {"z": np.zeros(1)}
    np.savez(tmp_path / "d.npz", **{**data, **arrays})
    with pytest.raises((DataError, ConfigError), match=match):
        images_npz(tmp_path / "d.npz", **kwargs)


def test_cleanse_carries_labels(tmp_path: Path) -> None:
    raw = create_raw_version(
        tmp_path / "raw", "digits", classes=[1], corrupt_class=7, corrupt_frac=0.1
    )
    harm = (raw.y == 7).astype(np.float64) + np.linspace(0, 0.5, raw.n)  # class 7 first
    table = ScoreTable(
        ids=raw.ids,
        harmfulness=harm,
        predicted_change=-harm,
        method="all",
        metric="all",
        dataset_digest=raw.digest,
        run="r1",
        extra={},
    )
    write_scores(tmp_path / "s.csv", table)
    k = int((raw.y == 7).sum())
    child = cleanse(raw, tmp_path / "s.csv", tmp_path / "c", remove_count=k)
    assert (child.y == 1).all() and child.n == raw.n - k
    np.testing.assert_array_equal(child.y, raw.y[raw.index_of(child.ids)])
    np.testing.assert_array_equal(child.y_eval, raw.y_eval)
    assert child.manifest.is_anomaly_ids == []
    assert load_version(child.path).digest == child.digest
