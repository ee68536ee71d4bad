"""Interrupted training: SIGKILL at random steps (three times) then `train --resume` ends
bit-identical to an uninterrupted run; SIGTERM ends cleanly, its MLflow run KILLED; leftovers
are reported, not silently replaced."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from ganinf_mlops.data.version import create_raw_version
from ganinf_mlops.params import load_params, write_params
from ganinf_mlops.train.partial import partial_dir

pytestmark = pytest.mark.integration

GANINF = str(Path(sys.executable).parent / "ganinf")


@pytest.fixture
def setup(tmp_path):
    raw = create_raw_version(tmp_path / "raw", "gaussian2d", n=200, n_eval=100, seed=3)
    preset = load_params_of_tiny(tmp_path)
    return tmp_path, raw, preset


def load_params_of_tiny(tmp_path: Path) -> Path:
    """The tiny preset trained long enough (2000 steps) to be killed mid-way."""
    subprocess.run([GANINF, "params", "--preset", "tiny", "--out", tmp_path / "p.yaml"], check=True)
    import dataclasses

    p = load_params(tmp_path / "p.yaml")
    train = dataclasses.replace(p.train, epochs=200, steps=None, checkpoint_every=50)
    write_params(tmp_path / "params.yaml", dataclasses.replace(p, train=train))
    return tmp_path / "params.yaml"


def _train(tmp_path, raw, params, out, *extra, env=None):
    return subprocess.Popen(
        [GANINF, "-q", "train", "--params", params, "--data", raw.path, "--out", out, *extra],
        cwd=tmp_path, env={**os.environ, **(env or {})}, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for_checkpoints(out: Path, count: int, proc) -> None:
    ckpts = partial_dir(out) / "checkpoints"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpts.is_dir() and len(list(ckpts.glob("step_*.safetensors"))) >= count:
            return
        time.sleep(0.005)
    raise AssertionError(f"training ended or stalled before {count} checkpoints")


def _files(run: Path) -> dict[str, bytes]:
    names = ["losses.csv", *(f"checkpoints/{p.name}" for p in (run / "checkpoints").iterdir())]
    return {n: (run / n).read_bytes() for n in names}


def test_killed_three_times_then_resumed_is_bit_identical(setup):
    tmp_path, raw, params = setup
    ref = _train(tmp_path, raw, params, tmp_path / "ref", env={"GANINF_TRACKING": "0"})
    assert ref.wait(timeout=300) == 0, ref.stderr.read()

    out, rng = tmp_path / "run", random.Random(7)
    points = sorted(rng.sample(range(3, 38), 3))  # checkpoints written before each kill
    for i, point in enumerate(points):
        proc = _train(tmp_path, raw, params, out, *(["--resume"] if i else []),
                      env={"GANINF_TRACKING": "0"})  # fmt: skip
        _wait_for_checkpoints(out, point, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert not out.exists() and partial_dir(out).is_dir()

    # Without --resume the leftover is reported, not replaced.
    again = _train(tmp_path, raw, params, out, env={"GANINF_TRACKING": "0"})
    assert again.wait(timeout=120) == 2 and "--resume continues it" in again.stderr.read()

    done = _train(tmp_path, raw, params, out, "--resume", env={"GANINF_TRACKING": "0"})
    assert done.wait(timeout=300) == 0, done.stderr.read()
    assert not partial_dir(out).exists()
    assert _files(out) == _files(tmp_path / "ref")  # every checkpoint and loss, bit for bit
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in (tmp_path / "ref").iterdir()
    )


def test_sigterm_ends_cleanly_and_marks_the_mlflow_run_killed(setup):
    tmp_path, raw, params = setup
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {"GANINF_TRACKING": "1", "MLFLOW_TRACKING_URI": uri}
    out = tmp_path / "run"
    proc = _train(tmp_path, raw, params, out, env=env)
    _wait_for_checkpoints(out, 5, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    err = proc.stderr.read()
    assert "error: terminated (SIGTERM)" in err and "Traceback" not in err
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("ganinf").experiment_id])
    assert run.info.status == "KILLED"

    resumed = _train(tmp_path, raw, params, out, "--resume", env=env)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    statuses = sorted(r.info.status for r in client.search_runs(
        [client.get_experiment_by_name("ganinf").experiment_id]))  # fmt: skip
    assert statuses == ["FINISHED", "KILLED"]
    mlflow.set_tracking_uri(None)


def test_resume_refuses_other_arguments_and_nothing_to_resume(setup):
    tmp_path, raw, params = setup
    out = tmp_path / "run"
    none = _train(tmp_path, raw, params, out, "--resume", env={"GANINF_TRACKING": "0"})
    assert none.wait(timeout=120) == 2 and "nothing to resume" in none.stderr.read()
    proc = _train(tmp_path, raw, params, out, env={"GANINF_TRACKING": "0"})
    _wait_for_checkpoints(out, 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    other = _train(tmp_path, raw, params, out, "--resume", "--seed", "9",
                   env={"GANINF_TRACKING": "0"})  # fmt: skip
    assert other.wait(timeout=120) == 2 and "was started with other train" in other.stderr.read()
    fresh = _train(tmp_path, raw, params, out, "--force", "--epochs", "2",
                   env={"GANINF_TRACKING": "0"})  # fmt: skip
    assert fresh.wait(timeout=120) == 0 and not partial_dir(out).exists() and out.is_dir()
