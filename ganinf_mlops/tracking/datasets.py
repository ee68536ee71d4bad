"""Dataset versions as `mlflow.data` datasets, so runs list the exact version they read.

The MLflow digest is the first 36 characters of the version's sha256 (MLflow rejects longer
digests, in every store); `log_version` adds the full digest as the input tag `ganinf.sha256`.
The source says where the version can be fetched again: a `DvcDatasetSource` for a version
committed with DVC, or `local_source` for a plain directory; `restore_input` fetches it from a
stored run and checks it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.data import get_source
from mlflow.data.dataset import Dataset
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import get_dataset_source_from_json
from mlflow.data.schema import TensorDatasetSchema
from mlflow.entities import DatasetInput
from mlflow.types.schema import Schema, TensorSpec

from ganinf_mlops.data.version import DatasetVersion, Manifest, load_version
from ganinf_mlops.errors import DigestMismatchError
from ganinf_mlops.tracking import tags as T

MAX_DIGEST = 36  # mlflow.utils.validation.MAX_DATASET_DIGEST_SIZE


def local_source(version_dir: str | Path) -> DatasetSource:
    """MLflow's own source for a local directory (`LocalArtifactDatasetSource`, type "local").

    That class is generated at import time from the artifact-repository registry, so it is looked
    up by its source type rather than imported.
    """
    uri = str(Path(version_dir).resolve())
    return get_dataset_source_from_json(json.dumps({"uri": uri}), source_type="local")


class GaninfVersionDataset(Dataset):
    """A dataset version's identity (digest, shape, parent) for MLflow; holds no arrays."""

    def __init__(self, manifest: Manifest, source: DatasetSource, name: str | None = None) -> None:
        self._manifest = manifest
        super().__init__(source=source, name=name, digest=manifest.digest[:MAX_DIGEST])

    def _compute_digest(self) -> str:
        return self._manifest.digest[:MAX_DIGEST]

    @property
    def full_digest(self) -> str:
        return self._manifest.digest

    @property
    def profile(self) -> dict[str, Any]:
        m = self._manifest
        return {
            "n_instances": m.n_instances,
            "shape": list(m.shape),
            "n_eval": m.n_eval,
            # As long as the digest shown next to it, so the two can be matched by eye.
            "parent_digest": m.parent_digest[:MAX_DIGEST] if m.parent_digest else None,
        }

    @property
    def schema(self) -> TensorDatasetSchema:
        # The training array `x`: float64 rows of fixed width, any number of them.
        spec = TensorSpec(np.dtype(self._manifest.dtype), (-1, *self._manifest.shape[1:]), "x")
        return TensorDatasetSchema(features=Schema([spec]))

    def to_dict(self) -> dict[str, str]:
        config = super().to_dict()
        config["schema"] = json.dumps(self.schema.to_dict())
        config["profile"] = json.dumps(self.profile)
        return config


def version_dataset(
    version: DatasetVersion, source: DatasetSource | None = None, name: str | None = None
) -> GaninfVersionDataset:
    """The MLflow dataset for `version`; `source` defaults to its local directory.

    MLflow identifies a dataset within an experiment by (name, digest) and keeps the source of
    the first one logged, so the default name, ``<directory name>@<source type>`` (e.g.
    "v1@dvc"), keeps a DVC-backed input from silently showing an earlier run's local path, and a
    local one adds a short hash of its directory ("v1@local:3fa2b1c9").
    """
    source = source if source is not None else local_source(version.path)
    default = f"{version.path.resolve().name}@{source._get_source_type()}"
    if source._get_source_type() == "local":
        # Copies of one version in two directories (two jobs, two users) would otherwise share
        # one (name, digest) entry and show the first one's path: the directory is in the name.
        where = hashlib.sha256(str(version.path.resolve()).encode()).hexdigest()[:8]
        default = f"{default}:{where}"
    return GaninfVersionDataset(version.manifest, source, name=name or default)


def log_version(
    version: DatasetVersion,
    source: DatasetSource | None = None,
    context: str = "training",
    name: str | None = None,
) -> GaninfVersionDataset:
    """Log `version` as an input of the active run, with its full sha256 as an input tag."""
    dataset = version_dataset(version, source, name)
    mlflow.log_input(dataset, context=context, tags={T.DATASET_SHA256: version.digest})
    return dataset


def restore_input(dataset_input: DatasetInput, dst_path: str | None = None) -> DatasetVersion:
    """Fetch the version a run logged (`MlflowClient().get_run(id).inputs.dataset_inputs[i]`)
    from its recorded source, and check it is exactly that version (DigestMismatchError if not).
    """
    path = get_source(dataset_input).load(dst_path)
    version = load_version(path)  # re-hashes the content
    input_tags = {t.key: t.value for t in dataset_input.tags}
    expected = input_tags.get(T.DATASET_SHA256) or dataset_input.dataset.digest
    if version.digest[: len(expected)] != expected:
        raise DigestMismatchError(f"dataset restored to {path}", expected, version.digest)
    return version
