"""`ganinf lineage`: the chain of a dataset version back to the raw data, with its MLflow runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from ganinf_mlops.cli import output
from ganinf_mlops.cli.common import EXISTING_DIR, cli


@cli.command("lineage")
@click.argument("ref")
@click.option(
    "--root",
    type=EXISTING_DIR,
    default=Path("."),
    show_default=True,
    help="Where to look for a version given by digest.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--runs/--no-runs",
    default=None,
    help="Look up the MLflow runs that produced and used each version "
    "(default: when tracking is on and a store exists).",
)
def lineage_cmd(ref: str, root: Path, as_json: bool, runs: bool | None) -> None:
    """The chain from a version (REF: its directory, or a digest prefix) back to the raw data."""
    from ganinf_mlops.data.lineage import chain, find_version

    entries = chain(find_version(ref, root))
    if runs is None:  # look only where a store exists: a lookup must not create one
        runs = os.environ.get("GANINF_TRACKING", "1") != "0" and (
            "MLFLOW_TRACKING_URI" in os.environ or Path("mlflow.db").exists()
        )
    if runs:
        from ganinf_mlops.tracking.lookup import runs_for_digest
        from ganinf_mlops.tracking.mlflow_runs import MlflowTracker

        client = MlflowTracker(experiment="ganinf").client
        for e in entries:
            e.update(runs_for_digest(client, e["digest"]))
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    for line in output.lineage_lines(entries, bool(runs)):
        click.echo(line)
