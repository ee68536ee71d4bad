from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from ganinf_mlops.errors import DataError, DigestMismatchError
from ganinf_mlops.influence.scores import HEADER, ScoreTable, meta_path, read_scores, write_scores


def _table(**overrides: object) -> ScoreTable:
    fields = {
        "ids": np.array([10, 11, 12, 13, 14]),
        "harmfulness": np.array([0.5, 2.0, 0.5, -1.0, 1.0 / 3.0]),
        "predicted_change": np.array([-0.5, -2.0, np.nan, 1.0, -1.0 / 3.0]),
        "method": "all",
        "metric": "all",
        "dataset_digest": "ab" * 32,
        "run": "run-1",
        "extra": {"k": [1, 2]},
    }
    fields.update(overrides)
    return ScoreTable(**fields)


def test_ranks_highest_harm_first_ties_by_id() -> None:
    t = _table()
    assert t.ranks().tolist() == [2, 1, 3, 5, 4]
    assert t.top_ids(3).tolist() == [11, 10, 12]
    # Tie order follows ids, not input order.
    flipped = _table(ids=np.array([12, 11, 10, 13, 14]))
    assert flipped.top_ids(3).tolist() == [11, 10, 12]


def test_round_trip_is_exact(tmp_path: Path) -> None:
    t = _table()
    path = tmp_path / "scores.csv"
    write_scores(path, t)
    lines = path.read_text().splitlines()
    assert lines[0] == HEADER
    assert lines[1] == "11,-2.0,2.0,1"
    assert [int(line.rsplit(",", 1)[1]) for line in lines[1:]] == [1, 2, 3, 4, 5]
    back = read_scores(path)
    order = t.order()
    np.testing.assert_array_equal(back.ids, t.ids[order])
    np.testing.assert_array_equal(back.harmfulness, t.harmfulness[order])  # bit-exact
    np.testing.assert_array_equal(back.predicted_change, t.predicted_change[order])  # NaN too
    assert (back.method, back.metric, back.dataset_digest, back.run, back.extra) == (
        "all",
        "all",
        "ab" * 32,
        "run-1",
        {"k": [1, 2]},
    )
    meta = json.loads(meta_path(path).read_text())
    assert meta["n"] == 5 and len(meta["csv_sha256"]) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv", "scores.csv.meta.json"]


def test_none_metric_and_run_round_trip(tmp_path: Path) -> None:
    t = _table(metric=None, run=None, method="isolation_forest", extra={})
    write_scores(tmp_path / "s.csv", t)
    back = read_scores(tmp_path / "s.csv")
    assert back.metric is None and back.run is None and back.method == "isolation_forest"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"harmfulness": np.array([0.5, np.nan, 0.5, -1.0, 0.0])}, "finite"),
        ({"ids": np.array([10, 11, 11, 13, 14])}, "unique"),
        ({"ids": np.arange(4)}, "differ in length"),
        ({"ids": np.arange(5.0)}, "integers"),
        ({"predicted_change": np.full(5, np.inf)}, "inf"),
    ],
)
def test_table_validation(overrides: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        _table(**overrides)


def _edit_csv(path: Path, old: str, new: str) -> None:
    """Edit the CSV and re-sign it, so the parser (not the hash check) must catch the problem."""
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    meta = json.loads(meta_path(path).read_text())
    meta["csv_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    meta_path(path).write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (HEADER, "id,harmfulness,predicted_change,rank", "header"),
        ("11,-2.0,2.0,1", "11,-2.0,nan,1", "harmfulness must be finite"),
        ("11,-2.0,2.0,1", "10,-2.0,2.0,1", "duplicate ids"),
        ("11,-2.0,2.0,1", "11,-2.0,2.0", "expected 4 fields"),
        ("11,-2.0,2.0,1", "11,-2.0,two,1", "cannot parse"),
        ("11,-2.0,2.0,1", "11.5,-2.0,2.0,1", "cannot parse"),
        ("11,-2.0,2.0,1", "11,-2.0,2.0,7", "rank column"),
        ("11,-2.0,2.0,1\n", "", "rows, sidecar says 5"),
    ],
)
def test_read_rejects_bad_csv(tmp_path: Path, old: str, new: str, match: str) -> None:
    path = tmp_path / "s.csv"
    write_scores(path, _table())
    _edit_csv(path, old, new)
    with pytest.raises(DataError, match=match):
        read_scores(path)


def test_read_detects_edit_without_resign(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    write_scores(path, _table())
    path.write_text(path.read_text().replace("11,-2.0,2.0,1", "11,-2.0,2.5,1"))
    with pytest.raises(DigestMismatchError, match="scores"):
        read_scores(path)


def test_read_rejects_missing_files_and_bad_sidecar(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    with pytest.raises(DataError, match="not found"):
        read_scores(path)
    write_scores(path, _table())
    good = json.loads(meta_path(path).read_text())
    for bad, match in [
        ("{", "not valid JSON"),
        (json.dumps({**good, "x": 1}), "sidecar keys"),
        (json.dumps({**good, "n": "5"}), "invalid n"),
        (json.dumps({**good, "format_version": 9}), "invalid format_version"),
    ]:
        meta_path(path).write_text(bad)
        with pytest.raises(DataError, match=match):
            read_scores(path)
    meta_path(path).unlink()
    with pytest.raises(DataError, match="sidecar s.csv.meta.json is missing"):
        read_scores(path)


def test_csv_and_sidecar_are_written_as_one_unit(tmp_path: Path, monkeypatch) -> None:
    """A failure while writing the sidecar (a full disk) replaces neither file."""
    import errno

    from ganinf_mlops.influence import scores

    path = tmp_path / "scores.csv"
    write_scores(path, _table())
    before = (path.read_bytes(), meta_path(path).read_bytes())

    def full_disk(obj, fh):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(scores, "dump_json", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_scores(path, _table(method="random", metric=None))
    assert (path.read_bytes(), meta_path(path).read_bytes()) == before
    with pytest.raises(OSError):
        write_scores(tmp_path / "new.csv", _table())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv", "scores.csv.meta.json"]
    monkeypatch.undo()
    assert read_scores(path).method == "all"
