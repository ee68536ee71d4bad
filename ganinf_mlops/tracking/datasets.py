"""Dataset versions as `mlflow.data` datasets, so runs list the exact version they read.

MLflow's UI shows a dataset as ``name (digest)``: the name is the version's directory (``v1``;
``v1@dvc`` for a DVC source) and the digest the first 12 hex digits of its content sha256, so
the UI reads ``v1 (440d857ece83)``, as `notes.version_label` and the run tags do. `log_version`
adds the full sha256 as the input tag `ganinf.sha256` (what identifies the version) and, for a
local source, the run's own directory as `ganinf.path` (see `input_source`). The dataset
drawer shows the profile (sizes, parent, removals) and the schema table: the columns of the
first rows (`preview`), whose values the profile lists. The source says where the version can be
fetched again: a `DvcDatasetSource` for a version committed with DVC, or `local_source` for a
plain directory; `restore_input` fetches it from a stored run and checks it.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.data import get_source
from mlflow.data.dataset import Dataset
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import get_dataset_source_from_json
from mlflow.entities import DatasetInput
from mlflow.types.schema import ColSpec, Schema

from ganinf_mlops.data.version import DatasetVersion, Manifest, load_version
from ganinf_mlops.errors import DigestMismatchError
from ganinf_mlops.tracking import tags as T

DIGEST_CHARS = 12  # as notes.version_label; MLflow allows up to 36
PREVIEW_ROWS = 5  # rows in the profile's preview (the drawer cuts each value at 80 characters)
PREVIEW_COORDS = 8  # coordinates of a vector shown there (the profile's shape gives its width)
# The digest length runs logged before DIGEST_CHARS (their inputs are still found by it).
OLD_DIGEST_CHARS = 36
MAX_INPUT_TAG_VALUE = 500  # mlflow.utils.validation.MAX_INPUT_TAG_VALUE_SIZE


def local_source(version_dir: str | Path) -> DatasetSource:
    """MLflow's own source for a local directory (`LocalArtifactDatasetSource`, type "local").

    That class is generated at import time from the artifact-repository registry, so it is looked
    up by its source type rather than imported.
    """
    uri = str(Path(version_dir).resolve())
    return get_dataset_source_from_json(json.dumps({"uri": uri}), source_type="local")


def preview(version: DatasetVersion, rows: int = PREVIEW_ROWS) -> pd.DataFrame:
    """The first `rows` training instances as a table: `id`, the coordinates `x0..` of a
    vector (the first PREVIEW_COORDS of a wider one; an image: its pixel mean and standard
    deviation), `label` and `injected_anomaly` when the version has them."""
    x, n = version.x[:rows], min(rows, version.n)
    cols: dict[str, Any] = {"id": version.ids[:rows]}
    if x.ndim == 2:
        cols |= {f"x{d}": x[:, d] for d in range(min(x.shape[1], PREVIEW_COORDS))}
    else:  # an image per row: a few numbers that tell images apart, not its pixels
        flat = x.reshape(n, -1)
        cols |= {"pixel_mean": flat.mean(axis=1), "pixel_std": flat.std(axis=1)}
    if version.y is not None:
        cols["label"] = version.y[:rows]
    mask = version.anomaly_mask()
    if mask is not None:
        cols["injected_anomaly"] = mask[:rows]
    return pd.DataFrame(cols)


_COLUMN_TYPES = {"i": "long", "u": "long", "f": "double", "b": "boolean"}


def _row_text(row: pd.Series) -> str:
    """`x0=0.1235 x1=-1.03 injected_anomaly`: one preview row without its id, short enough for
    the drawer's 80 characters (a flag is named only when set)."""
    parts = []
    for name, value in row.items():
        if name == "id" or value is False or value is np.False_:
            continue
        if value is True or value is np.True_:
            parts.append(str(name))
        else:
            parts.append(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}")
    return " ".join(parts)


def _parent_name(m: Manifest) -> str:
    """`v0 (8e3d98f5a1b2)` for a cleansed version: the parent as the UI names it."""
    if m.parent_digest is None:
        return "none (raw data)"
    where = PurePosixPath(m.parent_path).name if m.parent_path else "parent"
    return f"{where} ({m.parent_digest[:DIGEST_CHARS]})"


class GaninfVersionDataset(Dataset):
    """A dataset version's identity (digest, shape, parent, removals) and its first rows for
    MLflow; holds no other arrays."""

    def __init__(
        self,
        manifest: Manifest,
        source: DatasetSource,
        name: str | None,
        first_rows: pd.DataFrame,
    ) -> None:
        self._manifest = manifest
        self._preview = first_rows
        super().__init__(source=source, name=name, digest=manifest.digest[:DIGEST_CHARS])

    def _compute_digest(self) -> str:
        return self._manifest.digest[:DIGEST_CHARS]

    @property
    def full_digest(self) -> str:
        return self._manifest.digest

    @property
    def preview(self) -> pd.DataFrame:
        """The first rows (`preview(version)`); the drawer shows them in the profile."""
        return self._preview

    @property
    def profile(self) -> dict[str, Any]:
        """What the drawer lists, key by key: sizes, the source dataset, the parent version and
        what was removed from it, then the first rows by id."""
        m = self._manifest
        out: dict[str, Any] = {
            "n_instances": m.n_instances,
            "shape": list(m.shape),
            "n_eval": m.n_eval,
            "source_dataset": m.dataset,
            # Named as the UI names the parent's dataset, so the two can be matched by eye.
            "parent": _parent_name(m),
            "n_removed": len(m.removed_ids),
        }
        if m.method is not None:
            out["removed_by"] = m.method
        if m.is_anomaly_ids is not None:
            out["n_injected_anomalies"] = len(m.is_anomaly_ids)
        for _, row in self._preview.iterrows():
            out[f"id_{int(row['id'])}"] = _row_text(row)
        return out

    @property
    def schema(self) -> Schema:
        """The preview's columns: the drawer's schema table (a tensor schema shows none)."""
        types = self._preview.dtypes.items()
        return Schema([ColSpec(_COLUMN_TYPES[t.kind], str(name)) for name, t in types])

    def to_dict(self) -> dict[str, str]:
        config = super().to_dict()
        # As MLflow's pandas datasets write it: the form the drawer shows as a table.
        config["schema"] = json.dumps({"mlflow_colspec": self.schema.to_dict()})
        config["profile"] = json.dumps(self.profile)
        return config


def version_dataset(
    version: DatasetVersion, source: DatasetSource | None = None, name: str | None = None
) -> GaninfVersionDataset:
    """The MLflow dataset for `version`; `source` defaults to its local directory.

    The default name is the directory's (``v1``), or ``v1@dvc`` for a DVC source: MLflow
    identifies a dataset within an experiment by (name, digest) and keeps the source of the first
    one logged, and one run keeps one input per dataset, so a DVC input (`ganinf push`) needs a
    name of its own beside the run's local one. Copies of one version in two local directories
    share one entry; each run's own directory is in its input tag (`input_source`).
    """
    source = source if source is not None else local_source(version.path)
    default = version.path.resolve().name
    if source._get_source_type() != "local":
        default = f"{default}@{source._get_source_type()}"
    return GaninfVersionDataset(version.manifest, source, name or default, preview(version))


def log_version(
    version: DatasetVersion,
    source: DatasetSource | None = None,
    context: str = "training",
    name: str | None = None,
) -> GaninfVersionDataset:
    """Log `version` as an input of the active run, with its full sha256 as an input tag and,
    for a local source, the run's own directory."""
    dataset = version_dataset(version, source, name)
    input_tags = {T.DATASET_SHA256: version.digest}
    if dataset.source._get_source_type() == "local":
        path = json.loads(dataset.source.to_json())["uri"]
        if len(path) <= MAX_INPUT_TAG_VALUE:  # longer: MLflow refuses it; the entry's source
            input_tags[T.DATASET_PATH] = path
    try:
        mlflow.log_input(dataset, context=context, tags=input_tags)
    except mlflow.exceptions.MlflowException as exc:
        # Jobs on the same data log the same (experiment, name, digest) entry; when two insert
        # it at the same moment the store's unique key refuses the second, and the rolled-back
        # call, made again, links the run to the entry that now exists.
        if not is_duplicate_entry(exc):
            raise
        mlflow.log_input(dataset, context=context, tags=input_tags)
    return dataset


# What the stores say when a unique key refuses an insert (PostgreSQL, MySQL, SQLite).
_DUPLICATE = ("UniqueViolation", "duplicate key", "Duplicate entry", "UNIQUE constraint failed")


def is_duplicate_entry(exc: Exception) -> bool:
    return any(text in str(exc) for text in _DUPLICATE)


def input_source(dataset_input: DatasetInput) -> DatasetSource:
    """Where this run's input can be fetched: the run's own directory for a local input (the
    dataset entry keeps the first run's, see `version_dataset`), else the recorded source."""
    path = {t.key: t.value for t in dataset_input.tags}.get(T.DATASET_PATH)
    if dataset_input.dataset.source_type == "local" and path:
        return local_source(path)
    return get_source(dataset_input)


def restore_input(dataset_input: DatasetInput, dst_path: str | None = None) -> DatasetVersion:
    """Fetch the version a run logged (`MlflowClient().get_run(id).inputs.dataset_inputs[i]`)
    from its source (`input_source`), and check it is exactly that version
    (DigestMismatchError if not).
    """
    path = input_source(dataset_input).load(dst_path)
    version = load_version(path)  # re-hashes the content
    input_tags = {t.key: t.value for t in dataset_input.tags}
    expected = input_tags.get(T.DATASET_SHA256) or dataset_input.dataset.digest
    if version.digest[: len(expected)] != expected:
        raise DigestMismatchError(f"dataset restored to {path}", expected, version.digest)
    return version
