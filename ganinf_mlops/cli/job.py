"""`ganinf loop` and `ganinf run`: the cleanse loop of a config (pipeline.run_job)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from ganinf_mlops.cli import output
from ganinf_mlops.cli.common import (
    FORCE_OPTION,
    PRESET_BY_INPUT_HELP,
    check_input_options,
    cli,
    info,
    input_options,
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
    input_options,
    click.option(
        "--out",
        type=OutputPath(path_type=Path),
        default=Path("ganinf-work"),
        show_default=True,
        help="Working directory for versions, runs, reports.",
    ),
    with_config(preset_help=PRESET_BY_INPUT_HELP),
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
        "registered_model",
        "executor",
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


def _given_config() -> bool:
    """Whether the user named the config (--preset or --params), rather than taking the default."""
    ctx = click.get_current_context()
    return (
        ctx.params.get("params_file") is not None
        or ctx.get_parameter_source("preset") is not click.core.ParameterSource.DEFAULT
    )


def _run_loop(
    input_path: Path | None,
    eval_path: Path | None,
    label_column: str | None,
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

    check_input_options(input_path, eval_path, label_column)
    if input_path is not None:
        from ganinf_mlops.data.inputs import read_input
        from ganinf_mlops.preset_choice import preset_for_input

        # Read and checked in full here: a bad file is refused before --out is created.
        user = read_input(input_path, eval_path=eval_path, label_column=label_column)
        config = preset_for_input(user, config if _given_config() else None)
        raw = user.raw
        click.echo(f"{user.path}: {user.kind}, preset {config.name}")
        click.echo(output.split_line(raw.x.shape[0], raw.x_eval.shape[0], raw.params))
    cfg = dataclasses.replace(config, job=overrides(config.job, job))
    obs = make_observer(tracking, experiment)
    summary = run_job(
        out, cfg, observer=obs, force=force, progress=progress(), resume=resume, on_plan=info
    )
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
