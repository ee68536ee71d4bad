"""`ganinf push`: push dataset versions to the DVC remote and tell MLflow where to fetch them.

A run logs its versions with their local paths, which mean nothing on another machine. Once the
versions are committed (`dvc add` or `dvc repro`, then `git commit` and `git push`), `push_versions`
checks that the commit holds exactly these bytes, runs `dvc push`, and adds to every run that read
a version an input with a `DvcDatasetSource` (repo URL, commit, path, remote): from then on
`influence --run runs:/ID` on any machine re-materialises the version from git + the DVC remote.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

from ganinf_mlops.data.version import DatasetVersion, load_version
from ganinf_mlops.errors import DataError
from ganinf_mlops.hashing import sha256_file
from ganinf_mlops.tracking import tags as T

_CONTEXT_TAG = "mlflow.data.context"  # mlflow.utils.mlflow_tags.MLFLOW_DATASET_CONTEXT
_SAFE_GIT = ("-c", "core.fsmonitor=false")


@dataclasses.dataclass(frozen=True)
class Pushed:
    version: DatasetVersion
    uri: str  # the dvc:// source recorded
    runs: tuple[str, ...]  # run ids that now have it as an input


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *_SAFE_GIT, *args], cwd=root, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise DataError(f"git {' '.join(args)} in {root}: {done.stderr.strip() or 'failed'}")
    return done.stdout.strip()


def repo_root(paths: list[Path]) -> Path:
    """The git+DVC repository holding every path (DataError if none, or several)."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    roots = set()
    for p in paths:
        try:
            roots.add(Path(Repo.find_root(str(p))).resolve())
        except NotDvcRepoError:
            raise DataError(f"{p} is not inside a DVC repository (dvc init)") from None
    if len(roots) != 1:
        raise DataError(f"the versions lie in {len(roots)} DVC repositories; push each alone")
    return roots.pop()


def default_repo_url(root: Path, commit: str) -> str:
    """`origin`'s URL if the repo has one (the commit must be on one of its branches), else the
    repository's own path (fetchable on this machine only)."""
    remotes = _git(root, "remote").split()
    if "origin" not in remotes:
        return str(root)
    if not _git(root, "branch", "-r", "--contains", commit):
        raise DataError(f"commit {commit[:12]} is not on any branch of origin: git push first")
    return _git(root, "remote", "get-url", "origin")


def check_committed(root: Path, commit: str, version: DatasetVersion) -> str:
    """The version's path in the repo, once the commit is shown to hold exactly its files."""
    from dvc.api import DVCFileSystem

    rel = Path(os.path.relpath(version.path.resolve(), root)).as_posix()
    fs = DVCFileSystem(str(root), rev=commit)
    try:
        if not fs.isdir(rel):
            raise DataError(
                f"{version.path} is not tracked at commit {commit[:12]}: "
                f"`dvc add {rel}` (or `dvc repro`), then git commit"
            )
        for name in sorted(p.name for p in version.path.iterdir() if p.is_file()):
            with fs.open(f"{rel}/{name}", "rb") as fh:
                committed = hashlib.file_digest(fh, "sha256").hexdigest()
            if committed != sha256_file(version.path / name):
                raise DataError(
                    f"{version.path / name} differs from commit {commit[:12]}: commit it first"
                )
    except FileNotFoundError as e:
        raise DataError(f"{version.path}: not at commit {commit[:12]}: {e}") from None
    finally:
        fs.close()
    return rel


def dvc_push(root: Path, targets: list[str], remote: str | None) -> str:
    """`dvc push` the targets; return the remote's name (the default one unless given)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        name = remote or repo.config["core"].get("remote")
        if not name:
            raise DataError("no DVC remote: `dvc remote add -d NAME URL` (or pass --remote)")
        if name not in repo.config["remote"]:
            raise DataError(f"no DVC remote named {name!r} in {root}")
        try:
            repo.push(targets=targets, remote=name)
        except Exception as e:  # DVC and the object store raise many types
            raise DataError(f"dvc push to {name!r} failed: {e}") from None
    return name


def link_runs(client: Any, version: DatasetVersion, source: Any) -> tuple[str, ...]:
    """Add `source` as an input of every run that logged `version`, with the same context."""
    from mlflow.entities import DatasetInput, InputTag

    from ganinf_mlops.tracking.datasets import DIGEST_CHARS, OLD_DIGEST_CHARS, version_dataset
    from ganinf_mlops.tracking.lookup import experiment_ids

    dataset = version_dataset(version, source)._to_mlflow_entity()
    experiments = experiment_ids(client)
    # Runs logged before the digest was shortened carry the longer prefix.
    short = {version.digest[:n] for n in (DIGEST_CHARS, OLD_DIGEST_CHARS)}
    found = "datasets.digest IN (" + ", ".join(f"'{d}'" for d in sorted(short)) + ")"
    runs = client.search_runs(experiments, found, max_results=10000) if experiments else []
    linked = []
    for run in runs:
        contexts, done = set(), False
        for d in run.inputs.dataset_inputs:
            tags = {t.key: t.value for t in d.tags}
            if tags.get(T.DATASET_SHA256, version.digest) != version.digest:
                continue
            if d.dataset.source_type == "dvc" and d.dataset.source == dataset.source:
                done = True
            contexts.add(tags.get(_CONTEXT_TAG, "training"))
        if done or not contexts:
            continue
        client.log_inputs(
            run.info.run_id,
            datasets=[
                DatasetInput(dataset, [InputTag(_CONTEXT_TAG, c),
                                       InputTag(T.DATASET_SHA256, version.digest)])
                for c in sorted(contexts)
            ],
        )  # fmt: skip
        linked.append(run.info.run_id)
    return tuple(linked)


def push_versions(
    paths: list[Path], remote: str | None = None, repo_url: str | None = None, client: Any = None
) -> list[Pushed]:
    """Check, push and link each version (see the module docstring)."""
    from mlflow import MlflowClient

    from ganinf_mlops.tracking.dvc_source import DvcDatasetSource

    versions = [load_version(p) for p in paths]  # digests re-checked
    root = repo_root(paths)
    try:
        commit = _git(root, "rev-parse", "--verify", "-q", "HEAD")
    except DataError:
        raise DataError(f"{root} has no commit yet: commit the versions first") from None
    rels = [check_committed(root, commit, v) for v in versions]
    url = repo_url or default_repo_url(root, commit)
    name = dvc_push(root, rels, remote)
    client = client or MlflowClient()
    out = []
    for version, rel in zip(versions, rels, strict=True):
        source = DvcDatasetSource(url, commit, rel, name)
        out.append(Pushed(version, source.uri, link_runs(client, version, source)))
    return out
