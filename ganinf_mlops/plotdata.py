"""Plot data of a cleanse chain for DVC plots: rows per iteration, per cleanse, and histograms
of the scores behind each cleansed version, written as CSV (atomically)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ganinf_mlops import keys
from ganinf_mlops.data.version import read_manifest
from ganinf_mlops.errors import DataError
from ganinf_mlops.influence.scores import read_scores
from ganinf_mlops.io import atomic_file
from ganinf_mlops.report import is_number, scores_of_version


def _metric_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    common = set.intersection(*(set(r) for r in rows)) if rows else set()
    numeric = {k for k in common if all(is_number(r[k]) for r in rows)}
    numeric -= {keys.ITERATION, *keys.REMOVAL_COUNTS, *keys.CHANGES, *keys.SEED_STATS}
    order = (keys.HEADLINE, keys.HEADLINE_STD, *keys.RUN_METRIC_ORDER)  # the headline first
    return [k for k in order if k in numeric] + sorted(numeric - set(order))


def iteration_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per iteration: iteration, the run's metrics, then the removal counts."""
    its = summary["iterations"]
    rows = [its[k] for k in sorted(its, key=int)]
    columns = _metric_columns(rows)
    counts = [c for c in keys.REMOVAL_COUNTS if all(c in r for r in rows)]
    return [
        {keys.ITERATION: int(k), **{c: its[k][c] for c in columns + counts}}
        for k in sorted(its, key=int)
    ]


def change_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per cleanse iteration (k >= 1): predicted, actual (replay) and fresh change of
    the scored metric, and the headline's improvement (sign-normalised: > 0 is better)."""
    its = summary["iterations"]
    return [
        {
            keys.ITERATION: int(k),
            **{c: its[k].get(c) for c in (*keys.CHANGES, keys.IMPROVEMENT)},
        }
        for k in sorted(its, key=int)
        if int(k) > 0
    ]


def score_histogram(
    versions: Sequence[str | os.PathLike[str]], bins: int = 40
) -> list[dict[str, Any]]:
    """Histogram of harmfulness of the scores behind each cleansed version, on common bins.

    `versions`: the cleansed versions of iterations 1, 2, ... (in order). One row per bin:
    bin, harmfulness (bin centre), bin_left, bin_right, then count_<k> (instances scored in
    iteration k) and removed_<k> (of those, removed by cleanse k) for each iteration k.
    """
    if bins < 1:
        raise DataError(f"bins must be >= 1, got {bins}")
    tables = []
    for version in versions:
        manifest = read_manifest(version)
        table = read_scores(scores_of_version(version))
        removed = np.isin(table.ids, np.asarray(manifest.removed_ids, dtype=np.int64))
        tables.append((table.harmfulness, removed))
    if not tables:
        return []
    values = np.concatenate([h for h, _ in tables])
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    rows = [
        {
            "bin": b,
            "harmfulness": float((edges[b] + edges[b + 1]) / 2),
            "bin_left": float(edges[b]),
            "bin_right": float(edges[b + 1]),
        }
        for b in range(bins)
    ]
    for k, (harm, removed) in enumerate(tables, start=1):
        counts = np.histogram(harm, bins=edges)[0]
        counts_removed = np.histogram(harm[removed], bins=edges)[0]
        for b, row in enumerate(rows):
            row[f"count_{k}"] = int(counts[b])
            row[f"removed_{k}"] = int(counts_removed[b])
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest string that round-trips
    return str(value)


def write_csv(path: str | os.PathLike[str], rows: Sequence[dict[str, Any]]) -> None:
    """Write rows (same keys, in order) as a CSV atomically; None becomes an empty cell."""
    if not rows:
        raise DataError(f"nothing to write to {path}")
    columns = list(rows[0])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    with atomic_file(path) as fh:
        fh.write(buf.getvalue())
