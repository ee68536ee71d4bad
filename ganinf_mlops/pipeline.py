"""The default job end to end: prepare -> train -> influence -> validate -> cleanse -> retrain.

Each step is the same library call the CLI commands and DVC stages make; this module only wires
them into one working directory:

    WORKDIR/data/raw          raw dataset version
    WORKDIR/runs/base         training run with its trajectory
    WORKDIR/scores/<m>.csv    influence scores (and .meta.json)
    WORKDIR/reports/validate.json   estimated vs leave-one-out changes
    WORKDIR/data/cleansed     the version without the most harmful instances
    WORKDIR/runs/replay       counterfactual retraining (parent's schedule, removed dropped)
    WORKDIR/runs/fresh        plain retraining with a fresh schedule
    WORKDIR/summary.json
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from ganinf_mlops.cleanse import cleanse
from ganinf_mlops.config import Preset
from ganinf_mlops.data.version import create_raw_version
from ganinf_mlops.errors import OutputExistsError
from ganinf_mlops.influence.methods import check_method, score
from ganinf_mlops.influence.scores import write_scores
from ganinf_mlops.influence.targets import KEY_ALL, TARGET_NAMES
from ganinf_mlops.influence.validate import validate
from ganinf_mlops.io import write_json
from ganinf_mlops.train.trainer import train

log = logging.getLogger(__name__)


def _metrics(run: Path) -> dict[str, float]:
    return json.loads((run / "metrics.json").read_text())


def run_job(
    workdir: str | Path,
    preset: Preset,
    *,
    force: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    workdir, options = Path(workdir), preset.job
    check_method(options.method)
    if (workdir / "summary.json").exists() and not force:
        raise OutputExistsError(workdir)
    raw = create_raw_version(
        workdir / "data" / "raw", preset.dataset, force=force, **preset.data_params
    )
    log.info("prepared %s: %d instances", raw.path, raw.n)
    base = train(
        raw, preset.train, preset.metric, workdir / "runs" / "base", force=force, progress=progress
    )
    start = time.perf_counter()
    table = score(
        base,
        raw,
        options.method,
        last_epochs=options.last_epochs,
        seed=options.seed,
        progress=progress,
    )
    scoring_seconds = time.perf_counter() - start
    scores_path = workdir / "scores" / f"{options.method}.csv"
    write_scores(scores_path, table)
    report = None
    if options.loo and options.method in TARGET_NAMES:
        report = validate(base, raw, table, k=options.loo, seed=options.seed, progress=progress)
        write_json(workdir / "reports" / "validate.json", report)
    cleansed = cleanse(
        raw,
        scores_path,
        workdir / "data" / "cleansed",
        remove_frac=options.remove_frac,
        force=force,
    )
    replay = train(
        cleansed,
        preset.train,
        preset.metric,
        workdir / "runs" / "replay",
        replay=base,
        force=force,
        progress=progress,
    )
    fresh = train(
        cleansed,
        preset.train,
        preset.metric,
        workdir / "runs" / "fresh",
        force=force,
        progress=progress,
    )

    before, after_replay, after_fresh = _metrics(base), _metrics(replay), _metrics(fresh)
    anomalies = set(raw.manifest.is_anomaly_ids or [])
    m = KEY_ALL
    summary = {
        "preset": preset.name,
        "method": options.method,
        "dataset_digest": raw.digest,
        "cleansed_digest": cleansed.digest,
        "n_instances": raw.n,
        "n_removed": len(cleansed.manifest.removed_ids),
        "n_anomalies": len(anomalies),
        "n_anomalies_removed": len(anomalies & set(cleansed.manifest.removed_ids)),
        "validation": {
            k: report[k]
            for k in (
                "kendall_tau",
                "kendall_tau_random",
                "pearson_r",
                "jaccard_top_k",
                "n_instances",
            )
        },
        "before": before,
        # the scores' own prediction, when they predict the change of the reported metric
        "predicted_change": cleansed.manifest.predicted_change
        if cleansed.manifest.metric == m
        else None,
        "replay_change": after_replay[m] - before[m],
        "fresh_change": after_fresh[m] - before[m],
        "after_replay": after_replay,
        "after_fresh": after_fresh,
        "scoring_seconds": scoring_seconds,
        "paths": {
            "raw": str(raw.path),
            "base": str(base),
            "scores": str(scores_path),
            "cleansed": str(cleansed.path),
            "replay": str(replay),
            "fresh": str(fresh),
        },
    }
    write_json(workdir / "summary.json", summary)
    return summary
