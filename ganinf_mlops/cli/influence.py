"""`ganinf influence` (score every instance) and `ganinf validate` (against leave-one-out)."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import click

from ganinf_mlops.cli import output
from ganinf_mlops.cli.common import (
    EXISTING_DIR,
    FORCE_OPTION,
    RunRef,
    check_new_output,
    cli,
    info,
    make_observer,
    progress,
    tracking_options,
)
from ganinf_mlops.cli.guard import InputPath, OutputPath
from ganinf_mlops.cli.options import (
    Changes,
    config_given,
    field_options,
    job_of_run,
    overrides,
    with_config,
)
from ganinf_mlops.config import JobOptions, Preset
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.influence.methods import METHODS
from ganinf_mlops.influence.options import ScoringOptions


def _version(run: Path, data: Path | None):
    """The dataset version of a run: --data if given, else the one its meta.json points at."""
    from ganinf_mlops.data.version import load_version
    from ganinf_mlops.train.rundir import RunDir

    return load_version(data if data is not None else RunDir(run).dataset_path)


def _fetch(uri: str, dst: Path | None, out: Path):
    from ganinf_mlops.tracking.remote import TRAJECTORY, fetch_run, parse_run_uri
    from ganinf_mlops.tracking.run_log import reading_client

    run_id, artifact_path = parse_run_uri(uri)
    if dst is None:  # one directory per trajectory: a fetch dir holds one (tracking/remote.py)
        tail = "" if artifact_path == TRAJECTORY else "-" + re.sub(r"[^\w.-]", "_", artifact_path)
        dst = out.parent / f"run-{run_id}{tail.replace('..', '_')}"
    if not progress():
        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    reused = dst.exists()
    fetched = fetch_run(uri, dst, reading_client())
    what = "reusing" if reused else "fetched"
    if progress():
        click.echo(f"{what} {uri} in {dst} (dataset {fetched.version.path.name}, "
                   f"{fetched.version.digest[:12]})", err=True)  # fmt: skip
    return fetched


def _method(method: str | None, metric: str | None, default: str) -> str:
    """--method, or the deprecated --metric (one release), or the config's job.method."""
    if metric is not None:
        if method is not None and method != metric:
            raise ConfigError("give --method only (--metric is its deprecated name)")
        msg = "--metric is deprecated and will be removed in the next release; use --method"
        warnings.warn(msg, FutureWarning, stacklevel=2)
        click.echo(f"warning: {msg}", err=True)
        return metric
    return method or default


METHODS_LIST = "One of: {}.".format(", ".join(f"{n} ({m.description})" for n, m in METHODS.items()))
# The scoring options (`ScoringOptions`) of `influence`, as far as the job's config sets them.
_FROM_JOB = "the job.{name} the run was trained under (--preset/--params: the config's)"
_METHOD = {"type": click.Choice(METHODS.names()), "help": "{help} " + METHODS_LIST}


_EXECUTOR = "the config's job.executor (auto: ray when RAY_ADDRESS is set)"


def _executor(config: Preset, job: Changes):
    """The executor of the trainings and replays a command runs: --executor, else the config's
    job.executor (not a run's record: where it ran does not change it)."""
    from ganinf_mlops.executor import executor_for

    return executor_for(job.get("executor") or config.job.executor)


def _logged(scoring: dict[str, Any]) -> Changes:
    """The scoring options a fetched run logged: the defaults of re-scoring it (one run unless
    it logged an ensemble, whatever the config says)."""
    extra = scoring.get("extra", {})
    logged = extra.get("ensemble")
    return {
        "method": scoring.get("method"),
        "ensemble": len(logged) if isinstance(logged, list) else 1,
        "last_epochs": extra.get("last_epochs"),
        "average_order": bool(extra["average_order"]) if "average_order" in extra else None,
        "storage_efficient": True if extra.get("storage_efficient") else None,
        "checkpointed": False if extra.get("checkpointed") is False else None,
        "seed": extra.get("seed"),
    }


@cli.command()
@click.option(
    "--run",
    required=True,
    type=RunRef(),
    help="Run directory (trajectory), or runs:/<run_id> on the MLflow tracking server: its "
    "trajectory artifacts and dataset version are fetched (see --fetch-dir) and its own scoring "
    "settings are the defaults.",
)
@click.option(
    "--fetch-dir",
    type=OutputPath(file_okay=False, path_type=Path),
    help="Where a runs:/ run is fetched to, and reused from for that run only (another run is "
    "refused: it records the one it holds). Default: run-<run_id> beside --out "
    "(run-<run_id>-<artifact path> for another artifact path than trajectory).",
)
@field_options(ScoringOptions, "method", into="scoring", default=_FROM_JOB, method=_METHOD)
@click.option(
    "--metric",
    type=click.Choice(METHODS.names()),
    hidden=True,
    help="Deprecated name of --method.",
)
@click.option("--out", required=True, type=OutputPath(path_type=Path), help="Scores CSV.")
@click.option("--data", type=EXISTING_DIR, help="Dataset version (default: the run's).")
@field_options(ScoringOptions, "last_epochs", "average_order", into="scoring", default=_FROM_JOB)
@field_options(ScoringOptions, "checkpointed", "storage_efficient", into="scoring")
@field_options(ScoringOptions, "ensemble", into="scoring", default=_FROM_JOB)
@click.option(
    "--members",
    type=OutputPath(file_okay=False, path_type=Path),
    help="Keep the ensemble's other runs in this directory (DIR/seed1 .. DIR/seed<K-1>) instead "
    "of beside RUN; created even for K = 1, so a DVC stage can declare it as an output.",
)
@field_options(ScoringOptions, "seed", into="scoring", default=_FROM_JOB)
@field_options(JobOptions, "executor", into="job", default=_EXECUTOR)
@with_config
@tracking_options
@FORCE_OPTION
def influence(
    run: Path | str,
    fetch_dir: Path | None,
    metric: str | None,
    out: Path,
    data: Path | None,
    members: Path | None,
    config: Preset,
    tracking: bool,
    experiment: str,
    force: bool,
    scoring: Changes,
    job: Changes,
) -> None:
    """Score every training instance; write id, predicted_change, harmfulness, rank.

    predicted_change is the first-order estimate of V(without j) - V(all) = -dV/dw_j;
    harmfulness is the predicted improvement of the metric on removal (rank 1 = most harmful).
    """
    from ganinf_mlops.influence.methods import score_run
    from ganinf_mlops.influence.scores import write_scores

    # The given options checked before any work.
    overrides(ScoringOptions.from_job(config.job, progress=progress()), scoring)
    check_new_output(out, force)
    logged = None
    if isinstance(run, str):  # runs:/<id>: recompute what the run logged, unless told otherwise
        fetched = _fetch(run, fetch_dir, out)
        run, logged = fetched.run_dir, fetched.scoring or {}
        version = fetched.version if data is None else _version(run, data)
    else:
        version = _version(run, data)
    options = ScoringOptions.from_job(
        job_of_run(run, config, fetched=logged is not None), progress=progress()
    )
    if logged is not None and not config_given():
        options = overrides(options, _logged(logged))
    method = _method(scoring.get("method"), metric, options.method)
    options = overrides(options, {**scoring, "method": method})
    obs = make_observer(tracking, experiment)
    with obs.stage("influence", version):
        table = score_run(
            run, version, options, members=members, on_plan=info, executor=_executor(config, job)
        )
        write_scores(out, table)
        obs.scored(table, out, version, run)
    click.echo(output.scores_line(str(out), table))


@cli.command("validate")
@click.option("--run", required=True, type=EXISTING_DIR, help="Run directory (trajectory).")
@field_options(
    JobOptions, "loo", into="job", default=_FROM_JOB, loo={"type": click.IntRange(min=4)}
)
@click.option("--out", required=True, type=OutputPath(path_type=Path), help="Report JSON.")
@click.option(
    "--scores",
    type=InputPath(exists=True, dir_okay=False, path_type=Path),
    help="Influence scores to check (default: compute them with --method).",
)
@field_options(
    JobOptions,
    "method",
    into="job",
    default=_FROM_JOB,
    method={**_METHOD, "help": "{help} Computed when --scores is not given. " + METHODS_LIST},
)
@click.option(
    "--metric", type=click.Choice(METHODS.names()), hidden=True, help="Deprecated: --method."
)
@field_options(
    JobOptions,
    "group_subsets",
    into="job",
    default=_FROM_JOB,
    group_subsets={"decls": ("--group",)},
)
@click.option("--data", type=EXISTING_DIR, help="Dataset version (default: the run's).")
@field_options(JobOptions, "seed", into="job", default=_FROM_JOB)
@field_options(JobOptions, "executor", into="job", default=_EXECUTOR)
@with_config
@tracking_options
@FORCE_OPTION
def validate_cmd(
    run: Path,
    out: Path,
    scores: Path | None,
    metric: str | None,
    data: Path | None,
    config: Preset,
    tracking: bool,
    experiment: str,
    force: bool,
    job: Changes,
) -> None:
    """Compare influence estimates with real retraining (same schedule): leave-one-out
    (w_j = 0) and, for the group score, removal of random sets and of the top-ranked sets."""
    from ganinf_mlops.influence.groups import n_group_replays
    from ganinf_mlops.influence.methods import score
    from ganinf_mlops.influence.scores import read_scores
    from ganinf_mlops.influence.validate import validate
    from ganinf_mlops.io import write_json
    from ganinf_mlops.plan import validation_plan
    from ganinf_mlops.train.rundir import RunDir

    traj = RunDir(run)
    recorded = job_of_run(run, config)
    method = _method(job.get("method"), metric, recorded.method)  # scores only
    options = overrides(recorded, {k: v for k, v in job.items() if k not in ("method", "executor")})
    if options.loo == 0:
        mine = traj.recorded_job is not None and not config_given()
        whose = f"{run}'s recorded" if mine else "the config's"
        raise ConfigError(f"{whose} job.loo is 0 (no validation): give --loo N (N >= 4)")
    check_new_output(out, force)
    obs = make_observer(tracking, experiment)
    version = _version(run, data)
    with obs.stage("validate", version):
        table = read_scores(scores) if scores is not None else None
        info(
            validation_plan(
                str(run),
                scoring=table is None,
                loo=options.loo,
                group_replays=n_group_replays(options.group_subsets),
                n_runs=len(table.extra.get("ensemble") or [run]) if table is not None else 1,
                n_steps=traj.n_steps,
                seconds_each=traj.train_seconds,
            )  # fmt: skip
        )
        if table is None:
            table = score(run, version, ScoringOptions(method, progress=progress()))
        report = validate(
            run,
            version,
            table,
            k=options.loo,
            seed=options.seed,
            group_subsets=options.group_subsets,
            progress=progress(),
            executor=_executor(config, job),
        )
        write_json(out, report)
        obs.validated(report)
    for line in output.validation_lines(report):
        click.echo(line)
