"""A fetched run (`influence --run runs:/ID`) is checked like a local one, and a fetch directory
holds one run only (issue 24, item 5: a reused --fetch-dir silently scored another run)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest
from mlflow import MlflowClient
from tracking.conftest import tracking_uri  # noqa: F401 (a fixture)
from tracking.repos import loop_iteration_one

from ganinf_mlops.cli import main
from ganinf_mlops.tracking import tags


@pytest.fixture(scope="module")
def logged(tmp_path_factory, tracking_uri):  # noqa: F811
    """A tiny one-iteration loop logged to a sqlite store: the ids of iterations 0 and 1."""
    root = tmp_path_factory.mktemp("fetch")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        mp.setenv("GANINF_TRACKING", "1")
        mp.chdir(root)
        client = MlflowClient(tracking_uri)
        it1 = loop_iteration_one(client, "fetch")
        exp = client.get_experiment_by_name("fetch")
        (it0,) = client.search_runs([exp.experiment_id], f"tags.`{tags.ITERATION}` = '0'")
    return {"root": root, "client": client, "it0": it0.info.run_id, "it1": it1.info.run_id}


@pytest.fixture
def env(logged, tracking_uri, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("GANINF_TRACKING", "0")
    monkeypatch.chdir(tmp_path)
    return logged


def fails(capsys, args, match):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["-q", *map(str, args)])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert match in err, err
    return err


def test_a_fetch_dir_is_never_reused_for_another_run(env, capsys, tmp_path):
    it0, it1 = env["it0"], env["it1"]
    main(["-q", "influence", "--run", f"runs:/{it0}", "--fetch-dir", "shared", "--out", "a.csv"])
    assert json.loads((tmp_path / "shared" / "fetched.json").read_text())["run_id"] == it0
    before = (tmp_path / "shared" / "trajectory" / "meta.json").read_bytes()
    err = fails(capsys, ["influence", "--run", f"runs:/{it1}/trajectory", "--fetch-dir",
                         "shared", "--out", "b.csv"], "holds runs:/")  # fmt: skip
    assert it0 in err and it1 in err
    assert not (tmp_path / "b.csv").exists()
    assert (tmp_path / "shared" / "trajectory" / "meta.json").read_bytes() == before
    # The same run again reuses it.
    main(["-q", "influence", "--run", f"runs:/{it0}", "--fetch-dir", "shared", "--out", "c.csv"])
    assert (tmp_path / "c.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()


def test_a_tampered_logged_trajectory_is_refused(env, capsys, tmp_path):
    it0, client = env["it0"], env["client"]
    store = Path(urlparse(client.get_run(it0).info.artifact_uri).path)
    meta = store / "trajectory" / "meta.json"
    text = meta.read_text()
    try:
        meta.write_text(text.replace('"steps_per_epoch": 10', '"steps_per_epoch": 0'))
        assert meta.read_text() != text
        fails(capsys, ["influence", "--run", f"runs:/{it0}", "--out", "s.csv"],
              "was changed after it was written")  # fmt: skip
        assert not (tmp_path / "s.csv").exists() and not list(tmp_path.glob("run-*"))
    finally:
        meta.write_text(text)


def test_default_fetch_dirs_of_two_trajectories_of_one_run_differ(env, tmp_path):
    """runs:/ID/trajectory and runs:/ID/replay_trajectory both defaulted to run-ID/: the second
    would be refused (it holds another run), so each artifact path gets a directory of its own."""
    it1 = env["it1"]
    main(["-q", "influence", "--run", f"runs:/{it1}/trajectory", "--out", "a.csv"])
    main(["-q", "influence", "--run", f"runs:/{it1}/replay_trajectory", "--out", "b.csv"])
    held = {json.loads(p.read_text())["artifact_path"] for p in tmp_path.glob("run-*/fetched.json")}
    assert held == {"trajectory", "replay_trajectory"}
