"""Concurrent writers to one output (issue 24, items 8 and 16).

Two `train` to one --out: the second is told "another process (pid N) is writing OUT", not
offered --resume (nor allowed to --force over it); a lock left by a killed writer is stale and
taken over. A `prepare --force` that loses a race prints no digest that is not on disk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganinf_mlops.data import version as version_mod
from ganinf_mlops.data.version import create_raw_version, load_version
from ganinf_mlops.errors import GaninfError
from ganinf_mlops.train.partial import partial_dir

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "GANINF_TRACKING": "0"}
CLI = [sys.executable, "-c", "from ganinf_mlops.cli import main; main()"]


def ganinf(*args, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, "-q", *map(str, args)], cwd=cwd, env=ENV, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=30)
        raise
    return proc.returncode, out, err


def wait_for_checkpoint(out: Path, proc: subprocess.Popen) -> None:
    ckpts = partial_dir(out) / "checkpoints"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpts.is_dir() and any(ckpts.glob("step_*.safetensors")):
            return
        time.sleep(0.01)
    raise AssertionError("training ended or stalled before its first checkpoint")


@pytest.fixture
def raw(tmp_path):
    return create_raw_version(tmp_path / "raw", "gaussian2d", n=200, n_eval=100, seed=3)


@pytest.mark.integration
def test_second_train_to_one_out_is_told_another_process_writes_it(raw, tmp_path):
    out = tmp_path / "run"
    base = ("train", "--preset", "tiny", "--data", raw.path, "--out", out)
    args = (*base, "--steps", "200000", "--checkpoint-every", "50")  # runs until killed
    first = ganinf(*args, cwd=tmp_path)
    try:
        wait_for_checkpoint(out, first)
        for extra in ((), ("--resume",), ("--force",)):
            rc, _, err = finish(ganinf(*args, *extra, cwd=tmp_path))
            assert rc == 2, err
            assert f"another process (pid {first.pid}) is writing {out}" in err, err
            assert "--resume continues it" not in err and "Traceback" not in err
        assert first.poll() is None  # the first one was left alone
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    # Its lock file is stale now (its pid is dead): the next writer takes it over.
    assert partial_dir(out).is_dir() and (tmp_path / ".run.lock").is_file()
    rc, _, err = finish(ganinf(*base, "--steps", "20", "--force", cwd=tmp_path), timeout=300)
    assert rc == 0, err
    assert not partial_dir(out).exists() and not (tmp_path / ".run.lock").exists()


@pytest.mark.integration
def test_job_with_a_live_writer_is_refused(tmp_path):
    from ganinf_mlops.writelock import writing

    with writing(tmp_path / "work"):  # this test process is the other writer
        rc, _, err = finish(ganinf("loop", "--preset", "tiny", "--out", tmp_path / "work",
                                   "--resume", cwd=tmp_path))  # fmt: skip
    assert rc == 2 and f"another process (pid {os.getpid()}) is writing" in err, err


@pytest.mark.integration
def test_prepare_force_racing_a_live_writer_prints_no_digest(tmp_path):
    from ganinf_mlops.writelock import writing

    out = tmp_path / "v"
    mine = create_raw_version(out, "gaussian2d", n=50, n_eval=10, seed=1)
    with writing(out):  # another prepare is writing it
        rc, stdout, err = finish(ganinf("prepare", "--preset", "tiny", "--out", out, "--force",
                                        "--param", "seed=2", cwd=tmp_path))  # fmt: skip
    assert rc == 2 and "another process" in err and stdout == "", (stdout, err)
    assert load_version(out).digest == mine.digest  # untouched


def test_prepare_force_whose_output_was_replaced_says_so(tmp_path, monkeypatch):
    """A writer that takes no lock (an older version) replaces OUT right after our rename:
    ours is not on disk, so no digest of ours is printed."""
    out = tmp_path / "v"
    real = version_mod.load_version

    def replaced_then_load(path):
        if Path(path) == out:
            other = create_raw_version(tmp_path / "other", "gaussian2d", n=50, n_eval=10, seed=9)
            for f in other.path.iterdir():
                os.replace(f, out / f.name)
        return real(path)

    monkeypatch.setattr(version_mod, "load_version", replaced_then_load)
    with pytest.raises(GaninfError, match=f"another process replaced {out}"):
        create_raw_version(out, "gaussian2d", n=50, n_eval=10, seed=1)
