"""The loop logs to MLflow: a parent run with nested iterations, datasets, artifacts, figures."""

from __future__ import annotations

import json
import os
import socket

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

import ganinf_mlops
from ganinf_mlops import keys, report
from ganinf_mlops.cli import main
from ganinf_mlops.hashing import sha256_file
from ganinf_mlops.params import data_params_in_full
from ganinf_mlops.presets import PRESETS
from ganinf_mlops.tracking import figures, tags
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


@pytest.mark.integration
def test_loop_logs_parent_and_nested_iterations(tracking, tmp_path, monkeypatch):
    drawn = []  # (harmfulness, keyword arguments) of each influence scatter
    real_scatter = figures.influence_scatter

    def spy(*args, **kwargs):
        drawn.append((args[1], kwargs))
        return real_scatter(*args, **kwargs)

    monkeypatch.setattr(figures, "influence_scatter", spy)
    ganinf(
        "loop", "--preset", "tiny", "--iterations", "2", "--loo", "8", "--retrain-seeds", "2",
        "--out", "job",
    )  # fmt: skip
    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name("ganinf")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    parent = [r for r in runs if r.data.tags[tags.STAGE] == "job"]
    children = [r for r in runs if r.data.tags[tags.STAGE] == "iteration"]
    assert len(parent) == 1 and len(children) == 3
    assert {r.data.tags[tags.VERSION] for r in runs} == {ganinf_mlops.__version__}
    pid = parent[0].info.run_id
    assert all(c.data.tags["mlflow.parentRunId"] == pid for c in children)
    assert [c.data.tags[tags.ITERATION] for c in children] == ["0", "1", "2"]
    assert [c.data.params["iteration"] for c in children] == ["0", "1", "2"]

    summary = json.loads((tmp_path / "job" / "summary.json").read_text())
    rows = [summary["iterations"][k] for k in ("1", "2")]
    c1, c2 = children[1], children[2]
    # lineage tags: iteration i reads v_{i-1} and writes v_i; labels carry short digests
    assert c1.data.tags[tags.DATASET_DIGEST] == rows[0]["dataset_digest"]
    assert c1.data.tags[tags.OUTPUT_DIGEST] == rows[0]["cleansed_digest"]
    assert c2.data.tags[tags.INPUT_VERSION] == f"v1 ({rows[0]['cleansed_digest'][:12]})"
    assert c2.data.tags[tags.OUTPUT_VERSION] == f"v2 ({rows[1]['cleansed_digest'][:12]})"
    assert tags.PARENT_DIGEST not in children[0].data.tags  # raw: no empty tag
    assert all(v != "" for c in children for v in c.data.tags.values())
    assert c1.data.tags[tags.METHOD] == "all"
    # the same metric names in every iteration, so the compare view lines them up: the headline
    # (seed mean) and the scored run's one-seed results named with their seed; ALL is logged as
    # avg_log_likelihood, never as "all"
    common = {"headline", "headline_std", "n_instances", "avg_log_likelihood_seed0"}
    common |= {"gen_mean_error_seed0", "gen_cov_error_seed0", "disc_loss_seed0"}
    assert all(common <= set(c.data.metrics) for c in children)
    assert not any("all" in c.data.metrics or "avg_log_likelihood" in c.data.metrics
                   for c in children)  # fmt: skip
    signed = {"improvement", "predicted_improvement", "replay_improvement"}
    assert signed | {"validation/kendall_tau"} <= set(c1.data.metrics)
    assert not {"predicted_change", "fresh_change", "kendall_tau"} & set(c1.data.metrics)
    assert c1.data.metrics["avg_log_likelihood_seed0"] == pytest.approx(rows[0]["all"])
    assert c1.data.metrics["headline"] == pytest.approx(rows[0]["seed_mean"]["all"])
    assert c1.data.metrics["improvement"] == pytest.approx(rows[0]["improvement"])
    # ALL: higher is better, so the improvement is the change itself
    assert c1.data.metrics["predicted_improvement"] == pytest.approx(rows[0]["predicted_change"])
    assert len(client.get_metric_history(c1.info.run_id, "d_loss")) == rows[0]["n_steps"]
    for name in ("headline", "headline_std", "n_instances", "n_removed_total"):
        history = client.get_metric_history(pid, name)
        assert sorted(m.step for m in history) == [0, 1, 2], name
    assert [c.data.tags[tags.VERDICT] for c in children[1:]] == [r["verdict"] for r in rows]
    assert children[1].info.run_name == "tiny · all · it1 v0→v1"
    assert parent[0].info.run_name == "tiny · all · job job"

    # datasets: digest prefix as MLflow digest, full sha256 as input tag
    inputs = c1.inputs.dataset_inputs
    full = {t.value for d in inputs for t in d.tags if t.key == tags.DATASET_SHA256}
    assert {rows[0]["dataset_digest"], rows[0]["cleansed_digest"]} <= full
    # the UI shows "name (digest)": the same words as the version tags
    shown = {f"{d.dataset.name} ({d.dataset.digest})" for d in inputs}
    assert {c1.data.tags[tags.INPUT_VERSION], c1.data.tags[tags.OUTPUT_VERSION]} <= shown
    output = [d for d in inputs if json.loads(d.dataset.profile)["n_removed"]]
    assert json.loads(output[0].dataset.profile)["parent"] == c1.data.tags[tags.INPUT_VERSION]

    arts = {a.path for a in client.list_artifacts(c1.info.run_id)}
    assert {"trajectory", "scores", "validation", "cleansed", "details.json"} <= arts
    assert {
        "influence_scatter.png", "harmfulness_histogram.png", "estimate_vs_leave_one_out.png",
        "score_table.json",
    } <= arts  # fmt: skip
    traj = {a.path for a in client.list_artifacts(c1.info.run_id, "trajectory")}
    assert {"trajectory/meta.json", "trajectory/schedule.safetensors"} <= traj
    table = mlflow.load_table("score_table.json", run_ids=[c1.info.run_id])
    assert len(table) == 200 and list(table["rank"]) == list(range(1, 201))
    assert set(table.columns) >= {"id", "harmfulness", "x0", "x1", "injected_anomaly"}
    assert table["harmfulness"].is_monotonic_decreasing
    assert "predicted_change" not in table.columns  # the same numbers as harmfulness for ALL
    details = mlflow.artifacts.load_dict(f"runs:/{c1.info.run_id}/details.json")
    assert {"replay", "timing", "validation"} <= set(details)
    assert "metric_vs_removed.png" in {a.path for a in client.list_artifacts(pid)}

    _key_names_agree(client, children, tmp_path / "job", summary)
    _the_story_reads_in_the_ui(client, exp, parent[0], children, summary)
    _scatters_share_one_scale_and_name_their_version(drawn, children)


def _scatters_share_one_scale_and_name_their_version(drawn, children) -> None:
    """Compare shows iterations side by side: one colour scale, the job's first table's, and
    the version each scatter draws in its title."""
    scored = [(harm, kw) for harm, kw in drawn if harm is not None]
    label = [c.data.tags[tags.INPUT_VERSION] for c in children]
    assert [kw["version"] for _, kw in scored] == [label[1], label[1], label[2], label[2]]
    assert {kw["vmax"] for _, kw in scored} == {figures.harmfulness_vmax(scored[0][0])}
    trained = [kw["version"] for harm, kw in drawn if harm is None]
    assert trained == [label[0], *(c.data.tags[tags.OUTPUT_VERSION] for c in children[1:])]


def _the_story_reads_in_the_ui(client, exp, parent, children, summary) -> None:
    """Descriptions, versions that match the dataset panels, one value per metric and step,
    iteration metrics at step = iteration, and the job's raw/best/verdict."""
    note = "mlflow.note.content"
    assert "avg_log_likelihood" in exp.tags[note] and "higher" in exp.tags[note]
    for i, child in enumerate(children):
        text = child.data.tags[note]
        assert text.startswith(f"**Iteration {i}**"), text
        run_id = child.info.run_id
        for key in child.data.metrics:
            steps = [m.step for m in client.get_metric_history(run_id, key)]
            assert len(steps) == len(set(steps)), (i, key, steps)  # never twice at one step
            if key not in ("d_loss", "g_loss"):
                assert set(steps) == {i}, (i, key, steps)
        by_context = {
            t.value: d.dataset.digest
            for d in child.inputs.dataset_inputs
            for t in d.tags
            if t.key == "mlflow.data.context"
        }
        if i > 0:
            assert (
                child.data.tags[tags.INPUT_VERSION].split("(")[1][:12] == by_context["input"][:12]
            )
            assert (
                child.data.tags[tags.OUTPUT_VERSION].split("(")[1][:12] == by_context["output"][:12]
            )
            assert "→" in text and "removed" in text and "under fresh retraining" in text
    ptext = parent.data.tags[note]
    assert ptext.startswith("**verdict: all") and "iteration 2" in ptext
    assert f"v2 ({summary['job']['final_digest'][:12]})" in ptext  # the lineage line
    assert parent.data.tags[tags.VERDICT] == report.verdict_state(summary) == summary["verdict"]
    assert parent.data.tags[tags.HEADLINE_METRIC] == "all"
    # The collapse check: fd is the other quality metric of a run cleansed by ALL.
    (fd,) = report.outcome(summary)["others"]
    assert parent.data.tags[tags.WORSENED] == ("fd" if fd["worse"] else "none")
    within = report.outcome(summary)["within"]
    assert parent.data.tags[tags.WITHIN_SPREAD] == ("true" if within else "false")
    pm = client.get_run(parent.info.run_id).data.metrics
    assert {"headline_raw", "headline_best", "headline_final", "total_improvement"} <= set(pm)
    raw_mean = summary["iterations"]["0"]["seed_mean"]["all"]  # the mean over training seeds
    assert pm["headline_raw"] == pytest.approx(raw_mean)
    assert pm["total_improvement"] == pytest.approx(summary["total_improvement"])
    assert parent.data.tags[tags.BEST_ITERATION] == str(summary["best_iteration"])
    # only parameters in effect: plain SGD has no momentum; every data parameter is there
    params = client.get_run(parent.info.run_id).data.params
    assert "train.d_optim.momentum" not in params and "train.reject_embedding" not in params
    tiny = PRESETS.get("tiny")
    full = data_params_in_full(tiny.dataset, tiny.data_params)
    assert set(full) - set(tiny.data_params)  # some are defaults the preset leaves out
    assert {f"data.params.{k}" for k in full} <= set(params)
    contexts = {
        t.value for d in client.get_run(parent.info.run_id).inputs.dataset_inputs for t in d.tags
        if t.key == "mlflow.data.context"
    }  # fmt: skip
    assert "raw" in contexts
    params = client.get_run(parent.info.run_id).data.params
    assert params["train.model.d_hidden"] == children[0].data.params["train.model.d_hidden"]


def _key_names_agree(client, children, job, summary) -> None:
    """One name per quantity in metrics.json, MLflow runs and the DVC summary (evaluate)."""
    # Each version's fresh runs, its seed retrainings after it: evaluate groups them by version.
    runs = [r for i in range(3) for r in sorted((job / "runs").glob(f"r{i}*"))]
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
    results = RunDir(job / "runs" / "r1").results()
    assert set(results) <= set(dvc["iterations"]["1"])
    logged = set(children[1].data.metrics)
    assert {keys.tracking_name(k) + "_seed0" for k in results} <= logged
    # MLflow names no quantity that the summary names otherwise (a seed's value is suffixed,
    # validation metrics prefixed, the scored changes signed as improvements).
    vocabulary = set(dvc["iterations"]["1"]) | set(keys.VALIDATION)
    vocabulary |= {"d_loss", "g_loss", keys.PREDICTED_IMPROVEMENT, keys.REPLAY_IMPROVEMENT}
    vocabulary |= set(summary["iterations"]["1"]["validation"])  # group scores, same names
    logged = {k.removeprefix("validation/").removesuffix("_seed0") for k in logged}
    logged = {"all" if k == "avg_log_likelihood" else k for k in logged}
    assert logged <= vocabulary, logged - vocabulary


def test_single_stages_log_runs(tracking, tmp_path):
    ganinf("prepare", "--preset", "tiny", "--out", "raw")
    ganinf("train", "--preset", "tiny", "--data", "raw", "--out", "run")
    ganinf("influence", "--preset", "tiny", "--run", "run", "--out", "s.csv")
    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name("ganinf")
    runs = {r.data.tags[tags.STAGE]: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"prepare", "train", "influence"}
    assert (
        runs["prepare"].data.tags[tags.OUTPUT_DIGEST]
        == runs["train"].data.tags[tags.DATASET_DIGEST]
    )
    assert "avg_log_likelihood" in runs["train"].data.metrics
    assert runs["influence"].data.tags[tags.METHOD] == "all"
    for r in runs.values():  # every stage run has a description and the package version
        assert r.data.tags["mlflow.note.content"].startswith("`ganinf ")
        assert r.data.tags[tags.VERSION] == ganinf_mlops.__version__


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
    seed = {"fid", "is", "fid_torch_fidelity", "is_torch_fidelity", "copying_ct"}
    assert {f"{k}_seed0" for k in seed} <= set(children[0].data.metrics)
    assert children[1].data.tags[tags.METHOD] == "fid"
    assert parent.data.tags[tags.HEADLINE_METRIC] == "fid"
    history = client.get_metric_history(parent.info.run_id, "headline")
    assert sorted(m.step for m in history) == [0, 1]
    figures = {a.path for a in client.list_artifacts(children[1].info.run_id)}
    assert {"harmful_and_helpful.png", "samples.png", "samples_before_after.png"} <= figures
    assert "copying_ct_seed0" in children[1].data.metrics
    # Each iteration's generator, and the feature classifier once (the same for both).
    logged = client.search_logged_models([exp.experiment_id])
    assert sorted(m.name for m in logged) == ["feature_classifier", "generator", "generator"]
    gen = next(m for m in logged if m.name == "generator")
    samples = mlflow.pyfunc.load_model(f"models:/{gen.model_id}").predict({"n": [3]})
    assert samples.shape == (3, 1, 8, 8) and np.isfinite(samples).all()
    fc = next(m for m in logged if m.name == "feature_classifier")
    probs = mlflow.pyfunc.load_model(f"models:/{fc.model_id}").predict(
        pd.DataFrame(samples.reshape(3, -1), columns=[f"x{i}" for i in range(64)])
    )
    assert probs.shape == (3, 11) and np.allclose(probs.drop(columns="label").sum(axis=1), 1)
    # Reproduced from the server alone: trajectory, feature classifier and version are fetched.
    logged = client.download_artifacts(children[1].info.run_id, "scores", str(tmp_path / "dl"))
    (csv,) = [f for f in os.listdir(logged) if f.endswith(".csv")]
    ganinf("influence", "--run", f"runs:/{children[1].info.run_id}", "--out", tmp_path / "s.csv",
           "--no-tracking")  # fmt: skip
    assert sha256_file(tmp_path / "s.csv") == sha256_file(os.path.join(logged, csv))
