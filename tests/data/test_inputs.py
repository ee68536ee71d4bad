"""A user's own file: labels of the `npz` source, evaluation files, and `input_data` / `read_input`
(which source reads a file, what kind of data it holds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ganinf_mlops.data.datasets import npz
from ganinf_mlops.data.images import images_npz
from ganinf_mlops.data.inputs import IMAGES, LABELLED, VECTORS, input_data, read_input
from ganinf_mlops.data.version import create_raw_version
from ganinf_mlops.errors import ConfigError, DataError


def _vectors(n: int = 20, d: int = 3) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(n, d))


def test_npz_labels_travel_through_the_split(tmp_path: Path) -> None:
    x, y = _vectors(), np.arange(20) % 3
    np.savez(tmp_path / "d.npz", x=x, y=y.astype(np.float32))  # whole floats are labels too
    raw = npz(tmp_path / "d.npz", eval_frac=0.25, seed=4)
    assert raw.y.dtype == np.int64 and raw.y_eval.shape == (5,)
    np.testing.assert_array_equal(raw.y, y[raw.ids])  # ids: the rows of the file
    held = np.setdiff1d(np.arange(20), raw.ids)
    np.testing.assert_array_equal(raw.x_eval, x[held])
    np.testing.assert_array_equal(raw.y_eval, y[held])
    v = create_raw_version(tmp_path / "v", "npz", path=tmp_path / "d.npz")
    assert v.y is not None and v.y_eval is not None  # written, not dropped


def test_npz_labels_with_x_eval_in_the_file(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=_vectors(), y=np.zeros(20, int), x_eval=_vectors(4),
             y_eval=np.ones(4, int))  # fmt: skip
    raw = npz(tmp_path / "d.npz")
    assert raw.params["eval_source"] == "file" and raw.y_eval.tolist() == [1, 1, 1, 1]


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"y": np.zeros(19, int)}, r"'y' expected shape \(20,\), one label per row of 'x'"),
        ({"y": np.full(20, 0.5)}, "'y' must hold integer class labels, found 0.5"),
        ({"y": np.array(["a"] * 20)}, "'y' must hold integer class labels, got dtype <U1"),
        ({"y": np.zeros((20, 1), int)}, "'y' expected shape"),
        ({"y": -np.ones(20, int)}, "'y' must hold non-negative class labels"),
        ({"y_eval": np.zeros(4, int)}, "'y_eval' needs both 'x_eval' and 'y'"),
        ({"y": np.zeros(20, int), "x_eval": _vectors(4)}, "'x_eval' needs labels 'y_eval'"),
        (
            {"y": np.zeros(20, int), "x_eval": _vectors(4), "y_eval": np.zeros(3, int)},
            r"'y_eval' expected shape \(4,\)",
        ),
    ],  # fmt: skip
    ids=["short", "fraction", "text", "2d", "negative", "y-eval", "no-y-eval", "y-eval-short"],
)
def test_npz_bad_labels_name_the_key(tmp_path: Path, arrays: dict, match: str) -> None:
    np.savez(tmp_path / "d.npz", x=_vectors(), **arrays)
    with pytest.raises(DataError, match=match):
        npz(tmp_path / "d.npz")


def test_npz_evaluation_file(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=_vectors(), y=np.arange(20) % 2)
    np.savez(tmp_path / "e.npz", x=_vectors(6), y=np.arange(6) % 2)
    raw = npz(tmp_path / "d.npz", eval_path=tmp_path / "e.npz")
    assert raw.x.shape == (20, 3) and raw.x_eval.shape == (6, 3) and raw.y_eval.shape == (6,)
    assert raw.params["eval_source"] == "eval_file" and raw.ids is None
    for arrays, match in [
        ({"x": _vectors(6, 2), "y": np.zeros(6, int)}, "has 2 features per row but the input"),
        ({"x": _vectors(6)}, "needs labels 'y' since the input has them"),
    ]:
        np.savez(tmp_path / "e.npz", **arrays)
        with pytest.raises(DataError, match=match):
            npz(tmp_path / "d.npz", eval_path=tmp_path / "e.npz")
    np.savez(tmp_path / "u.npz", x=_vectors())
    np.savez(tmp_path / "e.npz", x=_vectors(6), y=np.arange(6) % 2)
    with pytest.raises(DataError, match="has labels 'y' but the input has none"):
        npz(tmp_path / "u.npz", eval_path=tmp_path / "e.npz")
    np.savez(tmp_path / "both.npz", x=_vectors(), x_eval=_vectors(3))
    with pytest.raises(ConfigError, match="holds 'x_eval' already"):
        npz(tmp_path / "both.npz", eval_path=tmp_path / "e.npz")


def test_images_evaluation_file(tmp_path: Path) -> None:
    img = np.zeros((10, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=img, y=np.arange(10) % 2)
    np.savez(tmp_path / "e.npz", x=img[:4], y=np.arange(4) % 2)
    raw = images_npz(tmp_path / "d.npz", eval_path=tmp_path / "e.npz")
    assert raw.x.shape == (10, 1, 8, 8) and raw.x_eval.shape == (4, 1, 8, 8)
    np.savez(tmp_path / "e.npz", x=np.zeros((4, 4, 4), dtype=np.uint8), y=np.zeros(4, int))
    with pytest.raises(
        DataError, match=r"images of shape \(1, 4, 4\) but the input .* \(1, 8, 8\)"
    ):
        images_npz(tmp_path / "d.npz", eval_path=tmp_path / "e.npz")


def test_the_file_picks_its_source_and_kind(tmp_path: Path) -> None:
    np.savez(tmp_path / "v.npz", x=_vectors())
    np.savez(tmp_path / "l.npz", x=_vectors(), y=np.arange(20) % 2)
    np.savez(tmp_path / "i.npz", x=np.zeros((10, 8, 8), dtype=np.uint8))
    frame = pd.DataFrame({"a": np.arange(10.0), "y": ["p", "q"] * 5})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    cases = [
        ("v.npz", {}, "npz", VECTORS),
        ("l.npz", {}, "npz", LABELLED),
        ("i.npz", {}, "images_npz", IMAGES),
        ("t.csv", {"label_column": "y"}, "table", LABELLED),
        ("t.parquet", {"label_column": "y"}, "table", LABELLED),
    ]
    for name, kwargs, dataset, kind in cases:
        user = read_input(tmp_path / name, **kwargs)
        assert (user.dataset, user.kind) == (dataset, kind), name
        assert user.params["path"] == str((tmp_path / name).resolve())
    mixed = read_input(tmp_path / "t.csv", label_column="y", eval_path=tmp_path / "t.parquet")
    assert mixed.raw.params["eval_source"] == "eval_file"  # a table evaluates a table
    with pytest.raises(DataError, match="not numeric: y"):
        read_input(tmp_path / "t.csv")


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("d.txt", {}, "unknown input format '.txt'; give an .npz, .csv, .parquet or .pq file"),
        ("v.npz", {"label_column": "y"}, "holds its labels in the array 'y'"),
        ("v.npz", {"eval_path": "e.csv"}, "must be an .npz, as the input is"),
        ("v.npz", {"eval_fraction": 0.1}, "bad parameters for dataset 'npz'"),
    ],
)
def test_input_data_refuses(tmp_path: Path, name: str, kwargs: dict, match: str) -> None:
    np.savez(tmp_path / "v.npz", x=_vectors())
    (tmp_path / "d.txt").write_text("1,2\n")
    if "eval_path" in kwargs:
        kwargs["eval_path"] = tmp_path / kwargs["eval_path"]
    with pytest.raises(ConfigError, match=match):
        input_data(tmp_path / name, **kwargs)
