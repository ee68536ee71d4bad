"""Evaluation report of a cleanse chain: run directories -> DVC metrics (JSON) and plots (CSV).

Input: the fresh runs of one chain in lineage order (run k trained on version k, version k
cleansed from version k-1), optionally the counterfactual replays (a replay of run k-1 on
version k). Everything is read from the runs' ``metrics.json`` and ``meta.json`` and from the
manifests of the versions they point at; nothing is recomputed.

The summary (`summarize`) uses the run ``metrics.json`` key names:

    all, disc_loss, gen_mean_error, gen_cov_error, n_instances, n_steps   final fresh run
    n_removed_total                                                       removed over the chain
    iterations: {"0": {...}, "1": {...}, ...}   per iteration k:
        the metrics of run k (as above), n_removed (by cleanse k), n_removed_total,
        n_anomalies (injected anomalies left in version k), n_anomalies_removed,
        and for k >= 1: predicted_change (summed estimate of the removal, from version k's
        manifest; in the unit of the scores' metric, absent for baselines), actual_change
        (replay k minus run k-1, same metric), fresh_change (change of `all` from run k-1 to
        run k), replay: {the replay's metrics}.

Timing (``train_seconds``) is left out: metrics must only change when results change.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ganinf_mlops.data.version import MANIFEST_FILE, Manifest
from ganinf_mlops.errors import DataError, DigestMismatchError, TrajectoryError
from ganinf_mlops.hashing import sha256_file
from ganinf_mlops.influence.targets import KEY_ALL
from ganinf_mlops.io import atomic_file, read_json, write_json

# Keys of a run's metrics.json that are not results of the run (left out of reports).
TIMING_KEYS = frozenset({"train_seconds"})
# Keys a replay's metrics.json adds (lifted to the iteration, not repeated under "replay").
CHANGE_KEYS = ("predicted_change", "actual_change")
# Column order of the plot CSVs: these first, then any other numeric metric, sorted.
METRIC_ORDER = ("all", "disc_loss", "gen_mean_error", "gen_cov_error", "n_instances", "n_steps")
ITERATION_COUNTS = ("n_removed", "n_removed_total", "n_anomalies", "n_anomalies_removed")
CHANGE_COLUMNS = ("iteration", "predicted_change", "actual_change", "fresh_change")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def run_metrics(run: str | os.PathLike[str]) -> dict[str, float]:
    """The numeric results in a run's metrics.json (no timing, no predicted/actual change)."""
    run = Path(run)
    raw = read_json(run / "metrics.json", f"run {run}:")
    if not isinstance(raw, dict) or KEY_ALL not in raw:
        raise TrajectoryError(f"run {run}: metrics.json has no '{KEY_ALL}'")
    return {
        k: v
        for k, v in raw.items()
        if k not in TIMING_KEYS and k not in CHANGE_KEYS and _is_number(v)
    }


def run_meta(run: str | os.PathLike[str]) -> dict[str, Any]:
    run = Path(run)
    meta = read_json(run / "meta.json", f"run {run}:")
    ok = (
        isinstance(meta, dict)
        and isinstance(meta.get("dataset"), dict)
        and {"path", "digest"} <= set(meta["dataset"])
        and isinstance(meta.get("schedule"), dict)
        and "kind" in meta["schedule"]
    )
    if not ok:
        raise TrajectoryError(f"run {run}: meta.json lacks dataset path/digest or schedule")
    return meta


def read_manifest(version: str | os.PathLike[str]) -> Manifest:
    version = Path(version)
    obj = read_json(version / MANIFEST_FILE, f"dataset version {version}:")
    return Manifest.from_json(obj, where=f"dataset version {version}: {MANIFEST_FILE}")


def run_version(run: str | os.PathLike[str]) -> tuple[Path, Manifest]:
    """The dataset version a run was trained on (its meta.json path) and that version's manifest.

    The manifest's digest must be the one the run recorded (the data it was trained on).
    """
    run = Path(run)
    dataset = run_meta(run)["dataset"]
    path = Path(os.path.normpath(run / dataset["path"]))
    manifest = read_manifest(path)
    if manifest.digest != dataset["digest"]:
        raise DigestMismatchError(
            f"run {run} was trained on another version than {path}",
            dataset["digest"],
            manifest.digest,
        )
    return path, manifest


def _replay_parent(replay: Path) -> Path:
    meta = run_meta(replay)
    info = meta["schedule"].get("replay_of")
    if meta["schedule"]["kind"] != "replay" or not isinstance(info, dict) or "run" not in info:
        raise TrajectoryError(f"run {replay} is not a replay (train --replay) run")
    return Path(os.path.normpath(replay / info["run"]))


def summarize(
    runs: Sequence[str | os.PathLike[str]],
    replays: Sequence[str | os.PathLike[str]] = (),
) -> dict[str, Any]:
    """The metrics summary of a chain (see the module docstring); DataError if runs do not chain.

    `runs`: fresh runs, iteration 0 first; run k's version must be cleansed from run k-1's.
    `replays`: any subset of the replays, in any order; each must replay run k-1 on version k for
    some k >= 1 (matched by dataset digest and parent run).
    """
    if not runs:
        raise DataError("evaluate needs at least one run")
    runs = [Path(r) for r in runs]
    versions = [run_version(r) for r in runs]
    for k in range(1, len(runs)):
        parent, child = versions[k - 1][1], versions[k][1]
        if child.parent_digest != parent.digest:
            raise DataError(
                f"run {runs[k]} (version {versions[k][0]}) is not trained on a version cleansed "
                f"from the version of run {runs[k - 1]} ({versions[k - 1][0]}): give --run in "
                "lineage order"
            )
    by_iteration: dict[int, Path] = {}
    for replay in map(Path, replays):
        _, manifest = run_version(replay)
        parent_run = _replay_parent(replay)
        ks = [k for k in range(1, len(runs)) if versions[k][1].digest == manifest.digest]
        if not ks:
            raise DataError(
                f"replay {replay} is not trained on the version of any --run after the first"
            )
        k = ks[0]
        parent_digest = run_meta(parent_run)["dataset"]["digest"]
        if parent_digest != versions[k - 1][1].digest:
            raise DataError(
                f"replay {replay} replays {parent_run}, which is not trained on the version of "
                f"{runs[k - 1]}"
            )
        if k in by_iteration:
            raise DataError(f"replays {by_iteration[k]} and {replay} are both of iteration {k}")
        by_iteration[k] = replay

    iterations: dict[str, dict[str, Any]] = {}
    removed_total = 0
    previous: dict[str, float] = {}
    for k, (run, (_, manifest)) in enumerate(zip(runs, versions, strict=True)):
        metrics = run_metrics(run)
        row: dict[str, Any] = dict(metrics)
        row["n_instances"] = manifest.n_instances
        n_removed = len(manifest.removed_ids) if k > 0 else 0
        removed_total += n_removed
        row["n_removed"] = n_removed
        row["n_removed_total"] = removed_total
        if manifest.is_anomaly_ids is not None:
            row["n_anomalies"] = len(manifest.is_anomaly_ids)
            if k == 0:
                row["n_anomalies_removed"] = 0
        if k > 0:
            parent = versions[k - 1][1]
            if parent.is_anomaly_ids is not None:
                row["n_anomalies_removed"] = len(
                    set(parent.is_anomaly_ids) & set(manifest.removed_ids)
                )
            if manifest.predicted_change is not None:
                row["predicted_change"] = manifest.predicted_change
            row["fresh_change"] = metrics[KEY_ALL] - previous[KEY_ALL]
            if k in by_iteration:
                replay = by_iteration[k]
                raw = read_json(replay / "metrics.json", f"run {replay}:")
                if isinstance(raw, dict) and _is_number(raw.get("actual_change")):
                    row["actual_change"] = raw["actual_change"]
                row["replay"] = run_metrics(replay)
        iterations[str(k)] = row
        previous = metrics
    final = iterations[str(len(runs) - 1)]
    summary: dict[str, Any] = {k: final[k] for k in previous}  # the last run's metrics
    summary["n_instances"] = final["n_instances"]
    summary["n_removed_total"] = removed_total
    summary["iterations"] = iterations
    return summary


def _metric_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    common = set.intersection(*(set(r) for r in rows)) if rows else set()
    numeric = {k for k in common if all(_is_number(r[k]) for r in rows)}
    numeric -= set(ITERATION_COUNTS) | set(CHANGE_COLUMNS)
    return [k for k in METRIC_ORDER if k in numeric] + sorted(numeric - set(METRIC_ORDER))


def iteration_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per iteration: iteration, the run's metrics, then the removal counts."""
    its = summary["iterations"]
    rows = [its[k] for k in sorted(its, key=int)]
    columns = _metric_columns(rows)
    counts = [c for c in ITERATION_COUNTS if all(c in r for r in rows)]
    return [
        {"iteration": int(k), **{c: its[k][c] for c in columns + counts}}
        for k in sorted(its, key=int)
    ]


def change_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per cleanse iteration (k >= 1): predicted, actual (replay) and fresh change."""
    its = summary["iterations"]
    return [
        {"iteration": int(k), **{c: its[k].get(c) for c in CHANGE_COLUMNS[1:]}}
        for k in sorted(its, key=int)
        if int(k) > 0
    ]


def scores_of_version(version: str | os.PathLike[str]) -> Path:
    """The scores file a cleansed version was made with (its manifest's scores_ref), checked."""
    version = Path(version)
    ref = read_manifest(version).scores_ref
    if not ref or "path" not in ref or "sha256" not in ref:
        raise DataError(f"dataset version {version} records no scores (is it a raw version?)")
    path = Path(os.path.normpath(version / ref["path"]))
    if not path.is_file():
        raise DataError(f"scores {path} of dataset version {version} are missing")
    actual = sha256_file(path)
    if actual != ref["sha256"]:
        raise DigestMismatchError(
            f"scores {path} of dataset version {version}", ref["sha256"], actual
        )
    return path


def score_histogram(
    versions: Sequence[str | os.PathLike[str]], bins: int = 40
) -> list[dict[str, Any]]:
    """Histogram of harmfulness of the scores behind each cleansed version, on common bins.

    `versions`: the cleansed versions of iterations 1, 2, ... (in order). One row per bin:
    bin, harmfulness (bin centre), bin_left, bin_right, then count_<k> (instances scored in
    iteration k) and removed_<k> (of those, removed by cleanse k) for each iteration k.
    """
    from ganinf_mlops.influence.scores import read_scores

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


def write_summary(path: str | os.PathLike[str], summary: dict[str, Any]) -> None:
    write_json(path, summary)
