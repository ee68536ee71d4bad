"""Dataset versions: immutable, content-addressed directories; the one reader and writer.

A version directory holds ``data.npz`` (``x`` float64 [N, d] points or [N, C, H, W] images with
pixels in [-1, 1], ``ids`` int64 [N] stable instance ids, ``x_eval`` float64 [M, ...] of the same
trailing shape, optionally class labels ``y`` int64 [N] and ``y_eval`` int64 [M]) and
``manifest.json`` (manifest.py). Every other module reads a version through `load_version` or
`read_manifest` and writes one through `write_version`; lineage.py walks the chain of parents.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ganinf_mlops.data.datasets import DATASETS, RawData, check_finite, load_npz
from ganinf_mlops.data.manifest import ARRAYS as _ARRAYS
from ganinf_mlops.data.manifest import (
    FORMAT_VERSION,
    IMAGE_CHANNELS,
    PIXEL_RANGE,
    Manifest,
    content_digest,
)
from ganinf_mlops.data.manifest import LABEL_ARRAYS as _LABEL_ARRAYS
from ganinf_mlops.errors import (
    ConfigError,
    DataError,
    DigestMismatchError,
    GaninfError,
    OutputExistsError,
)
from ganinf_mlops.io import atomic_dir, read_json, write_json
from ganinf_mlops.writelock import writing

log = logging.getLogger(__name__)

DATA_FILE = "data.npz"
MANIFEST_FILE = "manifest.json"
_DTYPES = {
    "x": np.dtype("<f8"),
    "ids": np.dtype("<i8"),
    "x_eval": np.dtype("<f8"),
    "y": np.dtype("<i8"),
    "y_eval": np.dtype("<i8"),
}


@dataclass(frozen=True)
class DatasetVersion:
    """A loaded dataset version; its arrays are read-only so they cannot drift from the digest.

    `y` / `y_eval` are the int64 class labels of `x` / `x_eval`, or None for unlabelled data.
    """

    path: Path
    x: np.ndarray
    ids: np.ndarray
    x_eval: np.ndarray
    manifest: Manifest
    y: np.ndarray | None = None
    y_eval: np.ndarray | None = None

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


def same_data(a: DatasetVersion, b: DatasetVersion) -> bool:
    """Whether two versions hold the same arrays (what a pass-through child keeps of its parent)."""
    pairs = [(a.x, b.x), (a.ids, b.ids), (a.x_eval, b.x_eval), (a.y, b.y), (a.y_eval, b.y_eval)]
    return all(
        (u is None and v is None) or (u is not None and v is not None and np.array_equal(u, v))
        for u, v in pairs
    )


def _is_image_shape(shape: Sequence[int]) -> bool:
    return len(shape) == 4 and shape[1] in IMAGE_CHANNELS


def _check_pixel_range(where: str, name: str, a: np.ndarray) -> None:
    lo, hi = PIXEL_RANGE
    if a.ndim == 4 and a.size and (a.min() < lo or a.max() > hi):
        raise DataError(
            f"{where}'{name}' holds images whose pixels must lie in [{lo:g}, {hi:g}], "
            f"found values in [{a.min():.6g}, {a.max():.6g}]"
        )


def _check_points(name: str, arr: np.ndarray) -> np.ndarray:
    """[N, d] points or [N, C, H, W] images (C 1 or 3) of finite reals, as float64."""
    a = np.asarray(arr)
    if not (a.ndim == 2 or _is_image_shape(a.shape)) or 0 in a.shape:
        raise DataError(
            f"'{name}' expected shape [N, d] with N, d >= 1 or images [N, C, H, W] with "
            f"C in {IMAGE_CHANNELS}, got {a.shape}"
        )
    if a.dtype.kind not in "biuf":
        raise DataError(f"'{name}' must hold real numbers, got dtype {a.dtype}")
    a = a.astype(_DTYPES[name])
    check_finite(a, f"'{name}'")
    _check_pixel_range("", name, a)
    return a


def _check_same_kind(x: np.ndarray, x_eval: np.ndarray) -> None:
    if x_eval.shape[1:] == x.shape[1:]:
        return
    if x.ndim == 2 and x_eval.ndim == 2:
        raise DataError(f"'x_eval' has {x_eval.shape[1]} columns but 'x' has {x.shape[1]}")
    raise DataError(f"'x_eval' has instances of shape {x_eval.shape[1:]} but 'x' has {x.shape[1:]}")


def _check_labels(name: str, labels: np.ndarray, n: int) -> np.ndarray:
    """Class labels: [n] non-negative integers, as int64."""
    a = np.asarray(labels)
    if a.ndim != 1 or a.shape[0] != n:
        raise DataError(f"'{name}' expected shape ({n},) (one label per instance), got {a.shape}")
    if a.dtype.kind not in "iu":
        raise DataError(f"'{name}' must hold integer class labels, got dtype {a.dtype}")
    if a.size and int(a.min()) < 0:
        raise DataError(f"'{name}' labels must be non-negative, found {int(a.min())}")
    if a.size and int(a.max()) > np.iinfo(np.int64).max:
        raise DataError(f"'{name}' labels do not fit in int64")
    return a.astype(_DTYPES[name])


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


@dataclass(frozen=True)
class Provenance:
    """How a child version was made from its parent: what a cleanse records in the manifest."""

    parent: DatasetVersion
    removed_ids: Sequence[int] | np.ndarray = ()
    method: str | None = None
    scores_ref: dict[str, Any] | None = None
    predicted_change: float | None = None
    metric: str | None = None


def write_version(
    out_dir: str | os.PathLike[str],
    x: np.ndarray,
    ids: np.ndarray,
    x_eval: np.ndarray,
    *,
    dataset: str,
    params: dict[str, Any],
    provenance: Provenance | None = None,
    is_anomaly_ids: Sequence[int] | np.ndarray | None = None,
    force: bool = False,
    y: np.ndarray | None = None,
    y_eval: np.ndarray | None = None,
) -> DatasetVersion:
    """Validate and write a dataset version atomically; return it as loaded back from disk.

    `y` / `y_eval` are optional class labels of `x` / `x_eval` (both or neither).
    """
    out_dir = Path(out_dir)
    x = _check_points("x", x)
    x_eval = _check_points("x_eval", x_eval)
    _check_same_kind(x, x_eval)
    ids = _check_ids(ids, x.shape[0])
    if (y is None) != (y_eval is None):
        raise DataError("labels 'y' and 'y_eval' go together: give both or neither")
    labels: dict[str, np.ndarray] = {}
    if y is not None and y_eval is not None:
        labels = {"y": _check_labels("y", y, x.shape[0])}
        labels["y_eval"] = _check_labels("y_eval", y_eval, x_eval.shape[0])
    prov = provenance
    parent = prov.parent if prov is not None else None
    removed = _id_list("removed_ids", prov.removed_ids if prov is not None else ()) or []
    scores_ref = prov.scores_ref if prov is not None else None
    predicted_change = prov.predicted_change if prov is not None else None
    anomalies = _id_list("is_anomaly_ids", is_anomaly_ids)
    if anomalies is not None and not np.isin(anomalies, ids).all():
        raise DataError("'is_anomaly_ids' contains ids that are not in the dataset")
    if np.isin(removed, ids).any():
        raise DataError("'removed_ids' overlaps the ids kept in the dataset")
    if parent is not None and not np.isin(removed, parent.ids).all():
        raise DataError(f"'removed_ids' contains ids that are not in the parent {parent.path}")
    try:
        json.dumps([params, scores_ref], allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"params and scores_ref must be JSON-serialisable: {e}") from None

    content = content_digest(x, ids, x_eval, labels.get("y"), labels.get("y_eval"))
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        digest=content,
        n_instances=int(x.shape[0]),
        shape=[int(s) for s in x.shape],
        dtype=x.dtype.str,
        n_eval=int(x_eval.shape[0]),
        dataset=dataset,
        params=params,
        parent_digest=parent.digest if parent is not None else None,
        parent_path=_relpath(parent.path, out_dir) if parent is not None else None,
        removed_ids=removed,
        method=prov.method if prov is not None else None,
        scores_ref=scores_ref,
        predicted_change=None if predicted_change is None else float(predicted_change),
        metric=prov.metric if prov is not None else None,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        is_anomaly_ids=anomalies,
    )
    manifest = dataclasses.replace(manifest, digest=manifest.digest_of(content))
    manifest.check_metadata(f"dataset version {out_dir}")  # before anything is written
    if manifest.passes_through and parent is not None:
        arrays = DatasetVersion(out_dir, x, ids, x_eval, manifest, labels.get("y"),
                                labels.get("y_eval"))  # fmt: skip
        if not same_data(arrays, parent):
            raise DataError(
                f"dataset version {out_dir} removes no instance of {parent.path}, so it must "
                "hold its data unchanged"
            )
    with writing(out_dir):  # held until it is read back: no other writer replaces it meanwhile
        with atomic_dir(out_dir, force=force) as tmp:
            np.savez(tmp / DATA_FILE, x=x, ids=ids, x_eval=x_eval, **labels)
            write_json(tmp / MANIFEST_FILE, manifest.to_json())
        log.info(
            "wrote dataset version %s (%d instances, digest %s)",
            out_dir,
            x.shape[0],
            manifest.digest[:12],
        )
        written = load_version(out_dir)
    if written.digest != manifest.digest:  # a writer that takes no lock replaced it
        raise GaninfError(
            f"another process replaced {out_dir} (digest {written.digest[:12]}, not the "
            f"{manifest.digest[:12]} written here)"
        )
    return written


def create_raw_version(
    out_dir: str | os.PathLike[str], dataset_name: str, force: bool = False, **params: Any
) -> DatasetVersion:
    """Generate (or load) the named dataset and write it as a raw version with no parent."""
    source = DATASETS.get(dataset_name)
    try:
        inspect.signature(source).bind(**params)
    except TypeError as e:
        raise ConfigError(f"bad parameters for dataset {dataset_name!r}: {e}") from None
    # Fail before a possibly slow generation rather than after it; another live writer of
    # `out_dir` too (the lock is held from here until the version is read back).
    if Path(out_dir).exists() and not force:
        raise OutputExistsError(out_dir)
    with writing(out_dir):
        return _write_raw(out_dir, dataset_name, source(**params), force)


def _write_raw(
    out_dir: str | os.PathLike[str], dataset_name: str, raw: RawData, force: bool
) -> DatasetVersion:
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
        y=raw.y,
        y_eval=raw.y_eval,
    )


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """The checked manifest of the version directory `path` (without loading its arrays)."""
    path = Path(path)
    obj = read_json(path / MANIFEST_FILE, f"dataset version {path}:")
    return Manifest.from_json(obj, where=f"dataset version {path}: {MANIFEST_FILE}")


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    arrays = load_npz(path / DATA_FILE, f"dataset version {path}: {DATA_FILE}")
    unlabelled, labelled = sorted(_ARRAYS), sorted(_ARRAYS + _LABEL_ARRAYS)
    if sorted(arrays) not in (unlabelled, labelled):
        raise DataError(
            f"dataset version {path}: {DATA_FILE} holds arrays {sorted(arrays)}, "
            f"expected {unlabelled} or {labelled}"
        )
    return arrays


def _check_against_manifest(path: Path, arrays: dict[str, np.ndarray], m: Manifest) -> None:
    where = f"dataset version {path}"
    expected = {
        "x": (tuple(m.shape), m.dtype),
        "ids": ((m.n_instances,), _DTYPES["ids"].str),
        "x_eval": ((m.n_eval, *m.shape[1:]), m.dtype),
    }
    shape_ok = len(m.shape) == 2 or _is_image_shape(m.shape)
    if not shape_ok or m.shape[0] != m.n_instances or m.dtype != _DTYPES["x"].str:
        raise DataError(f"{where}: manifest shape/dtype {m.shape} {m.dtype} is inconsistent")
    for name, (shape, dtype) in expected.items():
        a = arrays[name]
        if a.shape != shape or a.dtype.newbyteorder("<").str != dtype:
            raise DataError(
                f"{where}: '{name}' has shape {a.shape} dtype {a.dtype.str}, "
                f"manifest says {shape} {dtype}"
            )
    # The manifest does not record labels: their presence comes from data.npz, their sizes
    # from n_instances / n_eval.
    for name, n in (("y", m.n_instances), ("y_eval", m.n_eval)):
        if name not in arrays:
            continue
        a = arrays[name]
        if a.shape != (n,) or a.dtype.newbyteorder("<") != _DTYPES[name]:
            raise DataError(
                f"{where}: '{name}' has shape {a.shape} dtype {a.dtype.str}, "
                f"expected ({n},) {_DTYPES[name].str} class labels"
            )
        if a.size and int(a.min()) < 0:
            raise DataError(f"{where}: '{name}' has negative class labels (min {int(a.min())})")
    for name in ("x", "x_eval"):
        check_finite(arrays[name], f"{where}: '{name}'")
        _check_pixel_range(f"{where}: ", name, arrays[name])
    if np.unique(arrays["ids"]).size != m.n_instances:
        raise DataError(f"{where}: 'ids' are not unique")
    # The manifest's ids outside the digest: anomalies among the version's ids, removed ones not.
    if m.is_anomaly_ids is not None and not np.isin(m.is_anomaly_ids, arrays["ids"]).all():
        absent = sorted(set(m.is_anomaly_ids) - set(arrays["ids"].tolist()))
        raise DataError(
            f"{where}: {MANIFEST_FILE} 'is_anomaly_ids' lists ids not in the version, "
            f"e.g. {absent[:5]}"
        )
    if np.isin(m.removed_ids, arrays["ids"]).any():
        raise DataError(f"{where}: {MANIFEST_FILE} 'removed_ids' lists ids kept in the version")


def load_version(path: str | os.PathLike[str], verify: bool = True) -> DatasetVersion:
    """Load and check a version; with `verify`, recompute the digest (DigestMismatchError)."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"dataset version {path} not found (no such directory)")
    manifest = read_manifest(path)
    arrays = _read_arrays(path)
    _check_against_manifest(path, arrays, manifest)
    x, ids, x_eval = (np.ascontiguousarray(arrays[k], dtype=_DTYPES[k]) for k in _ARRAYS)
    y, y_eval = (
        np.ascontiguousarray(arrays[k], dtype=_DTYPES[k]) if k in arrays else None
        for k in _LABEL_ARRAYS
    )
    if verify:
        actual = manifest.digest_of(content_digest(x, ids, x_eval, y, y_eval))
        if actual != manifest.digest:
            raise DigestMismatchError(f"dataset version {path}", manifest.digest, actual)
    for a in (x, ids, x_eval, y, y_eval):
        if a is not None:
            a.setflags(write=False)
    return DatasetVersion(
        path=path, x=x, ids=ids, x_eval=x_eval, manifest=manifest, y=y, y_eval=y_eval
    )


def find_manifests(root: str | os.PathLike[str]) -> Iterator[tuple[Path, Manifest]]:
    """(directory, manifest) of every readable version under `root`; unreadable ones are skipped."""
    for path in sorted(Path(root).rglob(MANIFEST_FILE)):
        try:
            yield path.parent, read_manifest(path.parent)
        except DataError:
            continue
