"""MLflow dataset source for a directory versioned by DVC at a given git revision.

A run that logs a dataset with this source records (repo, rev, path, remote), enough to
re-materialise exactly those bytes later from git + the DVC remote, even after the working copy is
gone. MLflow loads the class through the `mlflow.dataset_source` entry point (when it imports
`mlflow.data.dataset_source_registry`) and finds it again from a stored run by its source type
"dvc": `mlflow.data.get_source(dataset_input)`. `dvc` itself is imported only by `load()`.
"""

from __future__ import annotations

import atexit
import functools
import posixpath
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from mlflow.data.dataset_source import DatasetSource
from mlflow.exceptions import MlflowException

from ganinf_mlops.errors import DataError
from ganinf_mlops.io import atomic_dir

SCHEME = "dvc://"


@functools.cache
def _clean_clones_at_exit() -> None:
    # For a repo given by URL, DVC clones it (and makes a cache) in temp dirs that it keeps for
    # reuse and removes only at the end of a `dvc` CLI command: library callers must clean up.
    from dvc.repo.open_repo import clean_repos

    atexit.register(clean_repos)


class DvcDatasetSource(DatasetSource):
    """`path` inside the git+DVC repository `repo` (URL or local path) at revision `rev`.

    `remote` names the DVC remote to pull from (default: the repo's default remote, or its local
    cache for a local repo). As a URI: ``dvc://<path>?repo=<repo>&rev=<rev>[&remote=<name>]``,
    with the query values percent-encoded.
    """

    def __init__(self, repo: str, rev: str, path: str, remote: str | None = None) -> None:
        for name, value in (("repo", repo), ("rev", rev), ("path", path), ("remote", remote)):
            if not (isinstance(value, str) and value) and not (name == "remote" and value is None):
                raise MlflowException.invalid_parameter_value(
                    f"DvcDatasetSource: '{name}' must be a non-empty string, got {value!r}"
                )
        norm = posixpath.normpath(path.replace("\\", "/")).lstrip("/")
        if norm in ("", ".") or norm.startswith("../") or norm == "..":
            raise MlflowException.invalid_parameter_value(
                f"DvcDatasetSource: 'path' must name a directory inside the repo, got {path!r}"
            )
        self.repo = repo
        self.rev = rev
        self.path = norm
        self.remote = remote

    def __repr__(self) -> str:
        return f"DvcDatasetSource({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DvcDatasetSource) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.uri)

    @property
    def uri(self) -> str:
        query = {"repo": self.repo, "rev": self.rev}
        if self.remote:
            query["remote"] = self.remote
        return f"{SCHEME}{quote(self.path, safe='/')}?{urlencode(query)}"

    @staticmethod
    def _get_source_type() -> str:
        return "dvc"

    def load(self, dst_path: str | None = None) -> str:
        """Fetch the directory into `dst_path` (created if needed; a new temp dir by default)
        and return the local path ``dst_path/<basename of path>``, as MLflow's sources do.

        DataError if DVC cannot resolve or fetch it; OutputExistsError if the target exists.
        """
        from dvc.api import DVCFileSystem  # slow import (~0.5 s), needed only here

        _clean_clones_at_exit()

        try:
            fs = DVCFileSystem(self.repo, rev=self.rev, remote=self.remote)
        except Exception as e:  # dvc/scmrepo raise many unrelated types
            raise DataError(f"cannot open {self.uri}: {e}") from e
        try:
            try:
                is_dir = fs.isdir(self.path)  # the repo is opened (or cloned) lazily, here
            except Exception as e:
                raise DataError(f"cannot open {self.uri}: {e}") from e
            if not is_dir:
                raise DataError(f"{self.uri}: no directory {self.path!r} at rev {self.rev}")
            parent = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="ganinf-dvc-"))
            target = parent / PurePosixPath(self.path).name
            with atomic_dir(target) as tmp:
                try:
                    # Trailing '/': copy the directory's contents into tmp, not tmp/<name>.
                    fs.get(self.path + "/", str(tmp), recursive=True)
                except Exception as e:
                    raise DataError(f"cannot fetch {self.uri}: {e}") from e
        finally:
            fs.close()
        return str(target)

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return isinstance(raw_source, str) and raw_source.startswith(SCHEME)

    @classmethod
    def _resolve(cls, raw_source: Any) -> DvcDatasetSource:
        path, _, query = str(raw_source)[len(SCHEME) :].partition("?")
        values = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        unknown = sorted(set(values) - {"repo", "rev", "remote"})
        if unknown or "repo" not in values or "rev" not in values:
            raise MlflowException.invalid_parameter_value(
                f"{raw_source!r}: expected {SCHEME}<path>?repo=<repo>&rev=<rev>[&remote=<name>]"
            )
        return cls(values["repo"], values["rev"], unquote(path), values.get("remote"))

    def to_dict(self) -> dict[str, Any]:
        return {"repo": self.repo, "rev": self.rev, "path": self.path, "remote": self.remote}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> DvcDatasetSource:
        missing = [k for k in ("repo", "rev", "path") if k not in source_dict]
        if missing:
            raise MlflowException.invalid_parameter_value(
                f"Failed to parse DvcDatasetSource: missing keys {missing}"
            )
        return cls(
            source_dict["repo"], source_dict["rev"], source_dict["path"], source_dict.get("remote")
        )
