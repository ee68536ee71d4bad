"""Stages of one DVC experiment nest under one MLflow parent run, which carries params.yaml,
the stages' latest metrics as <stage>/<metric>, and the last stage's status."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from ganinf_mlops.cli import main
from ganinf_mlops.tracking import tags as T


def _stage(monkeypatch, stage, *args):
    monkeypatch.setenv("DVC_STAGE", stage)
    main(["-q", *map(str, args), "--experiment", "dvcexp"])


def test_stages_nest_under_one_parent_per_experiment(tracking_uri, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("GANINF_TRACKING", "1")
    monkeypatch.chdir(tmp_path)
    main(["params", "--preset", "tiny", "--out", "params.yaml"])
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "abc123")
    for exp in ("seed1", "seed2"):
        monkeypatch.setenv("DVC_EXP_NAME", exp)
        _stage(monkeypatch, "prepare", "prepare", "--params", "params.yaml", "--out", f"{exp}/raw")
        _stage(monkeypatch, "train", "train", "--params", "params.yaml", "--data", f"{exp}/raw",
               "--out", f"{exp}/run")  # fmt: skip
    client = MlflowClient(tracking_uri)
    eid = client.get_experiment_by_name("dvcexp").experiment_id
    parents = client.search_runs([eid], f"tags.`{T.STAGE}` = 'dvc-experiment'")
    assert sorted(r.info.run_name for r in parents) == ["dvc exp seed1", "dvc exp seed2"]
    for parent in parents:
        name = parent.data.tags[T.DVC_EXPERIMENT]
        children = client.search_runs([eid], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
        assert sorted(c.data.tags[T.STAGE] for c in children) == ["prepare", "train"]
        assert all(c.data.tags[T.DVC_EXPERIMENT] == name for c in children)
        assert parent.info.status == "FINISHED"
        assert parent.data.params["train.seed"] == "0"
        carried = {f"{c.data.tags[T.STAGE]}/{k}": v for c in children
                   for k, v in c.data.metrics.items()}  # fmt: skip
        assert parent.data.metrics == pytest.approx(carried)
        assert "train/avg_log_likelihood" in carried
        assert parent.data.tags[T.DVC_LAST_STAGE] == "train"


def test_outside_an_experiment_no_parent(tracking_uri, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("GANINF_TRACKING", "1")
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    main(["-q", "prepare", "--preset", "tiny", "--out", "raw", "--experiment", "plain"])
    client = MlflowClient(tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("plain").experiment_id])
    assert "mlflow.parentRunId" not in run.data.tags
