from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import mlflow
import pytest
from dvc.repo.open_repo import clean_repos
from mlflow import MlflowClient
from mlflow.data import get_source
from mlflow.data.dataset_source_registry import get_registered_sources, resolve_dataset_source
from mlflow.exceptions import MlflowException

from ganinf_mlops.data.version import DATA_FILE, MANIFEST_FILE, create_raw_version, load_version
from ganinf_mlops.errors import DataError, DigestMismatchError
from ganinf_mlops.hashing import sha256_file
from ganinf_mlops.tracking import tags as T
from ganinf_mlops.tracking.datasets import (
    DIGEST_CHARS,
    input_source,
    local_source,
    log_version,
    restore_input,
)
from ganinf_mlops.tracking.dvc_source import DvcDatasetSource


@pytest.fixture
def client(tracking_uri: str, monkeypatch: pytest.MonkeyPatch):
    for name in ("MLFLOW_TRACKING_URI", T.ENV_PROJECT, T.ENV_DATA):
        monkeypatch.delenv(name, raising=False)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(Path(__file__).stem)  # the active experiment is global: pick ours
    yield MlflowClient()
    mlflow.end_run()
    mlflow.set_tracking_uri(None)


def _run(cwd: Path, *cmd: str) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _git(cwd: Path, *args: str) -> str:
    return _run(cwd, "git", "-c", "user.name=t", "-c", "user.email=t@t", *args)


def _dvc(cwd: Path, *commands: list[str]) -> None:
    """`dvc ARGS...` for each command, through the CLI's entry point in one interpreter (each
    `dvc` start-up costs 0.7 s, 1.6 s on a busy machine)."""
    script = "import sys\nfrom dvc.cli import main\nsys.exit(any(main(a) for a in %r))"
    _run(cwd, sys.executable, "-c", script % (list(commands),))


def _hashes(version_dir: Path) -> dict[str, str]:
    return {name: sha256_file(version_dir / name) for name in (DATA_FILE, MANIFEST_FILE)}


def test_entry_point_is_registered_with_mlflow() -> None:
    (ep,) = [
        e
        for e in importlib.metadata.entry_points(group="mlflow.dataset_source")
        if e.value.startswith("ganinf_mlops.")
    ]
    assert ep.load() is DvcDatasetSource
    assert DvcDatasetSource in get_registered_sources()  # put there by MLflow's registry


def test_uri_and_dict_round_trip() -> None:
    src = DvcDatasetSource("https://host/x y.git", "abc123", "./data/v 1/", remote="store")
    assert src.path == "data/v 1"
    assert DvcDatasetSource.from_json(src.to_json()) == src
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no other registered source claims dvc:// URIs
        assert resolve_dataset_source(src.uri) == src
    assert resolve_dataset_source(src.uri, candidate_sources=[DvcDatasetSource]) == src
    assert not DvcDatasetSource._can_resolve("/data/v1") and not DvcDatasetSource._can_resolve(3)
    with pytest.raises(MlflowException, match="expected dvc://"):
        DvcDatasetSource._resolve("dvc://data/v1?rev=abc")
    with pytest.raises(MlflowException, match="missing keys"):
        DvcDatasetSource.from_dict({"repo": "r", "path": "p"})
    for bad in ("", "/", "../outside"):
        with pytest.raises(MlflowException, match="path"):
            DvcDatasetSource("r", "abc", bad)


@pytest.mark.integration
def test_logged_dvc_source_restores_the_exact_version(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    client: MlflowClient,
) -> None:
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(tmp_path / "dvc-site"))
    # DVC clones URL repos into temp dirs (and leaks one when a clone fails): keep them here.
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    request.addfinalizer(clean_repos)
    upstream, storage, work = tmp_path / "upstream.git", tmp_path / "storage", tmp_path / "work"
    _run(tmp_path, "git", "init", "-q", "--bare", str(upstream))
    _run(tmp_path, "git", "init", "-q", str(work))
    version = create_raw_version(work / "data" / "raw", "gaussian2d", n=50, n_eval=20)
    expected = _hashes(version.path)
    _dvc(
        work,
        ["init", "-q"],
        ["add", "-q", "data/raw"],
        ["remote", "add", "-d", "storage", str(storage)],
        ["push", "-q"],
    )
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "raw data")
    _git(work, "push", "-q", str(upstream), "HEAD")
    rev = _git(work, "rev-parse", "HEAD")

    remote_src = DvcDatasetSource(repo=str(upstream), rev=rev, path="data/raw", remote="storage")
    local_repo_src = DvcDatasetSource(repo=str(work), rev=rev, path="data/raw")
    with mlflow.start_run():
        log_version(version)  # an earlier run read the same version from its local directory
    with mlflow.start_run() as run:
        ds = log_version(version, remote_src)
        log_version(version, local_repo_src, context="eval", name="raw@work")
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    by_context = {{t.key: t.value for t in i.tags}["mlflow.data.context"]: i for i in inputs}

    # From the local repo's DVC cache, with the working copy's version gone.
    shutil.rmtree(version.path)
    restored = get_source(by_context["eval"]).load(str(tmp_path / "from-work"))
    assert restored == str(tmp_path / "from-work" / "raw")
    assert _hashes(Path(restored)) == expected

    # From git + the DVC remote alone, with the whole working copy (and its cache) gone.
    shutil.rmtree(work)
    entity = by_context["training"].dataset
    source = get_source(by_context["training"])  # rebuilt by MLflow's source registry
    assert isinstance(source, DvcDatasetSource) and source == remote_src
    assert (entity.source_type, entity.digest, entity.name) == ("dvc", ds.digest, "raw@dvc")
    assert entity.digest == version.digest[:DIGEST_CHARS]
    assert {t.key: t.value for t in by_context["training"].tags}[T.DATASET_SHA256] == (
        version.digest
    )
    profile = json.loads(entity.profile)
    assert {k: profile[k] for k in ("n_instances", "shape", "n_eval", "parent", "n_removed")} == {
        "n_instances": 50,
        "shape": [50, 2],
        "n_eval": 20,
        "parent": "none (raw data)",
        "n_removed": 0,
    }
    restored = Path(source.load())  # into a new temp dir
    assert restored.parent.name.startswith("ganinf-dvc-") and _hashes(restored) == expected
    assert load_version(restored).digest == version.digest  # verifies the content digest
    again = restore_input(by_context["training"], str(tmp_path / "again"))
    assert again.digest == version.digest and _hashes(again.path) == expected

    with pytest.raises(DataError, match="no directory"):
        DvcDatasetSource(str(upstream), rev, "data/missing", remote="storage").load()
    with pytest.raises(DataError, match="cannot open"):
        DvcDatasetSource(str(tmp_path / "no-repo"), rev, "data/raw").load()


def test_local_source_for_versions_without_dvc(tmp_path: Path, client: MlflowClient) -> None:
    version = create_raw_version(tmp_path / "v0", "gaussian2d", n=50, n_eval=20)
    with mlflow.start_run() as run:
        log_version(version)  # default source: the local directory
    (dataset_input,) = client.get_run(run.info.run_id).inputs.dataset_inputs
    source = get_source(dataset_input)
    assert dataset_input.dataset.source_type == "local"
    assert type(source) is type(local_source(version.path))
    assert source.to_dict() == {"uri": str(version.path.resolve())}
    assert restore_input(dataset_input, str(tmp_path / "out")).digest == version.digest
    other = create_raw_version(tmp_path / "v0-new", "gaussian2d", n=40, n_eval=20)
    shutil.rmtree(version.path)
    other.path.rename(version.path)  # the directory now holds another version
    with pytest.raises(DigestMismatchError):
        restore_input(dataset_input, str(tmp_path / "out2"))


def test_copies_of_one_version_keep_their_own_sources(tmp_path: Path, client: MlflowClient) -> None:
    """Two jobs with the same data in two directories: MLflow keys datasets by (name, digest)
    and keeps the first source, so each run's own directory is in its input's tags."""
    paths = [tmp_path / job / "data" / "v0" for job in ("job-a", "job-b")]
    versions = [create_raw_version(p, "gaussian2d", n=50, n_eval=20, seed=4) for p in paths]
    assert versions[0].digest == versions[1].digest
    runs = []
    for v in versions:
        with mlflow.start_run() as run:
            log_version(v)
        runs.append(run.info.run_id)
    shutil.rmtree(paths[0])  # the entry's source: gone; the second run still restores its own
    for run_id, path in zip(runs, paths, strict=True):
        (dataset_input,) = client.get_run(run_id).inputs.dataset_inputs
        assert input_source(dataset_input).to_dict() == {"uri": str(path.resolve())}
        assert dataset_input.dataset.name == "v0"
    (second,) = client.get_run(runs[1]).inputs.dataset_inputs
    assert get_source(second).to_dict() == {"uri": str(paths[0].resolve())}  # MLflow's entry
    assert restore_input(second, str(tmp_path / "out")).digest == versions[1].digest
