"""`ganinf train`: train on a dataset version, recording the run directory."""

from __future__ import annotations

from pathlib import Path

import click

from ganinf_mlops.cli import output
from ganinf_mlops.cli.common import (
    EXISTING_DIR,
    FORCE_OPTION,
    cli,
    make_observer,
    progress,
    tracking_options,
)
from ganinf_mlops.cli.guard import OutputPath
from ganinf_mlops.cli.options import Changes, field_options, with_config
from ganinf_mlops.config import Preset, TrainConfig
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.optim import OPTIMIZERS, OptimConfig
from ganinf_mlops.problems.gan import GanConfig

_OPTIMIZERS = click.Choice(OPTIMIZERS.names())


_FROM_TRAIN = "the config's train.{name}"
_BOTH = {
    "help": "{help} Sets every optimizer of the run (both networks' of a GAN: train.d_optim, "
    "train.g_optim; a classifier's train.optim). Default: the config's."
}


@cli.command("train")
@click.option("--data", required=True, type=EXISTING_DIR, help="Dataset version to train on.")
@click.option("--out", required=True, type=OutputPath(path_type=Path), help="Run directory.")
@with_config
@click.option(
    "--replay",
    type=EXISTING_DIR,
    help="Counterfactual retraining: reuse this run's minibatch order, latents, "
    "initialisation and config; instances missing from --data get weight 0.",
)
@click.option(
    "--retrain-of",
    type=EXISTING_DIR,
    help="A fresh retraining of this run's data after a cleanse: with job.retrain_budget "
    "'steps' (the default) it takes as many optimizer steps as that run did.",
)
@field_options(TrainConfig, "epochs", "steps", "batch_size", into="train", default=_FROM_TRAIN)
@field_options(  # `with_train_options` applies lr and optimizer to both networks
    OptimConfig,
    "lr",
    "name",
    into="train",
    lr=_BOTH,
    name={**_BOTH, "decls": ("--optimizer",), "key": "optimizer", "type": _OPTIMIZERS},
)
@field_options(GanConfig, "update", into="train", default="the config's train.{name} (GANs)")
@field_options(
    TrainConfig,
    "seed",
    "checkpoint_every",
    "dtype",
    "device",
    into="train",
    default=_FROM_TRAIN,
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the interrupted run of --out (killed, SIGTERM, Ctrl-C) from its last "
    "checkpoint, with the same arguments; it ends bit-identical to an uninterrupted run.",
)
@tracking_options
@FORCE_OPTION
def train_cmd(
    data: Path,
    out: Path,
    config: Preset,
    replay: Path | None,
    retrain_of: Path | None,
    resume: bool,
    tracking: bool,
    experiment: str,
    force: bool,
    train: Changes,
) -> None:
    """Train a GAN on a dataset version, recording its trajectory for influence estimation."""
    from ganinf_mlops.config import with_train_options
    from ganinf_mlops.data.version import load_version
    from ganinf_mlops.train.rundir import RunDir
    from ganinf_mlops.train.trainer import train as train_run

    if replay is not None and train:
        raise ConfigError("--replay takes the parent run's config; drop the training options")
    if retrain_of is not None:
        if replay is not None:
            raise ConfigError("--retrain-of is a fresh retraining; --replay a counterfactual one")
        if config.job.retrain_budget == "steps" and "steps" not in train:
            train = {**train, "steps": RunDir(retrain_of).n_steps}
    train_cfg = with_train_options(config.train, **train)
    obs = make_observer(tracking, experiment)
    version = load_version(data)
    with obs.stage("train", version):
        run = train_run(
            version, train_cfg, config.metric, out, replay=replay, force=force, progress=progress(),
            resume=resume, on_start=obs.resumed, job=config.job,
        )  # fmt: skip
        obs.trained(run, version, "main")
    rd = RunDir(run)
    metric = (rd.replay_info or {}).get("metric")
    for line in output.run_lines(str(run), rd.metrics(), metric):
        click.echo(line)
    check = rd.fit(config.job.method)  # judged by the metric the config's job scores
    if check is not None:
        click.echo(check.line(rd.n_steps))
