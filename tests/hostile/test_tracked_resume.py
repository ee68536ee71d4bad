"""A SIGKILLed tracked `train` (issue 24, low item): its MLflow run stayed RUNNING and `--resume`
opened a new one, unrelated. Now the `.partial` directory records the run id when tracking
starts; the resume marks that run KILLED and tags its own run `ganinf.resumed_from` with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from ganinf_mlops.data.version import create_raw_version
from ganinf_mlops.train.partial import partial_dir

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_sigkilled_tracked_train_is_closed_and_linked_on_resume(tmp_path):
    raw = create_raw_version(tmp_path / "raw", "gaussian2d", n=200, n_eval=100, seed=3)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GANINF_TRACKING": "1",
           "MLFLOW_TRACKING_URI": uri}  # fmt: skip
    out = tmp_path / "run"
    args = [sys.executable, "-c", "from ganinf_mlops.cli import main; main()", "-q", "train",
            "--preset", "tiny", "--data", str(raw.path), "--out", str(out), "--steps", "400",
            "--checkpoint-every", "20"]  # fmt: skip
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if any((partial_dir(out) / "checkpoints").glob("step_*.safetensors")):
                break
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("ganinf").experiment_id
    (killed,) = client.search_runs([exp])
    assert killed.info.status == "RUNNING"  # what SIGKILL leaves

    done = subprocess.run([*args, "--resume"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    runs = {r.info.run_id: r for r in client.search_runs([exp])}
    assert runs[killed.info.run_id].info.status == "KILLED"
    (new,) = [r for r in runs.values() if r.info.run_id != killed.info.run_id]
    assert new.info.status == "FINISHED"
    assert new.data.tags.get("ganinf.resumed_from") == killed.info.run_id
