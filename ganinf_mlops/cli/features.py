"""`ganinf classifier`: the feature classifier whose features and softmax give FID and IS."""

from __future__ import annotations

from pathlib import Path

import click

from ganinf_mlops.cli.common import EXISTING_DIR, FORCE_OPTION, check_new_output, cli, progress
from ganinf_mlops.cli.guard import OutputPath
from ganinf_mlops.features.artifact import DEFAULT_EPOCHS, fit_classifier


@cli.command("classifier")
@click.option("--data", required=True, type=EXISTING_DIR, help="Raw image dataset version.")
@click.option("--out", required=True, type=OutputPath(path_type=Path), help="Classifier directory.")
@click.option(
    "--epochs", type=click.IntRange(min=1), default=DEFAULT_EPOCHS, show_default=True,
    help="Training epochs.",
)  # fmt: skip
@click.option("--seed", type=click.INT, default=0, show_default=True, help="Training seed.")
@FORCE_OPTION
def classifier_cmd(data: Path, out: Path, epochs: int, seed: int, force: bool) -> None:
    """Train the feature classifier of an image dataset version (its clean training images,
    tested on its held-out images) and save it with the version's digest.

    Runs on this version and on versions cleansed from it use it for FID and IS
    (params: metric.classifier). Nothing is downloaded: no Inception weights are needed.
    """
    from ganinf_mlops.data.version import load_version

    check_new_output(out, force)
    version = load_version(data)
    clf = fit_classifier(version, out, epochs=epochs, seed=seed, force=force, progress=progress())
    click.echo(
        f"classifier {out}: held-out accuracy {clf.test_accuracy:.4f} on "
        f"{version.manifest.n_eval} images; trained on {version.path} "
        f"(digest {version.digest[:12]}); digest {clf.digest[:12]}"
    )
