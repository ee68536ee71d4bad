"""The feature classifier of a dataset version: trained on its clean labelled images, tested on
its held-out images, saved as an artifact that records the version's digest."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ganinf_mlops.data.lineage import ancestor_digests
from ganinf_mlops.data.version import DatasetVersion
from ganinf_mlops.errors import ConfigError, DataError, DigestMismatchError
from ganinf_mlops.features.classifier import (
    LoadedClassifier,
    load_classifier,
    save_classifier,
    train_classifier,
)
from ganinf_mlops.io import check_disjoint

log = logging.getLogger(__name__)
DEFAULT_EPOCHS = 12


def fit_classifier(
    version: DatasetVersion,
    out_dir: str | os.PathLike[str],
    *,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 0,
    force: bool = False,
    progress: bool = True,
) -> LoadedClassifier:
    """Train the classifier on `version`'s images that are not injected anomalies (the real
    training split) and write it to `out_dir`; its accuracy is measured on the held-out split."""
    if version.x.ndim != 4:
        raise ConfigError(
            f"dataset version {version.path} holds vectors {version.x.shape[1:]}, not images: "
            "a feature classifier is for image data"
        )
    check_disjoint(out_dir, version.path)
    if version.y is None or version.y_eval is None:
        raise DataError(f"dataset version {version.path} has no class labels (y, y_eval)")
    anomalies = version.anomaly_mask()
    clean = ~anomalies if anomalies is not None else np.ones(version.n, dtype=bool)
    n_classes = int(max(version.y.max(), version.y_eval.max())) + 1
    model, acc = train_classifier(
        version.x[clean],
        version.y[clean],
        version.x_eval,
        version.y_eval,
        n_classes=n_classes,
        epochs=epochs,
        seed=seed,
        progress=progress,
    )
    save_classifier(
        out_dir,
        model,
        data_digest=version.digest,
        dataset=version.manifest.dataset,
        input_shape=tuple(int(s) for s in version.x.shape[1:]),
        n_classes=n_classes,
        test_accuracy=acc,
        train_params={"epochs": epochs, "seed": seed, "n_train": int(clean.sum())},
        force=force,
    )
    log.info("feature classifier: held-out accuracy %.3f -> %s", acc, out_dir)
    return load_classifier(out_dir)


def check_classifier(classifier: LoadedClassifier, version: DatasetVersion) -> None:
    """Refuse a classifier trained on data that is neither `version` nor one of its ancestors."""
    if classifier.data_digest not in ancestor_digests(version):
        raise DigestMismatchError(
            f"classifier {classifier.path} was trained on a dataset version that is neither "
            f"{version.path} nor one of its ancestors",
            classifier.data_digest,
            version.digest,
        )


def ensure_classifier(
    version: DatasetVersion, path: str | os.PathLike[str], *, force: bool = False, **fit
) -> LoadedClassifier:
    """The classifier at `path`, checked against `version`; trained there first when missing
    (or with `force`)."""
    if Path(path).exists() and not force:
        classifier = load_classifier(path)
        check_classifier(classifier, version)
        return classifier
    return fit_classifier(version, path, force=force, **fit)
