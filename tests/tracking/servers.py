"""A throwaway PostgreSQL cluster, S3 API (moto) and MLflow tracking server on loopback, for tests.

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


# moto accepts any credentials; boto3, s3fs (DVC) and MLflow's server read these.
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def moto_available() -> bool:
    return shutil.which("moto_server", path=str(Path(sys.executable).parent)) is not None


def _wait_http(proc: subprocess.Popen, url: str, log: Path, timeout: float, what: str) -> None:
    """Poll `url` until it answers, failing early if the process died."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2):
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not answering at {url} after {timeout}s")
        time.sleep(0.3)


def _stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def moto_s3(buckets: tuple[str, ...] = ("mlflow", "dvc"), timeout: float = 60.0) -> Iterator[str]:
    """Serve an S3 API on a free loopback port (`moto_server`, in memory) with `buckets`
    created; yield its endpoint URL. Clients need `S3_ENV` in their environment."""
    import boto3

    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if exe is None:
        raise RuntimeError("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="ganinf-moto-")) / "moto.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [exe, "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_http(proc, endpoint + "/moto-api/", log, timeout, "moto_server")
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id="test",
            aws_secret_access_key="test", region_name="us-east-1",
        )  # fmt: skip
        for bucket in buckets:
            s3.create_bucket(Bucket=bucket)
        yield endpoint
    finally:
        _stop(proc)
        shutil.rmtree(log.parent, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(
    backend: str,
    artifacts: Path | str,
    timeout: float = 90.0,
    ui_host: str | None = None,
    s3_endpoint: str | None = None,
    log_dir: Path | None = None,
) -> Iterator[str]:
    """Start `mlflow server` on a free loopback port; yield its http URI once /health answers.

    `artifacts`: a directory, or an `s3://bucket/prefix` served at `s3_endpoint` (the server
    proxies artifacts: clients log through it and need no S3 settings).
    `ui_host`: another name for 127.0.0.1 that the server accepts (Host and CORS origin), for a
    browser: on a loopback name MLflow's UI opens its assistant panel over the page."""
    port = free_port()
    hosts = [f"127.0.0.1:{port}", f"localhost:{port}"] + ([f"{ui_host}:{port}"] if ui_host else [])
    ui_flags = [
        "--allowed-hosts", ",".join(hosts),
        "--cors-allowed-origins", ",".join(f"http://{h}" for h in hosts),
    ] if ui_host else []  # fmt: skip
    if log_dir is None:
        local = isinstance(artifacts, Path)
        log_dir = artifacts.parent if local else Path(tempfile.gettempdir())
    env = dict(os.environ)
    if s3_endpoint is not None:
        env.update(S3_ENV, MLFLOW_S3_ENDPOINT_URL=s3_endpoint)
    log = open(log_dir / f"mlflow-server-{port}.log", "w")  # noqa: SIM115
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
        env=env,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_http(proc, uri + "/health", Path(log.name), timeout, "mlflow server")
        yield uri
    finally:
        _stop(proc)
        log.close()
