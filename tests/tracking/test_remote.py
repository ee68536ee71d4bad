"""`ganinf push` and `influence --run runs:/ID` on a local store and a local DVC remote: the
reproduction, and the answers to what can go wrong (one `error:` line, exit 2)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ganinf_mlops.cli import main
from ganinf_mlops.hashing import sha256_file
from ganinf_mlops.tracking.remote import parse_run_uri

from .repos import commit_versions, git, init_project, loop_iteration_one


def fails(capsys, args, match):
    with pytest.raises(SystemExit) as exc:
        main(["-q", *map(str, args)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and match in err, err
    assert err.startswith("error:") and err.count("\n") == 1, err


@pytest.fixture(scope="module")
def project(tmp_path_factory, tracking_uri):
    """A git+DVC project (local remote) where a tiny loop ran, logged to a sqlite store."""
    root = tmp_path_factory.mktemp("remote")
    proj = root / "proj"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        mp.setenv("GANINF_TRACKING", "1")
        mp.setenv("DVC_NO_ANALYTICS", "1")
        init_project(proj, str(root / "dvc-remote"))
        mp.chdir(proj)
        client = MlflowClient(tracking_uri)
        it1 = loop_iteration_one(client, "remote")
    return {"root": root, "proj": proj, "it1": it1.info.run_id, "client": client}


@pytest.fixture
def env(project, tracking_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("GANINF_TRACKING", "1")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    return project


def test_parse_run_uri():
    assert parse_run_uri("runs:/abc") == ("abc", "trajectory")
    assert parse_run_uri("runs:/abc/replay_trajectory/") == ("abc", "replay_trajectory")
    with pytest.raises(Exception, match="expected runs:/"):
        parse_run_uri("runs:/")


@pytest.mark.integration
def test_push_links_runs_and_influence_reproduces(env, tmp_path, monkeypatch, capsys):
    proj, client, it1 = env["proj"], env["client"], env["it1"]
    monkeypatch.chdir(proj)
    # Not committed yet: refused, and nothing pushed.
    fails(capsys, ["push", "job/data/v0"], "has no commit yet")
    git(proj, "add", ".dvc")
    git(proj, "commit", "-q", "-m", "dvc")
    fails(capsys, ["push", "job/data/v0"], "is not tracked at commit")
    commit_versions(proj, "v0", "v1")
    main(["push", "job/data/v0", "job/data/v1"])
    assert "run(s) linked" in capsys.readouterr().out
    assert len(os.listdir(env["root"] / "dvc-remote" / "files" / "md5")) > 0
    run = client.get_run(it1)
    kinds = {(d.dataset.source_type, d.dataset.name) for d in run.inputs.dataset_inputs}
    assert ("dvc", "v0@dvc") in kinds
    # Pushing again adds nothing.
    before = len(client.get_run(it1).inputs.dataset_inputs)
    main(["-q", "push", "job/data/v0"])
    assert len(client.get_run(it1).inputs.dataset_inputs) == before

    logged = client.download_artifacts(it1, "scores", str(tmp_path / "logged"))
    (csv,) = [f for f in os.listdir(logged) if f.endswith(".csv")]
    monkeypatch.chdir(tmp_path)
    main(["-q", "influence", "--run", f"runs:/{it1}", "--out", "s.csv", "--no-tracking"])
    assert sha256_file(tmp_path / "s.csv") == sha256_file(Path(logged) / csv)

    # A version edited after its commit is refused.
    monkeypatch.chdir(proj)
    manifest = proj / "job/data/v1/manifest.json"
    manifest.chmod(0o644)
    text = manifest.read_text()
    manifest.write_text(text.replace("{", "{ ", 1))
    capsys.readouterr()
    fails(capsys, ["push", "job/data/v1"], "differs from commit")
    manifest.write_text(text)


@pytest.mark.integration
def test_bad_run_references(env, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    fails(capsys, ["influence", "--run", "runs:/0123abcd", "--out", "s.csv"], "runs:/0123abcd")
    fails(capsys, ["influence", "--run", "runs:/", "--out", "s.csv"], "expected runs:/")
    it1 = env["it1"]
    fails(
        capsys,
        ["influence", "--run", f"runs:/{it1}/no_such_dir", "--out", "s.csv"],
        "no artifacts under 'no_such_dir'",
    )
    assert not (tmp_path / "s.csv").exists() and not list(tmp_path.glob("run-*"))
    assert not list(tmp_path.glob(".run-*"))  # no half-fetched leftovers


@pytest.mark.integration
def test_run_without_a_fetchable_source(tracking_uri, tmp_path, monkeypatch, capsys):
    """Logged only with local paths that are gone: the error says how to record a source."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("GANINF_TRACKING", "1")
    work = tmp_path / "w"
    work.mkdir()
    monkeypatch.chdir(work)
    it1 = loop_iteration_one(MlflowClient(tracking_uri), "gone", command="run")
    monkeypatch.chdir(tmp_path)
    shutil.rmtree(work)
    capsys.readouterr()
    fails(
        capsys,
        ["influence", "--run", f"runs:/{it1.info.run_id}", "--out", "s.csv"],
        "not on this machine (record a DVC source with `ganinf push`)",
    )
    assert sorted(os.listdir(tmp_path)) == []
