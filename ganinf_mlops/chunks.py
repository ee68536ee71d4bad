"""Group-aware removal: spend a cleanse's budget in C chunks, re-scoring after each.

A first-order estimate is exact for one removal and drifts for a set, because removing some
instances changes the influence of the rest. Chunking follows that drift: chunk c is chosen by the
influence on the counterfactual replay *without* chunks 1..c-1 (one replay and one reverse pass
per chunk), so each chunk's prediction is made where it applies. The cleansed version is written
once, from the parent, with the union of the chunks (its lineage has no intermediate versions);
the intermediate versions, scores and replays stay under WORKDIR/chunks/it<i>/ for inspection.
Scores of a seed ensemble are followed member by member: each member replays every chunk on its
own schedule, and the next chunk is scored by the ensemble of those replays.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ganinf_mlops import keys
from ganinf_mlops.cleanse import (
    agreement_params,
    check_agreement,
    nothing_to_remove,
    predicted_sum,
    removal_count,
    remove_ids,
    select_removals,
)
from ganinf_mlops.config import Preset
from ganinf_mlops.data.version import DatasetVersion
from ganinf_mlops.influence.methods import score_runs
from ganinf_mlops.influence.options import ScoringOptions
from ganinf_mlops.influence.scores import ScoreTable, write_scores
from ganinf_mlops.layout import JobLayout
from ganinf_mlops.train.rundir import RunDir
from ganinf_mlops.train.trainer import sibling_path, train

log = logging.getLogger(__name__)


def chunk_sizes(k: int, chunks: int) -> list[int]:
    """`k` split into `chunks` near-equal positive parts (fewer when k < chunks, said in a
    warning: each chunk removes at least one instance)."""
    if chunks > k:
        log.warning("job.chunks: %d chunks of %d instances removed: %d chunks of one", chunks, k, k)
    return [k // chunks + (1 if c < k % chunks else 0) for c in range(min(chunks, k))]


def chunked_cleanse(
    i: int,
    workdir: Path,
    preset: Preset,
    version: DatasetVersion,
    run: Path,
    table: ScoreTable,
    scores_path: Path,
    *,
    force: bool = False,
    progress: bool = True,
) -> tuple[DatasetVersion, list[dict[str, Any]]]:
    """Cleanse `version` (scored by `table` on `run`) into v<i> in `preset.job.chunks` chunks.

    Returns the new version and one record per chunk: n_removed, predicted (from the scores of
    that chunk's starting point) and actual (its replay's change) change of the metric.
    """
    job, layout = preset.job, JobLayout(workdir)
    k = removal_count(version.n, job.remove_frac, None)
    # The ensemble's members vote on the whole budget.
    agree = check_agreement(version, table, k, job.policy, job.threshold, job.min_agreement)
    cur_runs = [Path(r) for r in table.extra.get("ensemble", [])] or [Path(run)]
    cur_version, cur_table, cur_scores = version, table, scores_path
    removed: list[np.ndarray] = []
    records: list[dict[str, Any]] = []
    for c, size in enumerate(chunk_sizes(k, job.chunks), start=1):
        if c > 1:
            options = ScoringOptions.from_job(job, seed=job.seed + i, progress=progress)
            cur_table = score_runs(cur_runs, cur_version, options)
            cur_scores = layout.chunk_scores(i, c)
            write_scores(cur_scores, cur_table)
        ids = select_removals(cur_table, size, job.policy, job.threshold)
        if ids.size == 0:
            break
        predicted = predicted_sum(cur_table, ids)
        child = remove_ids(
            cur_version, ids, layout.chunk_version(i, c), cur_scores, cur_table, predicted,
            params={"chunk": c}, force=force,
        )  # fmt: skip
        replays = [
            train(
                child,
                preset.train,
                preset.metric,
                sibling_path(layout.chunk_replay(i, c), m),  # named like the members it replays
                replay=member,
                force=force,
                progress=progress,
            )
            for m, member in enumerate(cur_runs)
        ]
        # What the (ensemble's) prediction estimates: the replays' mean change.
        actual = [RunDir(r).metrics().get(keys.ACTUAL_CHANGE) for r in replays]
        records.append(
            {
                "chunk": c,
                keys.N_REMOVED: int(ids.size),
                keys.PREDICTED_CHANGE: predicted,
                keys.ACTUAL_CHANGE: None if None in actual else float(np.mean(actual)),
            }
        )
        removed.append(ids)
        cur_runs, cur_version = replays, child
    if not removed:
        raise nothing_to_remove(version, table, job.policy)
    predictions = [r[keys.PREDICTED_CHANGE] for r in records]
    total = None if None in predictions else float(sum(predictions))
    params = {
        "remove_frac": job.remove_frac,
        "policy": job.policy,
        "threshold": job.threshold,
        "chunks": job.chunks,
        "chunk_removed": [r[keys.N_REMOVED] for r in records],
        "chunk_predicted": predictions,
        **agreement_params(agree, job.min_agreement),
    }
    new = remove_ids(
        version, np.concatenate(removed), layout.version(i), scores_path, table, total,
        params=params, force=force,
    )  # fmt: skip
    return new, records
