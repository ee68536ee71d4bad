"""Score tables: one harmfulness score per training instance, as a CSV plus a JSON sidecar.

Sign convention, the same for every method and metric:

* ``harmfulness`` = predicted *improvement* of the evaluation metric if the instance is removed
  (positive = removing it helps). Whether the metric is higher- or lower-is-better has already
  been folded in by whoever produced the scores; this module only ranks.
* ``predicted_change`` = predicted ``V(without j) - V(all)`` in the metric's own units, or NaN for
  methods that predict no metric change (e.g. isolation forest).

Rank 1 is the most harmful instance (highest harmfulness); ties go to the smaller id.

On disk: ``<path>`` is a CSV ``id,predicted_change,harmfulness,rank`` sorted by rank with floats
written at full precision, and ``<path>.meta.json`` records method, metric, the digest of the
dataset version scored, the run, the row count, free-form ``extra`` and the CSV's sha256.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganinf_mlops.errors import DataError, DigestMismatchError
from ganinf_mlops.io import atomic_file, dump_json, read_json
from ganinf_mlops.metrics.specs import spec

HEADER = "id,predicted_change,harmfulness,rank"
META_SUFFIX = ".meta.json"
META_FORMAT_VERSION = 1
_META_KEYS = {
    "format_version",
    "method",
    "metric",
    "dataset_digest",
    "run",
    "n",
    "extra",
    "csv_sha256",
}


@dataclass(frozen=True)
class ScoreTable:
    ids: np.ndarray
    harmfulness: np.ndarray
    predicted_change: np.ndarray
    method: str
    metric: str | None
    dataset_digest: str
    run: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids)
        if ids.ndim != 1 or ids.size == 0:
            raise DataError(f"score table ids must be a non-empty 1-D array, got shape {ids.shape}")
        if ids.dtype.kind not in "iu":
            raise DataError(f"score table ids must be integers, got dtype {ids.dtype}")
        ids = ids.astype(np.int64)
        harm = np.asarray(self.harmfulness, dtype=np.float64)
        change = np.asarray(self.predicted_change, dtype=np.float64)
        if harm.shape != ids.shape or change.shape != ids.shape:
            raise DataError(
                f"score table columns differ in length: ids {ids.shape}, "
                f"harmfulness {harm.shape}, predicted_change {change.shape}"
            )
        if not np.isfinite(harm).all():
            raise DataError("score table harmfulness must be finite (no NaN/inf)")
        if np.isinf(change).any():
            raise DataError("score table predicted_change must be finite or NaN, not inf")
        if np.unique(ids).size != ids.size:
            raise DataError("score table ids must be unique")
        for name, value in (("ids", ids), ("harmfulness", harm), ("predicted_change", change)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def n(self) -> int:
        return int(self.ids.size)

    def order(self) -> np.ndarray:
        """Row positions from most to least harmful (ties: smaller id first)."""
        # lexsort sorts by the last key first.
        return np.lexsort((self.ids, -self.harmfulness))

    def ranks(self) -> np.ndarray:
        """Rank of each row (1 = most harmful), aligned with `ids`."""
        ranks = np.empty(self.n, dtype=np.int64)
        ranks[self.order()] = np.arange(1, self.n + 1)
        return ranks

    def aligned_to(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(harmfulness, predicted_change) in the order of `ids`, which must be this table's ids."""
        pos = positions(self.ids, ids)
        if pos is None:
            raise DataError("score table ids do not match the dataset version's ids")
        return self.harmfulness[pos], self.predicted_change[pos]

    def top_ids(self, k: int) -> np.ndarray:
        """Ids of the `k` most harmful instances, most harmful first."""
        return self.ids[self.order()[:k]]

    def higher_is_better(self) -> bool | None:
        """The direction of the table's metric: its registration's (`metrics.specs`); for a name
        registered here by no problem kind, the flag the table records (`extra`, written by every
        influence method for readers of the format); None where neither says."""
        metric = spec(self.metric) if self.metric else None
        if metric is not None and metric.higher_is_better is not None:
            return metric.higher_is_better
        flag = self.extra.get("higher_is_better")
        return flag if isinstance(flag, bool) else None


def positions(have: np.ndarray, want: np.ndarray) -> np.ndarray | None:
    """Positions p with have[p] == want, when `want` is `have` in another order; else None."""
    have, want = np.asarray(have, dtype=np.int64), np.asarray(want, dtype=np.int64)
    if have.size != want.size or have.size == 0:
        return None
    order = np.argsort(have, kind="stable")
    pos = order[np.minimum(np.searchsorted(have, want, sorter=order), have.size - 1)]
    return pos if np.array_equal(have[pos], want) else None


def meta_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    return path.with_name(path.name + META_SUFFIX)


def _fmt(value: float) -> str:
    # repr of a Python float is the shortest string that round-trips exactly.
    return repr(float(value))


def write_scores(path: str | os.PathLike[str], table: ScoreTable) -> None:
    """Write the CSV and its sidecar as one unit: both are complete in temp files before either
    replaces anything, so a failure (a full disk) leaves the old pair, or nothing, behind."""
    path = Path(path)
    try:
        json.dumps(table.extra, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise DataError(f"score table extra must be JSON-serialisable: {e}") from None
    ranks = table.ranks()
    lines = [HEADER]
    for i in table.order():
        pc, harm = table.predicted_change[i], table.harmfulness[i]
        lines.append(f"{int(table.ids[i])},{_fmt(pc)},{_fmt(harm)},{int(ranks[i])}")
    data = ("\n".join(lines) + "\n").encode("ascii")
    meta = {
        "format_version": META_FORMAT_VERSION,
        "method": table.method,
        "metric": table.metric,
        "dataset_digest": table.dataset_digest,
        "run": table.run,
        "n": table.n,
        "extra": table.extra,
        "csv_sha256": hashlib.sha256(data).hexdigest(),
    }
    with atomic_file(path, "wb") as csv_fh:
        csv_fh.write(data)
        csv_fh.flush()
        os.fsync(csv_fh.fileno())  # on disk before the sidecar is written
        with atomic_file(meta_path(path)) as meta_fh:
            dump_json(meta, meta_fh)


def _read_meta(path: Path) -> dict[str, Any]:
    meta = read_json(meta_path(path), f"scores {path}: sidecar")
    if not isinstance(meta, dict) or set(meta) != _META_KEYS:
        got = sorted(meta) if isinstance(meta, dict) else type(meta).__name__
        raise DataError(f"scores {path}: sidecar keys {got}, expected {sorted(_META_KEYS)}")
    checks = {
        "format_version": meta["format_version"] == META_FORMAT_VERSION,
        "method": isinstance(meta["method"], str),
        "metric": meta["metric"] is None or isinstance(meta["metric"], str),
        "dataset_digest": isinstance(meta["dataset_digest"], str),
        "run": meta["run"] is None or isinstance(meta["run"], str),
        "n": isinstance(meta["n"], int) and not isinstance(meta["n"], bool),
        "extra": isinstance(meta["extra"], dict),
        "csv_sha256": isinstance(meta["csv_sha256"], str),
    }
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise DataError(f"scores {path}: sidecar has invalid {', '.join(bad)}")
    return meta


def _parse_row(path: Path, lineno: int, line: str) -> tuple[int, float, float, int]:
    fields = line.split(",")
    if len(fields) != 4:
        raise DataError(f"scores {path}:{lineno}: expected 4 fields, got {len(fields)}")
    try:
        id_, change, harm, rank = int(fields[0]), float(fields[1]), float(fields[2]), int(fields[3])
    except ValueError:
        raise DataError(f"scores {path}:{lineno}: cannot parse {line!r}") from None
    if not math.isfinite(harm):
        raise DataError(f"scores {path}:{lineno}: harmfulness must be finite, got {fields[2]}")
    return id_, change, harm, rank


def read_scores(path: str | os.PathLike[str]) -> ScoreTable:
    """Read and check a score table written by `write_scores`; DataError on any problem."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"scores file {path} not found")
    meta = _read_meta(path)
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != meta["csv_sha256"]:
        raise DigestMismatchError(f"scores {path}", meta["csv_sha256"], actual)
    try:
        lines = data.decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"scores {path}: not an ASCII CSV file") from None
    if not lines or lines[0] != HEADER:
        raise DataError(f"scores {path}: header must be {HEADER!r}")
    rows = [_parse_row(path, i, line) for i, line in enumerate(lines[1:], start=2)]
    if len(rows) != meta["n"]:
        raise DataError(f"scores {path}: {len(rows)} rows, sidecar says {meta['n']}")
    if not rows:
        raise DataError(f"scores {path}: no rows")
    ids, change, harm, rank = (np.array(col) for col in zip(*rows, strict=True))
    if np.unique(ids).size != ids.size:
        raise DataError(f"scores {path}: duplicate ids")
    table = ScoreTable(
        ids=ids,  # ScoreTable rejects ids that are not int64-representable
        harmfulness=harm.astype(np.float64),
        predicted_change=change.astype(np.float64),
        method=meta["method"],
        metric=meta["metric"],
        dataset_digest=meta["dataset_digest"],
        run=meta["run"],
        extra=meta["extra"],
    )
    if not np.array_equal(table.ranks(), rank.astype(np.int64)):
        raise DataError(f"scores {path}: rank column disagrees with harmfulness order")
    return table
