"""`ganinf influence` (score every instance) and `ganinf validate` (against leave-one-out)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import click

from ganinf_mlops.cli import output
from ganinf_mlops.cli.common import (
    EXISTING_DIR,
    FORCE_OPTION,
    RunRef,
    check_new_output,
    cli,
    config_options,
    load_config,
    make_observer,
    progress,
    tracking_options,
)
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.influence.methods import METHODS


def _version(run: Path, data: Path | None):
    """The dataset version of a run: --data if given, else the one its meta.json points at."""
    from ganinf_mlops.data.version import load_version
    from ganinf_mlops.train.rundir import RunDir

    return load_version(data if data is not None else RunDir(run).dataset_path)


def _fetch(uri: str, dst: Path | None, out: Path):
    from ganinf_mlops.tracking.remote import fetch_run, parse_run_uri
    from ganinf_mlops.tracking.run_log import reading_client

    dst = dst or out.parent / f"run-{parse_run_uri(uri)[0]}"
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


METHOD_HELP = "Scoring method: {} (default: the config's job.method).".format(
    ", ".join(f"{n} ({m.description})" for n, m in METHODS.items())
)


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
    type=click.Path(file_okay=False, path_type=Path),
    help="Where a runs:/ run is fetched to, and reused from (default: run-<run_id> beside --out).",
)
@click.option("--method", type=click.Choice(METHODS.names()), help=METHOD_HELP)
@click.option(
    "--metric",
    type=click.Choice(METHODS.names()),
    hidden=True,
    help="Deprecated name of --method.",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Scores CSV.")
@click.option("--data", type=EXISTING_DIR, help="Dataset version (default: the run's).")
@click.option(
    "--last-epochs",
    type=click.IntRange(min=1),
    help="Trace back only the last K epochs (default: the config's job.last_epochs).",
)
@click.option(
    "--average-order/--no-average-order",
    default=None,
    help="Average each instance's influence over minibatch orders: it is counted at every "
    "traced step, weighted by its chance B/N of being drawn there, instead of at the steps it "
    "was drawn at (steadier between training seeds; D sees all N instances per traced step, so "
    "use it with --last-epochs). Default: the config's job.average_order.",
)
@click.option(
    "--no-checkpointing",
    is_flag=True,
    help="Hold the whole run in memory instead of replaying between checkpoints.",
)
@click.option(
    "--storage-efficient",
    is_flag=True,
    help="Suzuki et al.'s estimate: the last epoch (or --last-epochs K) linearised at the final "
    "state; needs no checkpoint history (runs trained with train.storage: final).",
)
@click.option(
    "--ensemble",
    type=click.IntRange(min=1),
    help="Average the influence over K runs that differ only in the training seed: RUN and "
    "RUN-seed1 .. RUN-seed<K-1> beside it, trained now where missing (default: job.ensemble).",
)
@click.option(
    "--members",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the ensemble's other runs in this directory (DIR/seed1 .. DIR/seed<K-1>) instead "
    "of beside RUN; created even for K = 1, so a DVC stage can declare it as an output.",
)
@click.option("--seed", type=int, help="Seed of the baselines (default: the config's job.seed).")
@config_options
@tracking_options
@FORCE_OPTION
def influence(
    run: Path | str,
    fetch_dir: Path | None,
    method: str | None,
    metric: str | None,
    out: Path,
    data: Path | None,
    last_epochs: int | None,
    average_order: bool | None,
    no_checkpointing: bool,
    storage_efficient: bool,
    ensemble: int | None,
    members: Path | None,
    seed: int | None,
    preset: str,
    params_file: Path | None,
    tracking: bool,
    experiment: str,
    force: bool,
) -> None:
    """Score every training instance; write id, predicted_change, harmfulness, rank.

    predicted_change is the first-order estimate of V(without j) - V(all) = -dV/dw_j;
    harmfulness is the predicted improvement of the metric on removal (rank 1 = most harmful).
    """
    from ganinf_mlops.influence.methods import score_run
    from ganinf_mlops.influence.options import ScoringOptions
    from ganinf_mlops.influence.scores import write_scores

    job = load_config(preset, params_file).job
    check_new_output(out, force)
    if isinstance(run, str):  # runs:/<id>: recompute what the run logged, unless told otherwise
        fetched = _fetch(run, fetch_dir, out)
        run, scoring = fetched.run_dir, fetched.scoring or {}
        extra = scoring.get("extra", {})
        method = method or (metric is None and scoring.get("method")) or None
        last_epochs = last_epochs or extra.get("last_epochs")
        if average_order is None and "average_order" in extra:
            average_order = bool(extra["average_order"])
        storage_efficient = storage_efficient or bool(extra.get("storage_efficient"))
        no_checkpointing = no_checkpointing or extra.get("checkpointed") is False
        seed = extra.get("seed") if seed is None else seed
        if ensemble is None:  # one run unless it logged an ensemble, whatever the config says
            logged = extra.get("ensemble")
            ensemble = len(logged) if isinstance(logged, list) else 1
        version = fetched.version if data is None else _version(run, data)
    else:
        version = _version(run, data)
    method = _method(method, metric, job.method)
    obs = make_observer(tracking, experiment)
    with obs.stage("influence", version):
        options = ScoringOptions(
            method,
            ensemble=job.ensemble if ensemble is None else ensemble,
            last_epochs=last_epochs or job.last_epochs,
            checkpointed=not no_checkpointing,
            seed=job.seed if seed is None else seed,
            progress=progress(),
            storage_efficient=storage_efficient,
            average_order=job.average_order if average_order is None else average_order,
        )
        table = score_run(run, version, options, members=members)
        write_scores(out, table)
        obs.scored(table, out, version, run)
    click.echo(output.scores_line(str(out), table))


@cli.command("validate")
@click.option("--run", required=True, type=EXISTING_DIR, help="Run directory (trajectory).")
@click.option(
    "--loo",
    type=click.IntRange(min=4),
    help="Instances to retrain without: 1/4 top, 1/4 bottom, 1/2 random "
    "(default: the config's job.loo).",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Report JSON.")
@click.option(
    "--scores",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Influence scores to check (default: compute them with --method).",
)
@click.option(
    "--method",
    type=click.Choice(METHODS.names()),
    help="Influence method to compute when --scores is not given (default: the config's "
    "job.method).",
)
@click.option(
    "--metric", type=click.Choice(METHODS.names()), hidden=True, help="Deprecated: --method."
)
@click.option(
    "--group",
    type=click.IntRange(min=0),
    help="Random removal sets per fraction (1%, 5%, 20%) for the group score, 0 skips it "
    "(default: the config's job.group_subsets).",
)
@click.option("--data", type=EXISTING_DIR, help="Dataset version (default: the run's).")
@click.option("--seed", type=int, help="Seed choosing the random instances (default: job.seed).")
@config_options
@tracking_options
@FORCE_OPTION
def validate_cmd(
    run: Path,
    loo: int | None,
    out: Path,
    scores: Path | None,
    method: str | None,
    metric: str | None,
    group: int | None,
    data: Path | None,
    seed: int | None,
    preset: str,
    params_file: Path | None,
    tracking: bool,
    experiment: str,
    force: bool,
) -> None:
    """Compare influence estimates with real retraining (same schedule): leave-one-out
    (w_j = 0) and, for the group score, removal of random sets and of the top-ranked sets."""
    from ganinf_mlops.influence.methods import score
    from ganinf_mlops.influence.options import ScoringOptions
    from ganinf_mlops.influence.scores import read_scores
    from ganinf_mlops.influence.validate import validate
    from ganinf_mlops.io import write_json

    job = load_config(preset, params_file).job
    method = _method(method, metric, job.method)
    k = loo if loo is not None else job.loo
    if k == 0:
        raise ConfigError("the config's job.loo is 0 (no validation): give --loo N (N >= 4)")
    check_new_output(out, force)
    obs = make_observer(tracking, experiment)
    version = _version(run, data)
    with obs.stage("validate", version):
        table = (
            read_scores(scores)
            if scores is not None
            else score(run, version, ScoringOptions(method, progress=progress()))
        )
        report = validate(
            run,
            version,
            table,
            k=k,
            seed=job.seed if seed is None else seed,
            group_subsets=job.group_subsets if group is None else group,
            progress=progress(),
        )
        write_json(out, report)
        obs.validated(report)
    for line in output.validation_lines(report):
        click.echo(line)
