"""Cleansing: remove the top-ranked instances of a score table, writing a child dataset version."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ganinf_mlops import keys
from ganinf_mlops.data.datasets import round_half_up
from ganinf_mlops.data.version import DatasetVersion, Provenance, write_version
from ganinf_mlops.errors import ConfigError, DataError, DigestMismatchError
from ganinf_mlops.hashing import sha256_file
from ganinf_mlops.influence.scores import ScoreTable, read_scores

log = logging.getLogger(__name__)


def removal_count(n: int, remove_frac: float | None, remove_count: int | None) -> int:
    """How many of `n` instances to remove; at least one, and at least one must remain."""
    if (remove_frac is None) == (remove_count is None):
        raise ConfigError("give exactly one of --remove-frac and --remove-count")
    if remove_frac is not None:
        if isinstance(remove_frac, bool) or not (
            isinstance(remove_frac, int | float) and 0.0 < remove_frac < 1.0
        ):
            raise ConfigError(f"--remove-frac must be in (0, 1), got {remove_frac!r}")
        k = max(1, round_half_up(remove_frac * n))
    else:
        if isinstance(remove_count, bool) or not isinstance(remove_count, int | np.integer):
            raise ConfigError(f"--remove-count must be an integer, got {remove_count!r}")
        if remove_count < 1:
            raise ConfigError(f"--remove-count must be >= 1, got {remove_count}")
        k = int(remove_count)
    if k >= n:
        raise ConfigError(f"removing {k} of {n} instances would leave no data")
    return k


def _check_scores_match(version: DatasetVersion, table: ScoreTable, scores_path: Path) -> None:
    if table.dataset_digest != version.digest:
        raise DigestMismatchError(
            f"scores {scores_path} were computed for another dataset version than {version.path}",
            version.digest,
            table.dataset_digest,
        )
    missing = np.setdiff1d(version.ids, table.ids)
    unknown = np.setdiff1d(table.ids, version.ids)
    if missing.size or unknown.size:
        raise DataError(
            f"scores {scores_path} do not cover the ids of {version.path}: "
            f"{missing.size} missing, {unknown.size} unknown"
        )


def cleanse(
    version: DatasetVersion,
    scores_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    remove_frac: float | None = None,
    remove_count: int | None = None,
    force: bool = False,
) -> DatasetVersion:
    """Write `out_dir`: `version` without its most harmful instances according to the scores."""
    scores_path = Path(scores_path).resolve()
    out_dir = Path(out_dir)
    # Replacing the input (or a directory holding it) with --force would destroy the parent.
    src, dst = version.path.resolve(), out_dir.resolve()
    if src == dst or src.is_relative_to(dst):
        raise ConfigError(f"output {out_dir} would overwrite the input version {version.path}")
    k = removal_count(version.n, remove_frac, remove_count)
    table = read_scores(scores_path)
    _check_scores_match(version, table, scores_path)

    removed = table.top_ids(k)
    keep = ~np.isin(version.ids, removed)
    change = table.predicted_change[np.isin(table.ids, removed)]
    predicted = float(change.sum()) if np.isfinite(change).all() else None
    anomalies = version.manifest.is_anomaly_ids
    if anomalies is not None:
        anomalies = sorted(set(anomalies) - set(removed.tolist()))

    child = write_version(
        out_dir,
        version.x[keep],
        version.ids[keep],
        version.x_eval,
        dataset="cleanse",
        params={"remove_frac": remove_frac, "remove_count": remove_count, keys.N_REMOVED: k},
        provenance=Provenance(
            parent=version,
            removed_ids=removed,
            method=table.method,
            # Relative to the new version, so the manifest does not depend on where work lives.
            scores_ref={
                "path": os.path.relpath(scores_path, dst),
                "sha256": sha256_file(scores_path),
            },
            predicted_change=predicted,
            metric=table.metric,
        ),
        is_anomaly_ids=anomalies,
        force=force,
    )
    log.info(
        "removed %d of %d instances (method %s); predicted change %s",
        k,
        version.n,
        table.method,
        "n/a" if predicted is None else f"{predicted:.6g}",
    )
    return child
