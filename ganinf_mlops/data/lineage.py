"""Walk a dataset version's lineage: the chain of cleanses back to the raw data, and find a
version by directory or digest."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ganinf_mlops import keys
from ganinf_mlops.data.version import DatasetVersion, find_manifests, load_version, read_manifest
from ganinf_mlops.errors import DataError, DigestMismatchError

MIN_PREFIX = 8


def find_version(ref: str | Path, root: str | Path = ".") -> DatasetVersion:
    """A version by directory, or by digest (or a prefix of >= 8 hex digits) under `root`."""
    path = Path(ref)
    if path.is_dir():
        return load_version(path)
    ref = str(ref).lower()
    if len(ref) < MIN_PREFIX or any(c not in "0123456789abcdef" for c in ref):
        raise DataError(
            f"{ref!r} is neither a version directory nor a digest (>= {MIN_PREFIX} hex digits)"
        )
    found = {d: m.digest for d, m in find_manifests(root) if m.digest.startswith(ref)}
    digests = set(found.values())
    if not found:
        raise DataError(f"no dataset version with digest {ref}… under {Path(root).resolve()}")
    if len(digests) > 1:
        raise DataError(f"digest prefix {ref} is ambiguous: {', '.join(sorted(digests))}")
    return load_version(next(iter(found)))  # copies of one version are the same data


def chain(version: DatasetVersion) -> list[dict[str, Any]]:
    """Entries from `version` back to the raw version (newest first)."""
    out = []
    for depth, v in enumerate(reversed(lineage(version))):
        m = v.manifest
        out.append(
            {
                "digest": v.digest,
                "path": str(v.path),
                "n_instances": v.n,
                "parent_digest": m.parent_digest,
                keys.N_REMOVED: len(m.removed_ids),
                "method": m.method,
                "metric": m.metric,
                keys.PREDICTED_CHANGE: m.predicted_change,
                "dataset": m.dataset,
                "created_at": m.created_at,
                "generations_from_newest": depth,
            }
        )
    return out


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


def ancestor_digests(version: DatasetVersion) -> list[str]:
    """Digests of `version` and its ancestors (newest first), from the manifests alone: what an
    artifact made from an ancestor (a feature classifier trained on the raw data) is checked by.
    Walking stops where a parent directory is missing or repeats."""
    out = [version.digest]
    path, manifest = version.path, version.manifest
    while manifest.parent_digest is not None and manifest.parent_digest not in out:
        out.append(manifest.parent_digest)
        if manifest.parent_path is None:
            break
        path = Path(os.path.normpath(path / manifest.parent_path))
        try:
            manifest = read_manifest(path)
        except DataError:
            break
    return out
