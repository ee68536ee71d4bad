"""The `ganinf` command line: parses options, builds configs, calls the library, prints results.

Errors from bad input (our GaninfError types) print one line and exit with status 2.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from ganinf_mlops.config import PRESETS, UPDATES, Preset, TrainConfig, get_preset
from ganinf_mlops.data.datasets import DATASETS
from ganinf_mlops.errors import ConfigError, GaninfError
from ganinf_mlops.influence.methods import METHODS
from ganinf_mlops.influence.targets import TARGET_NAMES
from ganinf_mlops.train.optim import OPTIMIZERS

log = logging.getLogger("ganinf_mlops")

PRESET_OPTION = click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default="default",
    show_default=True,
    help="Named configuration that supplies every default below.",
)
FORCE_OPTION = click.option("--force", is_flag=True, help="Replace the output if it exists.")
EXISTING_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or info messages.")
@click.version_option(package_name="ganinf-mlops")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """Find the training instances that harm a GAN, remove them, and keep every step traceable.

    Typical flow: prepare -> train -> influence -> validate -> cleanse -> train --replay.
    `ganinf run` does all of it for a preset.
    """
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    ctx.obj = {"progress": not quiet}


def _progress() -> bool:
    return click.get_current_context().find_root().obj["progress"]


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
    default="gaussian2d",
    show_default=True,
    help="Data source: a generator, or 'npz' for --input.",
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
@PRESET_OPTION
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a generator parameter, e.g. --param n=500 --param anomaly_frac=0.05.",
)
@FORCE_OPTION
def prepare(
    dataset: str,
    input_path: Path | None,
    out: Path,
    preset: str,
    params: tuple[str, ...],
    force: bool,
) -> None:
    """Write a raw dataset version (data.npz + manifest.json with its content digest)."""
    from ganinf_mlops.data.version import create_raw_version

    p = get_preset(preset)
    kwargs = dict(p.data_params) if dataset == p.dataset else {}
    if dataset == "npz":
        if input_path is None:
            raise ConfigError("--dataset npz needs --input FILE.npz")
        kwargs["path"] = str(input_path)
    kwargs.update(_parse_params(params))
    version = create_raw_version(out, dataset, force=force, **kwargs)
    click.echo(f"{version.path}  {version.n} instances  digest {version.digest}")


def _train_config(p: Preset, overrides: dict[str, Any]) -> TrainConfig:
    cfg = p.train
    opt = {k: v for k, v in overrides.items() if k in ("lr", "optimizer") and v is not None}
    if opt:
        o = {"name": opt.get("optimizer", cfg.d_optim.name), "lr": opt.get("lr", cfg.d_optim.lr)}
        cfg = dataclasses.replace(
            cfg,
            d_optim=dataclasses.replace(cfg.d_optim, **o),
            g_optim=dataclasses.replace(cfg.g_optim, **o),
        )
    rest = {k: v for k, v in overrides.items() if k not in ("lr", "optimizer") and v is not None}
    return dataclasses.replace(cfg, **rest)


@cli.command("train")
@click.option("--data", required=True, type=EXISTING_DIR, help="Dataset version to train on.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run directory.")
@PRESET_OPTION
@click.option(
    "--replay",
    type=EXISTING_DIR,
    help="Counterfactual retraining: reuse this run's minibatch order, latents, "
    "initialisation and config; instances missing from --data get weight 0.",
)
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs (preset's if omitted).")
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
@FORCE_OPTION
def train_cmd(
    data: Path, out: Path, preset: str, replay: Path | None, force: bool, **overrides: Any
) -> None:
    """Train a GAN on a dataset version, recording its trajectory for influence estimation."""
    from ganinf_mlops.data.version import load_version
    from ganinf_mlops.train.trainer import train

    p = get_preset(preset)
    if replay is not None and any(v is not None for v in overrides.values()):
        raise ConfigError("--replay takes the parent run's config; drop the training options")
    version = load_version(data)
    run = train(
        version,
        _train_config(p, overrides),
        p.metric,
        out,
        replay=replay,
        force=force,
        progress=_progress(),
    )
    metrics = json.loads((run / "metrics.json").read_text())
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


def _run_version(run: Path, data: Path | None):
    """The dataset version of a run: --data if given, else the path its meta.json records."""
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
    default="all",
    show_default=True,
    help="Influence on a metric (all, disc_loss) or a baseline score.",
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
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the baselines.")
@FORCE_OPTION
def influence(
    run: Path,
    metric: str,
    out: Path,
    data: Path | None,
    last_epochs: int | None,
    no_checkpointing: bool,
    seed: int,
    force: bool,
) -> None:
    """Score every training instance; write id, predicted_change, harmfulness, rank.

    predicted_change is the first-order estimate of V(without j) - V(all) = -dV/dw_j;
    harmfulness is the predicted improvement of the metric on removal (rank 1 = most harmful).
    """
    from ganinf_mlops.errors import OutputExistsError
    from ganinf_mlops.influence.methods import score
    from ganinf_mlops.influence.scores import write_scores

    if out.exists() and not force:
        raise OutputExistsError(out)
    table = score(
        run,
        _run_version(run, data),
        metric,
        last_epochs=last_epochs,
        checkpointed=not no_checkpointing,
        seed=seed,
        progress=_progress(),
    )
    write_scores(out, table)
    top = ", ".join(str(i) for i in table.top_ids(5))
    click.echo(f"{out}  {table.n} instances scored by {metric}; most harmful ids: {top}")


@cli.command()
@click.option("--data", required=True, type=EXISTING_DIR, help="Dataset version to cleanse.")
@click.option(
    "--scores",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Scores CSV of this version.",
)
@click.option("--remove-frac", type=float, help="Fraction of instances to remove, in (0, 1).")
@click.option("--remove-count", type=int, help="Number of instances to remove.")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Directory of the new dataset version.",
)
@FORCE_OPTION
def cleanse(
    data: Path,
    scores: Path,
    remove_frac: float | None,
    remove_count: int | None,
    out: Path,
    force: bool,
) -> None:
    """Remove the most harmful instances, writing a child version with its lineage."""
    from ganinf_mlops.cleanse import cleanse as do_cleanse
    from ganinf_mlops.data.version import load_version

    new = do_cleanse(
        load_version(data),
        scores,
        out,
        remove_frac=remove_frac,
        remove_count=remove_count,
        force=force,
    )
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
    default=40,
    show_default=True,
    help="Instances to retrain without: 1/4 top, 1/4 bottom, 1/2 random.",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Report JSON.")
@click.option(
    "--scores",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Influence scores to check (default: compute them with --metric).",
)
@click.option("--metric", type=click.Choice(TARGET_NAMES), default="all", show_default=True)
@click.option("--data", type=EXISTING_DIR, help="Dataset version (default: the run's).")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed choosing the random instances."
)
@FORCE_OPTION
def validate_cmd(
    run: Path,
    loo: int,
    out: Path,
    scores: Path | None,
    metric: str,
    data: Path | None,
    seed: int,
    force: bool,
) -> None:
    """Compare influence estimates with real leave-one-out retraining (same schedule, w_j=0)."""
    from ganinf_mlops.errors import OutputExistsError
    from ganinf_mlops.influence.methods import score
    from ganinf_mlops.influence.scores import read_scores
    from ganinf_mlops.influence.validate import validate
    from ganinf_mlops.io import write_json

    if out.exists() and not force:
        raise OutputExistsError(out)
    version = _run_version(run, data)
    table = (
        read_scores(scores)
        if scores is not None
        else score(run, version, metric, progress=_progress())
    )
    report = validate(run, version, table, k=loo, seed=seed, progress=_progress())
    write_json(out, report)
    click.echo(_validation_line(report))


def _validation_line(r: dict[str, Any]) -> str:
    return (
        f"{r['metric']}: Kendall tau {r['kendall_tau']:.3f} over {r['n_instances']} "
        f"(random only {r['kendall_tau_random']:.3f}), Pearson r {r['pearson_r']:.4f}, "
        f"Jaccard top-{r['top_k']} {r['jaccard_top_k']:.2f}"
    )


@cli.command("run")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("ganinf-work"),
    show_default=True,
    help="Working directory for versions, runs and reports.",
)
@PRESET_OPTION
@click.option("--metric", type=click.Choice(TARGET_NAMES), default="all", show_default=True)
@click.option(
    "--remove-frac",
    type=float,
    default=0.05,
    show_default=True,
    help="Fraction of the most harmful instances to remove.",
)
@click.option(
    "--loo",
    type=click.IntRange(min=4),
    default=40,
    show_default=True,
    help="Leave-one-out retrainings for validation.",
)
@click.option(
    "--last-epochs", type=click.IntRange(min=1), help="Trace back only the last K epochs."
)
@FORCE_OPTION
def run_cmd(
    out: Path,
    preset: str,
    metric: str,
    remove_frac: float,
    loo: int,
    last_epochs: int | None,
    force: bool,
) -> None:
    """The whole job: prepare, train, influence, validate, cleanse, retrain (replay and fresh)."""
    from ganinf_mlops.pipeline import JobOptions, run_job

    s = run_job(
        out,
        get_preset(preset),
        JobOptions(metric, remove_frac, loo, last_epochs),
        force=force,
        progress=_progress(),
    )
    v = s["validation"]
    click.echo(
        f"preset {s['preset']}: {s['n_instances']} instances, {metric} = "
        f"{s['before'][metric]:.6g}; influence in {s['influence_seconds']:.1f}s"
    )
    click.echo(_validation_line({**v, "metric": metric, "top_k": v["n_instances"] // 4}))
    click.echo(
        f"removed {s['n_removed']} ({s['n_anomalies_removed']} of {s['n_anomalies']} "
        f"injected anomalies); change of {metric}: predicted {s['predicted_change']:+.5g}, "
        f"replay {s['replay_change']:+.5g}, fresh retraining {s['fresh_change']:+.5g}"
    )
    click.echo(f"summary: {out / 'summary.json'}")


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="ganinf", standalone_mode=False)
    except GaninfError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
