"""`ganinf loop` and `ganinf run`: the cleanse loop of a config (pipeline.run_job)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from ganinf_mlops.cli import output
from ganinf_mlops.cli.common import (
    FORCE_OPTION,
    cli,
    make_observer,
    progress,
    tracking_options,
)
from ganinf_mlops.cli.guard import OutputPath
from ganinf_mlops.cli.options import Changes, field_options, overrides, with_config
from ganinf_mlops.config import JobOptions, Preset
from ganinf_mlops.influence.methods import METHODS

# Every job option may be given as "" (MLproject's default): the config's value then applies.
_JOB_OPTIONS = [
    click.option(
        "--out",
        type=OutputPath(path_type=Path),
        default=Path("ganinf-work"),
        show_default=True,
        help="Working directory for versions, runs, reports.",
    ),
    with_config,
    field_options(
        JobOptions,
        "method",
        "remove_frac",
        "loo",
        "last_epochs",
        "average_order",
        "seed",
        "stop_when_worse",
        "policy",
        "threshold",
        "retrain_seeds",
        "retrain_budget",
        "chunks",
        "ensemble",
        "iterations",
        "allow_unfitted",
        into="job",
        default="the config's job.{name}",
        blank=True,
        method={"type": click.Choice(METHODS.names())},
    ),
    tracking_options,
    FORCE_OPTION,
    click.option(
        "--resume",
        is_flag=True,
        help="Continue an interrupted job in --out with the same settings: finished steps are "
        "checked and kept, an interrupted training continues from its last checkpoint.",
    ),
]


def _job_command(f):
    for decorator in reversed(_JOB_OPTIONS):
        f = decorator(f)
    return f


def _run_loop(
    out: Path,
    config: Preset,
    tracking: bool,
    experiment: str,
    force: bool,
    resume: bool,
    job: Changes,
) -> None:
    from ganinf_mlops.layout import JobLayout
    from ganinf_mlops.pipeline import run_job

    cfg = dataclasses.replace(config, job=overrides(config.job, job))
    obs = make_observer(tracking, experiment)
    summary = run_job(out, cfg, observer=obs, force=force, progress=progress(), resume=resume)
    for line in output.job_lines(summary, str(JobLayout(out).summary)):
        click.echo(line)
    hint = obs.ui_hint()
    if hint:
        click.echo(hint)


@cli.command("loop")
@_job_command
def loop_cmd(**kwargs: Any) -> None:
    """Iterate: score, validate, cleanse, retrain (replay and fresh) on each new version.

    With tracking, one MLflow parent run holds a nested run per iteration (iteration 0 trains
    on the raw data), tagged with dataset digest, parent digest, iteration and method.
    """
    _run_loop(**kwargs)


@cli.command("run")
@_job_command
def run_cmd(**kwargs: Any) -> None:
    """The default job: prepare, train, then the config's cleanse iterations (see `loop`)."""
    _run_loop(**kwargs)
