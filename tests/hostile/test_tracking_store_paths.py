"""A sqlite tracking store that cannot work is refused in seconds (issue 24, item 15): a URI
naming a directory, a file that is not a SQLite database, a missing or read-only directory.
MLflow itself retried for about 115 s (27 s for a non-database file) before failing."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from ganinf_mlops.errors import TrackingError
from ganinf_mlops.tracking.run_log import check_tracking_uri


def check(uri: str, timeout: float = 10) -> tuple[int, str, float]:
    """The check, in a thread given `timeout` s (a refusal must come sooner). In this process:
    importing MLflow alone takes seconds on a busy machine; the check itself must not."""
    result: dict[str, tuple[int, str]] = {}

    def run() -> None:
        try:
            check_tracking_uri(uri)
            result["r"] = (0, "")
        except TrackingError as exc:
            result["r"] = (2, str(exc))
        except Exception as exc:  # noqa: BLE001 (reported by the assertion)
            result["r"] = (1, f"{type(exc).__name__}: {exc}")

    start = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    seconds = time.monotonic() - start
    assert "r" in result, f"no answer for {uri} in {timeout} s"
    return *result["r"], seconds


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("directory", "is a directory"),
        ("not_a_database", "is not a SQLite database"),
        ("missing_parent", "does not exist"),
    ],
)
def test_unusable_sqlite_store_is_refused_in_seconds(kind, expected, tmp_path):
    path = {
        "directory": tmp_path / "store",
        "not_a_database": tmp_path / "notes.txt",
        "missing_parent": tmp_path / "nowhere" / "mlflow.db",
    }[kind]
    if kind == "directory":
        path.mkdir()
    elif kind == "not_a_database":
        path.write_text("just some text, not a database\n" * 100)
    rc, out, seconds = check(f"sqlite:///{path}")
    assert rc == 2 and expected in out and str(path) in out, out
    assert seconds < 10


def test_default_store_in_a_read_only_directory_is_refused_in_seconds(tmp_path):
    """The directory read-only by its mode, or (for root, whom modes do not stop) a read-only
    bind mount."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    mounted = False
    try:
        if os.access(ro, os.W_OK):
            ro.chmod(0o755)
            src = tmp_path / "src"
            src.mkdir()
            for cmd in (["mount", "--bind", src, ro], ["mount", "-o", "remount,bind,ro", ro]):
                if subprocess.run(list(map(str, cmd)), capture_output=True).returncode != 0:
                    pytest.skip("root, and no read-only bind mount here")
                mounted = True
        rc, out, seconds = check(f"sqlite:///{ro / 'mlflow.db'}")
    finally:
        if mounted:
            subprocess.run(["umount", str(ro)], capture_output=True)
        ro.chmod(0o755)
    assert rc == 2 and ("not writable" in out or "Read-only" in out) and seconds < 10, out


def test_existing_store_and_new_store_pass(tmp_path):
    rc, out, _ = check(f"sqlite:///{tmp_path / 'new.db'}", timeout=120)  # creates the tables
    assert rc == 0, out
    rc, out, _ = check(f"sqlite:///{tmp_path / 'new.db'}", timeout=120)  # now an existing database
    assert rc == 0, out
