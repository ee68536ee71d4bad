"""`ganinf gate`: the production data-quality gate (exit 0 pass, 1 fail, 2 usage/input error)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ganinf_mlops.cli import output
from ganinf_mlops.cli.common import (
    EXISTING_DIR,
    FORCE_OPTION,
    BlankOr,
    check_new_output,
    cli,
    config_options,
    info,
    load_config,
    make_observer,
    progress,
    tracking_options,
)
from ganinf_mlops.cli.guard import InputPath, OutputPath
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.influence.methods import METHODS


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
    type=InputPath(exists=True, dir_okay=False, path_type=Path),
    help="Precomputed scores of the version (skips scoring).",
)
@click.option(
    "--method",
    type=click.Choice(METHODS.names()),
    help="Scoring method (default: the job.method the run was trained under; --preset/--params: "
    "the config's).",
)
@click.option(
    "--max-harmful-frac",
    type=BlankOr(click.FLOAT),
    help="Fail if a set of at most this fraction of the instances is predicted to improve the "
    "metric beyond seed noise (its held-out ensemble members agree; needs an ensemble).",
)
@click.option(
    "--min-agreement",
    type=BlankOr(click.FloatRange(0, 1, min_open=True)),
    help="Fraction of the ensemble's held-out members that must predict the set helps for the "
    "gate to fail (default: the config's job.min_agreement).",
)
@click.option(
    "--ensemble",
    type=BlankOr(click.IntRange(min=2)),
    help="When scoring (no --scores): average over K runs differing in the training seed, "
    "trained beside RUN where missing (default: the config's job.ensemble).",
)
@click.option(
    "--threshold",
    type=BlankOr(click.FLOAT),
    help="Also fail if any instance's harmfulness exceeds this (works on one run's scores).",
)
@click.option(
    "--max-copying",
    type=BlankOr(click.FLOAT),
    help="Fail if the run's data-copying statistic C_T (image runs) is below minus this "
    "(C_T << 0: the generator copies training images; about 3 is a common limit).",
)
@click.option(
    "--report",
    type=OutputPath(dir_okay=False, path_type=Path),
    default=Path("gate-report.json"),
    show_default=True,
    help="JSON report (an existing one needs --force).",
)
@config_options
@tracking_options
@FORCE_OPTION
def gate_cmd(
    data: Path,
    run: Path,
    scores: Path | None,
    method: str | None,
    max_harmful_frac: float | None,
    min_agreement: float | None,
    ensemble: int | None,
    threshold: float | None,
    max_copying: float | None,
    report: Path,
    preset: str,
    params_file: Path | None,
    tracking: bool | None,
    experiment: str,
    force: bool,
) -> None:
    """Data-quality gate: exit 0 pass, 1 fail, 2 usage or input error; writes a JSON report."""
    from ganinf_mlops.cli.options import job_of_run
    from ganinf_mlops.data.version import load_version
    from ganinf_mlops.gate import (
        check_gate_options,
        copying_report,
        gate_options,
        gate_result,
        gate_table,
    )
    from ganinf_mlops.io import write_json
    from ganinf_mlops.train.rundir import RunDir

    # Every argument is checked before the (long) scoring.
    config = load_config(preset, params_file)
    scoring = threshold is not None or max_harmful_frac is not None
    # Scoring the run: its own job settings (method, seed, ensemble), unless a config is given.
    job = job_of_run(run, config) if scoring and scores is None else config.job
    min_agreement = job.min_agreement if min_agreement is None else min_agreement
    check_gate_options(threshold, max_harmful_frac, max_copying, min_agreement)
    if max_harmful_frac is not None and min_agreement is None:
        raise ConfigError("--max-harmful-frac needs --min-agreement (the config sets none)")
    check_new_output(report, force)
    options = gate_options(
        job, method=method, ensemble=ensemble, max_harmful_frac=max_harmful_frac,
        scores_given=scores is not None, progress=progress(),
    )  # fmt: skip
    obs = make_observer(tracking, experiment)
    version = load_version(data)
    traj = RunDir(run)
    traj.check_dataset(version.digest, f" than {data}")
    copying = None if max_copying is None else copying_report(traj.results(), max_copying)
    with obs.stage("gate", version):
        table = None
        if scoring:
            table = gate_table(version, run, scores=scores, options=options, on_plan=info)
        result = gate_result(
            table, copying, threshold=threshold, max_harmful_frac=max_harmful_frac,
            min_agreement=min_agreement or 1.0, data=data, run=run,
        )  # fmt: skip
        write_json(report, result)
        obs.gated(result)
    click.echo(output.gate_line(result, str(report)))
    sys.exit(0 if result["passed"] else 1)
