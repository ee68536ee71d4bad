"""`ganinf lineage` and `ganinf gate`: data lineage and the production data-quality gate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ganinf_mlops.cli.common import (
    EXISTING_DIR,
    cli,
    config_options,
    load_config,
    make_observer,
    progress,
    tracking_options,
)
from ganinf_mlops.influence.methods import METHODS


@cli.command("lineage")
@click.argument("ref")
@click.option(
    "--root",
    type=EXISTING_DIR,
    default=Path("."),
    show_default=True,
    help="Where to look for a version given by digest.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--runs/--no-runs",
    default=None,
    help="Look up the MLflow runs that produced and used each version "
    "(default: when tracking is on and a store exists).",
)
def lineage_cmd(ref: str, root: Path, as_json: bool, runs: bool | None) -> None:
    """The chain from a version (REF: its directory, or a digest prefix) back to the raw data."""
    import os

    from ganinf_mlops.lineage import chain, find_version

    entries = chain(find_version(ref, root))
    if runs is None:  # look only where a store exists: a lookup must not create one
        runs = os.environ.get("GANINF_TRACKING", "1") != "0" and (
            "MLFLOW_TRACKING_URI" in os.environ or Path("mlflow.db").exists()
        )
    if runs:
        from ganinf_mlops.tracking.lookup import runs_for_digest
        from ganinf_mlops.tracking.mlflow_runs import MlflowTracker

        client = MlflowTracker(experiment="ganinf").client
        for e in entries:
            e.update(runs_for_digest(client, e["digest"]))
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    for e in entries:
        what = "raw" if e["parent_digest"] is None else f"removed {e['n_removed']} by {e['method']}"
        click.echo(f"{e['digest'][:12]}  {e['n_instances']:>7} instances  {what:<28} {e['path']}")
        if runs:
            click.echo(
                f"{'':14}produced by runs: {', '.join(e['produced_by']) or '-'}; "
                f"used by: {', '.join(e['used_by']) or '-'}"
            )


@cli.command("gate")
@click.option("--data", required=True, type=EXISTING_DIR, help="Dataset version to check.")
@click.option(
    "--run",
    required=True,
    type=EXISTING_DIR,
    help="A run trained on that version (its trajectory is scored).",
)
@click.option(
    "--scores",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Precomputed scores of the version (skips scoring).",
)
@click.option(
    "--method",
    type=click.Choice(METHODS),
    help="Scoring method (default: the config's job.method).",
)
@click.option(
    "--max-harmful-frac",
    type=float,
    help="Fail if more than this fraction of instances is harmful.",
)
@click.option(
    "--threshold",
    type=float,
    help="Harmfulness above which an instance counts as harmful (default 0; alone: "
    "fail if any instance exceeds it).",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("gate-report.json"),
    show_default=True,
    help="JSON report.",
)
@config_options
@tracking_options
def gate_cmd(
    data: Path,
    run: Path,
    scores: Path | None,
    method: str | None,
    max_harmful_frac: float | None,
    threshold: float | None,
    report: Path,
    preset: str,
    params_file: Path | None,
    tracking: bool | None,
    experiment: str,
) -> None:
    """Data-quality gate: exit 0 pass, 1 fail, 2 usage or input error; writes a JSON report."""
    from ganinf_mlops.data.version import load_version
    from ganinf_mlops.errors import ConfigError
    from ganinf_mlops.gate import gate_report
    from ganinf_mlops.influence.methods import score
    from ganinf_mlops.influence.scores import read_scores
    from ganinf_mlops.io import write_json
    from ganinf_mlops.tracking import tags

    if threshold is None and max_harmful_frac is None:
        raise ConfigError("give --max-harmful-frac and/or --threshold")
    job = load_config(preset, params_file).job
    obs = make_observer(tracking, experiment)
    version = load_version(data)
    with obs.stage("gate", version) as run_id:
        if scores is not None:
            table = read_scores(scores)
            if table.dataset_digest != version.digest:
                raise ConfigError(f"scores {scores} are not of version {data}")
        else:
            table = score(run, version, method or job.method, seed=job.seed, progress=progress())
        result = gate_report(table, threshold=threshold, max_harmful_frac=max_harmful_frac)
        result.update(data=str(data), run=str(run))
        write_json(report, result)
        if run_id is not None:
            import mlflow

            mlflow.set_tag("ganinf.gate", "pass" if result["passed"] else "fail")
            mlflow.log_metrics(
                {"harmful_frac": result["harmful_frac"], "n_harmful": result["n_harmful"]}
            )
            mlflow.log_dict(result, "gate/report.json")
            mlflow.set_tag(tags.METHOD, table.method)
    verdict = "PASS" if result["passed"] else "FAIL"
    click.echo(
        f"{verdict}: {result['n_harmful']} of {result['n_instances']} instances harmful "
        f"({result['harmful_frac']:.2%} vs limit {result['max_harmful_frac']:.2%}, "
        f"threshold {result['threshold']:g}); report {report}"
    )
    sys.exit(0 if result["passed"] else 1)
