"""Low items of issue 24 on interruption and writing: the SIGTERM line depends on the command
(only train, run and loop resume), `gate` checks its report location before scoring, and a full
disk (RLIMIT_FSIZE) during `train` or `prepare` is one line naming the file."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from ganinf_mlops.cli import main
from ganinf_mlops.config import MetricConfig
from ganinf_mlops.data.version import create_raw_version
from ganinf_mlops.errors import Terminated
from ganinf_mlops.optim import OptimConfig
from ganinf_mlops.problems.gan import GanConfig, ModelConfig
from ganinf_mlops.train.trainer import train

ROOT = Path(__file__).resolve().parents[2]
CFG = GanConfig(
    model=ModelConfig(latent_dim=3, g_hidden=(5,), d_hidden=(6,)),
    d_optim=OptimConfig("adam", lr=0.01),
    g_optim=OptimConfig("momentum", lr=0.05),
    batch_size=4,
    epochs=3,
    checkpoint_every=4,
)


@pytest.fixture
def run(tiny_version, tmp_path):
    return train(tiny_version, CFG, MetricConfig(n_gen=11), tmp_path / "run", progress=False)


def _exit(capsys, argv) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    return exc.value.code, capsys.readouterr().err


def _terminated(*args, **kwargs):
    raise Terminated()


def test_sigterm_in_influence_has_no_train_resume_hint(run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("ganinf_mlops.influence.methods.score_run", _terminated)
    code, err = _exit(capsys, ["influence", "--run", run, "--out", tmp_path / "s.csv"])
    assert code == 143 and "terminated (SIGTERM)" in err
    assert "--resume" not in err and not (tmp_path / "s.csv").exists()


def test_sigterm_in_train_names_its_resume(tiny_version, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("ganinf_mlops.train.trainer.run_steps", _terminated)
    code, err = _exit(
        capsys, ["train", "--data", tiny_version.path, "--out", tmp_path / "r", "--batch-size", "4"]
    )
    assert code == 143 and "`ganinf train --resume` continues" in err, err


def test_gate_checks_an_unwritable_report_before_scoring(
    run, tiny_version, tmp_path, capsys, monkeypatch
):
    def must_not_score(*args, **kwargs):
        raise AssertionError("scored before the report location was checked")

    monkeypatch.setattr("ganinf_mlops.influence.methods.score", must_not_score)
    (tmp_path / "afile").write_text("x")
    report = tmp_path / "afile" / "report.json"  # its "directory" is a file
    code, err = _exit(
        capsys,
        ["gate", "--data", tiny_version.path, "--run", run, "--threshold", "0", "--report", report],
    )
    assert code == 2 and str(report) in err and "Traceback" not in err, err


def _ganinf_with_small_disk(*args, cwd: Path) -> subprocess.CompletedProcess:
    """The CLI with files limited to 8 KiB (`ulimit -f 8`): writes past it fail with EFBIG."""
    return subprocess.run(
        [sys.executable, "-c", "from ganinf_mlops.cli import main; main()", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "GANINF_TRACKING": "0",
             "PYTHONDONTWRITEBYTECODE": "1"},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192)),
    )  # fmt: skip


@pytest.mark.integration
def test_disk_full_during_train_is_one_line_naming_the_file(tmp_path):
    raw = create_raw_version(tmp_path / "raw", "gaussian2d", n=200, n_eval=100, seed=3)
    proc = _ganinf_with_small_disk("train", "--preset", "tiny", "--data", raw.path,
                                   "--out", tmp_path / "run", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("error: File too large: ") and str(tmp_path) in lines[0], lines
    assert not (tmp_path / "run").exists()


@pytest.mark.integration
def test_disk_full_during_prepare_is_one_line_naming_the_file(tmp_path):
    proc = _ganinf_with_small_disk("prepare", "--preset", "tiny", "--out", tmp_path / "v",
                                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: File too large: "), proc.stderr
    assert str(tmp_path) in lines[0] and not (tmp_path / "v").exists()
