"""MLflow logging of ganinf steps: one run per stage, or a job run with nested iteration runs.

`MlflowTracker` is the pipeline's `Observer`: the library calls it after each step, it never sits
inside the math. Metric names are the run metrics' own keys (all, gen_mean_error, ...), the same
in every run, so MLflow's compare view lines them up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric

from ganinf_mlops import keys
from ganinf_mlops.config import Preset
from ganinf_mlops.data.version import DatasetVersion
from ganinf_mlops.errors import TrackingError
from ganinf_mlops.influence.groups import group_metrics
from ganinf_mlops.influence.scores import ScoreTable, meta_path
from ganinf_mlops.params import preset_to_params
from ganinf_mlops.pipeline import Observer
from ganinf_mlops.tracking import figures, image_figures, tags
from ganinf_mlops.tracking.datasets import log_version
from ganinf_mlops.train.rundir import RunDir

log = logging.getLogger(__name__)


def default_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else MLflow 3's default: sqlite:///$PWD/mlflow.db."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def check_tracking_uri(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, naming the URI, before any work is done or any file written."""
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
                pass
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TrackingError(f"MLflow tracking server {uri} is unreachable ({reason})") from None
    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as exc:  # MLflow raises many kinds; all mean "unusable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrackingError(f"cannot use MLflow tracking URI {uri}: {first[:300]}") from None


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _set_current_data(version: DatasetVersion | None) -> None:
    # The run-context plugin tags runs with the version named here (and its lineage).
    if version is not None:
        os.environ[tags.ENV_DATA] = str(version.path.resolve())


def _version_tags(version: DatasetVersion) -> dict[str, str]:
    return {
        tags.DATASET_DIGEST: version.digest,
        tags.PARENT_DIGEST: version.manifest.parent_digest or "",
    }


class MlflowTracker(Observer):
    """Logs to MLflow; construct it before any work so a bad URI fails first."""

    def __init__(self, uri: str | None = None, experiment: str = "ganinf") -> None:
        self.uri = uri or default_tracking_uri()
        check_tracking_uri(self.uri)
        mlflow.set_tracking_uri(self.uri)
        self.client = MlflowClient(self.uri)
        try:
            outer = os.environ.get("MLFLOW_RUN_ID")
            if outer:  # inside `mlflow run`: our first run resumes its run, in its experiment
                mlflow.set_experiment(experiment_id=self.client.get_run(outer).info.experiment_id)
            else:
                mlflow.set_experiment(experiment)
        except Exception as exc:
            raise TrackingError(
                f"cannot use experiment {experiment!r} at {self.uri}: {exc}"
            ) from None
        self._job_run: str | None = None
        self._last_scores: tuple[ScoreTable, DatasetVersion, Path] | None = None

    # ---- runs -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def stage(
        self, name: str, version: DatasetVersion | None = None, **extra_tags: str
    ) -> Iterator[str]:
        """One MLflow run around a single CLI stage (or inside `mlflow run`'s own run)."""
        run_tags = {tags.STAGE: name, **(_version_tags(version) if version else {}), **extra_tags}
        _set_current_data(version)
        with mlflow.start_run(run_name=name, tags=run_tags) as run:
            if version is not None:
                self._log_input(version, "input")
            yield run.info.run_id

    @contextlib.contextmanager
    def job(self, preset: Preset, workdir: Path) -> Iterator[None]:
        with mlflow.start_run(run_name=f"job {workdir.name}", tags={tags.STAGE: "job"}) as run:
            self._job_run = run.info.run_id
            mlflow.log_params(flatten(preset_to_params(preset)))
            mlflow.set_tag("ganinf.preset", preset.name)
            yield
        self._job_run = None

    @contextlib.contextmanager
    def iteration(self, index: int, version: DatasetVersion | None, method: str) -> Iterator[None]:
        run_tags = {
            tags.STAGE: "iteration",
            tags.ITERATION: str(index),
            tags.METHOD: method,
            **(_version_tags(version) if version else {}),
        }
        name = "iteration 0 (raw)" if index == 0 else f"iteration {index}"
        _set_current_data(version)
        with mlflow.start_run(run_name=name, nested=True, tags=run_tags):
            if version is not None:
                self._log_input(version, "input")
            yield

    # ---- observer callbacks -----------------------------------------------------------------
    def prepared(self, version: DatasetVersion) -> None:
        mlflow.set_tags({tags.OUTPUT_DIGEST: version.digest, **_version_tags(version)})
        self._log_input(version, "raw")

    def trained(self, run: Path, version: DatasetVersion, role: str) -> None:
        rd = RunDir(run)
        metrics = rd.metrics()
        prefix = "" if role == "main" else f"{role}_"
        if role == "main":
            mlflow.log_params(flatten({"train": rd.meta["train"], "metric": rd.meta["metric"]}))
            mlflow.set_tag(tags.SCHEDULE, rd.schedule_kind)
            self._log_losses(rd)
            self._log_input(version, "training")
        results = {**rd.results(), keys.TRAIN_SECONDS: metrics.get(keys.TRAIN_SECONDS)}
        mlflow.log_metrics({prefix + k: float(v) for k, v in results.items() if v is not None})
        for k in (keys.PREDICTED_CHANGE, keys.ACTUAL_CHANGE):
            if k in metrics and role == "main":  # a loop iteration logs its own changes
                mlflow.log_metric(k, float(metrics[k]))
        mlflow.log_artifacts(str(run), artifact_path=f"{prefix}trajectory")
        samples = rd.final_samples(version) if role == "main" else None
        if samples is not None and image_figures.is_images(samples):
            self._image_samples(samples, version)
        elif samples is not None and version.x.shape[1] == 2:
            fig = figures.influence_scatter(
                version.x,
                np.zeros(version.n),
                samples,
                title="training data and generated samples",
            )
            mlflow.log_figure(fig, "figures/data_and_samples.png")
            figures.plt.close(fig)

    def scored(self, table: ScoreTable, path: Path, version: DatasetVersion, run: Path) -> None:
        mlflow.set_tag(tags.METHOD, table.method)
        mlflow.log_artifact(str(path), artifact_path="scores")
        mlflow.log_artifact(str(meta_path(path)), artifact_path="scores")
        ranks = table.ranks()
        mlflow.log_table(
            {
                keys.ID: table.ids.tolist(),
                keys.PREDICTED_CHANGE: [
                    None if np.isnan(v) else float(v) for v in table.predicted_change
                ],
                keys.HARMFULNESS: table.harmfulness.tolist(),
                keys.RANK: ranks.tolist(),
            },
            artifact_file=f"scores/{table.method}_table.json",
        )
        if "seconds" in table.extra:
            mlflow.log_metric(keys.SCORING_SECONDS, float(table.extra["seconds"]))
        fig = figures.scores_histogram(table.harmfulness, table.method)
        mlflow.log_figure(fig, f"figures/{table.method}_histogram.png")
        figures.plt.close(fig)
        self._last_scores = (table, version, run)
        if image_figures.is_images(version.x):
            harm, _ = table.aligned_to(version.ids)
            fig = image_figures.harmful_and_helpful(
                version.x, harm, version.anomaly_mask(), table.method, labels=version.y
            )
            mlflow.log_figure(fig, f"figures/{table.method}_harmful_and_helpful.png")
            figures.plt.close(fig)
        elif version.x.shape[1] == 2:
            self._scatter(table, version, run, removed=None)

    def validated(self, report: dict[str, Any]) -> None:
        mlflow.log_metrics({k: float(report[k]) for k in keys.VALIDATION})
        mlflow.log_dict(report, "validation/report.json")
        fig = figures.estimate_vs_truth(report)
        mlflow.log_figure(fig, "figures/estimate_vs_leave_one_out.png")
        figures.plt.close(fig)
        if "groups" in report:
            mlflow.log_metrics({k: float(v) for k, v in group_metrics(report["groups"]).items()})
            fig = figures.group_predicted_vs_actual(report["groups"], report["metric"])
            mlflow.log_figure(fig, "figures/group_predicted_vs_actual.png")
            figures.plt.close(fig)

    def cleansed(self, version: DatasetVersion) -> None:
        m = version.manifest
        mlflow.set_tag(tags.OUTPUT_DIGEST, version.digest)
        mlflow.log_metric(keys.N_REMOVED, len(m.removed_ids))
        if m.predicted_change is not None:
            mlflow.log_metric(keys.PREDICTED_CHANGE, m.predicted_change)
        mlflow.log_dict(m.to_json(), "cleansed/manifest.json")
        self._log_input(version, "cleansed")
        if self._last_scores is not None and self._last_scores[1].digest == m.parent_digest:
            table, parent, run = self._last_scores
            if parent.x.ndim == 2 and parent.x.shape[1] == 2:
                self._scatter(table, parent, run, removed=np.isin(parent.ids, m.removed_ids))

    def iteration_done(self, row: dict[str, Any]) -> None:
        names = (*keys.CHANGES, *keys.REMOVAL_COUNTS)
        values = {k: float(row[k]) for k in names if row.get(k) is not None}
        mlflow.log_metrics(values)
        if self._job_run is not None:
            step, now = row[keys.ITERATION], int(time.time() * 1000)
            parent = {**values, keys.N_INSTANCES: row[keys.N_INSTANCES]}
            headline = keys.primary_metric(row)
            if headline in row:
                parent[headline] = row[headline]
            self.client.log_batch(
                self._job_run, metrics=[Metric(k, float(v), now, step) for k, v in parent.items()]
            )

    def gated(self, report: dict[str, Any]) -> None:
        mlflow.set_tag("ganinf.gate", "pass" if report["passed"] else "fail")
        if "method" in report:  # the harmful-fraction check ran
            mlflow.set_tag(tags.METHOD, report["method"])
            mlflow.log_metrics({k: report[k] for k in (keys.HARMFUL_FRAC, keys.N_HARMFUL)})
        if "copying" in report:
            mlflow.log_metric(keys.COPYING_CT, report["copying"][keys.COPYING_CT])
        mlflow.log_dict(report, "gate/report.json")

    def job_done(self, summary: dict[str, Any]) -> None:
        mlflow.log_dict(summary, "summary.json")
        its = summary["iterations"]
        rows = [its[k] for k in sorted(its, key=int)]
        headline = keys.primary_metric(rows[0])
        if headline in rows[0]:
            mlflow.log_metric(headline, rows[0][headline], step=0)
        if len(rows) > 1 and all(headline in r for r in rows):
            fig = figures.metric_vs_removed(rows, headline)
            mlflow.log_figure(fig, "figures/metric_vs_removed.png")
            figures.plt.close(fig)

    # ---- helpers ----------------------------------------------------------------------------
    def _image_samples(self, samples: np.ndarray, version: DatasetVersion) -> None:
        fig = image_figures.sample_grid(samples, "generated samples (fixed evaluation latents)")
        mlflow.log_figure(fig, "figures/samples.png")
        figures.plt.close(fig)
        last = self._last_scores
        if last is not None and last[1].digest == version.manifest.parent_digest:
            _, parent, parent_run = last
            before = RunDir(parent_run).final_samples(parent)
            fig = image_figures.before_after(
                before, samples, f"{parent.path.name} -> {version.path.name}"
            )
            mlflow.log_figure(fig, "figures/samples_before_after.png")
            figures.plt.close(fig)

    def _log_input(self, version: DatasetVersion, context: str) -> None:
        log_version(version, context=context)

    def _log_losses(self, run: RunDir) -> None:
        names, losses = run.losses()
        now = int(time.time() * 1000)
        metrics = [
            Metric(name, float(value), now, step)
            for step, row in enumerate(losses)
            for name, value in zip(names, row, strict=True)
        ]
        run_id = mlflow.active_run().info.run_id
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[i : i + 1000])

    def _scatter(
        self, table: ScoreTable, version: DatasetVersion, run: Path, removed: np.ndarray | None
    ) -> None:
        harm, _ = table.aligned_to(version.ids)
        fig = figures.influence_scatter(
            version.x,
            harm,
            RunDir(run).final_samples(version),
            removed,
            title=f"{table.method}: harmfulness of training instances",
        )
        name = "influence_scatter_cleansed" if removed is not None else "influence_scatter"
        mlflow.log_figure(fig, f"figures/{name}.png")
        figures.plt.close(fig)
