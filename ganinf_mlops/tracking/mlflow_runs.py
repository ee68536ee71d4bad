"""MLflow logging of ganinf steps: one run per stage, or a job run with nested iteration runs.

`MlflowTracker` is the pipeline's `Observer`: the library calls it after each step, it never sits
inside the math. Metric names are the run metrics' own keys (gen_mean_error, fid, ...; ALL as
`avg_log_likelihood`), the same in every run, so MLflow's compare view lines them up. An
iteration run logs its summary metrics at step = its iteration, each (key, step) once; side
numbers (replays, extra seeds, baselines' reference values, timings) go to `details.json`.
Every run gets a description (`notes`), figures are top-level PNGs with the same name in every
run (MLflow's compare view matches artifacts by path).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric

from ganinf_mlops import keys
from ganinf_mlops.cleanse import recorded_agreement
from ganinf_mlops.config import Preset, feature_classifier
from ganinf_mlops.data.version import DatasetVersion
from ganinf_mlops.errors import Terminated, TrackingError
from ganinf_mlops.influence.groups import group_metrics
from ganinf_mlops.influence.scores import ScoreTable, meta_path
from ganinf_mlops.observer import Observer
from ganinf_mlops.params import data_params_in_full, in_effect, preset_to_params
from ganinf_mlops.report import outcome, verdict, verdict_state
from ganinf_mlops.tracking import dvc_exp, figures, image_figures, models, notes, tags
from ganinf_mlops.tracking.remote import CLASSIFIER_ARTIFACT
from ganinf_mlops.tracking.run_log import RunLog, check_tracking_uri, default_tracking_uri, flatten
from ganinf_mlops.train.rundir import RunDir

log = logging.getLogger(__name__)


def _set_current_data(version: DatasetVersion | None) -> None:
    # The run-context plugin tags runs with the version named here (and its lineage).
    if version is not None:
        os.environ[tags.ENV_DATA] = str(version.path.resolve())


def _version_tags(version: DatasetVersion) -> dict[str, str]:
    """Tags of the version a run reads (no empty tags: raw data has no parent digest)."""
    return {
        **tags.input_tags(version.digest, version.manifest.parent_digest),
        tags.INPUT_VERSION: notes.version_label(version),
    }


def _set_experiment(name: str):
    """`mlflow.set_experiment`, once more if another process created it at the same moment."""
    try:
        return mlflow.set_experiment(name)
    except mlflow.exceptions.MlflowException as exc:
        if "already exists" not in str(exc):
            raise
        return mlflow.set_experiment(name)


class MlflowTracker(RunLog, Observer):
    """Logs to MLflow; construct it before any work so a bad URI fails first."""

    def __init__(self, uri: str | None = None, experiment: str = "ganinf") -> None:
        self.uri = uri or default_tracking_uri()
        check_tracking_uri(self.uri)
        mlflow.set_tracking_uri(self.uri)
        RunLog.__init__(self, MlflowClient(self.uri))
        try:
            outer = os.environ.get("MLFLOW_RUN_ID")
            if outer:  # inside `mlflow run`: our first run resumes its run, in its experiment
                exp_id = self.client.get_run(outer).info.experiment_id
                exp = mlflow.set_experiment(experiment_id=exp_id)
            else:
                exp = _set_experiment(experiment)
        except Exception as exc:
            raise TrackingError(
                f"cannot use experiment {experiment!r} at {self.uri}: {exc}"
            ) from None
        self.experiment_id, self.experiment = exp.experiment_id, exp.name
        self._describe_experiment(exp)
        self._job_run: str | None = None
        self._last_scores: tuple[ScoreTable, DatasetVersion, Path] | None = None
        self._vmax: dict[str | None, float] = {}  # influence scatters' scale, per job run
        self._raw: DatasetVersion | None = None
        self._helped = 0  # removed instances that were predicted to help (last cleanse)
        self._cleansed: DatasetVersion | None = None  # the version the last cleanse wrote
        self._method: str | None = None  # the job's scoring method: what a run's fit is judged by
        self._label: str | None = None  # the job's "preset · method": the start of run names
        self._in_iteration = False  # a job's iteration run is open: its run results are one seed's
        self._previous: dict[str, Any] | None = None  # the last iteration's row (its headline)
        self._models = models.ModelLog()  # the served networks logged, for the registry
        self._preset: Preset | None = None  # the open job's

    def ui_hint(self) -> str:
        """Where to look: the command that serves this store and the runs table's address."""
        server = "http://127.0.0.1:5000"
        serve = f"mlflow ui --backend-store-uri {self.uri}"
        if urlparse(self.uri).scheme in ("http", "https"):
            server, serve = self.uri.rstrip("/"), "open"
        return f"MLflow: {serve} ; then {server}{notes.ui_path(self.experiment_id)}"

    # ---- runs -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def stage(
        self, name: str, version: DatasetVersion | None = None, **extra_tags: str
    ) -> Iterator[str]:
        """One MLflow run around a single CLI stage (or inside `mlflow run`'s own run); in a DVC
        experiment, nested under the experiment's parent run (tracking/dvc_exp.py)."""
        run_tags = {
            **_package_tags(),
            tags.STAGE: name,
            **(_version_tags(version) if version else {}),
            **extra_tags,
        }
        parent, nested = dvc_exp.nest(self.client, self.experiment_id)
        run_tags.update(nested)
        _set_current_data(version)
        status, run_id = "FAILED", None
        try:
            with (
                mlflow.start_run(
                    run_name=name, experiment_id=self.experiment_id, tags=run_tags
                ) as run,
                self._described(
                    f"`ganinf {name}`" + (f" on {notes.version_label(version)}" if version else "")
                ),
            ):
                run_id = run.info.run_id
                if version is not None:
                    self._log_input(version, "input")
                yield run.info.run_id
                self._flush_details()
            status = "FINISHED"
        except (Terminated, KeyboardInterrupt):
            status = "KILLED"
            raise
        finally:
            if parent is not None and run_id is not None:
                dvc_exp.stage_done(self.client, parent, run_id, status)

    @contextlib.contextmanager
    def job(self, preset: Preset, workdir: Path) -> Iterator[None]:
        run_tags = {**_package_tags(), tags.STAGE: "job"}
        self._label = f"{preset.name} · {preset.job.method}"
        # The experiment named explicitly: concurrent jobs' runs never fall to another one.
        with mlflow.start_run(
            run_name=f"{self._label} · job {workdir.name}", experiment_id=self.experiment_id,
            tags=run_tags,
        ) as run:  # fmt: skip
            self._job_run, self._preset = run.info.run_id, preset
            self._models.start_job()
            params = preset_to_params(preset)
            params["data"]["params"] = data_params_in_full(preset.dataset, preset.data_params)
            mlflow.log_params(in_effect(flatten(params)))
            mlflow.set_tag(tags.PRESET, preset.name)
            try:
                with self._described(None):  # job_done writes the job's description
                    yield
            finally:
                self._job_run, self._label, self._previous = None, None, None
                self._preset = None

    @contextlib.contextmanager
    def iteration(self, index: int, version: DatasetVersion | None, method: str) -> Iterator[None]:
        run_tags = {
            **_package_tags(),
            tags.STAGE: "iteration",
            tags.ITERATION: str(index),
            tags.METHOD: method,
            **(_version_tags(version) if version else {}),
        }
        _set_current_data(version)
        head = "**Iteration 0**: the raw data" if index == 0 else f"**Iteration {index}**"
        name = _iteration_name(self._label or method, index, version, None)
        with (
            mlflow.start_run(
                run_name=name, nested=True, experiment_id=self.experiment_id, tags=run_tags
            ),
            self._described(head),
        ):
            mlflow.log_param(keys.ITERATION, index)
            self._step, self._helped, self._cleansed = index, 0, None
            self._method, self._in_iteration = method, True
            if version is not None:
                self._log_input(version, "input")
            try:
                yield
            finally:
                self._flush_details()
                self._step, self._in_iteration = 0, False

    # ---- observer callbacks -----------------------------------------------------------------
    def prepared(self, version: DatasetVersion) -> None:
        mlflow.set_tags(
            {
                tags.OUTPUT_DIGEST: version.digest,
                tags.OUTPUT_VERSION: notes.version_label(version),
                **_version_tags(version),
            }
        )
        self._log_input(version, "raw")
        self._raw = version
        anomalies = version.anomaly_mask()
        extra = "" if anomalies is None else f", {int(anomalies.sum())} injected anomalies"
        self._note(f"- prepared {notes.version_label(version)}: {version.n} instances{extra}")

    def resumed(self, previous: str | None) -> str | None:
        """Close the run an interrupted training left open (SIGKILL ends no run: it stays
        RUNNING) as KILLED, and link this one to it; return this run's id."""
        active = mlflow.active_run()
        current = None if active is None else active.info.run_id
        if previous is None or current is None or previous == current:
            return current
        try:
            if self.client.get_run(previous).info.status == "RUNNING":
                self.client.set_terminated(previous, "KILLED")
        except mlflow.exceptions.MlflowException as exc:  # deleted, or in another store
            log.warning("the interrupted run's MLflow run %s: %s", previous, exc)
            return current
        self.client.set_tag(current, tags.RESUMED_FROM, previous)
        return current

    def trained(self, run: Path, version: DatasetVersion, role: str) -> None:
        rd = RunDir(run)
        metrics = rd.metrics()
        prefix = "" if role == "main" else f"{role}_"
        results = rd.results()
        self._details.setdefault("timing", {})[f"{prefix}{keys.TRAIN_SECONDS}"] = metrics.get(
            keys.TRAIN_SECONDS
        )
        mlflow.log_artifacts(str(run), artifact_path=f"{prefix}trajectory")
        run_id = mlflow.active_run().info.run_id
        self._trajectory_uris[Path(run).resolve()] = f"runs:/{run_id}/{prefix}trajectory"
        if role != "main":  # a replay's or another seed's results: details, not metrics
            self._details[role] = {k: metrics[k] for k in metrics if k != keys.TRAIN_SECONDS}
            return
        classifier = feature_classifier(rd.metric_config)  # a classifier run's config has none
        if classifier is not None:  # what FID/IS are measured with: fetchable
            mlflow.log_artifacts(classifier, artifact_path=CLASSIFIER_ARTIFACT)
        mlflow.log_params(
            in_effect(flatten({"train": rd.meta["train"], "metric": rd.meta["metric"]}))
        )
        mlflow.set_tag(tags.SCHEDULE, rd.schedule_kind)
        check = rd.fit(self._method)
        if check is not None:
            mlflow.set_tag(tags.FIT, check.fit)
        self._log_losses(rd)
        self._log_input(version, "training")
        # In a job, this run is one training seed of the iteration's: its results keep the seed
        # in their names (fd_seed0); the iteration's headline is the seed mean (iteration_done).
        suffix = f"_seed{rd.train_config.seed}" if self._in_iteration else ""
        self._log_metrics({f"{k}{suffix}": v for k, v in results.items()})
        if not self._in_iteration:  # a stage run's own changes (train --replay)
            self._log_metrics({k: metrics[k] for k in keys.CHANGES[:2] if k in metrics})
        self._models.trained(rd, version, self._step)
        shown = self._method if self._method in results else keys.primary_metric(results)
        self._note(
            f"- trained `{rd.path.name}` on {notes.version_label(version)} ({rd.n_steps} steps):"
            f" `{keys.tracking_name(shown)}{suffix}` = {results.get(shown, float('nan')):.5g}"
        )
        samples = rd.final_samples(version)
        if samples is not None and image_figures.is_images(samples):
            self._image_samples(samples, version)
        elif samples is not None and version.x.shape[1] == 2:
            fig = figures.influence_scatter(
                version.x, None, samples, anomalies=version.anomaly_mask(),
                title="training data and generated samples", version=notes.version_label(version),
            )  # fmt: skip
            self._figure(fig, "data_and_samples.png")

    def scored(self, table: ScoreTable, path: Path, version: DatasetVersion, run: Path) -> None:
        mlflow.set_tag(tags.METHOD, table.method)
        source = self._trajectory_uris.get(Path(run).resolve())
        if source is not None:  # in a loop, the previous iteration's run holds the trajectory
            mlflow.set_tag(tags.SCORED_TRAJECTORY, source)
        mlflow.log_artifact(str(path), artifact_path="scores")
        mlflow.log_artifact(str(meta_path(path)), artifact_path="scores")
        mlflow.log_table(notes.score_columns(table, version), artifact_file="score_table.json")
        if "seconds" in table.extra:
            self._details.setdefault("timing", {})[keys.SCORING_SECONDS] = table.extra["seconds"]
        fig = figures.scores_histogram(table.harmfulness, table.method)
        self._figure(fig, "harmfulness_histogram.png")
        self._last_scores = (table, version, run)
        n_harmful = int((table.harmfulness > 0).sum())
        self._note(
            f"- scored {table.n} instances of {notes.version_label(version)} by "
            f"`{table.method}`: {n_harmful} predicted harmful (removal would help)"
        )
        if image_figures.is_images(version.x):
            harm, _ = table.aligned_to(version.ids)
            fig = image_figures.harmful_and_helpful(
                version.x, harm, version.anomaly_mask(), table.method, labels=version.y
            )
            self._figure(fig, "harmful_and_helpful.png")
        elif version.x.shape[1] == 2:
            self._scatter(table, version, run, removed=None)

    def validated(self, report: dict[str, Any]) -> None:
        # Validation internals under their own prefix (their own section in MLflow's charts).
        shown = (keys.KENDALL_TAU, keys.PEARSON_R, keys.JACCARD_TOP_K)
        self._log_metrics({f"{VALIDATION}{k}": float(report[k]) for k in shown})
        # The random reference values are side numbers of the validation, not results.
        self._details["validation"] = {k: report[k] for k in keys.VALIDATION if k not in shown}
        mlflow.log_dict(report, "validation/report.json")
        self._figure(figures.estimate_vs_truth(report), "estimate_vs_leave_one_out.png")
        if "groups" in report:
            groups = group_metrics(report["groups"])
            self._log_metrics({f"{VALIDATION}{k}": float(v) for k, v in groups.items()})
            fig = figures.group_predicted_vs_actual(report["groups"], report["metric"])
            self._figure(fig, "group_predicted_vs_actual.png")
        self._note(
            f"- validated against {report['n_instances']} leave-one-out retrainings: Kendall "
            f"tau {report[keys.KENDALL_TAU]:.3f}"
        )

    def cleansed(self, version: DatasetVersion) -> None:
        m = version.manifest
        mlflow.set_tags(
            {tags.OUTPUT_DIGEST: version.digest, tags.OUTPUT_VERSION: notes.version_label(version)}
        )
        if self._in_iteration and self._label is not None:  # the run's name gains its output
            parent = self._last_scores[1] if self._last_scores is not None else None
            mlflow.set_tag(
                "mlflow.runName", _iteration_name(self._label, self._step, parent, version)
            )
        self._log_metrics({keys.N_REMOVED: len(m.removed_ids)})
        agree = recorded_agreement(m)
        if agree is not None:
            self._log_metrics({keys.N_AGREEING: agree.agreeing, keys.N_MEMBERS: agree.members})
        mlflow.log_dict(m.to_json(), "cleansed/manifest.json")
        self._log_input(version, "output")
        self._cleansed = version
        self._note(
            f"- removed {len(m.removed_ids)} instances into {notes.version_label(version)} "
            f"({version.n} left)"
        )
        if self._last_scores is not None and self._last_scores[1].digest == m.parent_digest:
            table, parent, run = self._last_scores
            removed = np.isin(parent.ids, m.removed_ids)
            harm, _ = table.aligned_to(parent.ids)
            # Instances removed although predicted to help: the budget exceeded the harmful.
            self._helped = int((harm[removed] <= 0).sum())
            # The histogram again, now with the cut-off the cleanse applied.
            fig = figures.scores_histogram(harm, table.method, cutoff=float(harm[removed].min()))
            self._figure(fig, "harmfulness_histogram.png")
            if self._helped:
                mlflow.set_tag(
                    tags.WARNING,
                    f"{self._helped} removed instances were predicted to help the metric",
                )
            if parent.x.ndim == 2 and parent.x.shape[1] == 2:
                self._scatter(table, parent, run, removed=removed)

    def iteration_done(self, row: dict[str, Any]) -> None:
        """An iteration's row (report.summarize): its headline, improvement and counts on the
        iteration run, and as one point (step = iteration) of the job run's series."""
        metric = row["metric"] if row[keys.ITERATION] > 0 else None
        values = {k: row.get(k) for k in (keys.HEADLINE, keys.HEADLINE_STD, keys.IMPROVEMENT)}
        if metric is not None:  # the scored metric's changes, sign-normalised like improvement
            for key, change in ((keys.PREDICTED_IMPROVEMENT, keys.PREDICTED_CHANGE),
                                (keys.REPLAY_IMPROVEMENT, keys.ACTUAL_CHANGE)):  # fmt: skip
                if row.get(change) is not None:
                    values[key] = keys.improvement(metric, row[change])
            self._details["changes"] = {k: row.get(k) for k in (*keys.CHANGES, "metric")}
        values |= {k: row[k] for k in (keys.N_INSTANCES, *keys.REMOVAL_COUNTS) if k in row}
        values = {k: float(v) for k, v in values.items() if v is not None}
        self._log_metrics(values)
        if row.get(keys.VERDICT) is not None:
            mlflow.set_tag(tags.VERDICT, row[keys.VERDICT])
        if self._notes and keys.HEADLINE in row:
            if self._last_scores is not None and self._cleansed is not None and metric:
                # The iteration's description leads with the whole story of its row.
                note = notes.iteration_note(
                    row, self._previous, self._last_scores[1], self._cleansed, self._helped
                )
                self._notes[-1][:1] = [note]
            elif keys.HEADLINE_METRIC in row:  # iteration 0: the raw data's headline
                self._notes[-1].insert(1, notes.headline_line(row, row[keys.HEADLINE_METRIC]))
        self._previous = row
        if self._job_run is not None:
            step, now = row[keys.ITERATION], int(time.time() * 1000)
            series = (keys.HEADLINE, keys.HEADLINE_STD, keys.IMPROVEMENT, keys.N_INSTANCES,
                      keys.N_REMOVED_TOTAL)  # fmt: skip
            self.client.log_batch(
                self._job_run,
                metrics=[Metric(k, values[k], now, step) for k in series if k in values],
            )

    def gated(self, report: dict[str, Any]) -> None:
        mlflow.set_tag(tags.GATE, "pass" if report["passed"] else "fail")
        self._models.gate_passed = bool(report["passed"])
        if "method" in report:  # the scores were checked
            mlflow.set_tag(tags.METHOD, report["method"])
        if "set" in report:
            found = report["set"]
            self._log_metrics(
                {
                    "gate_set_size": found["n"],
                    keys.PREDICTED_IMPROVEMENT: found[keys.PREDICTED_IMPROVEMENT],
                    keys.N_AGREEING: found[keys.N_AGREEING],
                }
            )
        if "threshold_check" in report:
            t = report["threshold_check"]
            self._log_metrics({k: t[k] for k in (keys.HARMFUL_FRAC, keys.N_HARMFUL)})
        if "copying" in report:
            self._log_metrics({keys.COPYING_CT: report["copying"][keys.COPYING_CT]})
        mlflow.log_dict(report, "gate/report.json")
        self._note(f"- gate: **{'PASS' if report['passed'] else 'FAIL'}**")

    def job_done(self, summary: dict[str, Any]) -> None:
        mlflow.log_dict(summary, "summary.json")
        its = summary["iterations"]
        rows = [its[k] for k in sorted(its, key=int)]
        if self._raw is not None:
            self._log_input(self._raw, "raw")
        metric = summary.get(keys.HEADLINE_METRIC)
        if metric is not None:  # the headline: tagged, so any two jobs line up in Compare
            mlflow.set_tag(tags.HEADLINE_METRIC, metric)
            mlflow.set_tag(tags.BEST_ITERATION, str(summary[keys.BEST_ITERATION]))
            names = (keys.HEADLINE_RAW, keys.HEADLINE_FINAL, keys.HEADLINE_BEST,
                     keys.TOTAL_IMPROVEMENT)  # fmt: skip
            self._log_metrics({k: summary[k] for k in names}, step=0)
        fit = summary["job"].get(keys.FIT)
        if fit is not None:  # the first model scored
            mlflow.set_tag(tags.FIT, fit["fit"])
        o = outcome(summary)
        if o is not None:
            mlflow.set_tag(tags.VERDICT, verdict_state(summary))
            if o["spread"] is not None:
                mlflow.set_tag(tags.WITHIN_SPREAD, str(o["within"]).lower())
            if o["others"]:
                worse = [x["metric"] for x in o["others"] if x["worse"]]
                mlflow.set_tag(tags.WORSENED, ",".join(worse) or "none")
        self._notes[-1][:] = [notes.job_note(summary, verdict(summary))]  # set at the run's end
        if len(rows) > 1 and metric is not None:
            self._figure(figures.metric_vs_removed(rows, metric), "metric_vs_removed.png")
        if self._preset is not None:  # the best iteration's model into the Model Registry
            self._models.register(self.client, self.uri, summary, self._preset, self.experiment)

    # ---- helpers ----------------------------------------------------------------------------
    def _image_samples(self, samples: np.ndarray, version: DatasetVersion) -> None:
        fig = image_figures.sample_grid(samples, "generated samples (fixed evaluation latents)")
        self._figure(fig, "samples.png")
        last = self._last_scores
        if last is not None and last[1].digest == version.manifest.parent_digest:
            _, parent, parent_run = last
            before = RunDir(parent_run).final_samples(parent)
            fig = image_figures.before_after(
                before, samples, f"{parent.path.name} -> {version.path.name}"
            )
            self._figure(fig, "samples_before_after.png")

    def _scatter(
        self, table: ScoreTable, version: DatasetVersion, run: Path, removed: np.ndarray | None
    ) -> None:
        harm, _ = table.aligned_to(version.ids)
        target = table.metric
        # One colour scale for every iteration of a job (its first table's), for Compare.
        vmax = figures.harmfulness_vmax(harm)
        if self._job_run is not None:
            vmax = self._vmax.setdefault(self._job_run, vmax)
        fig = figures.influence_scatter(
            version.x, harm, RunDir(run).final_samples(version), removed,
            anomalies=version.anomaly_mask(), metric=target,
            higher_is_better=None if target is None else keys.higher_is_better(target),
            title=f"training instances scored by {table.method}"
            + (", removed ones circled" if removed is not None else ""),
            version=notes.version_label(version), vmax=vmax,
        )  # fmt: skip
        name = "influence_scatter_cleansed" if removed is not None else "influence_scatter"
        self._figure(fig, f"{name}.png")


VALIDATION = "validation/"  # prefix of validation metrics: their own section in MLflow's charts


def _iteration_name(
    label: str, index: int, before: DatasetVersion | None, after: DatasetVersion | None
) -> str:
    """`default · fd · it1 v0→v1`: the job, the iteration and the versions it reads and writes."""
    if index == 0:
        return f"{label} · it0 raw"
    versions = "" if before is None else f" {before.path.name}→{after.path.name if after else '…'}"
    return f"{label} · it{index}{versions}"


def _package_tags() -> dict[str, str]:
    """What made the run, on every run (inside a git checkout or not)."""
    import ganinf_mlops

    return {tags.VERSION: ganinf_mlops.__version__}
