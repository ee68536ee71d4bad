"""The job end to end: prepare, train, then K iterations of score -> validate -> cleanse -> retrain.

Each step is the same library call the CLI commands and DVC stages make; this module only wires
them into one working directory (laid out by `layout.JobLayout`: data/v<i>, runs/r<i>,
runs/replay<i>, scores/, reports/, config.json, summary.json) and tells an observer (`observer`:
MLflow tracking, or nothing) what happened.

Every iteration records the change of the metric its scores predicted for the removal next to
the change observed after counterfactual replay (what the estimate models) and after fresh
retraining (what production sees), under the names of `keys` (the same as `ganinf evaluate`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganinf_mlops import keys
from ganinf_mlops.chunks import chunked_cleanse
from ganinf_mlops.cleanse import cleanse
from ganinf_mlops.config import Preset, feature_classifier, with_train_options
from ganinf_mlops.data.lineage import check_parent
from ganinf_mlops.data.version import DatasetVersion, create_raw_version, load_version
from ganinf_mlops.errors import (
    ConfigError,
    DataError,
    GaninfError,
    NothingToRemoveError,
    OutputExistsError,
)
from ganinf_mlops.executor import Executor, executor_for
from ganinf_mlops.features.artifact import ensure_classifier
from ganinf_mlops.influence.groups import n_group_replays
from ganinf_mlops.influence.methods import METHODS, score_run
from ganinf_mlops.influence.options import ScoringOptions
from ganinf_mlops.influence.scores import read_scores, write_scores
from ganinf_mlops.influence.validate import validate
from ganinf_mlops.io import changed_keys, read_json, write_json
from ganinf_mlops.layout import JobLayout
from ganinf_mlops.metrics.fit import check_fitted
from ganinf_mlops.observer import Observer
from ganinf_mlops.params import preset_to_params
from ganinf_mlops.plan import Plan, job_plan
from ganinf_mlops.report import summarize
from ganinf_mlops.stopping import improved
from ganinf_mlops.train.partial import partial_dir
from ganinf_mlops.train.rundir import RunDir
from ganinf_mlops.train.trainer import Training, run_trainings, sibling_path, train
from ganinf_mlops.writelock import writing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IterationOutputs:
    scores: Path
    version: DatasetVersion  # the cleansed version
    replay: Path  # counterfactual retraining on it
    fresh: list[Path]  # fresh retrainings on it, one per training seed; [0] is scored next
    validation: dict[str, Any] | None
    scoring_seconds: float
    chunks: list[dict[str, Any]] | None = None  # per chunk: n_removed, predicted, actual


def fresh_runs(
    version: DatasetVersion,
    preset: Preset,
    run: Path,
    *,
    steps: int | None = None,
    observer: Observer | None = None,
    force: bool = False,
    progress: bool = True,
    resume: bool = False,
    executor: Executor | None = None,
) -> list[Path]:
    """Fresh trainings on `version`, one per retraining seed (train.seed, +1, ...): `run`,
    <run>-seed1, ...; `steps` fixes the step budget (None: the config's epochs). They are
    independent: they train on `executor` (default: one after another here)."""
    obs = observer or Observer()
    paths, todo = [], []
    for r in range(preset.job.retrain_seeds):
        cfg = with_train_options(preset.train, seed=preset.train.seed + r, steps=steps)
        paths.append(sibling_path(run, r))
        if not _kept(version, paths[-1], resume):
            todo.append(
                Training(version, cfg, preset.metric, paths[-1], preset.job, force=force,
                         resume=resume and partial_dir(paths[-1]).exists(), progress=progress)
            )  # fmt: skip
    done = run_trainings(todo, executor)  # in order: each is logged as soon as it is there
    for r, path in enumerate(paths):
        if any(t.out == path for t in todo):
            next(done)
        obs.trained(path, version, "main" if r == 0 else f"seed{r}")
    return paths


def _kept(version: DatasetVersion, path: Path, resume: bool) -> bool:
    """Resuming a job, a finished run `path` is kept, checked to be a run on `version`."""
    if not (resume and path.exists()):
        return False
    RunDir(path).verify().check_dataset(version.digest, f" than {version.path} (resuming the job)")
    log.info("resume: keeping %s", path)
    return True


def _train(
    version: DatasetVersion,
    cfg: Any,
    preset: Preset,
    path: Path,
    *,
    replay: Path | None = None,
    force: bool,
    progress: bool,
    resume: bool,
) -> Path:
    """`train`; when resuming a job, a finished `path` is kept (checked to be a run on
    `version`) and an interrupted one continues from its last checkpoint."""
    if _kept(version, path, resume):
        return path
    return train(
        version, cfg, preset.metric, path, replay=replay, force=force, progress=progress,
        resume=resume and partial_dir(path).exists(), job=preset.job,
    )  # fmt: skip


def run_iteration(
    i: int,
    workdir: Path,
    preset: Preset,
    version: DatasetVersion,
    run: Path,
    *,
    observer: Observer | None = None,
    force: bool = False,
    progress: bool = True,
    resume: bool = False,
    executor: Executor | None = None,
) -> IterationOutputs:
    """Score run's instances, validate, cleanse `version` into v<i>, replay and retrain on it.

    With `resume`, each output already on disk (all are written atomically) is read back and
    checked instead of being recomputed: an interrupted job continues where it stopped. The
    ensemble's seed siblings, each run's leave-one-out and set replays and the retraining seeds
    run on `executor` (default: here)."""
    job, obs, layout = preset.job, observer or Observer(), JobLayout(workdir)
    if METHODS.get(job.method).uses_model and not job.allow_unfitted:  # before scoring: an
        scored = RunDir(run)  # unfitted model's influence ranks noise
        check_fitted(scored.fit(job.method), False, scored.n_steps)
    scores_path = layout.scores(i, job.method)
    if resume and scores_path.exists():
        table = read_scores(scores_path)
        if table.dataset_digest != version.digest or table.method != job.method:
            raise DataError(f"{scores_path} scores another version or method: cannot resume")
    else:
        options = ScoringOptions.from_job(job, seed=job.seed + i, progress=progress)
        table = score_run(run, version, options, executor=executor)
        write_scores(scores_path, table)
    obs.scored(table, scores_path, version, run)
    report = None
    report_path = layout.validation(i)
    if job.loo and METHODS.get(job.method).predicts_change:
        if resume and report_path.exists():
            report = read_json(report_path, "validation report")
        else:
            report = validate(
                run,
                version,
                table,
                k=min(job.loo, version.n),
                seed=job.seed,
                group_subsets=job.group_subsets,
                progress=progress,
                executor=executor,
            )
            write_json(report_path, report)
        obs.validated(report)
    chunks = None
    new_path = layout.version(i)
    chunks_path = layout.chunk_report(i)
    if job.chunks > 1:
        if resume and new_path.exists() and chunks_path.exists():
            new, chunks = load_version(new_path), read_json(chunks_path, "chunk report")
        else:  # chunk by chunk again (deterministic), replacing what a crash left
            new, chunks = chunked_cleanse(
                i, workdir, preset, version, run, table, scores_path, force=force or resume,
                progress=progress,
            )  # fmt: skip
            write_json(chunks_path, chunks)
    elif resume and new_path.exists():
        new = load_version(new_path)
    else:
        new = cleanse(
            version,
            scores_path,
            new_path,
            remove_frac=job.remove_frac,
            policy=job.policy,
            threshold=job.threshold,
            min_agreement=job.min_agreement,
            allow_unfitted=job.allow_unfitted,
            force=force,
        )
    if new.manifest.parent_digest != version.digest:
        raise DataError(f"{new.path} was not cleansed from {version.path}: cannot resume")
    check_parent(new, version)  # a kept version: its removed ids, as its digest, re-verified
    obs.cleansed(new)
    replay = _train(
        new, preset.train, preset, layout.replay(i), replay=run, force=force,
        progress=progress, resume=resume,
    )  # fmt: skip
    obs.trained(replay, new, "replay")
    # Production retrains from scratch: by default with the parent run's number of steps, so
    # less data is not also less training.
    steps = RunDir(run).n_steps if job.retrain_budget == "steps" else None
    fresh = fresh_runs(
        new, preset, layout.run(i), steps=steps, observer=obs, force=force, progress=progress,
        resume=resume, executor=executor,
    )  # fmt: skip
    return IterationOutputs(
        scores_path, new, replay, fresh, report, float(table.extra.get("seconds", 0.0)), chunks
    )


def with_classifier(
    preset: Preset, raw: DatasetVersion, workdir: Path, *, force: bool, progress: bool
) -> Preset:
    """The preset with its feature classifier (metric.classifier, relative to the working
    directory) trained on the raw version when missing; unchanged when it needs none."""
    path = feature_classifier(preset.metric)
    if path is None:
        return preset
    path = str(workdir / path) if not Path(path).is_absolute() else path
    ensure_classifier(raw, path, force=force, progress=progress)
    return dataclasses.replace(preset, metric=dataclasses.replace(preset.metric, classifier=path))


def _check_start(workdir: Path, preset: Preset, *, force: bool, resume: bool) -> None:
    """Refuse a finished job (unless --force), or a resume with another configuration; record
    the configuration of a new job."""
    config = json.loads(json.dumps(preset_to_params(preset)))  # as JSON reads it back
    # Where the trainings run does not change them: a job may resume on another executor.
    config["job"].pop("executor")
    layout = JobLayout(workdir)
    if resume:
        if force:
            raise ConfigError("--resume continues a job, --force starts it over: give one")
        if layout.summary.exists():
            raise ConfigError(
                f"{workdir} finished already ({layout.summary.name}): nothing to resume"
            )
        if not layout.config.is_file():
            raise ConfigError(
                f"nothing to resume: {workdir} holds no started job ({layout.config.name})"
            )
        recorded = read_json(layout.config, f"job {workdir}:", ConfigError)
        if recorded != config:
            changed = changed_keys(config, recorded)
            raise ConfigError(
                f"the job in {workdir} was started with other settings ({', '.join(changed)}): "
                "resume it with the same configuration, or start over with --force"
            )
        return
    if layout.summary.exists() and not force:
        raise OutputExistsError(workdir)
    if layout.config.exists() and not force:
        raise GaninfError(
            f"an interrupted job is in {workdir}: --resume continues it, --force starts over"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    write_json(layout.config, config)


def run_job(
    workdir: str | Path,
    preset: Preset,
    *,
    observer: Observer | None = None,
    force: bool = False,
    progress: bool = True,
    resume: bool = False,
    on_plan: Callable[[Plan], None] | None = None,
) -> dict[str, Any]:
    """Run the job (preset.job's method and iterations); return and write its summary.

    `resume` continues an interrupted job in `workdir` with the same configuration (recorded in
    `workdir/config.json`): what is on disk is checked and kept, the first unfinished step runs.
    `on_plan` is handed the job's plan before it trains (counts), and again once the first run
    is trained (the rest, timed by that training).
    """
    workdir, job, obs = Path(workdir), preset.job, observer or Observer()
    METHODS.check(job.method)
    with writing(workdir):  # one process per job: another is told so, not offered --resume
        return _run_job(
            workdir, preset, obs, force=force, progress=progress, resume=resume,
            on_plan=on_plan or (lambda plan: None),
        )  # fmt: skip


def _plan(preset: Preset, first: Path | None = None) -> Plan:
    """The job's plan (`plan.job_plan`); after its `first` run, the rest, timed by it."""
    job = preset.job
    return job_plan(
        job, predicts_change=METHODS.get(job.method).predicts_change,
        group_replays=n_group_replays(job.group_subsets),
        seconds_each=None if first is None else RunDir(first).train_seconds,
        first=None if first is None else str(first),
    )  # fmt: skip


def _run_job(
    workdir: Path,
    preset: Preset,
    obs: Observer,
    *,
    force: bool,
    progress: bool,
    resume: bool,
    on_plan: Callable[[Plan], None],
) -> dict[str, Any]:
    job, layout = preset.job, JobLayout(workdir)
    executor = executor_for(job.executor)  # before the job is recorded: Ray may be missing
    _check_start(workdir, preset, force=force, resume=resume)
    on_plan(_plan(preset))
    with obs.job(preset, workdir):
        # Iteration 0 prepares the raw version and trains the first run on it.
        with obs.iteration(0, None, job.method):
            raw_path = layout.version(0)
            if resume and raw_path.exists():
                raw = load_version(raw_path)
            else:
                raw = create_raw_version(
                    raw_path, preset.dataset, force=force, **preset.data_params
                )
            obs.prepared(raw)
            preset = with_classifier(preset, raw, workdir, force=force, progress=progress)
            runs = fresh_runs(
                raw, preset, layout.run(0), observer=obs, force=force, progress=progress,
                resume=resume, executor=executor,
            )  # fmt: skip
            on_plan(_plan(preset, runs[0]))
            first = summarize(runs)  # the raw data's headline, over its training seeds
            obs.iteration_done(
                {**first["iterations"]["0"], keys.HEADLINE_METRIC: first.get(keys.HEADLINE_METRIC)}
            )
        version, run, replays = raw, runs[0], []
        extras: dict[str, dict[str, Any]] = {}
        stopped = None
        for i in range(1, job.iterations + 1):
            with obs.iteration(i, version, job.method):
                try:
                    out = run_iteration(
                        i, workdir, preset, version, run, observer=obs, force=force,
                        progress=progress, resume=resume, executor=executor,
                    )  # fmt: skip
                except NothingToRemoveError as exc:
                    stopped = f"iteration {i}: {exc}"
                    log.info("stopping: %s", stopped)
                    break
                version, run = out.version, out.fresh[0]
                runs.extend(out.fresh)
                replays.append(out.replay)
                extras[str(i)] = {
                    "method": job.method,
                    "dataset_digest": out.version.manifest.parent_digest,
                    "cleansed_digest": out.version.digest,
                    "validation": None
                    if out.validation is None
                    else {
                        k: v
                        for k, v in out.validation.items()
                        if k in (*keys.VALIDATION, "n_instances", "top_k", "loo_seconds")
                        or k.startswith(("group_", "top_"))
                    },
                    keys.SCORING_SECONDS: out.scoring_seconds,
                    "chunks": out.chunks,
                    "paths": {
                        "scores": str(out.scores),
                        "version": str(out.version.path),
                        "replay": str(out.replay),
                        "fresh": [str(p) for p in out.fresh],
                    },
                }
                row = {**summarize(runs, replays)["iterations"][str(i)], **extras[str(i)]}
                obs.iteration_done(row)
            if job.stop_when_worse and not improved(row):
                stopped = f"iteration {i}: {row['metric']} did not improve under fresh retraining"
                log.info("stopping after %s", stopped)
                break
        summary = summarize(runs, replays)
        for k, extra in extras.items():
            summary["iterations"][k].update(extra)
        summary["job"] = {
            "preset": preset.name,
            "method": job.method,
            "remove_frac": job.remove_frac,
            "raw_digest": raw.digest,
            "final_version": str(version.path),
            "final_digest": version.digest,
            "stopped": stopped,
            # the first model scored: did it fit its data (metrics/fit.py)?
            keys.FIT: _fit_record(runs[0], job.method),
        }
        write_json(layout.summary, summary)
        obs.job_done(summary)
    return summary


def _fit_record(run: Path, method: str) -> dict[str, Any] | None:
    check = RunDir(run).fit(method)
    return None if check is None else check.record()
