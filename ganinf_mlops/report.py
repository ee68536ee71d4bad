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
        (run k minus run k-1), replay: {the replay's results}; on every row the headline
        (below), its spread headline_std, and for k >= 1 improvement and verdict.
    headline_metric, headline_raw, headline_final, headline_best, best_iteration,
    total_improvement, verdict    the headline: the scored metric (a classifier's test accuracy
        where val_loss was scored), as the seed mean over fresh retrainings; improvements are
        sign-normalised (> 0 is better); verdict is improved | within_noise | worse (None
        without a cleanse). The one number of every surface (CLI, MLflow, DVC).

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

# The verdict's three values, the same on every surface (summary, tags, registry, DVC, docs).
IMPROVED, WITHIN_NOISE, WORSE = "improved", "within_noise", "worse"
VERDICTS = (IMPROVED, WITHIN_NOISE, WORSE)


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
    summary.update(_headline(iterations, _scored_metric(dirs[0], manifests, final)))
    return summary


def _scored_metric(first: RunDir, manifests: Sequence[Manifest], final: dict[str, Any]) -> str:
    """What the chain's cleanses scored: the manifests' metric, else the metric of the job the
    first run was trained under (a job that made no cleanse), else the run's primary metric."""
    scored = next((m.metric for m in manifests[1:] if m.metric), None)
    job = first.recorded_job
    if scored is None and job is not None and spec(job.method) is not None:
        scored = job.method
    return scored or keys.primary_metric(final)


def judging_metric(scored: str, rows: Sequence[dict[str, Any]]) -> str:
    """The metric a cleanse scored on `scored` is judged by: held-out data the selection never
    saw where every row has it (a classifier's test accuracy for its val_loss), else itself."""
    judge = getattr(spec(scored), "judged_by", "")
    return judge if judge and all(judge in r for r in rows) else scored


def step_verdict(metric: str, before: float, after: float, spread: float | None) -> str:
    """improved / worse beyond `spread` (the earlier version's seed-to-seed spread), else
    within_noise; with no spread (one training seed) the sign decides."""
    gain = keys.improvement(metric, after - before)
    if after == before or (spread is not None and abs(after - before) <= spread):
        return WITHIN_NOISE
    return IMPROVED if gain > 0 else WORSE


def _headline(iterations: dict[str, dict[str, Any]], scored: str) -> dict[str, Any]:
    """Put the headline on every row (its value, spread, improvement on the previous row and
    that step's verdict); return the summary's headline keys."""
    rows = [iterations[k] for k in sorted(iterations, key=int)]
    metric = judging_metric(scored, rows)
    if not all(metric in r for r in rows):
        return {}
    previous: dict[str, Any] | None = None
    for row in rows:
        means, stds = row.get(keys.SEED_MEAN) or {}, row.get(keys.SEED_STD) or {}
        row[keys.HEADLINE] = float(means.get(metric, row[metric]))
        if metric in stds:
            row[keys.HEADLINE_STD] = float(stds[metric])
        if previous is not None:
            before, after = previous[keys.HEADLINE], row[keys.HEADLINE]
            row[keys.IMPROVEMENT] = keys.improvement(metric, after - before)
            row[keys.VERDICT] = step_verdict(metric, before, after, previous.get(keys.HEADLINE_STD))
        previous = row
    best = max(rows, key=lambda r: keys.improvement(metric, r[keys.HEADLINE]))
    raw, final = rows[0][keys.HEADLINE], rows[-1][keys.HEADLINE]
    return {
        keys.HEADLINE_METRIC: metric,
        keys.HEADLINE_RAW: raw,
        keys.HEADLINE_FINAL: final,
        keys.HEADLINE_BEST: best[keys.HEADLINE],
        keys.BEST_ITERATION: best[keys.ITERATION],
        keys.TOTAL_IMPROVEMENT: keys.improvement(metric, final - raw),
        keys.VERDICT: None
        if len(rows) == 1
        else step_verdict(metric, raw, final, rows[0].get(keys.HEADLINE_STD)),
    }


def headline_text(row: dict[str, Any], digits: int = 5) -> str:
    """A row's headline as people read it: `0.155 ± 0.021 (8 seeds)`, or `0.066 (one seed)`."""
    value = f"{row[keys.HEADLINE]:.{digits}g}"
    if keys.HEADLINE_STD in row:
        return f"{value} ± {row[keys.HEADLINE_STD]:.2g} ({row[keys.N_SEEDS]} seeds)"
    return f"{value} (one seed)"


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
    judge = judging_metric(scored, [its["0"], last])
    metric = judge if ends(judge) is not None else scored
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


def verdict_state(summary: dict[str, Any]) -> str | None:
    """The verdict in one word, the same on every surface (tag, summary, registry, docs):
    `improved` or `worse` beyond the raw version's seed spread, else `within_noise` (an equal
    result included); None when no cleanse was made. With one training seed there is no spread
    and the sign decides."""
    o = outcome(summary)
    if o is None:
        return None
    return step_verdict(o["metric"], o["before"], o["after"], o["spread"])


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
