"""The summary of a cleanse chain: the one place that turns runs and versions into results.

Used by `ganinf evaluate` (DVC metrics), the cleanse loop (`pipeline.run_job`: per iteration and
summary.json) and the benchmarks, so a quantity has the same key everywhere (`keys`).

Input: the fresh runs of one chain in lineage order (run k trained on version k, version k
cleansed from version k-1), optionally the counterfactual replays (a replay of run k-1 on
version k). Everything is read through the run directory (`RunDir`) and the versions' manifests;
nothing is recomputed. The summary:

    all, disc_loss, gen_mean_error, gen_cov_error, n_instances, n_steps   final fresh run
    n_removed_total                                                       removed over the chain
    iterations: {"0": {...}, "1": {...}, ...}   per iteration k:
        iteration, the results of run k (as above), n_removed (by cleanse k), n_removed_total,
        n_anomalies (injected anomalies left in version k), n_anomalies_removed (by cleanse k),
        and for k >= 1: metric (what the changes measure: the scores' metric, else all),
        predicted_change (summed first-order estimate of the removal, from version k's
        manifest; absent for baselines), actual_change (replay k minus run k-1), fresh_change
        (run k minus run k-1), replay: {the replay's results}.

Timing (``train_seconds``) is left out: metrics must only change when results change.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ganinf_mlops import keys
from ganinf_mlops.cleanse import recorded_agreement
from ganinf_mlops.data.manifest import Manifest
from ganinf_mlops.data.version import read_manifest
from ganinf_mlops.errors import DataError, DigestMismatchError
from ganinf_mlops.hashing import sha256_file
from ganinf_mlops.metrics.specs import direction_phrase, spec
from ganinf_mlops.train.rundir import RunDir


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def run_version(run: str | os.PathLike[str] | RunDir) -> tuple[Path, Manifest]:
    """The dataset version a run was trained on (its directory) and that version's manifest.

    The manifest's digest must be the one the run recorded (the data it was trained on).
    """
    r = run if isinstance(run, RunDir) else RunDir(run)
    path = r.dataset_path
    manifest = read_manifest(path)
    if manifest.digest != r.dataset_digest:
        raise DigestMismatchError(
            f"run {r.path} was trained on another version than {path}",
            r.dataset_digest,
            manifest.digest,
        )
    return path, manifest


def _match_replays(
    runs: list[RunDir], manifests: list[Manifest], replays: Sequence[str | os.PathLike[str]]
) -> dict[int, RunDir]:
    by_iteration: dict[int, RunDir] = {}
    for replay in map(RunDir, replays):
        _, manifest = run_version(replay)
        parent_run = replay.replay_parent
        if parent_run is None:
            raise DataError(f"run {replay.path} is not a replay (train --replay) run")
        ks = [k for k in range(1, len(runs)) if manifests[k].digest == manifest.digest]
        if not ks:
            raise DataError(
                f"replay {replay.path} is not trained on the version of any --run after the first"
            )
        k = ks[0]
        if RunDir(parent_run).dataset_digest != manifests[k - 1].digest:
            raise DataError(
                f"replay {replay.path} replays {parent_run}, which is not trained on the version "
                f"of {runs[k - 1].path}"
            )
        if k in by_iteration:
            raise DataError(
                f"replays {by_iteration[k].path} and {replay.path} are both of iteration {k}"
            )
        by_iteration[k] = replay
    return by_iteration


def _seed_stats(group: list[RunDir]) -> tuple[dict[str, float], dict[str, float]] | None:
    """Mean and standard deviation over training seeds of every result (None: one run)."""
    if len(group) < 2:
        return None
    results = [r.results() for r in group]
    names = [k for k in results[0] if all(is_number(r.get(k)) for r in results)]
    mean = {k: statistics.fmean(r[k] for r in results) for k in names}
    std = {k: statistics.stdev(r[k] for r in results) for k in names}
    return mean, std


def _seeds(group: list[RunDir]) -> list[int]:
    return [r.train_config.seed for r in group]


def _change_se(group: list[RunDir], parent: list[RunDir], metric: str) -> float:
    """Standard error of the change of the seed mean. Runs of both versions with the same training
    seeds are paired (the seed's effect cancels in each difference); otherwise independent."""
    after = [r.results()[metric] for r in group]
    before = [r.results()[metric] for r in parent]
    if _seeds(group) == _seeds(parent):
        return statistics.stdev(a - b for a, b in zip(after, before, strict=True)) / math.sqrt(
            len(after)
        )
    return math.sqrt(
        statistics.variance(after) / len(after) + statistics.variance(before) / len(before)
    )


def _iteration_row(
    k: int,
    group: list[RunDir],
    manifest: Manifest,
    parent: tuple[list[RunDir], Manifest] | None,
    replay: RunDir | None,
    removed_total: int,
) -> dict[str, Any]:
    run = group[0]
    results = run.results()
    row: dict[str, Any] = {keys.ITERATION: k, **results, keys.N_INSTANCES: manifest.n_instances}
    row[keys.N_REMOVED] = len(manifest.removed_ids) if parent is not None else 0
    row[keys.N_REMOVED_TOTAL] = removed_total + row[keys.N_REMOVED]
    agree = recorded_agreement(manifest) if parent is not None else None
    if agree is not None:  # an ensemble's cleanse
        row[keys.N_AGREEING], row[keys.N_MEMBERS] = agree.agreeing, agree.members
    if manifest.is_anomaly_ids is not None:
        row[keys.N_ANOMALIES] = len(manifest.is_anomaly_ids)
        row[keys.N_ANOMALIES_REMOVED] = 0
    row[keys.N_SEEDS] = len(group)
    metric = manifest.metric or keys.primary_metric(row)
    stats = _seed_stats(group)
    if stats is not None:
        row[keys.SEED_MEAN], row[keys.SEED_STD] = stats
    if parent is None:
        return row
    parent_group, parent_manifest = parent
    parent_run = parent_group[0]
    if parent_manifest.is_anomaly_ids is not None:
        row[keys.N_ANOMALIES_REMOVED] = len(
            set(parent_manifest.is_anomaly_ids) & set(manifest.removed_ids)
        )
    row["metric"] = metric
    if manifest.predicted_change is not None:
        row[keys.PREDICTED_CHANGE] = manifest.predicted_change
    before = parent_run.results()
    parent_stats = _seed_stats(parent_group)
    if stats is not None and parent_stats is not None and metric in stats[0]:
        # The change of the mean over retraining seeds, and its standard error.
        row[keys.FRESH_CHANGE] = stats[0][metric] - parent_stats[0][metric]
        row[keys.FRESH_CHANGE_SE] = _change_se(group, parent_group, metric)
    elif metric in results and metric in before:
        row[keys.FRESH_CHANGE] = results[metric] - before[metric]
    if replay is not None:
        replay_metrics = replay.metrics()
        if is_number(replay_metrics.get(keys.ACTUAL_CHANGE)):
            row[keys.ACTUAL_CHANGE] = replay_metrics[keys.ACTUAL_CHANGE]
        row["replay"] = replay.results()
    return row


def summarize(
    runs: Sequence[str | os.PathLike[str]],
    replays: Sequence[str | os.PathLike[str]] = (),
) -> dict[str, Any]:
    """The metrics summary of a chain (see the module docstring); DataError if runs do not chain.

    `runs`: fresh runs in lineage order; consecutive runs on the same version (other training
    seeds) form one iteration, whose first run is the one the next iteration scored.
    `replays`: any subset of the replays, in any order; each must replay run k-1 on version k for
    some k >= 1 (matched by dataset digest and parent run).
    """
    if not runs:
        raise DataError("evaluate needs at least one run")
    groups: list[list[RunDir]] = []
    for r in map(RunDir, runs):
        if groups and groups[-1][0].dataset_digest == r.dataset_digest:
            groups[-1].append(r)
        else:
            groups.append([r])
    dirs = [g[0] for g in groups]
    versions = [run_version(r) for r in dirs]
    manifests = [m for _, m in versions]
    for k in range(1, len(dirs)):
        if manifests[k].parent_digest != manifests[k - 1].digest:
            raise DataError(
                f"run {dirs[k].path} (version {versions[k][0]}) is not trained on a version "
                f"cleansed from the version of run {dirs[k - 1].path} ({versions[k - 1][0]}): "
                "give --run in lineage order"
            )
    by_iteration = _match_replays(dirs, manifests, replays)
    iterations: dict[str, dict[str, Any]] = {}
    removed_total = 0
    for k, group in enumerate(groups):
        parent = (groups[k - 1], manifests[k - 1]) if k > 0 else None
        row = _iteration_row(k, group, manifests[k], parent, by_iteration.get(k), removed_total)
        removed_total = row[keys.N_REMOVED_TOTAL]
        iterations[str(k)] = row
    final = iterations[str(len(dirs) - 1)]
    summary: dict[str, Any] = dirs[-1].results()
    summary[keys.N_INSTANCES] = final[keys.N_INSTANCES]
    summary[keys.N_REMOVED_TOTAL] = removed_total
    summary["iterations"] = iterations
    return summary


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


def outcome(summary: dict[str, Any]) -> dict[str, Any] | None:
    """Did the cleansed data end better than the raw data under fresh retraining? The scored
    metric of iteration 0 and of the last iteration (seed means where there are several seeds),
    or None when no cleanse was made."""
    its = summary["iterations"]
    last = its[str(max(int(k) for k in its))]
    if len(its) == 1:
        return None
    scored = last["metric"]
    use_mean = keys.SEED_MEAN in its["0"] and keys.SEED_MEAN in last

    def ends(m: str) -> tuple[float, float] | None:
        first, final = (its["0"], last) if not use_mean else (its["0"][keys.SEED_MEAN],
                                                              last[keys.SEED_MEAN])  # fmt: skip
        return (first[m], final[m]) if m in first and m in final else None

    # Judged on held-out data the selection never saw (a classifier's test split), where the
    # runs have it; the scored metric is then reported beside it.
    judge = getattr(spec(scored), "judged_by", "")
    metric = judge if judge and ends(judge) is not None else scored
    before, after = ends(metric)  # type: ignore[misc]
    # The yardstick of the collapse check, for the scored metric too: a change smaller than the
    # raw version's spread between training seeds is not told apart from retraining noise.
    spread = its["0"][keys.SEED_STD].get(metric) if use_mean else None
    return {
        "metric": metric,
        "before": before,
        "after": after,
        "improved": keys.improvement(metric, after - before) > 0,
        "unchanged": after == before,
        "spread": spread,
        "within": spread is not None and abs(after - before) <= spread,
        "n_seeds": last[keys.N_SEEDS] if use_mean else 1,
        keys.N_REMOVED_TOTAL: last[keys.N_REMOVED_TOTAL],
        "others": _others(its["0"], last, metric) if use_mean else [],
        "scored": None if metric == scored else {"metric": scored, "ends": ends(scored)},
    }


def _others(first: dict[str, Any], last: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """The collapse check: each other quality metric's change of the seed mean from the raw to
    the last version, and whether it worsened by more than the raw version's seed spread (a
    cleansing can buy its own metric by degrading another, e.g. ALL by shrinking the generator)."""
    out = []
    for m in keys.QUALITY_METRICS:
        if m == metric or m not in first[keys.SEED_MEAN] or m not in last[keys.SEED_MEAN]:
            continue
        before, after = first[keys.SEED_MEAN][m], last[keys.SEED_MEAN][m]
        spread = first[keys.SEED_STD][m]
        gain = keys.improvement(m, after - before)
        out.append(
            {"metric": m, "before": before, "after": after, "spread": spread,
             "worse": -gain > spread, "improved": gain > 0}
        )  # fmt: skip
    return out


IMPROVED, WITHIN_NOISE, WORSE = "improved", "within_noise", "worse"
VERDICTS = (IMPROVED, WITHIN_NOISE, WORSE)


def verdict_state(summary: dict[str, Any]) -> str | None:
    """The verdict in one word, the same on every surface (tag, summary, registry, docs):
    `improved` or `worse` beyond the raw version's seed spread, else `within_noise` (an equal
    result included); None when no cleanse was made. With one training seed there is no spread
    and the sign decides."""
    o = outcome(summary)
    if o is None:
        return None
    if o["unchanged"] or o["within"]:
        return WITHIN_NOISE
    return IMPROVED if o["improved"] else WORSE


def verdict(summary: dict[str, Any]) -> str:
    """The job's one-line verdict (`outcome` in words)."""
    o = outcome(summary)
    stopped = summary["job"].get("stopped")
    if o is None:
        return f"verdict: no cleanse was made ({stopped or 'no iterations'})"
    metric = o["metric"]
    seeds = f", mean of {o['n_seeds']} training seeds" if o["n_seeds"] > 1 else ""
    if o["unchanged"]:
        state = "did not change"
    elif o["within"]:
        state = f"{'improved' if o['improved'] else 'got worse'} only within its seed spread"
    else:
        state = "IMPROVED" if o["improved"] else "got WORSE"
    spread = f" (spread {o['spread']:.2g})" if o["spread"] is not None else ""
    text = (
        f"verdict: {metric} ({direction_phrase(metric)}) {state}: {o['before']:.6g} -> "
        f"{o['after']:.6g}{spread} under fresh retraining{seeds}, "
        f"{o[keys.N_REMOVED_TOTAL]} instances removed"
    )
    if o["scored"] is not None:
        sc = o["scored"]
        text += (
            f" (judged on held-out data; the scored {sc['metric']}: {sc['ends'][0]:.6g} -> "
            f"{sc['ends'][1]:.6g})"
        )
    text += f"; stopped at {stopped}" if stopped else ""
    for x in o["others"]:
        if x["worse"]:
            state = "got WORSE beyond its seed spread"
        elif x["improved"]:
            state = "improved too"
        else:
            state = "got worse within its seed spread"
        text += (
            f"; {x['metric']} {state}: {x['before']:.6g} -> {x['after']:.6g} "
            f"(spread {x['spread']:.2g})"
        )
    return text
