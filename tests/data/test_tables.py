"""The `table` dataset source: CSV and Parquet files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ganinf_mlops.data.tables import table
from ganinf_mlops.data.version import create_raw_version
from ganinf_mlops.errors import ConfigError, DataError


def _frame(n: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": np.arange(n),  # integers are features too
            "kind": ["dog", "cat", "bird", "cat", "dog"] * (n // 5),
            "key": np.arange(100, 100 + n),
        }
    )


def test_string_labels_map_to_sorted_classes_and_follow_the_split(tmp_path: Path) -> None:
    frame = _frame()
    frame.to_csv(tmp_path / "t.csv", index=False)
    raw = table(tmp_path / "t.csv", label_column="kind", id_column="key", eval_frac=0.3, seed=2)
    names = ["bird", "cat", "dog"]
    assert raw.params["class_names"] == names
    assert raw.params["eval_source"] == "split" and raw.params["seed"] == 2
    assert raw.x.shape == (7, 2) and raw.x_eval.shape == (3, 2)
    # Each kept row keeps its features, label and id: the id column says which row it was.
    rows = raw.ids - 100
    np.testing.assert_array_equal(raw.x, frame[["a", "b"]].to_numpy()[rows])
    assert [names[c] for c in raw.y] == frame["kind"].to_numpy()[rows].tolist()
    eval_rows = sorted(set(range(10)) - set(rows.tolist()))
    np.testing.assert_array_equal(raw.x_eval, frame[["a", "b"]].to_numpy()[eval_rows])
    assert [names[c] for c in raw.y_eval] == frame["kind"].to_numpy()[eval_rows].tolist()


def test_parquet_reads_as_the_csv_does(tmp_path: Path) -> None:
    frame = _frame()
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.PQ", index=False)  # the suffix in any case
    a = create_raw_version(tmp_path / "va", "table", path=tmp_path / "t.csv", label_column="kind")
    b = create_raw_version(tmp_path / "vb", "table", path=tmp_path / "t.PQ", label_column="kind")
    assert a.digest == b.digest
    assert a.ids.tolist() == b.ids.tolist() and a.y is not None  # row numbers as ids


def test_integer_and_whole_float_labels(tmp_path: Path) -> None:
    frame = _frame().drop(columns="kind")
    frame["y"] = [2.0, 0.0, 1.0, 2.0, 0.0] * 2  # what a CSV column with a blank becomes
    frame.to_csv(tmp_path / "t.csv", index=False)
    raw = table(tmp_path / "t.csv", label_column="y")
    assert "class_names" not in raw.params and raw.y.dtype == np.int64
    assert sorted({*raw.y.tolist(), *raw.y_eval.tolist()}) == [0, 1, 2]


def test_evaluation_file_columns_in_any_order(tmp_path: Path) -> None:
    frame = _frame()
    frame.to_csv(tmp_path / "t.csv", index=False)
    ev = _frame(5)[["kind", "b", "a", "key"]]
    ev.to_csv(tmp_path / "e.csv", index=False)
    raw = table(tmp_path / "t.csv", label_column="kind", eval_path=tmp_path / "e.csv")
    assert raw.params["eval_source"] == "eval_file" and "eval_frac" not in raw.params
    assert raw.params["eval_path"] == str((tmp_path / "e.csv").resolve())
    assert raw.params["eval_sha256"]
    assert raw.x.shape == (10, 3)  # `key` is a feature here: no id_column
    np.testing.assert_array_equal(raw.x_eval, _frame(5)[["a", "b", "key"]].to_numpy())
    np.testing.assert_array_equal(raw.ids, np.arange(10))


@pytest.mark.parametrize(
    ("change", "kwargs", "match"),
    [
        (lambda f: f.assign(b=f.b.astype(str) + "x"), {}, "not numeric: b, kind"),
        (lambda f: f.assign(a=[np.nan] + [1.0] * 9), {"label_column": "kind"}, r"a \(1\)"),
        (lambda f: f.assign(b=[1.0] * 9 + [np.inf]), {"label_column": "kind"}, "first at row 9"),
        (
            lambda f: f,
            {"label_column": "label"},
            r"no column 'label' \(label_column\); its columns: a, b",
        ),
        (lambda f: f, {"label_column": "kind", "id_column": "nope"}, "no column 'nope'"),
        (lambda f: f.assign(key=1), {"label_column": "kind", "id_column": "key"}, "unique"),
        (lambda f: f.assign(kind=None), {"label_column": "kind"}, "10 missing values"),
        (
            lambda f: f.drop(columns="kind").assign(y=-1),
            {"label_column": "y"},
            "non-negative class labels",
        ),
        (lambda f: f.drop(columns="kind").assign(y=0.5), {"label_column": "y"}, "integer class"),
        (lambda f: f[["kind"]], {"label_column": "kind"}, "no feature columns"),
        (lambda f: f.iloc[:0], {}, "has no rows"),
        (lambda f: f, {"label_column": "kind", "id_column": "kind"}, "the same column"),
    ],
    ids=[
        "text",
        "nan",
        "inf",
        "label",
        "id",
        "ids",
        "label-missing",
        "negative",
        "fraction",
        "no-features",
        "empty",
        "same",
    ],  # fmt: skip
)
def test_bad_tables_are_refused_naming_the_column(
    tmp_path: Path, change, kwargs: dict, match: str
) -> None:
    change(_frame()).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises((DataError, ConfigError), match=match):
        table(tmp_path / "t.csv", **kwargs)


def test_ragged_csv_rows(tmp_path: Path) -> None:
    (tmp_path / "short.csv").write_text("a,b\n1,2\n3\n")  # a missing field reads as NaN
    with pytest.raises(DataError, match=r"feature columns b \(1\); first at row 1"):
        table(tmp_path / "short.csv")
    (tmp_path / "long.csv").write_text("a,b\n1,2\n3,4,5,6\n")
    with pytest.raises(DataError, match="is not a readable CSV table"):
        table(tmp_path / "long.csv")


@pytest.mark.parametrize(
    ("ev", "match"),
    [
        (lambda f: f.drop(columns="b"), "has 2 feature columns but the input .* has 3 .missing: b"),
        (lambda f: f.rename(columns={"b": "c"}), "missing: b; not in the input: c"),
        (lambda f: f.drop(columns="kind"), "no column 'kind'"),
        (lambda f: f.assign(kind=1), "numbers in one file, text in another"),
    ],
    ids=["fewer", "renamed", "no-labels", "label-kind"],
)
def test_evaluation_file_must_match_the_input(tmp_path: Path, ev, match: str) -> None:
    _frame().to_csv(tmp_path / "t.csv", index=False)
    ev(_frame(5)).to_csv(tmp_path / "e.csv", index=False)
    with pytest.raises(DataError, match=match):
        table(tmp_path / "t.csv", label_column="kind", eval_path=tmp_path / "e.csv")


def test_large_file_refused_unread(tmp_path: Path, monkeypatch) -> None:
    _frame().to_csv(tmp_path / "t.csv", index=False)
    monkeypatch.setenv("GANINF_MAX_TABLE_BYTES", "100")
    with pytest.raises(DataError, match="larger than 100 bytes.*GANINF_MAX_TABLE_BYTES"):
        table(tmp_path / "t.csv", label_column="kind")
    # A Parquet file's decoded size counts against npz_bytes.
    monkeypatch.delenv("GANINF_MAX_TABLE_BYTES")
    _frame().to_parquet(tmp_path / "t.parquet")
    monkeypatch.setenv("GANINF_MAX_NPZ_BYTES", "100")
    with pytest.raises(DataError, match="10 rows x 4 columns.*GANINF_MAX_NPZ_BYTES"):
        table(tmp_path / "t.parquet", label_column="kind")


def test_corrupt_parquet(tmp_path: Path) -> None:
    (tmp_path / "t.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="is not a readable PARQUET table"):
        table(tmp_path / "t.parquet")
