"""Bookkeeping of the runs `MlflowTracker` writes: metrics logged once per (key, step), at the
step of the open iteration; side numbers collected into `details.json`; description lines
collected into the run's `mlflow.note.content`; figures as top-level PNGs. And the tracking URI
checks that run before any work.
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric

from ganinf_mlops import keys
from ganinf_mlops.data.version import DatasetVersion
from ganinf_mlops.errors import Terminated, TrackingError
from ganinf_mlops.tracking import figures, notes
from ganinf_mlops.tracking.datasets import log_version
from ganinf_mlops.train.rundir import RunDir


def default_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else MLflow 3's default, sqlite:///$PWD/mlflow.db, except in
    a DVC stage: at the repository's root ($DVC_ROOT), where `dvc exp run --queue` points it
    too, rather than in the experiment's temporary workspace that DVC deletes afterwards."""
    root = Path(os.environ.get("DVC_ROOT") or Path.cwd())
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"


def reading_client() -> MlflowClient:
    """A client of the configured store, checked usable first (for commands that read runs)."""
    uri = default_tracking_uri()
    check_tracking_uri(uri)
    return MlflowClient(uri)


def check_tracking_uri(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, naming the URI, before any work is done or any file written."""
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
                pass
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TrackingError(f"MLflow tracking server {uri} is unreachable ({reason})") from None
    if scheme == "sqlite":
        _check_sqlite_path(uri)
    try:
        with _quick_requests(), _store_init_lock(uri):
            MlflowClient(uri).search_experiments(max_results=1)
    except Exception as exc:  # MLflow raises many kinds; all mean "unusable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrackingError(f"cannot use MLflow tracking URI {uri}: {first[:300]}") from None


_SQLITE_HEADER = b"SQLite format 3\x00"


def _check_sqlite_path(uri: str) -> None:
    """The file of a sqlite store, checked by hand: MLflow retries for minutes (about 115 s for
    a directory or a read-only one, 27 s for a file that is not a database) before failing."""
    path = urlparse(uri).path
    if not path or path in ("/", "/:memory:"):
        return
    db = Path(path[1:])  # sqlite:///rel.db is relative, sqlite:////abs absolute

    def refuse(why: str) -> TrackingError:
        return TrackingError(f"cannot use MLflow tracking URI {uri}: {db} {why}")

    if db.is_dir():
        raise refuse("is a directory")
    if db.exists():
        if not db.is_file():
            raise refuse("is not a regular file")
        try:
            with db.open("rb") as fh:
                head = fh.read(len(_SQLITE_HEADER))
        except OSError as exc:
            raise refuse(f"cannot be read ({exc.strerror})") from None
        if head and head != _SQLITE_HEADER:  # an empty file is a new database to SQLite
            raise refuse("is not a SQLite database")
        if not os.access(db, os.W_OK):
            raise refuse("is not writable")
        return
    parent = db.parent if str(db.parent) else Path(".")
    if not parent.is_dir():
        raise refuse(f"cannot be created: its directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        ro = os.statvfs(parent).f_flag & os.ST_RDONLY
        raise refuse(f"cannot be written: its directory {parent} is not writable" +
                      (" (Read-only file system)" if ro else ""))  # fmt: skip


# The check's requests: a server whose /health answers but whose API fails would otherwise be
# retried for minutes (MLflow's defaults: 7 retries, 120 s timeout) before anything is said.
_CHECK_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


@contextlib.contextmanager
def _quick_requests() -> Iterator[None]:
    """The check's HTTP limits, unless the user set them; restored after the check."""
    saved = {k: os.environ.get(k) for k in _CHECK_HTTP}
    os.environ.update({k: v for k, v in _CHECK_HTTP.items() if saved[k] is None})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)


@contextlib.contextmanager
def _store_init_lock(uri: str) -> Iterator[None]:
    """Two first commands on a new sqlite store would both create its tables, and one fail
    ("table ... already exists"): the first connection is made under a file lock."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite" or not parsed.path or parsed.path in ("/", "/:memory:"):
        yield
        return
    import hashlib
    import tempfile

    from filelock import FileLock

    db = Path(parsed.path[1:]).resolve()  # sqlite:///rel.db is relative, sqlite:////abs absolute
    # In the temp dir, keyed by the database's path: no lock file next to the user's store.
    key = hashlib.sha256(str(db).encode()).hexdigest()[:16]
    with FileLock(str(Path(tempfile.gettempdir()) / f"ganinf-store-{key}.lock"), timeout=120):
        yield


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params as dotted keys; tuples as lists, so every run prints them alike."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = list(v) if isinstance(v, tuple) else v
    return out


class RunLog:
    """What the open runs have logged and will be described by."""

    def __init__(self, client: MlflowClient) -> None:
        self.client = client
        self._step = 0  # the step summary metrics go to: the iteration index inside a job
        self._logged: set[tuple[str, str, int]] = set()  # (run, key, step): each logged once
        self._notes: list[list[str]] = []  # description lines of the open runs, innermost last
        self._details: dict[str, Any] = {}  # side numbers of the open iteration or stage run
        # Local run directory -> runs:/<id>/<artifact path> it was logged to (by this process).
        self._trajectory_uris: dict[Path, str] = {}

    @contextlib.contextmanager
    def _described(self, head: str | None) -> Iterator[None]:
        """Around the active run: collect its description lines and set them at its end (on
        failure with what was done so far; `head` None: the run sets its own). A run stopped by
        SIGTERM or Ctrl-C ends KILLED, not FAILED."""
        run_id = mlflow.active_run().info.run_id
        self._notes.append([] if head is None else [head])
        try:
            yield
        except (Terminated, KeyboardInterrupt):
            self._end_killed(run_id)
            raise
        finally:
            lines = self._notes.pop()
            if lines:
                self.client.set_tag(run_id, notes.NOTE, "\n".join(lines))

    def _end_killed(self, run_id: str) -> None:
        active = mlflow.active_run()
        if active is not None and active.info.run_id == run_id:
            mlflow.end_run("KILLED")  # MLflow's own __exit__ then finds it ended
        else:
            self.client.set_terminated(run_id, "KILLED")

    def _note(self, line: str) -> None:
        if self._notes:
            self._notes[-1].append(line)

    def _log_metrics(self, values: dict[str, Any], step: int | None = None) -> None:
        """Log at `step` (default: the iteration's), each (run, key, step) at most once."""
        run = mlflow.active_run()
        if run is None:
            return
        step = self._step if step is None else step
        fresh = {}
        for k, v in values.items():
            name = keys.tracking_name(k)
            if v is not None and (run.info.run_id, name, step) not in self._logged:
                self._logged.add((run.info.run_id, name, step))
                fresh[name] = float(v)
        if fresh:
            mlflow.log_metrics(fresh, step=step)

    def _flush_details(self) -> None:
        if self._details and mlflow.active_run() is not None:
            mlflow.log_dict(self._details, "details.json")
        self._details = {}

    def _figure(self, fig, name: str) -> None:
        # Top-level, the same name in every run: MLflow's compare view matches artifacts by path.
        mlflow.log_figure(fig, name)
        figures.plt.close(fig)

    def _describe_experiment(self, exp) -> None:
        """The glossary as the experiment's description and our default runs-table columns as a
        shared view (`notes.ui_path`), unless a user set them."""
        for key, value in ((notes.NOTE, notes.glossary), (notes.VIEW_TAG, notes.view_state)):
            if key in exp.tags:
                continue
            try:
                self.client.set_experiment_tag(exp.experiment_id, key, value())
            except mlflow.exceptions.MlflowException:
                # Several first commands at once: one of them set it (a server on PostgreSQL
                # refuses the second insert); anything else is for the user to see.
                if key not in self.client.get_experiment(exp.experiment_id).tags:
                    raise

    def _log_input(self, version: DatasetVersion, context: str) -> None:
        log_version(version, context=context)

    def _log_losses(self, run: RunDir) -> None:
        names, losses = run.losses()
        now = int(time.time() * 1000)
        metrics = [
            Metric(name, float(value), now, step)
            for step, row in enumerate(losses)
            for name, value in zip(names, row, strict=True)
        ]
        run_id = mlflow.active_run().info.run_id
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[i : i + 1000])
