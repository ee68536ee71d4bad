"""Where a chain of cleanses stops, for the job and for the DVC pipeline alike.

`ganinf loop` stops when a cleanse abstains (no instance predicted to help, the ensemble's
evidence does not hold, the scored model did not fit: NothingToRemoveError) and, with
`job.stop_when_worse`, after an iteration whose fresh retraining did not improve its metric.
A DVC pipeline is a fixed graph of stages: its cleanse stage applies the same rules and, rather
than failing (which stops `dvc repro`), passes its input through as a version that records why
(`cleanse.pass_through`); the stages after it run on the same data, later cleanses stay stopped,
and `ganinf evaluate` reports the stop (`mark_stops`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ganinf_mlops import keys
from ganinf_mlops.cleanse import agreement_params, cleanse, pass_through
from ganinf_mlops.config import ON_ABSTAIN
from ganinf_mlops.data.lineage import ancestor_digests
from ganinf_mlops.data.manifest import STOPPED
from ganinf_mlops.data.version import DatasetVersion
from ganinf_mlops.errors import ConfigError, DigestMismatchError, NothingToRemoveError
from ganinf_mlops.report import run_version, summarize
from ganinf_mlops.train.rundir import RunDir

log = logging.getLogger(__name__)


def improved(row: dict[str, Any]) -> bool:
    """Did fresh retraining improve the row's metric (in the metric's direction)?"""
    change = row.get(keys.FRESH_CHANGE)
    if change is None:
        return False
    return keys.improvement(row["metric"], change) > 0


def worse_reason(previous_run: str | os.PathLike[str], run: str | os.PathLike[str]) -> str | None:
    """Why to stop after the iteration that made `run`'s version from `previous_run`'s, judged
    as `ganinf loop --stop-when-worse` judges it; None when it improved."""
    row = summarize([previous_run, run])["iterations"]["1"]
    return None if improved(row) else f"{row['metric']} did not improve under fresh retraining"


def iteration_of(version: DatasetVersion) -> int:
    """The number of the cleanse that makes a child of `version` (1 for the raw version)."""
    return len(ancestor_digests(version))


def _check_runs(version: DatasetVersion, run: Path | None, previous_run: Path) -> Path:
    if run is None:
        raise ConfigError("--previous-run is judged against --run, the fresh run of --data")
    if version.manifest.parent_digest is None:
        raise ConfigError(
            f"--previous-run: {version.path} is a raw version, with no iteration before it"
        )
    for r, digest, what in (
        (run, version.digest, f"--data {version.path}"),
        (previous_run, version.manifest.parent_digest, f"the parent of {version.path}"),
    ):
        if RunDir(r).dataset_digest != digest:
            raise DigestMismatchError(
                f"run {r} is not trained on {what}", digest, RunDir(r).dataset_digest
            )
    return run


def cleanse_or_stop(
    version: DatasetVersion,
    scores_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    on_abstain: str = "fail",
    stop_when_worse: bool = False,
    run: Path | None = None,
    previous_run: Path | None = None,
    force: bool = False,
    **options: Any,
) -> tuple[DatasetVersion, str | None]:
    """`cleanse.cleanse(version, scores_path, out_dir, **options)` unless the chain stops here:
    `version` is itself a stop, or (`stop_when_worse`, with the fresh `run` of `version` and
    `previous_run` of its parent) its iteration did not improve, or the cleanse abstains. Then,
    with `on_abstain` "pass", the child passes `version` through; with "fail", the
    NothingToRemoveError. Returns the child and why it stopped (None: it was cleansed)."""
    if on_abstain not in ON_ABSTAIN:
        raise ConfigError(f"on_abstain must be one of {', '.join(ON_ABSTAIN)}, got {on_abstain!r}")
    i = iteration_of(version)
    reason = version.manifest.stopped  # a chain that stopped stays stopped
    if reason is None and stop_when_worse and previous_run is not None:
        why = worse_reason(previous_run, _check_runs(version, run, previous_run))
        reason = None if why is None else f"iteration {i - 1}: {why}"
    agree = None
    if reason is None:
        try:
            return cleanse(version, scores_path, out_dir, force=force, **options), None
        except NothingToRemoveError as exc:
            if on_abstain == "fail":
                raise
            reason, agree = f"iteration {i}: {exc}", exc.agreement
    elif on_abstain == "fail":
        raise NothingToRemoveError(f"not cleansing {version.path}: stopped at {reason}")
    params = {
        k: options.get(k) for k in ("remove_frac", "remove_count", "policy", "threshold")
    } | agreement_params(agree, options.get("min_agreement"))
    log.info("stopped: %s", reason)
    return pass_through(version, scores_path, out_dir, reason, params=params, force=force), reason


def mark_stops(summary: dict[str, Any], runs: Sequence[str | os.PathLike[str]]) -> dict[str, Any]:
    """`summary` (of `runs`, report.summarize) with where the chain stopped: `stopped` on each
    iteration whose version passed its parent through, and at the top the first stop (as
    summary.json's job.stopped of `ganinf loop`; absent when no cleanse stopped: DVC's metrics
    leave out null values)."""
    manifests = []
    for r in runs:
        manifest = run_version(r)[1]
        if not manifests or manifests[-1].digest != manifest.digest:  # other seeds: one iteration
            manifests.append(manifest)
    first = None
    for k, manifest in enumerate(manifests):
        if manifest.stopped is not None:
            summary["iterations"][str(k)][STOPPED] = manifest.stopped
            first = first or manifest.stopped
    if first is not None:
        summary[STOPPED] = first
    return summary
