"""Dataset versions: immutable, content-addressed directories with lineage.

A version directory holds ``data.npz`` (``x`` float64 [N, d], ``ids`` int64 [N] stable instance
ids, ``x_eval`` float64 [M, d]) and ``manifest.json``. The manifest's digest is computed from the
array contents (see `content_digest`), so it survives re-compression or copying, and a cleansed
version records its parent's digest, the removed ids and the scores that chose them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ganinf_mlops.data.datasets import DATASETS, load_npz
from ganinf_mlops.errors import ConfigError, DataError, DigestMismatchError, OutputExistsError
from ganinf_mlops.io import atomic_dir, read_json, write_json

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
DATA_FILE = "data.npz"
MANIFEST_FILE = "manifest.json"
_ARRAYS = ("x", "ids", "x_eval")
_DTYPES = {"x": np.dtype("<f8"), "ids": np.dtype("<i8"), "x_eval": np.dtype("<f8")}


def content_digest(x: np.ndarray, ids: np.ndarray, x_eval: np.ndarray) -> str:
    """SHA-256 (hex) of a canonical encoding of the arrays, independent of file format.

    For x, ids, x_eval in that order: a header line ``name|dtype|shape`` (dtype as little-endian
    ``dtype.str``, e.g. ``<f8``; shape as comma-separated ints), then the C-order little-endian
    bytes of the array.
    """
    h = hashlib.sha256()
    for name, arr in zip(_ARRAYS, (x, ids, x_eval), strict=True):
        a = np.asarray(arr)
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        shape = ",".join(str(s) for s in a.shape)
        h.update(f"{name}|{a.dtype.str}|{shape}\n".encode())
        h.update(a.tobytes(order="C"))
    return h.hexdigest()


@dataclass(frozen=True)
class Manifest:
    format_version: int
    digest: str
    n_instances: int
    shape: list[int]
    dtype: str
    n_eval: int
    dataset: str
    params: dict[str, Any]
    parent_digest: str | None
    parent_path: str | None
    removed_ids: list[int]
    method: str | None
    scores_ref: dict[str, Any] | None
    predicted_change: float | None
    metric: str | None
    created_at: str
    is_anomaly_ids: list[int] | None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: object, where: str = "manifest") -> Manifest:
        """Parse a manifest dict, rejecting unknown or missing keys and wrongly typed values."""
        if not isinstance(obj, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [k for k in names if k not in obj]
        unknown = sorted(k for k in obj if k not in names)
        if missing or unknown:
            raise DataError(f"{where}: missing keys {missing}, unknown keys {unknown}")
        for key, (types, nullable) in _FIELD_TYPES.items():
            value = obj[key]
            if value is None and nullable:
                continue
            if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
                raise DataError(f"{where}: '{key}' has invalid value {value!r}")
        for key in ("shape", "removed_ids", "is_anomaly_ids"):
            values = obj[key] or []
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                raise DataError(f"{where}: '{key}' must be a list of integers")
        if obj["format_version"] != FORMAT_VERSION:
            raise DataError(
                f"{where}: unsupported format_version {obj['format_version']} "
                f"(this version of ganinf reads {FORMAT_VERSION})"
            )
        return cls(**{k: obj[k] for k in names})


# key -> (accepted JSON types, None allowed)
_FIELD_TYPES: dict[str, tuple[tuple[type, ...], bool]] = {
    "format_version": ((int,), False),
    "digest": ((str,), False),
    "n_instances": ((int,), False),
    "shape": ((list,), False),
    "dtype": ((str,), False),
    "n_eval": ((int,), False),
    "dataset": ((str,), False),
    "params": ((dict,), False),
    "parent_digest": ((str,), True),
    "parent_path": ((str,), True),
    "removed_ids": ((list,), False),
    "method": ((str,), True),
    "scores_ref": ((dict,), True),
    "predicted_change": ((int, float), True),
    "metric": ((str,), True),
    "created_at": ((str,), False),
    "is_anomaly_ids": ((list,), True),
}


@dataclass(frozen=True)
class DatasetVersion:
    """A loaded dataset version; its arrays are read-only so they cannot drift from the digest."""

    path: Path
    x: np.ndarray
    ids: np.ndarray
    x_eval: np.ndarray
    manifest: Manifest

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    def index_of(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """Row positions of the given ids, in the given order; DataError if any id is absent."""
        query = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        order = np.argsort(self.ids, kind="stable")
        sorted_ids = self.ids[order]
        pos = np.searchsorted(sorted_ids, query)
        found = pos < sorted_ids.size
        found[found] = sorted_ids[pos[found]] == query[found]
        if not found.all():
            absent = query[~found]
            raise DataError(
                f"{absent.size} id(s) not in dataset version {self.path}, "
                f"e.g. {absent[:5].tolist()}"
            )
        return order[pos]

    def anomaly_mask(self) -> np.ndarray | None:
        """Boolean [N] mask of injected anomalies, or None when the source recorded none."""
        if self.manifest.is_anomaly_ids is None:
            return None
        return np.isin(self.ids, np.asarray(self.manifest.is_anomaly_ids, dtype=np.int64))


def _check_points(name: str, arr: np.ndarray) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise DataError(f"'{name}' expected shape [N, d] with N, d >= 1, got {a.shape}")
    if a.dtype.kind not in "biuf":
        raise DataError(f"'{name}' must hold real numbers, got dtype {a.dtype}")
    a = a.astype(_DTYPES[name])
    bad = ~np.isfinite(a)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"'{name}' has {int(bad.sum())} non-finite values, first at {first}")
    return a


def _check_ids(ids: np.ndarray, n: int) -> np.ndarray:
    a = np.asarray(ids)
    if a.ndim != 1 or a.shape[0] != n:
        raise DataError(f"'ids' expected shape ({n},), got {a.shape}")
    if a.size and a.dtype.kind not in "iu":
        raise DataError(f"'ids' must be integers, got dtype {a.dtype}")
    a = a.astype(_DTYPES["ids"])
    if np.unique(a).size != a.size:
        raise DataError("'ids' must be unique")
    return a


def _id_list(name: str, values: Iterable[int] | None) -> list[int] | None:
    if values is None:
        return None
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise DataError(f"'{name}' must contain integers, got {v!r}")
        out.append(int(v))
    return sorted(out)


def _relpath(target: Path, start: Path) -> str:
    return os.path.relpath(target.resolve(), start.resolve())


def write_version(
    out_dir: str | os.PathLike[str],
    x: np.ndarray,
    ids: np.ndarray,
    x_eval: np.ndarray,
    *,
    dataset: str,
    params: dict[str, Any],
    parent: DatasetVersion | None = None,
    removed_ids: Sequence[int] | np.ndarray = (),
    method: str | None = None,
    scores_ref: dict[str, Any] | None = None,
    predicted_change: float | None = None,
    metric: str | None = None,
    is_anomaly_ids: Sequence[int] | np.ndarray | None = None,
    force: bool = False,
) -> DatasetVersion:
    """Validate and write a dataset version atomically; return it as loaded back from disk."""
    out_dir = Path(out_dir)
    x = _check_points("x", x)
    x_eval = _check_points("x_eval", x_eval)
    if x_eval.shape[1] != x.shape[1]:
        raise DataError(f"'x_eval' has {x_eval.shape[1]} columns but 'x' has {x.shape[1]}")
    ids = _check_ids(ids, x.shape[0])
    removed = _id_list("removed_ids", removed_ids) or []
    anomalies = _id_list("is_anomaly_ids", is_anomaly_ids)
    if anomalies is not None and not np.isin(anomalies, ids).all():
        raise DataError("'is_anomaly_ids' contains ids that are not in the dataset")
    if np.isin(removed, ids).any():
        raise DataError("'removed_ids' overlaps the ids kept in the dataset")
    if removed and parent is None:
        raise DataError("'removed_ids' given without a parent version")
    if parent is not None and not np.isin(removed, parent.ids).all():
        raise DataError(f"'removed_ids' contains ids that are not in the parent {parent.path}")
    try:
        json.dumps([params, scores_ref], allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"params and scores_ref must be JSON-serialisable: {e}") from None

    manifest = Manifest(
        format_version=FORMAT_VERSION,
        digest=content_digest(x, ids, x_eval),
        n_instances=int(x.shape[0]),
        shape=[int(s) for s in x.shape],
        dtype=x.dtype.str,
        n_eval=int(x_eval.shape[0]),
        dataset=dataset,
        params=params,
        parent_digest=parent.digest if parent is not None else None,
        parent_path=_relpath(parent.path, out_dir) if parent is not None else None,
        removed_ids=removed,
        method=method,
        scores_ref=scores_ref,
        predicted_change=None if predicted_change is None else float(predicted_change),
        metric=metric,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        is_anomaly_ids=anomalies,
    )
    with atomic_dir(out_dir, force=force) as tmp:
        np.savez(tmp / DATA_FILE, x=x, ids=ids, x_eval=x_eval)
        write_json(tmp / MANIFEST_FILE, manifest.to_json())
    log.info(
        "wrote dataset version %s (%d instances, digest %s)",
        out_dir,
        x.shape[0],
        manifest.digest[:12],
    )
    return load_version(out_dir)


def create_raw_version(
    out_dir: str | os.PathLike[str], dataset_name: str, force: bool = False, **params: Any
) -> DatasetVersion:
    """Generate (or load) the named dataset and write it as a raw version with no parent."""
    source = DATASETS.get(dataset_name)
    try:
        inspect.signature(source).bind(**params)
    except TypeError as e:
        raise ConfigError(f"bad parameters for dataset {dataset_name!r}: {e}") from None
    # Fail before a possibly slow generation rather than after it.
    if Path(out_dir).exists() and not force:
        raise OutputExistsError(out_dir)
    raw = source(**params)
    ids = raw.ids if raw.ids is not None else np.arange(raw.x.shape[0], dtype=np.int64)
    anomalies = ids[np.asarray(raw.is_anomaly, dtype=bool)] if raw.is_anomaly is not None else None
    return write_version(
        out_dir,
        raw.x,
        ids,
        raw.x_eval,
        dataset=dataset_name,
        params=raw.params,
        is_anomaly_ids=anomalies,
        force=force,
    )


def _read_manifest(path: Path) -> Manifest:
    obj = read_json(path / MANIFEST_FILE, f"dataset version {path}:")
    return Manifest.from_json(obj, where=f"dataset version {path}: {MANIFEST_FILE}")


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    arrays = load_npz(path / DATA_FILE, f"dataset version {path}: {DATA_FILE}")
    if sorted(arrays) != sorted(_ARRAYS):
        raise DataError(
            f"dataset version {path}: {DATA_FILE} holds arrays {sorted(arrays)}, "
            f"expected {sorted(_ARRAYS)}"
        )
    return arrays


def _check_against_manifest(path: Path, arrays: dict[str, np.ndarray], m: Manifest) -> None:
    where = f"dataset version {path}"
    expected = {
        "x": (tuple(m.shape), m.dtype),
        "ids": ((m.n_instances,), _DTYPES["ids"].str),
        "x_eval": ((m.n_eval, m.shape[1] if len(m.shape) == 2 else -1), m.dtype),
    }
    if len(m.shape) != 2 or m.shape[0] != m.n_instances or m.dtype != _DTYPES["x"].str:
        raise DataError(f"{where}: manifest shape/dtype {m.shape} {m.dtype} is inconsistent")
    for name, (shape, dtype) in expected.items():
        a = arrays[name]
        if a.shape != shape or a.dtype.newbyteorder("<").str != dtype:
            raise DataError(
                f"{where}: '{name}' has shape {a.shape} dtype {a.dtype.str}, "
                f"manifest says {shape} {dtype}"
            )
    for name in ("x", "x_eval"):
        bad = ~np.isfinite(arrays[name])
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"{where}: '{name}' has {int(bad.sum())} non-finite values at {first}")
    if np.unique(arrays["ids"]).size != m.n_instances:
        raise DataError(f"{where}: 'ids' are not unique")


def load_version(path: str | os.PathLike[str], verify: bool = True) -> DatasetVersion:
    """Load and check a version; with `verify`, recompute the digest (DigestMismatchError)."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"dataset version {path} not found (no such directory)")
    manifest = _read_manifest(path)
    arrays = _read_arrays(path)
    _check_against_manifest(path, arrays, manifest)
    x, ids, x_eval = (np.ascontiguousarray(arrays[k], dtype=_DTYPES[k]) for k in _ARRAYS)
    if verify:
        actual = content_digest(x, ids, x_eval)
        if actual != manifest.digest:
            raise DigestMismatchError(f"dataset version {path}", manifest.digest, actual)
    for a in (x, ids, x_eval):
        a.setflags(write=False)
    return DatasetVersion(path=path, x=x, ids=ids, x_eval=x_eval, manifest=manifest)


def lineage(version: DatasetVersion) -> list[DatasetVersion]:
    """The chain raw -> ... -> `version` (oldest first), following the `parent_path` hints.

    Each parent must load and verify, carry exactly the digest its child recorded, and hold the
    child's ids plus the child's `removed_ids`.
    """
    chain = [version]
    seen = {version.digest}
    current = version
    while current.manifest.parent_digest is not None:
        hint = current.manifest.parent_path
        if hint is None:
            raise DataError(f"broken lineage: {current.path} records a parent but no parent_path")
        parent_path = Path(os.path.normpath(current.path / hint))
        if not parent_path.is_dir():
            raise DataError(f"broken lineage: parent {parent_path} of {current.path} is missing")
        try:
            parent = load_version(parent_path)
        except DigestMismatchError:
            raise
        except DataError as e:
            raise DataError(f"broken lineage: parent of {current.path}: {e}") from None
        if parent.digest != current.manifest.parent_digest:
            raise DigestMismatchError(
                f"broken lineage: parent {parent_path} of {current.path}",
                current.manifest.parent_digest,
                parent.digest,
            )
        expected_ids = np.union1d(current.ids, np.asarray(current.manifest.removed_ids, np.int64))
        if not np.array_equal(np.sort(parent.ids), expected_ids):
            raise DataError(
                f"broken lineage: ids of {current.path} plus its removed_ids "
                f"differ from the ids of parent {parent_path}"
            )
        if parent.digest in seen:
            raise DataError(f"broken lineage: cycle at {parent_path}")
        seen.add(parent.digest)
        chain.append(parent)
        current = parent
    return chain[::-1]
