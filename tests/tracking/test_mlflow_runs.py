"""The loop logs to MLflow: a parent run with nested iterations, datasets, artifacts, figures."""

from __future__ import annotations

import json
import socket

import mlflow
import pytest
from mlflow import MlflowClient

from ganinf_mlops import keys
from ganinf_mlops.cli import main
from ganinf_mlops.tracking import tags
from ganinf_mlops.train.rundir import RunDir


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("GANINF_TRACKING", "1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    yield uri
    mlflow.set_tracking_uri(None)


def ganinf(*args) -> None:
    main(["-q", *map(str, args)])


def test_loop_logs_parent_and_nested_iterations(tracking, tmp_path):
    ganinf("loop", "--preset", "tiny", "--iterations", "2", "--loo", "8", "--out", "job")
    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name("ganinf")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    parent = [r for r in runs if r.data.tags[tags.STAGE] == "job"]
    children = [r for r in runs if r.data.tags[tags.STAGE] == "iteration"]
    assert len(parent) == 1 and len(children) == 3
    pid = parent[0].info.run_id
    assert all(c.data.tags["mlflow.parentRunId"] == pid for c in children)
    assert [c.data.tags[tags.ITERATION] for c in children] == ["0", "1", "2"]

    summary = json.loads((tmp_path / "job" / "summary.json").read_text())
    rows = [summary["iterations"][k] for k in ("1", "2")]
    c1, c2 = children[1], children[2]
    # lineage tags: iteration i reads v_{i-1} and writes v_i
    assert c1.data.tags[tags.DATASET_DIGEST] == rows[0]["dataset_digest"]
    assert c1.data.tags[tags.OUTPUT_DIGEST] == rows[0]["cleansed_digest"]
    assert c2.data.tags[tags.PARENT_DIGEST] == rows[0]["dataset_digest"]
    assert c1.data.tags[tags.METHOD] == "all"
    # the same metric names in every iteration, so the compare view lines them up
    common = {"all", "gen_mean_error", "gen_cov_error", "disc_loss", "n_instances"}
    assert all(common <= set(c.data.metrics) for c in children)
    assert {"predicted_change", "actual_change", "fresh_change", "kendall_tau"} <= set(
        c1.data.metrics
    )
    assert c1.data.metrics["all"] == pytest.approx(rows[0]["all"])
    assert len(client.get_metric_history(c1.info.run_id, "d_loss")) == rows[0]["n_steps"]
    history = client.get_metric_history(pid, "all")
    assert sorted(m.step for m in history) == [0, 1, 2]

    # datasets: digest prefix as MLflow digest, full sha256 as input tag
    inputs = c1.inputs.dataset_inputs
    full = {t.value for d in inputs for t in d.tags if t.key == tags.DATASET_SHA256}
    assert {rows[0]["dataset_digest"], rows[0]["cleansed_digest"]} <= full
    assert all(len(d.dataset.digest) == 36 for d in inputs)

    arts = {a.path for a in client.list_artifacts(c1.info.run_id)}
    assert {"trajectory", "scores", "figures", "validation", "cleansed"} <= arts
    traj = {a.path for a in client.list_artifacts(c1.info.run_id, "trajectory")}
    assert {"trajectory/meta.json", "trajectory/schedule.safetensors"} <= traj
    figs = {a.path for a in client.list_artifacts(c1.info.run_id, "figures")}
    assert {
        "figures/influence_scatter.png",
        "figures/all_histogram.png",
        "figures/estimate_vs_leave_one_out.png",
    } <= figs
    table = mlflow.load_table("scores/all_table.json", run_ids=[c1.info.run_id])
    assert len(table) == 200 and set(table.columns) >= {"id", "harmfulness", "rank"}
    pfigs = {a.path for a in client.list_artifacts(pid, "figures")}
    assert "figures/metric_vs_removed.png" in pfigs

    _key_names_agree(client, children, tmp_path / "job", summary)


def _key_names_agree(client, children, job, summary) -> None:
    """One name per quantity in metrics.json, MLflow runs and the DVC summary (evaluate)."""
    runs = [job / "runs" / f"r{i}" for i in range(3)]
    replays = [job / "runs" / f"replay{i}" for i in (1, 2)]
    args = [a for r in runs for a in ("--run", r)] + [a for r in replays for a in ("--replay", r)]
    ganinf("evaluate", *args, "--out", job / "metrics" / "summary.json")
    dvc = json.loads((job / "metrics" / "summary.json").read_text())
    # The loop's summary is evaluate's, plus the loop's own extras (validation, paths, job).
    extras = {"method", "dataset_digest", "cleansed_digest", "validation", "paths"}
    extras |= {"scoring_seconds", "chunks"}
    for k, row in dvc["iterations"].items():
        assert set(summary["iterations"][k]) - extras == set(row)
        assert {key: summary["iterations"][k][key] for key in row} == row
    # metrics.json results keep their names in the summary and in MLflow.
    results = RunDir(runs[1]).results()
    assert set(results) <= set(dvc["iterations"]["1"])
    logged = set(children[1].data.metrics)
    assert set(results) <= logged
    # MLflow names no quantity that the summary names otherwise.
    vocabulary = set(dvc["iterations"]["1"]) | set(keys.VALIDATION) | set(keys.TIMING)
    vocabulary |= {f"replay_{k}" for k in dvc["iterations"]["1"]["replay"]}
    vocabulary |= {"d_loss", "g_loss", "replay_train_seconds"}
    vocabulary |= set(summary["iterations"]["1"]["validation"])  # group scores, same names
    assert logged <= vocabulary, logged - vocabulary


def test_single_stages_log_runs(tracking, tmp_path):
    ganinf("prepare", "--preset", "tiny", "--out", "raw")
    ganinf("train", "--preset", "tiny", "--data", "raw", "--out", "run")
    ganinf("influence", "--run", "run", "--out", "s.csv")
    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name("ganinf")
    runs = {r.data.tags[tags.STAGE]: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"prepare", "train", "influence"}
    assert (
        runs["prepare"].data.tags[tags.OUTPUT_DIGEST]
        == runs["train"].data.tags[tags.DATASET_DIGEST]
    )
    assert "all" in runs["train"].data.metrics
    assert runs["influence"].data.tags[tags.METHOD] == "all"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_fails_first_naming_the_uri(tmp_path, monkeypatch, capsys):
    uri = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("GANINF_TRACKING", "1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(SystemExit) as exc:
        ganinf("prepare", "--preset", "tiny", "--out", tmp_path / "raw")
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert uri in err and "unreachable" in err and "Traceback" not in err
    assert not (tmp_path / "raw").exists()
    mlflow.set_tracking_uri(None)


def test_lineage_lists_producing_and_using_runs(tracking, tmp_path, capsys):
    ganinf("loop", "--preset", "tiny", "--iterations", "1", "--loo", "0", "--out", "job")
    capsys.readouterr()
    ganinf("lineage", "job/data/v1", "--json")
    v1, v0 = json.loads(capsys.readouterr().out)
    client = MlflowClient(tracking)
    it = {
        r.data.tags.get(tags.ITERATION): r.info.run_id
        for r in client.search_runs([client.get_experiment_by_name("ganinf").experiment_id])
    }
    assert v1["produced_by"] == [it["1"]] and it["1"] not in v1["used_by"]
    assert v0["produced_by"] == [it["0"]] and it["1"] in v0["used_by"]


def test_image_loop_logs_fid_and_image_figures(tracking, tmp_path):
    ganinf("loop", "--preset", "digits-tiny", "--loo", "0", "--out", "job")
    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name("ganinf")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    children = [r for r in runs if r.data.tags[tags.STAGE] == "iteration"]
    parent = [r for r in runs if r.data.tags[tags.STAGE] == "job"][0]
    assert {"fid", "is", "fid_torch_fidelity", "is_torch_fidelity"} <= set(children[0].data.metrics)
    assert children[1].data.tags[tags.METHOD] == "fid"
    assert sorted(m.step for m in client.get_metric_history(parent.info.run_id, "fid")) == [0, 1]
    figures = {a.path for a in client.list_artifacts(children[1].info.run_id, "figures")}
    assert {
        "figures/fid_harmful_and_helpful.png",
        "figures/samples.png",
        "figures/samples_before_after.png",
    } <= figures
