"""Stages of one DVC experiment nest under one MLflow parent run, which carries params.yaml,
the stages' latest metrics as <stage>/<metric>, and the last stage's status."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from ganinf_mlops.cli import main
from ganinf_mlops.config import get_preset
from ganinf_mlops.params import write_params
from ganinf_mlops.tracking import dvc_exp
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


# The module's functions, directly (no stage commands).


def test_experiment_reads_the_environment(monkeypatch):
    monkeypatch.delenv(dvc_exp.EXP_NAME, raising=False)
    monkeypatch.setenv(dvc_exp.EXP_BASELINE, "abc")
    assert dvc_exp.experiment() is None  # no name: not in an experiment
    monkeypatch.setenv(dvc_exp.EXP_NAME, "exp-1")
    assert dvc_exp.experiment() == ("exp-1", "abc")
    monkeypatch.delenv(dvc_exp.EXP_BASELINE)
    assert dvc_exp.experiment() == ("exp-1", "")


def test_parent_run_is_created_once_with_all_params(tracking_uri):
    client = MlflowClient(tracking_uri)
    eid = client.create_experiment("dvcexp-unit")
    params = {f"p.{i:03d}": i for i in range(250)}  # log_batch takes 100 at a time
    params["long"] = "x" * 7000  # MLflow's limit is 6000 characters
    first = dvc_exp.parent_run(client, eid, "exp-1", "base", params)
    assert dvc_exp.parent_run(client, eid, "exp-1", "base", {}) == first
    # Another baseline or name is another experiment.
    assert dvc_exp.parent_run(client, eid, "exp-1", "other", {}) != first
    assert dvc_exp.parent_run(client, eid, "exp-2", "base", {}) != first
    run = client.get_run(first)
    assert run.info.run_name == "dvc exp exp-1"
    assert run.data.tags[T.STAGE] == "dvc-experiment"
    assert run.data.tags[T.DVC_EXPERIMENT] == "exp-1" and run.data.tags[T.DVC_BASELINE] == "base"
    assert len(run.data.params) == 251 and run.data.params["p.249"] == "249"
    assert run.data.params["long"] == "x" * 6000


def test_parent_run_of_a_name_with_an_apostrophe(tracking_uri):
    client = MlflowClient(tracking_uri)
    eid = client.create_experiment("dvcexp-quote")
    first = dvc_exp.parent_run(client, eid, "it's", "base", {})
    assert dvc_exp.parent_run(client, eid, "it's", "base", {}) == first
    assert dvc_exp.parent_run(client, eid, 'say "it\'s"', "base", {}) != first
    assert dvc_exp.parent_run(client, eid, "it's", "other", {}) != first


def test_stage_done_carries_metrics_under_a_safe_stage_name(tracking_uri, monkeypatch):
    client = MlflowClient(tracking_uri)
    eid = client.create_experiment("dvcexp-stage")
    parent = dvc_exp.parent_run(client, eid, "e", "b", {})
    child = client.create_run(eid, run_name="train").info.run_id
    client.log_metric(child, "fd", 0.5, step=0)
    client.log_metric(child, "fd", 0.25, step=1)  # the latest value is carried
    client.set_terminated(child)
    monkeypatch.setenv(dvc_exp.STAGE, "retrain@v1")  # "@" is not allowed in a metric name
    dvc_exp.stage_done(client, parent, child, "FAILED")
    run = client.get_run(parent)
    assert run.data.metrics == {"retrain.v1/fd": 0.25}
    assert run.data.tags[T.DVC_LAST_STAGE] == "retrain.v1"
    assert run.info.status == "FAILED"
    monkeypatch.delenv(dvc_exp.STAGE)
    dvc_exp.stage_done(client, parent, child, "FINISHED")  # no DVC_STAGE: the run's name
    assert client.get_run(parent).data.metrics["train/fd"] == 0.25


def test_nest_outside_an_experiment_or_inside_mlflow_run(tracking_uri, monkeypatch, tmp_path):
    client = MlflowClient(tracking_uri)
    eid = client.create_experiment("dvcexp-nest")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(dvc_exp.EXP_NAME, raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    assert dvc_exp.nest(client, eid) == (None, {})
    monkeypatch.setenv(dvc_exp.EXP_NAME, "n1")
    monkeypatch.setenv(dvc_exp.EXP_BASELINE, "b1")
    monkeypatch.setenv(dvc_exp.STAGE, "train")
    parent, child = dvc_exp.nest(client, eid)
    assert child == {
        "mlflow.parentRunId": parent,
        T.DVC_EXPERIMENT: "n1",
        T.DVC_BASELINE: "b1",
        T.DVC_STAGE: "train",
    }
    assert dvc_exp.nest(client, eid)[0] == parent  # the next stage finds the same parent
    assert client.get_run(parent).data.params == {}  # no params.yaml in the workspace
    monkeypatch.setenv("MLFLOW_RUN_ID", parent)  # inside `mlflow run`: its run is the parent
    assert dvc_exp.nest(client, eid) == (None, {})


def test_params_of(tmp_path):
    assert dvc_exp.params_of(tmp_path) == {}  # absent
    (tmp_path / "params.yaml").write_text("not: [valid")
    assert dvc_exp.params_of(tmp_path) == {}  # unreadable
    write_params(tmp_path / "params.yaml", get_preset("tiny"))
    flat = dvc_exp.params_of(tmp_path)
    assert flat["data.dataset"] == "gaussian2d" and flat["train.steps"] == 50
