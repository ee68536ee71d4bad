"""`ganinf loop` and `ganinf run`: the cleanse loop of a config (pipeline.run_job)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ganinf_mlops.cli import output
from ganinf_mlops.cli.common import (
    FORCE_OPTION,
    BlankOr,
    cli,
    config_options,
    load_config,
    make_observer,
    progress,
    tracking_options,
)
from ganinf_mlops.config import BUDGETS, POLICIES
from ganinf_mlops.influence.methods import METHODS

# Every job option may be given as "" (MLproject's default): the config's value then applies.
_JOB_OPTIONS = [
    click.option(
        "--out",
        type=click.Path(path_type=Path),
        default=Path("ganinf-work"),
        show_default=True,
        help="Working directory for versions, runs, reports.",
    ),
    config_options,
    click.option(
        "--method",
        type=BlankOr(click.Choice(METHODS.names())),
        help="Scoring method for cleansing (default: the config's job.method).",
    ),
    click.option(
        "--remove-frac",
        type=BlankOr(click.FLOAT),
        help="Fraction removed per cleanse (default: the config's).",
    ),
    click.option(
        "--loo",
        type=BlankOr(click.IntRange(min=0)),
        help="Leave-one-out retrainings for validation per iteration, 0 skips (default: the "
        "config's).",
    ),
    click.option(
        "--last-epochs",
        type=BlankOr(click.IntRange(min=1)),
        help="Trace back only the last K epochs (default: the config's).",
    ),
    click.option(
        "--average-order/--no-average-order",
        default=None,
        help="Influence averaged over minibatch orders: each instance at every traced step, "
        "weighted by its chance B/N of being there (default: the config's).",
    ),
    click.option(
        "--seed",
        type=BlankOr(click.INT),
        help="Seed of validation choice and baselines (default: the config's).",
    ),
    click.option(
        "--stop-when-worse/--no-stop-when-worse",
        default=None,
        help="Stop once the metric stops improving (default: the config's).",
    ),
    click.option(
        "--policy",
        type=BlankOr(click.Choice(POLICIES)),
        help="Which of the top remove_frac go: positive | threshold | top (default: the config's).",
    ),
    click.option(
        "--threshold",
        type=BlankOr(click.FLOAT),
        help="Harmfulness cut-off of --policy threshold (default: the config's).",
    ),
    click.option(
        "--retrain-seeds",
        type=BlankOr(click.IntRange(min=1)),
        help="Fresh retrainings per version, over training seeds (default: the config's).",
    ),
    click.option(
        "--retrain-budget",
        type=BlankOr(click.Choice(BUDGETS)),
        help="Fresh retraining keeps the parent's optimizer 'steps' or the config's 'epochs' "
        "(default: the config's).",
    ),
    click.option(
        "--chunks",
        type=BlankOr(click.IntRange(min=1)),
        help="Remove each iteration's budget in C chunks, re-scoring on the counterfactual "
        "replay after each (of every ensemble member) (default: the config's).",
    ),
    click.option(
        "--ensemble",
        type=BlankOr(click.IntRange(min=1)),
        help="Average influence over K runs of each version that differ in the training seed "
        "(default: the config's).",
    ),
    click.option(
        "--iterations",
        type=BlankOr(click.IntRange(min=1)),
        help="Cleanse -> retrain iterations (default: the config's job.iterations).",
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
    preset: str,
    params_file: Path | None,
    tracking: bool,
    experiment: str,
    force: bool,
    resume: bool,
    **job: Any,
) -> None:
    from ganinf_mlops.layout import JobLayout
    from ganinf_mlops.params import with_job
    from ganinf_mlops.pipeline import run_job

    cfg = with_job(load_config(preset, params_file), **job)
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
