"""The dataset version's manifest and content digest: the format of manifest.json.

The digest is computed from the array contents (see `content_digest`), so it survives
re-compression or copying; a cleansed version records its parent's digest, the removed ids and
the scores that chose them. A child that removes nothing (a DVC cleanse stage that stopped and
passed its input through, recording why in `params["stopped"]`) holds its parent's arrays: its
digest chains the parent's (`passthrough_digest`), so each version of a lineage stays distinct.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ganinf_mlops.errors import DataError

FORMAT_VERSION = 1
ARRAYS = ("x", "ids", "x_eval")
LABEL_ARRAYS = ("y", "y_eval")
IMAGE_CHANNELS = (1, 3)
# Images are stored in the generator's tanh range, so a model never has to guess a scaling.
PIXEL_RANGE = (-1.0, 1.0)


def content_digest(
    x: np.ndarray,
    ids: np.ndarray,
    x_eval: np.ndarray,
    y: np.ndarray | None = None,
    y_eval: np.ndarray | None = None,
) -> str:
    """SHA-256 (hex) of a canonical encoding of the arrays, independent of file format.

    For x, ids, x_eval in that order, then y, y_eval when labels are given: a header line
    ``name|dtype|shape`` (dtype as little-endian ``dtype.str``, e.g. ``<f8``; shape as
    comma-separated ints), then the C-order little-endian bytes of the array. Labels are only
    appended, so an unlabelled version keeps the digest it had before labels existed.
    """
    if (y is None) != (y_eval is None):
        raise DataError("labels 'y' and 'y_eval' go together: give both or neither")
    named = list(zip(ARRAYS, (x, ids, x_eval), strict=True))
    if y is not None:
        named += [("y", y), ("y_eval", y_eval)]
    h = hashlib.sha256()
    for name, arr in named:
        a = np.asarray(arr)
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        shape = ",".join(str(s) for s in a.shape)
        h.update(f"{name}|{a.dtype.str}|{shape}\n".encode())
        h.update(a.tobytes(order="C"))
    return h.hexdigest()


STOPPED = "stopped"  # params key: why a child that removes nothing passed its parent through


def passthrough_digest(content: str, parent_digest: str) -> str:
    """The digest of a child version with its parent's content: SHA-256 (hex) of
    ``passthrough|<parent digest>|<content digest>``. The content digest alone would repeat the
    parent's, and runs, summaries and lineage walks tell versions apart by digest."""
    return hashlib.sha256(f"passthrough|{parent_digest}|{content}".encode()).hexdigest()


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

    @property
    def passes_through(self) -> bool:
        """A child version that removed nothing: its parent's data, passed on by a stop."""
        return self.parent_digest is not None and not self.removed_ids

    @property
    def stopped(self) -> str | None:
        """Why the chain stopped here (a pass-through version), else None."""
        return self.params[STOPPED] if self.passes_through else None

    def digest_of(self, content: str) -> str:
        """The digest this manifest must record for arrays whose `content_digest` is `content`."""
        if self.passes_through:
            return passthrough_digest(content, str(self.parent_digest))
        return content

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
        parent_path = obj["parent_path"]
        if parent_path is not None and (
            os.path.isabs(parent_path) or "\0" in parent_path or parent_path.startswith("~")
        ):
            # Written relative to the version (versions move together); an absolute hint would
            # send lineage walks anywhere on the machine.
            raise DataError(f"{where}: 'parent_path' must be relative, got {parent_path!r}")
        if obj["format_version"] != FORMAT_VERSION:
            raise DataError(
                f"{where}: unsupported format_version {obj['format_version']} "
                f"(this version of ganinf reads {FORMAT_VERSION})"
            )
        manifest = cls(**{k: obj[k] for k in names})
        manifest.check_metadata(where)
        return manifest

    def check_metadata(self, where: str = "manifest") -> None:
        """The metadata outside the content digest, checked on every read and before a write:
        ids listed once, a known method, a finite predicted change. (That the listed ids are,
        or are not, in the version is checked where its ids are loaded: version.py.)"""
        for key in ("removed_ids", "is_anomaly_ids"):
            values = getattr(self, key) or []
            if len(set(values)) != len(values):
                raise DataError(f"{where}: '{key}' lists an id more than once")
        if self.passes_through and not (
            isinstance(self.params.get(STOPPED), str) and self.params[STOPPED]
        ):
            raise DataError(
                f"{where}: a child version that removes no instance must say why the chain "
                f"stopped (params '{STOPPED}')"
            )
        if self.method is not None:
            # The registry of scoring methods, imported here: it sits above the data layer.
            from ganinf_mlops.influence.methods import METHODS

            if self.method not in METHODS:
                raise DataError(
                    f"{where}: 'method' {self.method!r} is not a scoring method "
                    f"(one of {', '.join(METHODS.names())})"
                )
        if self.predicted_change is not None and not math.isfinite(self.predicted_change):
            raise DataError(
                f"{where}: 'predicted_change' must be a finite number, got {self.predicted_change}"
            )


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
