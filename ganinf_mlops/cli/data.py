"""Data commands: prepare (a raw dataset version), cleanse (a child version), params."""

from __future__ import annotations

from pathlib import Path

import click

from ganinf_mlops.cli import output
from ganinf_mlops.cli.common import (
    EXISTING_DIR,
    FORCE_OPTION,
    check_input_options,
    check_new_output,
    cli,
    config_options,
    input_options,
    load_config,
    make_observer,
    parse_key_values,
    tracking_options,
)
from ganinf_mlops.cli.guard import InputPath, OutputPath
from ganinf_mlops.cli.options import Changes, field_options, with_config
from ganinf_mlops.config import ON_ABSTAIN, JobOptions, Preset
from ganinf_mlops.data.datasets import DATASETS
from ganinf_mlops.errors import ConfigError

_FROM_JOB = "the config's job.{name}"
FILE_SOURCES = ("npz", "images_npz", "table")  # the sources that read a user's file


@cli.command()
@click.option(
    "--dataset",
    type=click.Choice(DATASETS.names()),
    help="Data source: a generator, or one that reads --input (default: the config's, or the "
    "one that reads --input).",
)
@input_options
@click.option(
    "--out",
    required=True,
    type=OutputPath(path_type=Path),
    help="Directory of the new dataset version.",
)
@config_options
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a source parameter, e.g. --param n=500 --param anomaly_frac=0.05, or "
    "--param eval_frac=0.1 --param seed=3 for --input.",
)
@tracking_options
@FORCE_OPTION
def prepare(
    dataset: str | None,
    input_path: Path | None,
    eval_path: Path | None,
    label_column: str | None,
    out: Path,
    preset: str,
    params_file: Path | None,
    params: tuple[str, ...],
    tracking: bool,
    experiment: str,
    force: bool,
) -> None:
    """Write a raw dataset version (data.npz + manifest.json with its content digest)."""
    from ganinf_mlops.data.inputs import input_data
    from ganinf_mlops.data.version import create_raw_version

    check_input_options(input_path, eval_path, label_column)
    overrides = parse_key_values(params)
    if input_path is not None:
        # The file's data replaces the config's; its format picks the source.
        name, kwargs = input_data(
            input_path, eval_path=eval_path, label_column=label_column, **overrides
        )
        if dataset is not None and dataset != name:
            raise ConfigError(
                f"--dataset {dataset} does not read {input_path}: source {name!r} does (leave "
                "--dataset out)"
            )
        dataset = name
    else:
        cfg = load_config(preset, params_file)
        dataset = dataset or cfg.dataset
        kwargs = dict(cfg.data_params) if dataset == cfg.dataset else {}
        kwargs.update(overrides)
        if dataset in FILE_SOURCES and "path" not in kwargs:
            raise ConfigError(f"--dataset {dataset} needs --input FILE")
    obs = make_observer(tracking, experiment)
    with obs.stage("prepare"):
        version = create_raw_version(out, dataset, force=force, **kwargs)
        obs.prepared(version)
    click.echo(output.version_line(version))
    split = output.split_line(version.n, version.manifest.n_eval, version.manifest.params)
    if split:
        click.echo(split)


@cli.command()
@click.option("--data", required=True, type=EXISTING_DIR, help="Dataset version to cleanse.")
@click.option(
    "--scores",
    required=True,
    help="Scores CSV of this version.",
    type=InputPath(exists=True, dir_okay=False, path_type=Path),
)
@field_options(JobOptions, "remove_frac", into="job", default=_FROM_JOB)
@click.option("--remove-count", type=int, help="Number of instances to remove.")
@field_options(JobOptions, "policy", into="job", default=_FROM_JOB)
@field_options(JobOptions, "threshold", into="job")  # the config's only with the config's policy
@field_options(
    JobOptions,
    "min_agreement",
    "allow_unfitted",
    into="job",
    default=_FROM_JOB,
    min_agreement={"type": click.FloatRange(0, 1, min_open=True)},
)
@click.option(
    "--on-abstain",
    type=click.Choice(ON_ABSTAIN),
    default="fail",
    show_default=True,
    help="When the chain stops here (the cleanse abstains: nothing to remove, or the "
    "ensemble's evidence does not hold; --data is itself a stop; or, with --stop-when-worse, "
    "--run did not improve on --previous-run): fail (exit 2, nothing written) or pass (write "
    "--data unchanged as a version that records why it stopped, print 'stopped: ...', exit 0; "
    "what the DVC pipeline's stages do).",
)
@field_options(
    JobOptions,
    "stop_when_worse",
    into="job",
    default=_FROM_JOB,
    stop_when_worse={"help": "{help} Here: with --previous-run, stop when --run is no better."},
)
@click.option(
    "--run",
    type=EXISTING_DIR,
    help="The fresh run of --data (whose scores these are), judged for --stop-when-worse.",
)
@click.option(
    "--previous-run",
    type=EXISTING_DIR,
    help="The fresh run of --data's parent version: the iteration before this one.",
)
@click.option(
    "--out",
    required=True,
    type=OutputPath(path_type=Path),
    help="Directory of the new dataset version.",
)
@with_config
@tracking_options
@FORCE_OPTION
def cleanse(
    data: Path,
    scores: Path,
    remove_count: int | None,
    on_abstain: str,
    run: Path | None,
    previous_run: Path | None,
    out: Path,
    config: Preset,
    tracking: bool,
    experiment: str,
    force: bool,
    job: Changes,
) -> None:
    """Remove the most harmful instances, writing a child version with its lineage."""
    from ganinf_mlops.data.version import load_version
    from ganinf_mlops.stopping import cleanse_or_stop

    # Not `overrides`: --remove-count replaces the fraction, a --policy comes with its own
    # --threshold, and --min-agreement checks the scores' ensemble rather than the config's.
    cfg = config.job
    remove_frac, threshold = job.get("remove_frac"), job.get("threshold")
    if remove_frac is None and remove_count is None:
        remove_frac = cfg.remove_frac
    policy = job.get("policy")
    if policy is None:
        policy, threshold = cfg.policy, cfg.threshold if threshold is None else threshold
    min_agreement = job.get("min_agreement", cfg.min_agreement)
    obs = make_observer(tracking, experiment)
    version = load_version(data)
    with obs.stage("cleanse", version):
        new, stopped = cleanse_or_stop(
            version,
            scores,
            out,
            on_abstain=on_abstain,
            stop_when_worse=job.get("stop_when_worse", cfg.stop_when_worse),
            run=run,
            previous_run=previous_run,
            remove_frac=remove_frac,
            remove_count=remove_count,
            policy=policy,
            threshold=threshold,
            min_agreement=min_agreement,
            require_ensemble="min_agreement" in job,
            allow_unfitted=job.get("allow_unfitted", cfg.allow_unfitted),
            force=force,
        )
        obs.cleansed(new)
    click.echo(output.cleansed_line(new))
    if stopped is not None:
        click.echo(f"stopped: {stopped}")


@cli.command("params")
@config_options
@click.option(
    "--out",
    type=OutputPath(dir_okay=False, path_type=Path),
    help="Write here (default: print); an existing file needs --force.",
)
@FORCE_OPTION
def params_cmd(preset: str, params_file: Path | None, out: Path | None, force: bool) -> None:
    """Print or write a preset as a complete params.yaml (for DVC, MLproject and --params)."""
    from ganinf_mlops.params import params_text, write_params

    if out is not None:
        check_new_output(out, force)
    cfg = load_config(preset, params_file)
    if out is None:
        click.echo(params_text(cfg), nl=False)
    else:
        write_params(out, cfg)
