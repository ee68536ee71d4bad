"""Walk a dataset version's lineage: the chain of cleanses back to the raw data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ganinf_mlops.data.version import MANIFEST_FILE, DatasetVersion, lineage, load_version
from ganinf_mlops.errors import DataError

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
    found: dict[Path, str] = {}  # version dir -> its full digest
    for manifest in sorted(Path(root).rglob(MANIFEST_FILE)):
        try:
            digest = json.loads(manifest.read_text()).get("digest", "")
        except (OSError, json.JSONDecodeError, AttributeError):
            continue
        if isinstance(digest, str) and digest.startswith(ref):
            found[manifest.parent] = digest
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
                "n_removed": len(m.removed_ids),
                "method": m.method,
                "metric": m.metric,
                "predicted_change": m.predicted_change,
                "dataset": m.dataset,
                "created_at": m.created_at,
                "generations_from_newest": depth,
            }
        )
    return out
