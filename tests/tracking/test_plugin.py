from __future__ import annotations

import importlib.metadata
import logging
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from mlflow import MlflowClient
from mlflow.tracking.context.registry import _run_context_provider_registry

from ganinf_mlops.cleanse import cleanse
from ganinf_mlops.data.version import DatasetVersion, create_raw_version
from ganinf_mlops.influence.scores import ScoreTable, write_scores
from ganinf_mlops.tracking import plugin
from ganinf_mlops.tracking import tags as T
from ganinf_mlops.tracking.plugin import GaninfRunContextProvider, dvc_tag_key, find_project

LONG_OUT = "work/" + "/".join(["deeply-nested-output-directory"] * 10) + "/model.pt"
LOCK = {
    "schema": "2.0",
    "stages": {
        "prepare": {
            "cmd": "ganinf prepare --out data/raw",
            "outs": [{"path": "data/raw", "hash": "md5", "md5": "aa11.dir", "nfiles": 2}],
        },
        "train@0": {  # a foreach stage: '@' is not allowed in an MLflow tag key
            "cmd": "ganinf train --data data/raw --out work/run-0",
            "deps": [{"path": "data/raw", "hash": "md5", "md5": "aa11.dir"}],
            "outs": [
                {"path": "work/run-0", "hash": "md5", "md5": "bb22.dir"},
                {"path": "./work/metrics-0.json", "hash": "md5", "md5": "cc33"},
            ],
        },
        "long": {"cmd": "true", "outs": [{"path": LONG_OUT, "hash": "md5", "md5": "dd44"}]},
    },
}


@pytest.fixture
def client(tracking_uri: str, monkeypatch: pytest.MonkeyPatch):
    for name in ("MLFLOW_TRACKING_URI", T.ENV_PROJECT, T.ENV_DATA):
        monkeypatch.delenv(name, raising=False)
    # MLflow's logger does not propagate: let caplog see the registry's warnings.
    monkeypatch.setattr(logging.getLogger("mlflow"), "propagate", True)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(Path(__file__).stem)  # the active experiment is global: pick ours
    yield MlflowClient()
    mlflow.end_run()
    mlflow.set_tracking_uri(None)


def _git(cwd: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    return subprocess.run(
        [*cmd, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def _cleansed(parent: DatasetVersion, out: Path) -> DatasetVersion:
    harm = np.random.default_rng(parent.n).permutation(parent.n).astype(np.float64)
    scores = out.parent / f"{out.name}-scores.csv"
    table = ScoreTable(parent.ids, harm, -harm / 100, "all", "all", parent.digest)
    write_scores(scores, table)
    return cleanse(parent, scores, out, remove_count=5)


def _project(root: Path) -> Path:
    root.mkdir()
    (root / "dvc.yaml").write_text("stages:\n  prepare:\n    cmd: ganinf prepare\n")
    (root / "params.yaml").write_text(yaml.safe_dump({"train": {"epochs": 1}, "job": {"k": 1}}))
    (root / "dvc.lock").write_text(yaml.safe_dump(LOCK))
    _git(root, "init", "-q")
    _git(root, "add", "dvc.yaml", "params.yaml", "dvc.lock")
    _git(root, "commit", "-q", "-m", "project")
    return root


def _ganinf_tags(client: MlflowClient) -> dict[str, str]:
    with mlflow.start_run() as run:
        pass
    tags = client.get_run(run.info.run_id).data.tags
    return {k: v for k, v in tags.items() if k.startswith(T.PREFIX)}


def test_entry_point_is_loaded_by_mlflow_registry() -> None:
    (ep,) = [
        e
        for e in importlib.metadata.entry_points(group="mlflow.run_context_provider")
        if e.value.startswith("ganinf_mlops.")
    ]
    assert ep.load() is GaninfRunContextProvider
    # Registered by MLflow itself on import, from the entry point (we never call register()).
    assert any(isinstance(p, GaninfRunContextProvider) for p in _run_context_provider_registry)


def test_start_run_records_git_dvc_and_dataset_lineage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: MlflowClient
) -> None:
    proj = _project(tmp_path / "proj")
    raw = create_raw_version(proj / "data" / "raw", "gaussian2d", n=50, n_eval=20)
    v1 = _cleansed(raw, proj / "data" / "v1")
    v2 = _cleansed(v1, proj / "data" / "v2")
    monkeypatch.chdir(proj)
    monkeypatch.setenv(T.ENV_DATA, "data/v2")  # relative to the cwd

    tags = _ganinf_tags(client)
    assert tags.pop(T.PREFIX + "git_commit") == _git(proj, "rev-parse", "HEAD")
    # MLflow's own Version field shows the project's commit.
    with mlflow.start_run() as run:
        pass
    run_tags = client.get_run(run.info.run_id).data.tags
    assert run_tags["mlflow.source.git.commit"] == _git(proj, "rev-parse", "HEAD")
    assert tags.pop(T.PREFIX + "git_dirty") == "false"  # untracked data/ does not count
    long_key = dvc_tag_key("long", LONG_OUT)
    assert len(long_key) == plugin.MAX_TAG_KEY and long_key.startswith(T.DVC_PREFIX + "long.work/")
    assert tags == {
        T.DVC_PREFIX + "prepare.data/raw": "aa11.dir",
        T.DVC_PREFIX + "train_0.work/run-0": "bb22.dir",
        T.DVC_PREFIX + "train_0.work/metrics-0.json": "cc33",
        long_key: "dd44",
        T.DATASET_DIGEST: v2.digest,
        T.PARENT_DIGEST: v1.digest,
        T.LINEAGE_DEPTH: "2",
    }

    # A tracked change makes the tree dirty; a missing ancestor breaks the lineage, not the run.
    (proj / "params.yaml").write_text(yaml.safe_dump({"train": {"epochs": 2}, "job": {"k": 1}}))
    monkeypatch.setenv(T.ENV_DATA, "data/raw")
    tags = _ganinf_tags(client)
    assert tags[T.PREFIX + "git_dirty"] == "true"
    assert (tags[T.DATASET_DIGEST], tags[T.LINEAGE_DEPTH]) == (raw.digest, "0")
    assert T.PARENT_DIGEST not in tags  # raw data: no empty parent tag
    (proj / "data" / "raw" / "data.npz").unlink()
    monkeypatch.setenv(T.ENV_DATA, "data/v2")
    tags = _ganinf_tags(client)
    assert (tags[T.DATASET_DIGEST], tags[T.LINEAGE_DEPTH]) == (v2.digest, "broken")


def test_project_found_from_subdir_or_env_and_not_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: MlflowClient
) -> None:
    proj = _project(tmp_path / "proj")
    (proj / "sub" / "deeper").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    assert find_project(proj / "sub" / "deeper") == proj.resolve()
    assert find_project(outside) is None

    monkeypatch.chdir(outside)
    monkeypatch.setenv(T.ENV_DATA, "nowhere")
    assert _ganinf_tags(client) == {}
    monkeypatch.setenv(T.ENV_PROJECT, str(proj))  # marks the project explicitly
    assert _ganinf_tags(client)[T.PREFIX + "git_commit"] == _git(proj, "rev-parse", "HEAD")


def test_broken_project_never_breaks_start_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    client: MlflowClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "dvc.yaml").write_text("stages: {}\n")
    (proj / "params.yaml").write_bytes(b"train: [unclosed\n\xff\xfe job:\n")
    monkeypatch.chdir(proj)
    caplog.set_level(logging.WARNING)
    assert not GaninfRunContextProvider().in_context()
    assert _ganinf_tags(client) == {}

    # A marked project without git, with a corrupt dvc.lock and a bad dataset: no tags, no error.
    (proj / "dvc.lock").write_text("stages: [1, 2\n")
    monkeypatch.setenv(T.ENV_PROJECT, str(proj))
    monkeypatch.setenv(T.ENV_DATA, str(proj))  # no manifest.json there
    assert _ganinf_tags(client) == {}

    def boom(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(plugin, "find_project", boom)
    provider = GaninfRunContextProvider()
    assert provider.in_context() is False and provider.tags() == {}
    assert _ganinf_tags(client) == {}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_dvc_tag_keys_are_valid_mlflow_keys(tmp_path: Path, client: MlflowClient) -> None:
    keys = [
        dvc_tag_key("train@3", "work/run-3/"),
        dvc_tag_key("s", "/abs/../x"),
        dvc_tag_key("s", "a b:c*?.json"),
        dvc_tag_key("s", "x" * 400),
        dvc_tag_key("s", "x" * 399),
    ]
    assert keys[0] == T.DVC_PREFIX + "train_3.work/run-3"
    assert len(set(keys)) == len(keys) and max(map(len, keys)) == plugin.MAX_TAG_KEY
    with mlflow.start_run() as run:
        for key in keys:
            client.set_tag(run.info.run_id, key, "v")  # validates the key
    assert set(keys) <= set(client.get_run(run.info.run_id).data.tags)


def test_repository_config_cannot_make_the_plugin_run_a_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: MlflowClient
) -> None:
    """core.fsmonitor names a command git runs on `status`: the plugin turns it off."""
    proj = _project(tmp_path / "proj")
    marker = tmp_path / "fsmonitor-ran"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    _git(proj, "config", "core.fsmonitor", str(hook))
    monkeypatch.chdir(proj)
    tags = _ganinf_tags(client)
    assert tags[T.PREFIX + "git_dirty"] == "false"
    assert not marker.exists()
