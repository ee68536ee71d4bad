"""MLproject entry points through `mlflow run . -e ENTRY --env-manager local`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ganinf_mlops.tracking import tags

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def mlflow_run(entry: str, params: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    # mlflow.set_experiment in earlier in-process tests exports MLFLOW_EXPERIMENT_ID: drop it.
    dropped = ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")
    env = {
        **{k: v for k, v in os.environ.items() if k not in dropped},
        "GANINF_TRACKING": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    cmd = [sys.executable, "-m", "mlflow", "run", str(ROOT), "-e", entry, "--env-manager", "local"]
    for k, v in params.items():
        cmd += ["-P", f"{k}={v}"]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def test_main_loop_and_gate_entry_points(tmp_path):
    job = tmp_path / "job"
    done = mlflow_run("main", {"preset": "tiny", "out": str(job)}, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((job / "summary.json").read_text())
    assert sorted(summary["iterations"]) == ["0", "1", "2"]

    # Unset job parameters mean the preset's own values (tiny: 2 iterations, 12 leave-one-out).
    done = mlflow_run(
        "loop", {"preset": "tiny", "loo": "4", "out": str(tmp_path / "loop")}, tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loop = json.loads((tmp_path / "loop" / "summary.json").read_text())
    assert sorted(loop["iterations"]) == ["0", "1", "2"]
    assert loop["iterations"]["1"]["validation"]["n_instances"] == 4

    gate = {
        "data": str(job / "data" / "v1"),
        "run": str(job / "runs" / "r1"),
        "report": str(tmp_path / "gate.json"),
    }
    passed = mlflow_run("gate", {**gate, "threshold": "1e9"}, tmp_path)
    assert passed.returncode == 0, passed.stderr[-2000:]
    failed = mlflow_run("gate", {**gate, "threshold": "-1e9"}, tmp_path)
    assert failed.returncode != 0 and not json.loads((tmp_path / "gate.json").read_text())["passed"]

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    by_entry: dict[str, list] = {}
    for r in runs:
        by_entry.setdefault(r.data.tags.get("mlflow.project.entryPoint"), []).append(r)
    assert len(by_entry["main"]) == 1 and len(by_entry["loop"]) == 1
    assert len(by_entry["gate"]) == 2
    main_run = by_entry["main"][0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == main_run.info.run_id]
    assert sorted(r.data.tags[tags.ITERATION] for r in children) == ["0", "1", "2"]
    gate_tags = sorted(r.data.tags.get("ganinf.gate") for r in by_entry["gate"])
    assert gate_tags == ["fail", "pass"]
