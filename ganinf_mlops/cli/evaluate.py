"""`ganinf evaluate`: the runs of a cleanse chain -> DVC metrics (JSON) and plot data (CSV)."""

from __future__ import annotations

from pathlib import Path

import click

from ganinf_mlops.cli import output
from ganinf_mlops.cli.common import EXISTING_DIR, FORCE_OPTION, cli
from ganinf_mlops.cli.guard import OutputPath
from ganinf_mlops.errors import OutputExistsError

_OUT_FILE = OutputPath(dir_okay=False, path_type=Path)


@cli.command("evaluate")
@click.option(
    "--run",
    "runs",
    required=True,
    multiple=True,
    type=EXISTING_DIR,
    help="Fresh run of each iteration, in lineage order: first the run on the raw version, "
    "then one per cleansed version (repeat the option).",
)
@click.option(
    "--replay",
    "replays",
    multiple=True,
    type=EXISTING_DIR,
    help="Counterfactual replay (train --replay) of an iteration: gives its actual_change "
    "(repeat the option; matched to iterations by dataset digest).",
)
@click.option("--out", required=True, type=_OUT_FILE, help="Metrics JSON (DVC metrics).")
@click.option(
    "--plot-data",
    type=_OUT_FILE,
    help="CSV, one row per iteration: metrics of its run and removal counts.",
)
@click.option(
    "--changes-data",
    type=_OUT_FILE,
    help="CSV, one row per cleanse iteration: predicted, actual (replay) and fresh change.",
)
@click.option(
    "--scores-hist",
    type=_OUT_FILE,
    help="CSV, histogram of the harmfulness scores that made each cleansed version.",
)
@click.option(
    "--bins", type=click.IntRange(min=1), default=40, show_default=True, help="Histogram bins."
)
@FORCE_OPTION
def evaluate_cmd(
    runs: tuple[Path, ...],
    replays: tuple[Path, ...],
    out: Path,
    plot_data: Path | None,
    changes_data: Path | None,
    scores_hist: Path | None,
    bins: int,
    force: bool,
) -> None:
    """Summarise a chain of runs as DVC metrics and plots, with the runs' metrics.json keys,
    and where the chain stopped (`stopped`: a cleanse stage that passed its data through).

    Reads only the runs' metrics.json and meta.json and the manifests (and scores) of their
    dataset versions; writes each output atomically.
    """
    from ganinf_mlops import plotdata, report
    from ganinf_mlops.io import write_json
    from ganinf_mlops.stopping import mark_stops

    outputs = [p for p in (out, plot_data, changes_data, scores_hist) if p is not None]
    if len(set(outputs)) != len(outputs):
        raise click.UsageError("--out, --plot-data, --changes-data, --scores-hist must differ")
    existing = [p for p in outputs if p.exists()]
    if existing and not force:
        raise OutputExistsError(existing[0])
    summary = mark_stops(report.summarize(runs, replays), runs)
    if (changes_data is not None or scores_hist is not None) and len(runs) < 2:
        raise click.UsageError("--changes-data and --scores-hist need at least two --run")
    # Compute everything first, then write: bad input leaves no output behind.
    files = [(out, None)]
    if plot_data is not None:
        files.append((plot_data, plotdata.iteration_rows(summary)))
    if changes_data is not None:
        files.append((changes_data, plotdata.change_rows(summary)))
    if scores_hist is not None:
        versions = [report.run_version(r)[0] for r in runs[1:]]
        files.append((scores_hist, plotdata.score_histogram(versions, bins)))
    write_json(out, summary)
    for path, rows in files[1:]:
        plotdata.write_csv(path, rows)
    click.echo(output.evaluate_line(str(out), summary, len(runs)))
