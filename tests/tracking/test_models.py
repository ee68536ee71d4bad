"""The served networks as MLflow Models, and the job's best one in the Model Registry."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient

import ganinf_mlops
from ganinf_mlops import report
from ganinf_mlops.cli import main
from ganinf_mlops.config import JobOptions, get_preset
from ganinf_mlops.data.version import load_version
from ganinf_mlops.errors import ConfigError, DataError
from ganinf_mlops.problems.schedule import latent
from ganinf_mlops.tracking import models, tags
from ganinf_mlops.train.rundir import RunDir

from .servers import free_port

ROOT = Path(__file__).resolve().parents[2]


# ---- pure parts -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "verdict,gate,expected",
    [
        (report.IMPROVED, None, ("candidate", "champion")),  # no gate ran
        (report.IMPROVED, True, ("candidate", "champion")),
        (report.IMPROVED, False, ("candidate",)),  # a failed gate keeps the champion where it is
        (report.WITHIN_NOISE, True, ("candidate",)),
        (report.WORSE, None, ("candidate",)),
        (None, True, ("candidate",)),  # nothing was cleansed
    ],
)
def test_aliases(verdict, gate, expected):
    assert models.aliases(verdict, gate) == expected


def test_registered_name_is_configured_or_derived_and_valid():
    from mlflow.utils.validation import _validate_model_name

    assert models.registered_name("mine", "ganinf", "tiny") == "mine"
    derived = models.registered_name(None, "team/gans:v2", "tiny")
    assert derived == "team-gans-v2-tiny"
    _validate_model_name(derived)
    for bad in ("a/b", "a:b", " ", ".."):
        with pytest.raises(ConfigError, match="registered_model"):
            JobOptions(registered_model=bad)


def test_latents_from_columns_or_a_count():
    z = np.arange(6.0).reshape(2, 3)
    frame = pd.DataFrame(z, columns=["z0", "z1", "z2"])
    assert torch.equal(models.latents(frame, 3, 7, torch.float64), torch.tensor(z))
    # n (and seed): drawn as the run draws its latents; a missing seed is the default one
    counted = models.latents(pd.DataFrame({"n": [4, 2], "seed": [1, None]}), 3, 7, torch.float64)
    expected = torch.cat(
        [latent(1, 4, 3, torch.float64, "cpu"), latent(7, 2, 3, torch.float64, "cpu")]
    )
    assert torch.equal(counted, expected)
    for frame, match in [
        (pd.DataFrame({"n": [2], "z0": [0.0]}), "not both"),
        (pd.DataFrame({"z0": [0.0], "z1": [1.0]}), "missing z2"),
        (pd.DataFrame({"n": [0]}), "n must be >= 1"),
        (pd.DataFrame({"n": [2.5]}), "whole number"),
        (pd.DataFrame({"n": ["two"]}), "whole number"),
        (pd.DataFrame({"z0": [np.nan], "z1": [0.0], "z2": [0.0]}), "finite"),
    ]:
        with pytest.raises(DataError, match=match):
            models.latents(frame, 3, 7, torch.float64)


def test_instances_and_class_frame():
    x = np.arange(8.0).reshape(2, 4)
    got = models.instances(pd.DataFrame(x, columns=models.feature_columns([1, 2, 2])), [1, 2, 2],
                           torch.float32)  # fmt: skip
    assert got.shape == (2, 1, 2, 2) and got.dtype == torch.float32
    assert torch.equal(got.flatten(1), torch.tensor(x, dtype=torch.float32))
    with pytest.raises(DataError, match="missing x3"):
        models.instances(pd.DataFrame(x[:, :3], columns=["x0", "x1", "x2"]), [4], torch.float64)
    out = models.class_frame(torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]]))
    assert list(out.columns) == ["label", "p0", "p1", "p2"]
    assert list(out["label"]) == [1, 0]
    assert np.allclose(out[["p0", "p1", "p2"]].sum(axis=1), 1.0)


def test_a_file_store_skips_registration_with_a_warning(caplog):
    log = models.ModelLog()
    log.by_iteration[0] = models.Logged("models:/m-0", "v0 (abc)", "abc")
    summary = {"iterations": {"0": {"metric": "all", "all": -4.0}}, "job": {}}
    with caplog.at_level(logging.WARNING):
        assert log.register(None, "file:///tmp/mlruns", summary, get_preset("tiny"), "e") is None
    assert "database-backed" in caplog.text
    assert not models.supports_registry("/tmp/mlruns")
    assert models.supports_registry("sqlite:///mlflow.db")
    assert models.supports_registry("http://127.0.0.1:5000")


def test_a_refusing_registry_is_a_warning_not_a_failure(caplog, monkeypatch):
    def refuse(*args, **kwargs):
        raise mlflow.exceptions.MlflowException("registry unavailable")

    monkeypatch.setattr(mlflow, "register_model", refuse)
    log = models.ModelLog()
    log.by_iteration[0] = models.Logged("models:/m-0", "v0 (abc)", "abc")
    summary = {"iterations": {"0": {"metric": "all", "all": -4.0}}, "job": {}}
    with caplog.at_level(logging.WARNING):
        assert log.register(None, "sqlite:///x.db", summary, get_preset("tiny"), "e") is None
    assert "could not register the model as 'e-tiny'" in caplog.text
    assert "registry unavailable" in caplog.text


# ---- a job ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def job(tmp_path_factory, tracking_uri):
    """One tiny job (one cleanse) tracked in a sqlite store; its summary and the store."""
    d = tmp_path_factory.mktemp("job")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANINF_TRACKING", "1")
        mp.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        mp.chdir(d)
        main(["-q", "loop", "--preset", "tiny", "--iterations", "1", "--loo", "0", "--out", "job"])
    mlflow.set_tracking_uri(tracking_uri)
    summary = json.loads((d / "job" / "summary.json").read_text())
    yield d, summary, MlflowClient(tracking_uri)
    mlflow.set_tracking_uri(None)


NAME = "ganinf-tiny"  # <experiment>-<preset>: job.registered_model is null in `tiny`


@pytest.mark.integration
def test_every_main_run_logs_a_small_generator_model(job):
    d, summary, client = job
    exp = client.get_experiment_by_name("ganinf")
    runs = {
        r.data.tags.get(tags.ITERATION): r
        for r in client.search_runs([exp.experiment_id])
        if r.data.tags[tags.STAGE] == "iteration"
    }
    logged = client.search_logged_models([exp.experiment_id])
    assert sorted(m.source_run_id for m in logged) == sorted(r.info.run_id for r in runs.values())
    assert {m.name for m in logged} == {"generator"}
    iteration = {r.info.run_id: i for i, r in runs.items()}
    for m in logged:
        assert m.tags[tags.VERSION] == ganinf_mlops.__version__
        root = Path(mlflow.artifacts.download_artifacts(f"models:/{m.model_id}"))
        assert {"MLmodel", "model_code.py", "artifacts", "input_example.json"} <= {
            p.name for p in root.iterdir()
        }
        local = root / "artifacts" / "model"
        assert sorted(os.listdir(local)) == [models.MODEL_JSON, models.PARAMS_FILE]
        # only the generator's final parameters: smaller than the final checkpoint
        record = json.loads((local / models.MODEL_JSON).read_text())
        run = d / "job" / "runs" / f"r{iteration[m.source_run_id]}"
        final = (run / record["source"]["checkpoint"]).stat().st_size
        assert (local / models.PARAMS_FILE).stat().st_size < final / 2
    # ganinf.version on every run (the registered model version is checked below)
    assert {r.data.tags[tags.VERSION] for r in client.search_runs([exp.experiment_id])} == {
        ganinf_mlops.__version__
    }


@pytest.mark.integration
def test_the_best_iteration_is_registered_with_tags_and_aliases(job):
    d, summary, client = job
    best = (summary["headline_best"], summary["best_iteration"])  # (value, iteration)
    verdict = report.verdict_state(summary)
    assert verdict == report.IMPROVED, "the tiny job no longer improves: pick another case"
    rm = client.get_registered_model(NAME)
    assert set(rm.aliases) == set(models.aliases(verdict, None)) == {"candidate", "champion"}
    mv = client.get_model_version_by_alias(NAME, "candidate")
    digest = summary["iterations"][str(best[1])]["cleansed_digest"]
    assert mv.tags[tags.VERSION] == ganinf_mlops.__version__
    assert mv.tags[tags.ITERATION] == str(best[1])
    assert mv.tags[tags.DATASET_DIGEST] == digest
    assert mv.tags[tags.INPUT_VERSION] == f"v{best[1]} ({digest[:12]})"
    assert mv.tags[tags.VERDICT] == verdict
    assert mv.tags[tags.HEADLINE_METRIC] == "avg_log_likelihood"
    assert float(mv.tags[tags.HEADLINE]) == pytest.approx(best[0], rel=1e-5)
    runs = client.search_runs(
        [client.get_experiment_by_name("ganinf").experiment_id],
        f"tags.`{tags.ITERATION}` = '{best[1]}'",
    )
    assert mv.run_id == runs[0].info.run_id


@pytest.mark.integration
@pytest.mark.parametrize("alias", ["candidate", "champion"])
def test_the_registered_generator_draws_the_runs_samples(job, alias):
    d, summary, client = job
    best = summary["best_iteration"]
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@{alias}")
    run, version = (
        RunDir(d / "job" / "runs" / f"r{best}"),
        load_version(d / "job" / "data" / f"v{best}"),
    )
    metric = run.metric_config
    # a count and the run's evaluation seed: exactly the run's own evaluation samples
    samples = model.predict(pd.DataFrame({"n": [metric.n_gen], "seed": [metric.seed]}))
    assert np.array_equal(samples, run.final_samples(version))
    # latents in, one sample each
    z = np.random.default_rng(0).standard_normal((5, 10))
    out = model.predict(pd.DataFrame(z, columns=models.latent_columns(10)))
    assert out.shape == (5, 2) and np.isfinite(out).all()
    with pytest.raises(Exception, match="z0"):
        model.predict(pd.DataFrame({"seed": [1]}))


@pytest.mark.integration
def test_a_failed_gate_moves_candidate_but_not_champion(job):
    d, summary, client = job
    before = client.get_registered_model(NAME).aliases
    log = models.ModelLog()
    mv = client.get_model_version_by_alias(NAME, "candidate")
    best = str(summary["best_iteration"])
    log.by_iteration[int(best)] = models.Logged(mv.source, "v", "d")
    log.gate_passed = False
    again = log.register(client, mlflow.get_tracking_uri(), summary, get_preset("tiny"), "ganinf")
    after = client.get_registered_model(NAME).aliases
    assert int(again.version) == int(before["candidate"]) + 1
    assert after == {"candidate": again.version, "champion": before["champion"]}


@pytest.mark.integration
def test_serve_the_candidate(job, tracking_uri):
    d, summary, client = job
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # MLflow starts `uvicorn` by name: this interpreter's environment's, on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    cmd = [
        sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{NAME}@candidate",
        "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    server = subprocess.Popen(
        cmd, env=env, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=5):
                    break
            except (urllib.error.URLError, OSError):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(server.stderr.read().decode()[-2000:]) from None
                time.sleep(1)
        body = {"dataframe_split": {"columns": ["n", "seed"], "data": [[6, 3]]}}
        request = urllib.request.Request(
            f"{url}/invocations", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            served = np.array(json.loads(response.read())["predictions"])
        local = mlflow.pyfunc.load_model(f"models:/{NAME}@candidate")
        assert served.shape == (6, 2) and np.isfinite(served).all()
        assert np.allclose(served, local.predict(pd.DataFrame({"n": [6], "seed": [3]})))
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server's own session: it and its workers
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.mark.integration
def test_a_classifier_run_logs_a_classifier_model(tmp_path, tracking_uri, monkeypatch):
    monkeypatch.setenv("GANINF_TRACKING", "1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.chdir(tmp_path)
    main(["-q", "prepare", "--preset", "digits-labelnoise", "--out", "raw"])
    main(["-q", "train", "--preset", "digits-labelnoise", "--data", "raw", "--out", "run",
          "--steps", "48"])  # fmt: skip
    client = MlflowClient(tracking_uri)
    train_run = [
        r for r in client.search_runs([client.get_experiment_by_name("ganinf").experiment_id])
        if r.data.tags[tags.STAGE] == "train"
    ][-1]  # fmt: skip
    (logged,) = [
        m
        for m in client.search_logged_models([train_run.info.experiment_id])
        if m.source_run_id == train_run.info.run_id
    ]
    assert logged.name == "classifier"
    model = mlflow.pyfunc.load_model(f"models:/{logged.model_id}")
    version, run = load_version(tmp_path / "raw"), RunDir(tmp_path / "run")
    x = version.x_eval[:7].reshape(7, -1)
    out = model.predict(pd.DataFrame(x, columns=models.feature_columns(version.x.shape[1:])))
    assert list(out.columns) == ["label", *(f"p{k}" for k in range(10))]
    problem = run.problem(version)
    state = run.load_state(run.n_steps)
    with torch.no_grad():
        expected = torch.softmax(problem.logits(state, problem.tensor(version.x_eval[:7])), 1)
    assert np.allclose(out[[f"p{k}" for k in range(10)]].to_numpy(), expected.numpy())
    assert list(out["label"]) == expected.argmax(1).tolist()
