"""The job end to end: prepare, train, then K iterations of score -> validate -> cleanse -> retrain.

Each step is the same library call the CLI commands and DVC stages make; this module only wires
them into one working directory and tells an observer (MLflow tracking, or nothing) what happened:

    WORKDIR/data/v0, v1, ...          dataset versions (v0 raw; v_i cleansed from v_{i-1})
    WORKDIR/runs/r0, r1, ...          training runs: r0 on v0, r_i fresh retraining on v_i
    WORKDIR/runs/replay1, ...         counterfactual retraining: r_{i-1}'s schedule on v_i
    WORKDIR/scores/it<i>_<method>.csv scores of r_{i-1} used to cleanse v_{i-1} into v_i
    WORKDIR/reports/validate_it<i>.json
    WORKDIR/summary.json

Every iteration records the change of ALL its scores predicted for the removal next to the change
observed after counterfactual replay (what the estimate models) and after fresh retraining (what
production sees).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ganinf_mlops.cleanse import cleanse
from ganinf_mlops.config import Preset
from ganinf_mlops.data.version import DatasetVersion, create_raw_version
from ganinf_mlops.errors import OutputExistsError
from ganinf_mlops.influence.methods import check_method, score
from ganinf_mlops.influence.scores import ScoreTable, write_scores
from ganinf_mlops.influence.targets import KEY_ALL, TARGET_NAMES
from ganinf_mlops.influence.validate import validate
from ganinf_mlops.io import write_json
from ganinf_mlops.train.trainer import train
from ganinf_mlops.train.trajectory import read_metrics

log = logging.getLogger(__name__)


class Observer:
    """Callbacks of the job; the base class ignores everything (no tracking)."""

    @contextlib.contextmanager
    def stage(
        self, name: str, version: DatasetVersion | None = None, **tags: str
    ) -> Iterator[str | None]:
        """Around one CLI stage (prepare, train, influence, ...); yields a run id or None."""
        yield None

    @contextlib.contextmanager
    def job(self, preset: Preset, workdir: Path) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def iteration(self, index: int, version: DatasetVersion | None, method: str) -> Iterator[None]:
        """Iteration `index` works on `version` (None for iteration 0, which prepares it)."""
        yield

    def prepared(self, version: DatasetVersion) -> None: ...

    def trained(self, run: Path, version: DatasetVersion, role: str) -> None: ...

    def scored(self, table: ScoreTable, path: Path, version: DatasetVersion, run: Path) -> None: ...

    def validated(self, report: dict[str, Any]) -> None: ...

    def cleansed(self, version: DatasetVersion) -> None: ...

    def iteration_done(self, row: dict[str, Any]) -> None: ...

    def job_done(self, summary: dict[str, Any]) -> None: ...


def run_job(
    workdir: str | Path,
    preset: Preset,
    *,
    iterations: int | None = None,
    observer: Observer | None = None,
    force: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the job; return (and write) its summary. `iterations` defaults to preset.job's."""
    workdir, job, obs = Path(workdir), preset.job, observer or Observer()
    check_method(job.method)
    n_iter = job.iterations if iterations is None else iterations
    if (workdir / "summary.json").exists() and not force:
        raise OutputExistsError(workdir)
    with obs.job(preset, workdir):
        # Iteration 0 prepares the raw version and trains the first run on it.
        with obs.iteration(0, None, job.method):
            version = create_raw_version(
                workdir / "data" / "v0", preset.dataset, force=force, **preset.data_params
            )
            raw = version
            obs.prepared(version)
            run = train(
                version,
                preset.train,
                preset.metric,
                workdir / "runs" / "r0",
                force=force,
                progress=progress,
            )
            obs.trained(run, version, "main")
        rows: list[dict[str, Any]] = []
        for i in range(1, n_iter + 1):
            with obs.iteration(i, version, job.method):
                row, version, run = _iteration(
                    i, workdir, preset, version, run, obs, force, progress
                )
                obs.iteration_done(row)
            rows.append(row)
            if job.stop_when_worse and row["fresh_change"] <= 0:
                log.info("stopping after iteration %d: %s did not improve", i, KEY_ALL)
                break
        summary = {
            "preset": preset.name,
            "method": job.method,
            "remove_frac": job.remove_frac,
            "n_instances": raw.n,
            "raw_digest": raw.digest,
            "before": read_metrics(workdir / "runs" / "r0"),
            "iterations": rows,
            "final_version": str(version.path),
            "final_digest": version.digest,
        }
        write_json(workdir / "summary.json", summary)
        obs.job_done(summary)
    return summary


def _iteration(
    i: int,
    workdir: Path,
    preset: Preset,
    version: DatasetVersion,
    run: Path,
    obs: Observer,
    force: bool,
    progress: bool,
) -> tuple[dict[str, Any], DatasetVersion, Path]:
    job = preset.job
    start = time.perf_counter()
    table = score(
        run, version, job.method, last_epochs=job.last_epochs, seed=job.seed + i, progress=progress
    )
    seconds = time.perf_counter() - start
    scores_path = workdir / "scores" / f"it{i}_{job.method}.csv"
    write_scores(scores_path, table)
    obs.scored(table, scores_path, version, run)
    report = None
    if job.loo and job.method in TARGET_NAMES:
        report = validate(
            run, version, table, k=min(job.loo, version.n), seed=job.seed, progress=progress
        )
        write_json(workdir / "reports" / f"validate_it{i}.json", report)
        obs.validated(report)
    new = cleanse(
        version, scores_path, workdir / "data" / f"v{i}", remove_frac=job.remove_frac, force=force
    )
    obs.cleansed(new)
    replay = train(
        new,
        preset.train,
        preset.metric,
        workdir / "runs" / f"replay{i}",
        replay=run,
        force=force,
        progress=progress,
    )
    obs.trained(replay, new, "replay")
    fresh = train(
        new, preset.train, preset.metric, workdir / "runs" / f"r{i}", force=force, progress=progress
    )
    obs.trained(fresh, new, "main")

    before, after_replay, after_fresh = read_metrics(run), read_metrics(replay), read_metrics(fresh)
    removed = new.manifest.removed_ids
    anomalies = set(version.manifest.is_anomaly_ids or [])
    row = {
        "iteration": i,
        "method": job.method,
        "dataset_digest": version.digest,
        "cleansed_digest": new.digest,
        "n_instances_before": version.n,
        "n_instances": new.n,
        "n_removed": len(removed),
        "n_anomalies_before": len(anomalies),
        "n_anomalies_removed": len(anomalies & set(removed)),
        "scoring_seconds": seconds,
        # The scores' own prediction, when they predict the change of ALL.
        "predicted_change": new.manifest.predicted_change
        if new.manifest.metric == KEY_ALL
        else None,
        "replay_change": after_replay[KEY_ALL] - before[KEY_ALL],
        "fresh_change": after_fresh[KEY_ALL] - before[KEY_ALL],
        "validation": None
        if report is None
        else {
            k: report[k]
            for k in (
                "kendall_tau",
                "kendall_tau_random",
                "pearson_r",
                "jaccard_top_k",
                "n_instances",
                "top_k",
            )
        },
        "before": before,
        "after_replay": after_replay,
        "after_fresh": after_fresh,
        "paths": {
            "scores": str(scores_path),
            "version": str(new.path),
            "replay": str(replay),
            "fresh": str(fresh),
        },
    }
    return row, new, fresh
