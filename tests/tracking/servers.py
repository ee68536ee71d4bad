"""A throwaway PostgreSQL cluster and MLflow tracking server on loopback, for tests.

PostgreSQL's initdb/pg_ctl refuse to run as root, so as root they run as the `postgres` user
(CI runs as root). Binaries come from Debian's `postgresql` package (.ci/run installs it).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """Yield a SQLAlchemy URI (postgresql+psycopg2://...) of a fresh database."""
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="ganinf-pg-"))
    base.chmod(0o755)  # the postgres user must reach the data dir
    data, sock, log = base / "data", base / "sock", base / "log"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    run = lambda cmd: subprocess.run(_as_postgres(cmd), check=True, capture_output=True)  # noqa: E731
    run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]
    )
    run(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-o",
            f"-p {port} -k {sock} -c listen_addresses=127.0.0.1",
            "-w",
            "start",
        ]
    )
    try:
        subprocess.run(
            [
                str(bindir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "-c",
                "CREATE DATABASE mlflow",
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(
    backend: str, artifacts: Path, timeout: float = 90.0, ui_host: str | None = None
) -> Iterator[str]:
    """Start `mlflow server` on a free loopback port; yield its http URI once /health answers.

    `ui_host`: another name for 127.0.0.1 that the server accepts (Host and CORS origin), for a
    browser: on a loopback name MLflow's UI opens its assistant panel over the page."""
    port = free_port()
    hosts = [f"127.0.0.1:{port}", f"localhost:{port}"] + ([f"{ui_host}:{port}"] if ui_host else [])
    ui_flags = [
        "--allowed-hosts", ",".join(hosts),
        "--cors-allowed-origins", ",".join(f"http://{h}" for h in hosts),
    ] if ui_host else []  # fmt: skip
    log = open(artifacts.parent / f"mlflow-server-{port}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            backend,
            "--artifacts-destination",
            str(artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            *ui_flags,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {Path(log.name).read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(uri + "/health", timeout=2):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server not healthy after {timeout}s")
            time.sleep(0.5)
        yield uri
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
