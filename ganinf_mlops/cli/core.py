"""The core commands: prepare, train, influence, cleanse, validate, loop, run, params.

Each command builds its config, creates the observer (MLflow tracking, checked reachable before
any work), calls one library function inside an observer stage, and prints a one-line result.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

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
from ganinf_mlops.config import UPDATES, Preset, TrainConfig
from ganinf_mlops.data.datasets import DATASETS
from ganinf_mlops.errors import ConfigError, OutputExistsError
from ganinf_mlops.influence.methods import METHODS
from ganinf_mlops.influence.targets import KEY_ALL, TARGET_NAMES
from ganinf_mlops.train.optim import OPTIMIZERS


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """KEY=VALUE pairs, VALUE parsed as JSON when it is JSON (numbers, lists), else a string."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param expects KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@cli.command()
@click.option(
    "--dataset",
    type=click.Choice(DATASETS.names()),
    help="Data source: a generator, or 'npz' for --input (default: the config's).",
)
@click.option(
    "--input",
    "input_path",
    type=click.Path(path_type=Path),
    help="The .npz file for --dataset npz (key 'x' [N, d]; optional 'x_eval', 'ids').",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Directory of the new dataset version.",
)
@config_options
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a generator parameter, e.g. --param n=500 --param anomaly_frac=0.05.",
)
@tracking_options
@FORCE_OPTION
def prepare(
    dataset: str | None,
    input_path: Path | None,
    out: Path,
    preset: str,
    params_file: Path | None,
    params: tuple[str, ...],
    tracking: bool,
    experiment: str,
    force: bool,
) -> None:
    """Write a raw dataset version (data.npz + manifest.json with its content digest)."""
    from ganinf_mlops.data.version import create_raw_version

    cfg = load_config(preset, params_file)
    dataset = dataset or cfg.dataset
    kwargs = dict(cfg.data_params) if dataset == cfg.dataset else {}
    if dataset == "npz":
        if input_path is None:
            raise ConfigError("--dataset npz needs --input FILE.npz")
        kwargs["path"] = str(input_path)
    kwargs.update(_parse_params(params))
    obs = make_observer(tracking, experiment)
    with obs.stage("prepare"):
        version = create_raw_version(out, dataset, force=force, **kwargs)
        obs.prepared(version)
    click.echo(f"{version.path}  {version.n} instances  digest {version.digest}")


def _train_config(cfg: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    opt = {k: overrides[k] for k in ("lr", "optimizer") if overrides.get(k) is not None}
    if opt:
        o = {"name": opt.get("optimizer", cfg.d_optim.name), "lr": opt.get("lr", cfg.d_optim.lr)}
        cfg = dataclasses.replace(
            cfg,
            d_optim=dataclasses.replace(cfg.d_optim, **o),
            g_optim=dataclasses.replace(cfg.g_optim, **o),
        )
    rest = {k: v for k, v in overrides.items() if v is not None and k not in ("lr", "optimizer")}
    return dataclasses.replace(cfg, **rest)


def echo_run(run: Path) -> None:
    from ganinf_mlops.train.trajectory import read_metrics

    metrics = read_metrics(run)
    shown = ", ".join(
        f"{k}={metrics[k]:.6g}"
        for k in ("all", "disc_loss", "gen_mean_error", "gen_cov_error")
        if k in metrics
    )
    click.echo(f"{run}  {shown}")
    if "actual_change" in metrics:
        pred = metrics.get("predicted_change")
        click.echo(
            f"change of all: actual {metrics['actual_change']:+.6g}, predicted "
            + (f"{pred:+.6g}" if pred is not None else "n/a")
        )


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
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs (the config's if omitted).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Minibatch size.")
@click.option("--lr", type=float, help="Learning rate of both networks.")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), help="Optimizer of both networks.")
@click.option("--update", type=click.Choice(UPDATES), help="D/G update order.")
@click.option("--seed", type=int, help="Seed of initialisation, minibatch order and latents.")
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=1),
    help="Checkpoint interval K in steps (the reverse pass holds K steps in memory).",
)
@click.option("--dtype", type=click.Choice(["float64", "float32"]), help="Floating point type.")
@click.option("--device", help="Torch device, e.g. cpu or cuda.")
@tracking_options
@FORCE_OPTION
def train_cmd(
    data: Path,
    out: Path,
    preset: str,
    params_file: Path | None,
    replay: Path | None,
    tracking: bool,
    experiment: str,
    force: bool,
    **overrides: Any,
) -> None:
    """Train a GAN on a dataset version, recording its trajectory for influence estimation."""
    from ganinf_mlops.data.version import load_version
    from ganinf_mlops.train.trainer import train

    cfg = load_config(preset, params_file)
    if replay is not None and any(v is not None for v in overrides.values()):
        raise ConfigError("--replay takes the parent run's config; drop the training options")
    train_cfg = _train_config(cfg.train, overrides)
    obs = make_observer(tracking, experiment)
    version = load_version(data)
    with obs.stage("train", version):
        run = train(
            version, train_cfg, cfg.metric, out, replay=replay, force=force, progress=progress()
        )
        obs.trained(run, version, "main")
    echo_run(run)


def run_version(run: Path, data: Path | None):
    """The dataset version of a run: --data if given, else the one its meta.json points at."""
    from ganinf_mlops.data.version import load_version
    from ganinf_mlops.train.trajectory import Trajectory

    if data is None:
        data = run / Trajectory(run).meta["dataset"]["path"]
    return load_version(data)


@cli.command()
@click.option("--run", required=True, type=EXISTING_DIR, help="Run directory (trajectory).")
@click.option(
    "--metric",
    type=click.Choice(METHODS),
    help="Influence on a metric (all, disc_loss) or a baseline score "
    "(default: the config's job.method).",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Scores CSV.")
@click.option("--data", type=EXISTING_DIR, help="Dataset version (default: the run's).")
@click.option(
    "--last-epochs",
    type=click.IntRange(min=1),
    help="Trace back only the last K epochs (default: the whole trajectory).",
)
@click.option(
    "--no-checkpointing",
    is_flag=True,
    help="Hold the whole run in memory instead of replaying between checkpoints.",
)
@click.option("--seed", type=int, help="Seed of the baselines (default: the config's).")
@config_options
@tracking_options
@FORCE_OPTION
def influence(
    run: Path,
    metric: str | None,
    out: Path,
    data: Path | None,
    last_epochs: int | None,
    no_checkpointing: bool,
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
    from ganinf_mlops.influence.methods import score
    from ganinf_mlops.influence.scores import write_scores

    job = load_config(preset, params_file).job
    if out.exists() and not force:
        raise OutputExistsError(out)
    method = metric or job.method
    obs = make_observer(tracking, experiment)
    version = run_version(run, data)
    with obs.stage("influence", version):
        table = score(
            run,
            version,
            method,
            last_epochs=last_epochs or job.last_epochs,
            checkpointed=not no_checkpointing,
            seed=job.seed if seed is None else seed,
            progress=progress(),
        )
        write_scores(out, table)
        obs.scored(table, out, version, run)
    top = ", ".join(str(i) for i in table.top_ids(5))
    click.echo(f"{out}  {table.n} instances scored by {method}; most harmful ids: {top}")


@cli.command()
@click.option("--data", required=True, type=EXISTING_DIR, help="Dataset version to cleanse.")
@click.option(
    "--scores",
    required=True,
    help="Scores CSV of this version.",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--remove-frac",
    type=float,
    help="Fraction of instances to remove, in (0, 1) (default: the config's).",
)
@click.option("--remove-count", type=int, help="Number of instances to remove.")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Directory of the new dataset version.",
)
@config_options
@tracking_options
@FORCE_OPTION
def cleanse(
    data: Path,
    scores: Path,
    remove_frac: float | None,
    remove_count: int | None,
    out: Path,
    preset: str,
    params_file: Path | None,
    tracking: bool,
    experiment: str,
    force: bool,
) -> None:
    """Remove the most harmful instances, writing a child version with its lineage."""
    from ganinf_mlops.cleanse import cleanse as do_cleanse
    from ganinf_mlops.data.version import load_version

    if remove_frac is None and remove_count is None:
        remove_frac = load_config(preset, params_file).job.remove_frac
    obs = make_observer(tracking, experiment)
    version = load_version(data)
    with obs.stage("cleanse", version):
        new = do_cleanse(
            version, scores, out, remove_frac=remove_frac, remove_count=remove_count, force=force
        )
        obs.cleansed(new)
    m = new.manifest
    click.echo(
        f"{new.path}  removed {len(m.removed_ids)} of {m.n_instances + len(m.removed_ids)}"
        f" by {m.method}; digest {new.digest} (parent {m.parent_digest})"
    )


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
    help="Influence scores to check (default: compute them with --metric).",
)
@click.option("--metric", type=click.Choice(TARGET_NAMES), default=KEY_ALL, show_default=True)
@click.option("--data", type=EXISTING_DIR, help="Dataset version (default: the run's).")
@click.option("--seed", type=int, help="Seed choosing the random instances.")
@config_options
@tracking_options
@FORCE_OPTION
def validate_cmd(
    run: Path,
    loo: int | None,
    out: Path,
    scores: Path | None,
    metric: str,
    data: Path | None,
    seed: int | None,
    preset: str,
    params_file: Path | None,
    tracking: bool,
    experiment: str,
    force: bool,
) -> None:
    """Compare influence estimates with real leave-one-out retraining (same schedule, w_j=0)."""
    from ganinf_mlops.influence.methods import score
    from ganinf_mlops.influence.scores import read_scores
    from ganinf_mlops.influence.validate import validate
    from ganinf_mlops.io import write_json

    job = load_config(preset, params_file).job
    if out.exists() and not force:
        raise OutputExistsError(out)
    obs = make_observer(tracking, experiment)
    version = run_version(run, data)
    with obs.stage("validate", version):
        table = (
            read_scores(scores)
            if scores is not None
            else score(run, version, metric, progress=progress())
        )
        report = validate(
            run,
            version,
            table,
            k=loo or job.loo or 40,
            seed=job.seed if seed is None else seed,
            progress=progress(),
        )
        write_json(out, report)
        obs.validated(report)
    click.echo(validation_line(report))


def validation_line(r: dict[str, Any]) -> str:
    return (
        f"{r['metric']}: Kendall tau {r['kendall_tau']:.3f} over {r['n_instances']} "
        f"(random only {r['kendall_tau_random']:.3f}), Pearson r {r['pearson_r']:.4f}, "
        f"Jaccard top-{r['top_k']} {r['jaccard_top_k']:.2f}"
    )


def job_config(preset: str, params_file: Path | None, **job: Any) -> Preset:
    from ganinf_mlops.params import with_job

    return with_job(load_config(preset, params_file), **job)


def _job_command(f):
    """Options shared by `loop` and `run`."""
    for decorator in reversed(
        [
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
                type=click.Choice(METHODS),
                help="Scoring method for cleansing (default: the config's job.method).",
            ),
            click.option("--remove-frac", type=float, help="Fraction removed per cleanse."),
            click.option(
                "--loo",
                type=click.IntRange(min=0),
                help="Leave-one-out retrainings for validation per iteration (0 skips).",
            ),
            click.option(
                "--last-epochs",
                type=click.IntRange(min=1),
                help="Trace back only the last K epochs.",
            ),
            click.option("--seed", type=int, help="Seed of validation choice and baselines."),
            click.option(
                "--stop-when-worse/--no-stop-when-worse",
                default=None,
                help="Stop once ALL stops improving (default: the config's).",
            ),
            tracking_options,
            FORCE_OPTION,
        ]
    ):
        f = decorator(f)
    return f


def _run_loop(
    out: Path,
    preset: str,
    params_file: Path | None,
    tracking: bool,
    experiment: str,
    force: bool,
    iterations: int | None = None,
    **job: Any,
) -> None:
    from ganinf_mlops.pipeline import run_job

    cfg = job_config(preset, params_file, iterations=iterations, **job)
    obs = make_observer(tracking, experiment)
    s = run_job(out, cfg, observer=obs, force=force, progress=progress())
    click.echo(
        f"config {s['preset']}: {s['n_instances']} instances, all = "
        f"{s['before'][KEY_ALL]:.6g}; method {s['method']}"
    )
    for row in s["iterations"]:
        v, pred, i = row["validation"], row["predicted_change"], row["iteration"]
        if v is not None:
            click.echo(f"  iteration {i}: " + validation_line({**v, "metric": s["method"]}))
        click.echo(
            f"  iteration {i}: removed {row['n_removed']} ({row['n_anomalies_removed']} "
            f"of {row['n_anomalies_before']} injected anomalies); change of all: "
            "predicted "
            + (f"{pred:+.5g}" if pred is not None else "n/a")
            + f", replay {row['replay_change']:+.5g}, fresh {row['fresh_change']:+.5g}"
            f" -> all = {row['after_fresh'][KEY_ALL]:.6g}"
        )
    click.echo(f"summary: {out / 'summary.json'}")


@cli.command("loop")
@_job_command
@click.option(
    "--iterations",
    type=click.IntRange(min=1),
    help="Cleanse -> retrain iterations (default: the config's job.iterations).",
)
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


@cli.command("params")
@config_options
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: print)."
)
def params_cmd(preset: str, params_file: Path | None, out: Path | None) -> None:
    """Print or write a preset as a complete params.yaml (for DVC, MLproject and --params)."""
    import yaml

    from ganinf_mlops.params import preset_to_params, write_params

    cfg = load_config(preset, params_file)
    if out is None:
        click.echo(yaml.safe_dump(preset_to_params(cfg), sort_keys=False), nl=False)
    else:
        write_params(out, cfg)
