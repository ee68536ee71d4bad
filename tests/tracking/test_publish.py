"""`ganinf push`'s parts (tracking/publish.py), each alone: the repository holding the versions,
the URL recorded, the commit check, the remote check, and linking runs on a sqlite store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag

from ganinf_mlops.data.version import load_version, write_version
from ganinf_mlops.errors import DataError
from ganinf_mlops.tracking import publish
from ganinf_mlops.tracking import tags as T
from ganinf_mlops.tracking.datasets import version_dataset
from ganinf_mlops.tracking.dvc_source import DvcDatasetSource

from .repos import git

CONTEXT = "mlflow.data.context"


def _dvc_init(root: Path, scm: bool = True) -> Path:
    from dvc.repo import Repo

    root.mkdir(parents=True)
    if scm:
        git(root, "init", "-q", "-b", "main")
    Repo.init(str(root), no_scm=not scm).close()
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> dict:
    """git + DVC with version `data/v` committed (dvc add) and a bare `origin` not pushed to."""
    import numpy as np
    from dvc.repo import Repo

    base = tmp_path_factory.mktemp("publish")
    root = _dvc_init(base / "proj")
    rng = np.random.default_rng(0)
    version = write_version(
        root / "data" / "v", rng.normal(size=(8, 2)), np.arange(8), rng.normal(size=(4, 2)),
        dataset="test", params={},
    )  # fmt: skip
    with Repo(str(root)) as repo:
        repo.add(str(version.path))
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "v")
    git(base, "init", "-q", "--bare", "origin.git")
    return {"root": root, "version": version, "commit": git(root, "rev-parse", "HEAD"),
            "origin": base / "origin.git"}  # fmt: skip


def test_repo_root(project, tmp_path):
    root = project["root"]
    assert publish.repo_root([project["version"].path, root / "data"]) == root.resolve()
    with pytest.raises(DataError, match="not inside a DVC repository"):
        publish.repo_root([tmp_path])
    other = _dvc_init(tmp_path / "other", scm=False)
    with pytest.raises(DataError, match="the versions lie in 2 DVC repositories"):
        publish.repo_root([root, other])


def test_check_committed(project, tmp_path):
    root, commit, version = project["root"], project["commit"], project["version"]
    assert publish.check_committed(root, commit, version) == "data/v"
    # A copy elsewhere in the repo, not tracked at that commit.
    copy = root / "data" / "copy"
    shutil.copytree(version.path, copy)
    try:
        copied = load_version(copy)
        with pytest.raises(DataError, match="is not tracked at commit"):
            publish.check_committed(root, commit, copied)
    finally:
        shutil.rmtree(copy)


def test_edited_version_differs_from_its_commit(project):
    root, commit, version = project["root"], project["commit"], project["version"]
    manifest = version.path / "manifest.json"
    text = manifest.read_text()
    manifest.chmod(0o644)
    manifest.write_text(text.replace("{", "{ ", 1))
    try:
        with pytest.raises(DataError, match="manifest.json differs from commit"):
            publish.check_committed(root, commit, version)
    finally:
        manifest.write_text(text)


def test_default_repo_url(project):
    root, commit = project["root"], project["commit"]
    assert publish.default_repo_url(root, commit) == str(root)  # no origin: the local path
    git(root, "remote", "add", "origin", project["origin"].as_uri())
    try:
        with pytest.raises(DataError, match="not on any branch of origin: git push first"):
            publish.default_repo_url(root, commit)
        git(root, "push", "-q", "origin", "main")
        assert publish.default_repo_url(root, commit) == project["origin"].as_uri()
    finally:
        git(root, "remote", "remove", "origin")


def test_dvc_push_needs_a_remote(project, tmp_path):
    root = project["root"]
    with pytest.raises(DataError, match="no DVC remote: `dvc remote add -d NAME URL`"):
        publish.dvc_push(root, ["data/v"], None)
    with pytest.raises(DataError, match="no DVC remote named 'nope'"):
        publish.dvc_push(root, ["data/v"], "nope")


def _log(
    client: MlflowClient, run_id: str, version, contexts, sha: str | None = None, name=None
) -> None:
    dataset = version_dataset(version, name=name)._to_mlflow_entity()
    client.log_inputs(
        run_id,
        datasets=[
            DatasetInput(dataset, [InputTag(CONTEXT, c),
                                   InputTag(T.DATASET_SHA256, sha or version.digest)])
            for c in contexts
        ],
    )  # fmt: skip


def test_link_runs_adds_the_source_to_the_runs_that_read_the_version(
    tracking_uri, tiny_version, tmp_path
):
    client = MlflowClient(tracking_uri)
    eid = client.create_experiment("publish-link")
    reader, other, clash = (client.create_run(eid).info.run_id for _ in range(3))
    _log(client, reader, tiny_version, ["evaluation"])
    other_version = write_version(
        tmp_path / "other", tiny_version.x[:6], tiny_version.ids[:6], tiny_version.x_eval,
        dataset="test", params={},
    )  # fmt: skip
    _log(client, other, other_version, ["training"])
    # Same 36-character MLflow digest, another full sha256: not this version.
    _log(client, clash, tiny_version, ["training"], sha=tiny_version.digest[:36] + "0" * 28)
    source = DvcDatasetSource("https://example.org/r.git", "c0ffee", "data/v1", "store")

    assert publish.link_runs(client, tiny_version, source) == (reader,)
    (dvc_input,) = _dvc_inputs(client, reader)
    tags = {t.key: t.value for t in dvc_input.tags}
    assert tags == {CONTEXT: "evaluation", T.DATASET_SHA256: tiny_version.digest}
    assert dvc_input.dataset.source == source.to_json()
    assert dvc_input.dataset.name == "tiny@dvc"
    assert _dvc_inputs(client, other) == [] and _dvc_inputs(client, clash) == []
    # Linking again adds nothing.
    assert publish.link_runs(client, tiny_version, source) == ()
    assert len(client.get_run(reader).inputs.dataset_inputs) == 2


@pytest.mark.xfail(
    strict=True,
    reason="link_runs logs one DVC input per context, all of the same dataset; MLflow keeps one "
    "input per dataset and run, so a run that read the version in two contexts keeps only one",
)
def test_link_runs_keeps_every_context(tracking_uri, tiny_version):
    client = MlflowClient(tracking_uri)
    run = client.create_run(client.create_experiment("publish-contexts")).info.run_id
    _log(client, run, tiny_version, ["training"])
    _log(client, run, tiny_version, ["evaluation"], name="elsewhere")  # a second copy's input
    source = DvcDatasetSource("https://example.org/r.git", "c0ffee", "data/v1", "store")
    assert publish.link_runs(client, tiny_version, source) == (run,)
    contexts = sorted({t.key: t.value for t in d.tags}[CONTEXT] for d in _dvc_inputs(client, run))
    assert contexts == ["evaluation", "training"]


def _dvc_inputs(client: MlflowClient, run_id: str) -> list:
    inputs = client.get_run(run_id).inputs.dataset_inputs
    return [d for d in inputs if d.dataset.source_type == "dvc"]
