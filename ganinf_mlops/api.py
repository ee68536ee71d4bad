"""The Python API: `import ganinf_mlops as gi`, for notebooks and other tools.

A handful of functions over the same library code the `ganinf` commands call; they return plain
objects (dataset versions, run directories, pandas DataFrames, a gate report) and print nothing.

    import ganinf_mlops as gi

    raw = gi.prepare("work/raw", x=points)                    # or dataset="gaussian2d", ...
    run = gi.train(raw, "work/run", preset="tiny")
    scores = gi.influence(run, method="fd", out="work/scores.csv")
    v1 = gi.cleanse(raw, scores, "work/v1", remove_frac=0.05)
    report = gi.gate(v1, gi.train(v1, "work/run1", preset="tiny"), max_harmful_frac=0.5)

Every default comes from a preset (`preset="default"`) or a params file (`params=PATH`), as on
the command line. Scoring an existing run uses the job settings it was trained under (its
method, ensemble, last_epochs, ...) unless a preset or params file is given; what that will
train is logged first (logger `ganinf_mlops.api`, INFO: one `plan: ...` line).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ganinf_mlops import keys
from ganinf_mlops.config import DEFAULT_MIN_AGREEMENT
from ganinf_mlops.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from ganinf_mlops.config import JobOptions, Preset
    from ganinf_mlops.data.version import DatasetVersion
    from ganinf_mlops.influence.scores import ScoreTable
    from ganinf_mlops.train.rundir import RunDir

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
SCORES_PATH = "scores_path"  # DataFrame.attrs key: the scores CSV a DataFrame was written to


def config(preset: str | Preset = "default", params: PathLike | None = None) -> Preset:
    """The configuration of a call: a params file if given, else the named preset (or a
    `Preset` object itself)."""
    from ganinf_mlops.config import Preset, get_preset
    from ganinf_mlops.params import load_params

    if params is not None:
        return load_params(params)
    return preset if isinstance(preset, Preset) else get_preset(preset)


def load(path: PathLike) -> DatasetVersion:
    """A dataset version from disk, its content digest verified."""
    from ganinf_mlops.data.version import load_version

    return load_version(path)


def _version(data: PathLike | DatasetVersion) -> DatasetVersion:
    from ganinf_mlops.data.version import DatasetVersion

    return data if isinstance(data, DatasetVersion) else load(data)


def prepare(
    out: PathLike,
    *,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    x_eval: np.ndarray | None = None,
    y_eval: np.ndarray | None = None,
    ids: np.ndarray | None = None,
    eval_frac: float = 0.2,
    seed: int = 0,
    dataset: str | None = None,
    preset: str | Preset = "default",
    params: PathLike | None = None,
    force: bool = False,
    path: PathLike | None = None,
    eval_path: PathLike | None = None,
    label_column: str | None = None,
    **data_params: Any,
) -> DatasetVersion:
    """Write a raw dataset version and return it.

    From arrays (`x` [N, d] vectors or [N, C, H, W] images, optional labels `y`): without
    `x_eval`, a random `eval_frac` of the rows (seeded) is held out as the evaluation set; the
    split is recorded in the manifest's params. From a file `path` (as `ganinf prepare --input`:
    an .npz of vectors or images, or a CSV/Parquet table with its `label_column`; `eval_path` a
    trusted evaluation set in the same format, else `eval_frac` of the rows held out with
    `seed`). Otherwise: the named `dataset` (default: the preset's), with the preset's data
    parameters updated by `data_params`.
    """
    from ganinf_mlops.data.inputs import input_data
    from ganinf_mlops.data.version import create_raw_version, write_version

    if path is not None:
        if x is not None or dataset is not None:
            raise ConfigError("give a file (path=...), arrays (x=...) or a dataset, one of them")
        name, kwargs = input_data(
            path, eval_path=eval_path, label_column=label_column, eval_frac=eval_frac,
            seed=seed, **data_params,
        )  # fmt: skip
        return create_raw_version(out, name, force=force, **kwargs)
    if eval_path is not None or label_column is not None:
        raise ConfigError("eval_path and label_column go with a file: path=...")
    if x is None:
        cfg = config(preset, params)
        name = dataset or cfg.dataset
        kwargs = dict(cfg.data_params) if name == cfg.dataset else {}
        return create_raw_version(out, name, force=force, **{**kwargs, **data_params})
    if dataset is not None or data_params:
        raise ConfigError("give arrays (x, ...) or a dataset name with its parameters, not both")
    x = np.asarray(x)
    n = len(x)
    ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids)
    recorded: dict[str, Any] = {"source": "arrays"}
    if x_eval is None:
        if y_eval is not None:
            raise ConfigError("y_eval goes with x_eval")
        if not 0 < eval_frac < 1:
            raise ConfigError(f"eval_frac must be in (0, 1), got {eval_frac}")
        n_eval = int(round(n * eval_frac))
        if not 2 <= n_eval <= n - 2:
            raise ConfigError(f"{n} rows cannot be split {eval_frac:.0%} held out")
        held = np.zeros(n, dtype=bool)
        held[np.random.default_rng(seed).permutation(n)[:n_eval]] = True
        x, x_eval, ids = x[~held], x[held], ids[~held]
        if y is not None:
            y = np.asarray(y)
            if len(y) != n:
                raise ConfigError(f"y has {len(y)} labels for {n} rows of x")
            y, y_eval = y[~held], y[held]
        recorded.update(eval_frac=eval_frac, seed=seed, n_train=n - n_eval, n_eval=n_eval)
    return write_version(
        out, x, ids, np.asarray(x_eval), dataset="arrays", params=recorded, force=force, y=y,
        y_eval=y_eval,
    )  # fmt: skip


def train(
    data: PathLike | DatasetVersion,
    out: PathLike,
    *,
    preset: str | Preset = "default",
    params: PathLike | None = None,
    force: bool = False,
    progress: bool = False,
    **options: Any,
) -> RunDir:
    """Train on a dataset version with the preset's training config (`options` replace its
    fields, e.g. `epochs=5`, `seed=1`, `lr=0.01`); return the recorded run directory."""
    from ganinf_mlops.config import with_train_options
    from ganinf_mlops.train.rundir import RunDir
    from ganinf_mlops.train.trainer import train as train_run

    cfg = config(preset, params)
    version = _version(data)
    train_cfg = with_train_options(cfg.train, **options)
    path = train_run(
        version, train_cfg, cfg.metric, out, force=force, progress=progress, job=cfg.job
    )
    return RunDir(path)


def _run_path(run: PathLike | RunDir) -> Path:
    from ganinf_mlops.train.rundir import RunDir

    return run.path if isinstance(run, RunDir) else Path(run)


def influence(
    run: PathLike | RunDir,
    *,
    method: str | None = None,
    data: PathLike | DatasetVersion | None = None,
    ensemble: int | None = None,
    members: PathLike | None = None,
    last_epochs: int | None = None,
    average_order: bool | None = None,
    seed: int | None = None,
    out: PathLike | None = None,
    progress: bool = False,
    preset: str | Preset | None = None,
    params: PathLike | None = None,
) -> pd.DataFrame:
    """Score every training instance of a run: a DataFrame, most harmful first, with columns
    `id`, `predicted_change` (first-order change of the metric if the instance were removed),
    `harmfulness` (the predicted improvement), `rank` (1 = most harmful), `injected` (planted
    anomaly, where the version records them), `label` (labelled data) and `x0..x{d-1}`
    (vectors of up to 8 dimensions).

    The options left out (None) take the job settings the run was trained under (its preset's
    `job`: method, ensemble, last_epochs, average_order, seed), or those of `preset` / `params`
    when given. A run trained before runs recorded them is scored alone with its first target
    (e.g. ALL for a 2D GAN, FID for images, the validation loss for a classifier), said in a
    logged note. `ensemble` > 1 trains the K - 1 seed siblings that are missing (into `members`)
    and averages their influence: the plan is logged first. With `out`, the table is also
    written as a scores CSV (what `cleanse` and `gate` take), and `DataFrame.attrs["scores_path"]`
    names it.
    """
    from ganinf_mlops.influence.methods import score_run
    from ganinf_mlops.influence.options import ScoringOptions
    from ganinf_mlops.influence.scores import write_scores
    from ganinf_mlops.io import check_disjoint
    from ganinf_mlops.train.rundir import RunDir

    path = _run_path(run)
    rd = RunDir(path)
    version = _version(data if data is not None else rd.dataset_path)
    if out is not None:
        check_disjoint(out, path, version.path)
    job = _job_of(rd, preset, params)
    given = {
        "method": method, "ensemble": ensemble, "last_epochs": last_epochs,
        "average_order": average_order, "seed": seed,
    }  # fmt: skip
    changes = {k: v for k, v in given.items() if v is not None}
    options = ScoringOptions.from_job(job, progress=progress, **changes)
    table = score_run(path, version, options, members=members, on_plan=_log)
    if out is not None:
        write_scores(out, table)
    frame = scores_frame(table, version)
    if out is not None:
        frame.attrs[SCORES_PATH] = str(out)
    return frame


def _log(message: object) -> None:
    log.info("%s", message)


def _job_of(run: RunDir, preset: str | Preset | None, params: PathLike | None) -> JobOptions:
    """The job settings a call on an existing run uses (`influence.options.job_for_run`): the
    given preset's or params file's, else the run's recorded ones, else (an older run) its
    first target scored alone, with a logged note."""
    from ganinf_mlops.config import JobOptions
    from ganinf_mlops.influence.options import job_for_run

    given = None if preset is None and params is None else config(preset or "default", params).job
    fallback = JobOptions(method=_first_target(run))
    job, note = job_for_run(run, given, fallback, "the defaults (its first target, one run)")
    if note is not None:
        log.info("%s", note)
    return job


def _first_target(run: RunDir) -> str:
    """A method's default: the run's problem kind's first target (ALL, FID, val_loss)."""
    from ganinf_mlops.problems import PROBLEMS

    return PROBLEMS.get(run.train_config.problem).target_names[0]


def scores_frame(table: ScoreTable, version: DatasetVersion | None = None) -> pd.DataFrame:
    """A score table as a DataFrame, most harmful first (see `influence` for the columns)."""
    import pandas as pd

    order = table.order()
    frame = pd.DataFrame(
        {
            keys.ID: table.ids[order],
            keys.PREDICTED_CHANGE: table.predicted_change[order],
            keys.HARMFULNESS: table.harmfulness[order],
            keys.RANK: np.arange(1, table.n + 1),
        }
    )
    if version is not None:
        pos = {int(i): k for k, i in enumerate(version.ids)}
        rows = np.array([pos[int(i)] for i in frame[keys.ID]])
        injected = version.manifest.is_anomaly_ids
        if injected is not None:
            frame["injected"] = np.isin(frame[keys.ID], injected)
        if version.y is not None:
            frame["label"] = version.y[rows]
        if version.x.ndim == 2 and version.x.shape[1] <= 8:
            for d in range(version.x.shape[1]):
                frame[f"x{d}"] = version.x[rows, d]
    frame.attrs.update(method=table.method, metric=table.metric, run=table.run)
    return frame


def _scores_path(scores: PathLike | pd.DataFrame) -> Path:
    attrs = getattr(scores, "attrs", None)
    if attrs is None:
        return Path(scores)  # type: ignore[arg-type]
    if SCORES_PATH not in attrs:
        raise ConfigError(
            "these scores were not written to a file: call gi.influence(..., out=PATH) first, "
            "so the new version can record which scores made it"
        )
    return Path(attrs[SCORES_PATH])


def cleanse(
    data: PathLike | DatasetVersion,
    scores: PathLike | pd.DataFrame,
    out: PathLike,
    *,
    remove_frac: float | None = None,
    remove_count: int | None = None,
    policy: str = "positive",
    threshold: float | None = None,
    min_agreement: float | None = None,
    allow_unfitted: bool = False,
    force: bool = False,
) -> DatasetVersion:
    """Write the version without its most harmful instances (by the scores of `influence(...,
    out=...)` or a scores CSV): `remove_frac` (default 5%) or `remove_count` of them, those the
    `policy` keeps. Raises `NothingToRemoveError` (writing nothing) when none qualify, and its
    `UnfittedError` when the scores come from a model that did not fit its data (unless
    `allow_unfitted`)."""
    from ganinf_mlops.cleanse import cleanse as cleanse_version

    if remove_frac is None and remove_count is None:
        remove_frac = 0.05
    return cleanse_version(
        _version(data), _scores_path(scores), out, remove_frac=remove_frac,
        remove_count=remove_count, policy=policy, threshold=threshold,
        min_agreement=min_agreement, allow_unfitted=allow_unfitted, force=force,
    )  # fmt: skip


@dataclass(frozen=True)
class GateReport:
    """What `gate` found: `passed`, and the report the CLI writes as JSON."""

    passed: bool
    report: dict[str, Any]

    def __bool__(self) -> bool:
        return self.passed


def gate(
    data: PathLike | DatasetVersion,
    run: PathLike | RunDir,
    *,
    scores: PathLike | pd.DataFrame | None = None,
    method: str | None = None,
    max_harmful_frac: float | None = None,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    ensemble: int | None = None,
    threshold: float | None = None,
    max_copying: float | None = None,
    seed: int | None = None,
    preset: str | Preset | None = None,
    params: PathLike | None = None,
) -> GateReport:
    """The data-quality gate of `ganinf gate` on a version and its run. Unless `scores` are
    given, the run is scored with `method` over an `ensemble` of runs differing in the training
    seed (siblings trained beside it where missing; default: the job settings the run was
    trained under, or of `preset` / `params`); the set check (`max_harmful_frac`) weighs a set
    against that ensemble's seed noise."""
    from ganinf_mlops.gate import (
        check_gate_options,
        copying_report,
        gate_options,
        gate_result,
        gate_table,
    )
    from ganinf_mlops.train.rundir import RunDir

    check_gate_options(threshold, max_harmful_frac, max_copying, min_agreement)
    version = _version(data)
    path = _run_path(run)
    rd = RunDir(path)
    rd.check_dataset(version.digest, f" than {version.path}")
    copying = None if max_copying is None else copying_report(rd.results(), max_copying)
    table = None
    if threshold is not None or max_harmful_frac is not None:
        # Scoring the run: its own job settings, unless a config is given (as `ganinf gate`).
        job = (
            _job_of(rd, preset, params)
            if scores is None
            else config(preset or "default", params).job
        )
        options = gate_options(
            job, method=method, ensemble=ensemble, max_harmful_frac=max_harmful_frac,
            scores_given=scores is not None, progress=False, seed=seed,
        )  # fmt: skip
        scores_path = None if scores is None else _scores_path(scores)
        table = gate_table(version, path, scores=scores_path, options=options, on_plan=_log)
    result = gate_result(
        table, copying, threshold=threshold, max_harmful_frac=max_harmful_frac,
        min_agreement=min_agreement, data=version.path, run=path,
    )  # fmt: skip
    return GateReport(bool(result["passed"]), result)


def run_job(
    out: PathLike,
    *,
    preset: str | Preset = "default",
    params: PathLike | None = None,
    force: bool = False,
    resume: bool = False,
    progress: bool = False,
    **job_options: Any,
) -> dict[str, Any]:
    """The whole job of `ganinf run` (prepare, train, the config's cleanse iterations) into
    `out`, without tracking; `job_options` replace fields of the config's `job` (e.g.
    `iterations=1`, `ensemble=1`). Returns the summary (also written as out/summary.json)."""
    from ganinf_mlops.pipeline import run_job as run_pipeline

    cfg = config(preset, params)
    if job_options:
        cfg = dataclasses.replace(cfg, job=dataclasses.replace(cfg.job, **job_options))
    return run_pipeline(out, cfg, force=force, progress=progress, resume=resume, on_plan=_log)


__all__ = [
    "GateReport",
    "cleanse",
    "config",
    "gate",
    "influence",
    "load",
    "prepare",
    "run_job",
    "scores_frame",
    "train",
]
