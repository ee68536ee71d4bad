"""`ganinf train`: train on a dataset version, recording the run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ganinf_mlops.cli import output
from ganinf_mlops.cli.common import (
    EXISTING_DIR,
    FORCE_OPTION,
    cli,
    config_options,
    load_config,
    make_observer,
    progress,
    tracking_options,
)
from ganinf_mlops.config import DTYPES
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.optim import OPTIMIZERS
from ganinf_mlops.problems.gan import UPDATES


@cli.command("train")
@click.option("--data", required=True, type=EXISTING_DIR, help="Dataset version to train on.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run directory.")
@config_options
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
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs (the config's if omitted).")
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    help="Exactly this many optimizer steps, as many epochs as they take (instead of --epochs).",
)
@click.option("--batch-size", type=click.IntRange(min=1), help="Minibatch size.")
@click.option("--lr", type=float, help="Learning rate of every optimizer (both networks of a GAN).")
@click.option(
    "--optimizer",
    type=click.Choice(OPTIMIZERS.names()),
    help="Optimizer of every network (both of a GAN).",
)
@click.option("--update", type=click.Choice(UPDATES), help="D/G update order.")
@click.option("--seed", type=int, help="Seed of initialisation, minibatch order and latents.")
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=1),
    help="Checkpoint interval K in steps (the reverse pass holds K steps in memory).",
)
@click.option("--dtype", type=click.Choice(DTYPES), help="Floating point type.")
@click.option("--device", help="Torch device, e.g. cpu or cuda.")
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
    preset: str,
    params_file: Path | None,
    replay: Path | None,
    retrain_of: Path | None,
    resume: bool,
    tracking: bool,
    experiment: str,
    force: bool,
    **options: Any,
) -> None:
    """Train a GAN on a dataset version, recording its trajectory for influence estimation."""
    from ganinf_mlops.config import with_train_options
    from ganinf_mlops.data.version import load_version
    from ganinf_mlops.train.rundir import RunDir
    from ganinf_mlops.train.trainer import train

    cfg = load_config(preset, params_file)
    if replay is not None and any(v is not None for v in options.values()):
        raise ConfigError("--replay takes the parent run's config; drop the training options")
    if retrain_of is not None:
        if replay is not None:
            raise ConfigError("--retrain-of is a fresh retraining; --replay a counterfactual one")
        if cfg.job.retrain_budget == "steps" and options.get("steps") is None:
            options["steps"] = RunDir(retrain_of).n_steps
    train_cfg = with_train_options(cfg.train, **options)
    obs = make_observer(tracking, experiment)
    version = load_version(data)
    with obs.stage("train", version):
        run = train(
            version, train_cfg, cfg.metric, out, replay=replay, force=force, progress=progress(),
            resume=resume,
        )  # fmt: skip
        obs.trained(run, version, "main")
    rd = RunDir(run)
    metric = (rd.replay_info or {}).get("metric")
    for line in output.run_lines(str(run), rd.metrics(), metric):
        click.echo(line)
