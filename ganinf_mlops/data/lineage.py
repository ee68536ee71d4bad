"""Walk a dataset version's lineage: the chain of cleanses back to the raw data, and find a
version by directory or digest."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ganinf_mlops import keys
from ganinf_mlops.data.version import (
    DatasetVersion,
    find_manifests,
    load_version,
    read_manifest,
    same_data,
)
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
    child's ids plus the child's `removed_ids` (a child that removed nothing: the same data).
    """
    chain = [version]
    seen = {version.digest}
    current = version
    while current.manifest.parent_digest is not None:
        parent_path = parent_dir(current.path, current.manifest.parent_path)
        if not parent_path.is_dir():
            raise DataError(f"broken lineage: parent {parent_path} of {current.path} is missing")
        try:
            parent = load_version(parent_path)
        except DigestMismatchError:
            raise
        except DataError as e:
            raise DataError(f"broken lineage: parent of {current.path}: {e}") from None
        check_parent(current, parent)
        if parent.digest in seen:
            raise DataError(f"broken lineage: cycle at {parent_path}")
        seen.add(parent.digest)
        chain.append(parent)
        current = parent
    return chain[::-1]


def parent_dir(path: Path, hint: str | None) -> Path:
    """The parent directory a version at `path` names by its `parent_path` hint. The hint is
    relative (manifest.py) and followed as written: refused when it leads through a symbolic
    link (a link can send the walk anywhere) or to the version itself or a directory holding
    it (`../..`)."""
    if hint is None:
        raise DataError(f"broken lineage: {path} records a parent but no parent_path")
    lexical = Path(os.path.normpath(path.resolve() / hint))
    where = f"broken lineage: {path / 'manifest.json'} 'parent_path' {hint!r}"
    if (path / hint).resolve() != lexical:
        raise DataError(f"{where} leads through a symlink")
    if lexical == path.resolve() or lexical in path.resolve().parents:
        raise DataError(f"{where} points at the version or a directory holding it")
    return Path(os.path.normpath(path / hint))


def check_parent(child: DatasetVersion, parent: DatasetVersion) -> None:
    """Refuse `parent` unless it is the version `child` was cleansed from: the digest the child
    recorded, and the child's ids plus its `removed_ids` exactly the parent's ids."""
    if parent.digest != child.manifest.parent_digest:
        raise DigestMismatchError(
            f"broken lineage: parent {parent.path} of {child.path} is not the version it was "
            "cleansed from",
            str(child.manifest.parent_digest),
            parent.digest,
            mismatch="parent digest mismatch",
        )
    expected_ids = np.union1d(child.ids, np.asarray(child.manifest.removed_ids, np.int64))
    if not np.array_equal(np.sort(parent.ids), expected_ids):
        raise DataError(
            f"broken lineage: ids of {child.path} plus its removed_ids "
            f"differ from the ids of parent {parent.path}"
        )
    if child.manifest.passes_through and not same_data(child, parent):
        raise DataError(
            f"broken lineage: {child.path} removes nothing (stopped) but its data differ from "
            f"those of parent {parent.path}"
        )


def ancestor_digests(version: DatasetVersion) -> list[str]:
    """Digests of `version` and its ancestors (newest first), from the manifests alone: what an
    artifact made from an ancestor (a feature classifier trained on the raw data) is checked by.
    Walking stops where a parent directory is missing or repeats."""
    out = [version.digest]
    path, manifest = version.path, version.manifest
    while manifest.parent_digest is not None and manifest.parent_digest not in out:
        out.append(manifest.parent_digest)
        try:
            path = parent_dir(path, manifest.parent_path)
            manifest = read_manifest(path)
        except DataError:
            break
    return out
