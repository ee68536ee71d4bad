"""A real MLflow tracking server backed by PostgreSQL: run a loop against it, read it back."""

from __future__ import annotations

import os

import mlflow
import pytest
from mlflow import MlflowClient

from ganinf_mlops.cli import main
from ganinf_mlops.tracking import tags

from .servers import mlflow_server, postgres, postgres_bin

pytestmark = pytest.mark.integration

# In CI a missing PostgreSQL is a failure, not a skip.
REQUIRED = os.environ.get("GANINF_REQUIRE_POSTGRES") == "1"


@pytest.mark.skipif(postgres_bin() is None and not REQUIRED, reason="PostgreSQL not installed")
def test_loop_against_postgres_backed_server(tmp_path, monkeypatch):
    pytest.importorskip("psycopg2")
    with postgres() as backend, mlflow_server(backend, tmp_path / "artifacts") as uri:
        monkeypatch.setenv("GANINF_TRACKING", "1")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        main(
            [
                "-q",
                "loop",
                "--preset",
                "tiny",
                "--iterations",
                "1",
                "--loo",
                "8",
                "--out",
                str(tmp_path / "job"),
                "--experiment",
                "pg",
            ]
        )
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name("pg")
        runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
        assert [r.data.tags[tags.STAGE] for r in runs] == ["job", "iteration", "iteration"]
        it1 = runs[2]
        assert it1.data.tags["mlflow.parentRunId"] == runs[0].info.run_id
        assert it1.data.metrics["n_removed"] == 10 and "validation/kendall_tau" in it1.data.metrics
        assert len(client.get_metric_history(it1.info.run_id, "g_loss")) > 0
        digests = {
            t.value
            for d in it1.inputs.dataset_inputs
            for t in d.tags
            if t.key == tags.DATASET_SHA256
        }
        assert it1.data.tags[tags.DATASET_DIGEST] in digests
        local = client.download_artifacts(it1.info.run_id, "scores", str(tmp_path / "dl"))
        assert (tmp_path / "dl" / "scores" / "all.csv").exists() or os.listdir(local)
        figs = {a.path for a in client.list_artifacts(it1.info.run_id)}
        assert "influence_scatter.png" in figs
    mlflow.set_tracking_uri(None)
