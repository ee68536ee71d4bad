"""Cleansing: remove the instances a score table ranks most harmful, writing a child version.

Selection policies (how many of the at most k = remove_frac * N top-ranked instances go):
    positive   only those predicted to improve the metric (harmfulness > 0); the default
    threshold  only those with harmfulness > `threshold`
    top        all k, whatever their scores (the fixed-fraction cleanse of Terashita et al.)
Baselines predict no change and score every instance positive, so for them `positive` is `top`.

Scores of an ensemble (influence averaged over K runs with different training seeds) carry each
member's own estimate. Their *agreement* is cross-validated: member m is held out, the selection is
made from the mean of the other K-1, and m is asked whether that set improves the metric. With
`min_agreement` a cleanse goes ahead only when at least that fraction of the members says yes: a
selection that holds up only on the runs that chose it is seed noise, and removing it does not
help a fresh retraining.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganinf_mlops import keys
from ganinf_mlops.config import POLICIES
from ganinf_mlops.data.datasets import round_half_up
from ganinf_mlops.data.manifest import STOPPED, Manifest
from ganinf_mlops.data.version import DatasetVersion, Provenance, write_version
from ganinf_mlops.errors import ConfigError, DataError, DigestMismatchError, NothingToRemoveError
from ganinf_mlops.evidence import evidence, top_set
from ganinf_mlops.hashing import sha256_file
from ganinf_mlops.influence.scores import ScoreTable, read_scores
from ganinf_mlops.io import check_disjoint
from ganinf_mlops.metrics.fit import FitCheck, check_fitted
from ganinf_mlops.registry import check_choice

log = logging.getLogger(__name__)


def removal_count(n: int, remove_frac: float | None, remove_count: int | None) -> int:
    """How many of `n` instances to remove; at least one (a fraction that rounds to none is
    refused, not raised to one), and at least one must remain."""
    if (remove_frac is None) == (remove_count is None):
        raise ConfigError("give exactly one of --remove-frac and --remove-count")
    if remove_frac is not None:
        if isinstance(remove_frac, bool) or not (
            isinstance(remove_frac, int | float) and 0.0 < remove_frac < 1.0
        ):
            raise ConfigError(f"--remove-frac must be in (0, 1), got {remove_frac!r}")
        k = round_half_up(remove_frac * n)
        if k < 1:
            raise ConfigError(
                f"--remove-frac {remove_frac:g} removes no instance of {n:,} (the smallest useful "
                f"fraction is {0.5 / n:g})"
            )
    else:
        if isinstance(remove_count, bool) or not isinstance(remove_count, int | np.integer):
            raise ConfigError(f"--remove-count must be an integer, got {remove_count!r}")
        if remove_count < 1:
            raise ConfigError(f"--remove-count must be >= 1, got {remove_count}")
        k = int(remove_count)
    if k >= n:
        raise ConfigError(f"removing {k} of {n} instances would leave no data")
    return k


def select_removals(
    table: ScoreTable, k: int, policy: str = "positive", threshold: float | None = None
) -> np.ndarray:
    """Ids to remove: the top `k` of `table`, kept only where the policy says they help."""
    check_choice("selection policy", policy, POLICIES)
    if (policy == "threshold") != (threshold is not None):
        raise ConfigError("a threshold goes with policy 'threshold' (and only with it)")
    return table.ids[top_set(table.harmfulness, table.ids, k, policy, threshold)]


@dataclass(frozen=True)
class Agreement:
    """How many of an ensemble's members, each held out of the selection, predict it helps."""

    agreeing: int
    members: int

    def __str__(self) -> str:
        return f"{self.agreeing} of {self.members}"


def agreement(
    table: ScoreTable, k: int, policy: str = "positive", threshold: float | None = None
) -> Agreement | None:
    """Cross-validated agreement of the ensemble behind `table` on a selection of at most `k`
    (`evidence`); None for scores that are not an ensemble's."""
    ev = evidence(table, k, policy, threshold)
    return None if ev is None else Agreement(ev.agreeing, ev.members)


def check_agreement(
    version: DatasetVersion,
    table: ScoreTable,
    k: int,
    policy: str,
    threshold: float | None,
    min_agreement: float | None,
    *,
    explicit: bool = False,
) -> Agreement | None:
    """The agreement of `table`'s ensemble; NothingToRemoveError when its evidence does not
    hold at `min_agreement` (a fraction of the members). One run's scores are unverified: they
    pass unless `explicit` (a user asked for the check), which is then a ConfigError."""
    ev = evidence(table, k, policy, threshold)
    if ev is None:
        if explicit and min_agreement is not None:
            raise ConfigError(
                "min_agreement checks the members of an ensemble; these scores are one run's "
                "(score with --ensemble K)"
            )
        return None
    agree = Agreement(ev.agreeing, ev.members)
    if min_agreement is not None and not ev.holds(min_agreement):
        raise NothingToRemoveError(
            f"nothing to cleanse in {version.path}: for {table.metric or table.method}, "
            f"{ev.why_not(min_agreement)}",
            agreement=agree,
        )
    return agree


def agreement_params(agree: Agreement | None, min_agreement: float | None) -> dict[str, Any]:
    """What a cleansed version's manifest records of the gate and the agreement (nothing for
    an ungated cleanse of one run's scores); `recorded_agreement` reads it back."""
    params: dict[str, Any] = {} if min_agreement is None else {"min_agreement": min_agreement}
    if agree is not None:
        params |= {keys.N_AGREEING: agree.agreeing, keys.N_MEMBERS: agree.members}
    return params


def recorded_agreement(manifest: Manifest) -> Agreement | None:
    """The agreement a cleansed version's manifest records (None: not scored by an ensemble)."""
    params = manifest.params
    if keys.N_AGREEING not in params:
        return None
    return Agreement(int(params[keys.N_AGREEING]), int(params[keys.N_MEMBERS]))


def predicted_sum(table: ScoreTable, ids: np.ndarray) -> float | None:
    """The summed first-order change of removing `ids` (None for scores that predict none)."""
    change = table.predicted_change[np.isin(table.ids, ids)]
    return float(change.sum()) if np.isfinite(change).all() else None


def nothing_to_remove(
    version: DatasetVersion, table: ScoreTable, policy: str
) -> NothingToRemoveError:
    return NothingToRemoveError(
        f"no instance of {version.path} is predicted to improve "
        f"{table.metric or table.method} (policy {policy}): nothing to cleanse"
    )


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
    policy: str = "positive",
    threshold: float | None = None,
    min_agreement: float | None = None,
    require_ensemble: bool = False,
    allow_unfitted: bool = False,
    force: bool = False,
) -> DatasetVersion:
    """Write `out_dir`: `version` without its most harmful instances according to the scores.

    NothingToRemoveError (and nothing written) when the policy keeps none of them, or when the
    ensemble's held-out evidence for them does not hold at `min_agreement` (`evidence`). One
    run's scores carry no such evidence: with `require_ensemble` they are refused, else used
    unverified.
    UnfittedError when the scores come from a model that did not fit its data, unless
    `allow_unfitted`.
    """
    check_disjoint(out_dir, version.path)
    k = removal_count(version.n, remove_frac, remove_count)
    table = read_scores(scores_path)
    _check_scores_match(version, table, Path(scores_path))
    removed = select_removals(table, k, policy, threshold)
    if removed.size == 0:
        raise nothing_to_remove(version, table, policy)
    fit = FitCheck.from_record(table.extra.get(keys.FIT))  # the scored model's (metrics/fit.py)
    check_fitted(fit, allow_unfitted, table.extra.get("n_steps"))
    agree = check_agreement(
        version, table, k, policy, threshold, min_agreement, explicit=require_ensemble
    )
    params = {
        "remove_frac": remove_frac,
        "remove_count": remove_count,
        "policy": policy,
        "threshold": threshold,
        **agreement_params(agree, min_agreement),
    }
    predicted = predicted_sum(table, removed)
    return remove_ids(
        version, removed, out_dir, scores_path, table, predicted, params=params, force=force
    )


def pass_through(
    version: DatasetVersion,
    scores_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    reason: str,
    *,
    params: dict,
    force: bool = False,
) -> DatasetVersion:
    """Write the child of `version` that removes nothing and records why the chain stopped
    (`reason`, the manifest's params "stopped"): what a DVC cleanse stage writes instead of
    failing, so the stages after it run on (manifest.py: its digest chains its parent's)."""
    check_disjoint(out_dir, version.path)
    table = read_scores(scores_path)
    _check_scores_match(version, table, Path(scores_path))
    none = np.empty(0, np.int64)
    # Removing nothing predicts no change, where the scores predict changes at all.
    predicted = None if predicted_sum(table, table.ids) is None else 0.0
    return remove_ids(
        version, none, out_dir, scores_path, table, predicted,
        params={**params, STOPPED: reason}, force=force,
    )  # fmt: skip


def remove_ids(
    version: DatasetVersion,
    removed: np.ndarray,
    out_dir: str | os.PathLike[str],
    scores_path: str | os.PathLike[str],
    table: ScoreTable,
    predicted: float | None,
    *,
    params: dict,
    force: bool = False,
) -> DatasetVersion:
    """Write the child of `version` without the ids `removed`, chosen by `table` (stored at
    `scores_path`, referenced by digest) with summed predicted change `predicted`."""
    check_disjoint(out_dir, version.path)
    scores_path, dst = Path(scores_path).resolve(), Path(out_dir).resolve()
    keep = ~np.isin(version.ids, removed)
    anomalies = version.manifest.is_anomaly_ids
    if anomalies is not None:
        anomalies = sorted(set(anomalies) - set(np.asarray(removed).tolist()))
    child = write_version(
        out_dir,
        version.x[keep],
        version.ids[keep],
        version.x_eval,
        dataset="cleanse",
        params={**params, keys.N_REMOVED: int(np.asarray(removed).size)},
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
        y=None if version.y is None else version.y[keep],
        y_eval=version.y_eval,
    )
    log.info(
        "removed %d of %d instances (method %s, %s); predicted change %s",
        np.asarray(removed).size,
        version.n,
        table.method,
        params,
        "n/a" if predicted is None else f"{predicted:.6g}",
    )
    return child
