"""The deployment teams use: MLflow on PostgreSQL with artifacts in S3, DVC's remote on S3 (both
served on loopback by moto). A loop runs against it, `ganinf push` sends its versions to the
remote, and from a fresh directory, with the project gone, `influence --run runs:/ID` gets the
iteration's scores again bit for bit."""

from __future__ import annotations

import importlib.util
import os
import shutil

import boto3
import pytest
from mlflow import MlflowClient

from ganinf_mlops.cli import main
from ganinf_mlops.hashing import sha256_file
from ganinf_mlops.tracking import tags as T

from .repos import commit_versions, git, init_project, loop_iteration_one
from .servers import S3_ENV, mlflow_server, moto_available, moto_s3, postgres, postgres_bin

pytestmark = pytest.mark.integration

# In CI a missing PostgreSQL or moto is a failure, not a skip.
REQUIRED = os.environ.get("GANINF_REQUIRE_POSTGRES") == "1"
AVAILABLE = postgres_bin() is not None and moto_available()
HAS_DVC_S3 = importlib.util.find_spec("dvc_s3") is not None


@pytest.mark.skipif(not (AVAILABLE and HAS_DVC_S3) and not REQUIRED, reason="no PostgreSQL/moto")
def test_iteration_reproduced_from_a_fresh_directory(tmp_path, monkeypatch, capsys):
    pytest.importorskip("psycopg2")
    proj, origin, fresh = tmp_path / "proj", tmp_path / "origin.git", tmp_path / "fresh"
    for name, value in {**S3_ENV, "GANINF_TRACKING": "1", "DVC_NO_ANALYTICS": "1"}.items():
        monkeypatch.setenv(name, value)
    with (
        moto_s3() as endpoint,
        postgres() as backend,
        mlflow_server(backend, "s3://mlflow/artifacts", s3_endpoint=endpoint, log_dir=tmp_path)
        as uri,
    ):  # fmt: skip
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        git(tmp_path, "init", "-q", "--bare", str(origin))
        init_project(proj, "s3://dvc/store", endpoint=endpoint, origin=origin)
        monkeypatch.chdir(proj)
        client = MlflowClient(uri)
        it1 = loop_iteration_one(client, "shared")

        # Before the push the runs know only local paths: nothing to fetch elsewhere.
        assert it1.data.tags[T.SCORED_TRAJECTORY].endswith("/trajectory")
        commit_versions(proj, "v0", "v1")
        git(proj, "push", "-q", "origin", "main")
        capsys.readouterr()
        main(["push", "job/data/v0", "job/data/v1"])
        out = capsys.readouterr().out
        assert out.count("dvc://job/data/v") == 2 and "run(s) linked" in out
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        assert s3.list_objects_v2(Bucket="dvc").get("KeyCount", 0) >= 4  # 2 files per version
        assert s3.list_objects_v2(Bucket="mlflow").get("KeyCount", 0) > 0
        logged = client.download_artifacts(it1.info.run_id, "scores", str(tmp_path / "logged"))
        (logged_csv,) = [f for f in os.listdir(logged) if f.endswith(".csv")]
        expected = sha256_file(os.path.join(logged, logged_csv))

        # Nothing of the project is left: only the server, the git origin and the S3 remote.
        monkeypatch.chdir(tmp_path)
        shutil.rmtree(proj)
        fresh.mkdir()
        monkeypatch.chdir(fresh)
        main(["-q", "influence", "--run", f"runs:/{it1.info.run_id}", "--out", "s.csv",
              "--experiment", "reproduce"])  # fmt: skip
        assert sha256_file(fresh / "s.csv") == expected
        fetched = fresh / f"run-{it1.info.run_id}"
        assert sorted(os.listdir(fetched / "data")) == ["v0"]  # the scored run's version
        # A second call reuses the fetched run.
        main(["-q", "influence", "--run", f"runs:/{it1.info.run_id}", "--out", "t.csv",
              "--no-tracking"])  # fmt: skip
        assert sha256_file(fresh / "t.csv") == expected
