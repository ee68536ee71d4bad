"""A run on a tracking server, made local again: `runs:/<run_id>` -> trajectory + dataset version.

`fetch_run` downloads the run's trajectory artifacts (through the server, wherever it keeps them:
a directory, S3, ...) and re-materialises the dataset version it was trained on from the run's
logged inputs, preferring a DVC source (`ganinf push` records one) over a local path. Both are
checked: the version's content digest must be the one the trajectory was recorded on, and the
trajectory's files their recorded digests (train/rundir.py: integrity.json). The run's own score
table settings come along, so `influence --run runs:/ID` recomputes what the run logged.

A fetch directory holds one run: `fetched.json` records which (run id and artifact path), and a
later fetch of another run into it is refused (naming both) instead of reusing it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ganinf_mlops.data.version import DatasetVersion, load_version
from ganinf_mlops.errors import DataError, TrackingError
from ganinf_mlops.io import publish_dir, read_json, write_json
from ganinf_mlops.tracking import tags as T

SCHEME = "runs:/"
TRAJECTORY = "trajectory"  # artifact path of a run's main trajectory (RunLog.trained)
CLASSIFIER_ARTIFACT = "classifier"  # an image run's feature classifier (FID/IS), beside it
_RUN_URI = re.compile(r"^runs:/([0-9A-Za-z_-]+)(?:/(.+?))?/?$")
# Where a dataset input can be fetched from, best first: a DVC source works on any machine that
# reaches the git repo and the DVC remote; a local path only where it still exists.
_SOURCE_PREFERENCE = ("dvc", "local")
FETCHED = "fetched.json"  # which run a fetch directory holds


@dataclasses.dataclass(frozen=True)
class FetchedRun:
    run_id: str
    run_dir: Path  # the trajectory, as a run directory
    version: DatasetVersion  # the dataset version it was trained on, digest-checked
    scoring: dict[str, Any] | None  # the sidecar of the score table the run logged, if one


def is_run_uri(value: str) -> bool:
    return value.startswith(SCHEME)


def parse_run_uri(uri: str) -> tuple[str, str]:
    """`runs:/<run_id>[/<artifact path>]` -> (run_id, artifact path, default "trajectory")."""
    m = _RUN_URI.match(uri)
    if m is None:
        raise DataError(f"{uri!r}: expected runs:/<run_id>[/<artifact path>]")
    return m.group(1), m.group(2) or TRAJECTORY


def fetch_run(uri: str, dst: Path, client: Any = None) -> FetchedRun:
    """Fetch `uri` into `dst` (`dst/trajectory`, `dst/data/<version>`), or reuse what an earlier
    fetch left there: `dst` appears only once complete, and both parts are re-checked on load.

    `runs:/ID` alone names a run's scoring when it scored a trajectory that another run logged
    (a loop iteration scores the previous iteration's run: tag ganinf.scored_trajectory); then
    that trajectory is fetched, and ID's score table supplies the settings.
    """
    from mlflow import MlflowClient

    from ganinf_mlops.train.rundir import RunDir

    run_id, artifact_path = parse_run_uri(uri)
    held = {"run_id": run_id, "artifact_path": artifact_path}  # what was asked for
    client = client or MlflowClient()
    run = _get_run(client, run_id, uri)
    traj_run = run
    scored = run.data.tags.get(T.SCORED_TRAJECTORY)
    named_path = uri.rstrip("/") != f"{SCHEME}{run_id}"
    if scored and not named_path:
        traj_id, artifact_path = parse_run_uri(scored)
        traj_run = _get_run(client, traj_id, scored)
    if dst.exists():
        _check_held(dst, held)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent))
        try:
            traj = _download(client, traj_run.info.run_id, artifact_path, tmp, uri)
            recorded = RunDir(traj).verify()
            if recorded.meta.get("classifier_path") is not None:
                _fetch_classifier(client, traj_run.info.run_id, recorded.meta, traj, tmp, uri)
            digest = recorded.dataset_digest
            inputs = [*traj_run.inputs.dataset_inputs, *run.inputs.dataset_inputs]
            _fetch_version(inputs, digest, tmp / "data", uri)
            scoring = _score_sidecar(client, run, digest, tmp)
            (tmp / "scoring.json").write_text(json.dumps(scoring, indent=2, sort_keys=True))
            write_json(tmp / FETCHED, held)
            publish_dir(tmp, dst, force=False)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    run_dir = dst / TRAJECTORY
    traj = RunDir(run_dir)
    (version_dir,) = [p for p in (dst / "data").iterdir() if p.is_dir()]
    version = load_version(version_dir)
    traj.check_dataset(version.digest, f" than {version_dir}")
    scoring = json.loads((dst / "scoring.json").read_text())
    return FetchedRun(run_id, run_dir, version, scoring)


def _held_uri(held: dict[str, Any]) -> str:
    return f"{SCHEME}{held.get('run_id')}/{held.get('artifact_path')}"


def _check_held(dst: Path, held: dict[str, Any]) -> None:
    """Refuse to reuse the fetch directory `dst` unless it holds the run `held` names."""
    if not (dst / FETCHED).is_file():
        raise DataError(
            f"fetch directory {dst} holds no record of the run it holds ({FETCHED}): "
            f"give another --fetch-dir for {_held_uri(held)}"
        )
    recorded = read_json(dst / FETCHED, f"fetch directory {dst}:")
    if recorded != held:
        shown = _held_uri(recorded) if isinstance(recorded, dict) else repr(recorded)
        raise DataError(
            f"fetch directory {dst} holds {shown}, not {_held_uri(held)}: give another --fetch-dir"
        )


def _get_run(client: Any, run_id: str, uri: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as e:
        raise TrackingError(f"{uri}: {e.message}") from None


def _artifact(client: Any, run_id: str, path: str, tmp: Path, uri: str, missing: str) -> Path:
    """Download the run's artifacts under `path` into `tmp`; DataError `missing` when it has
    none, one-line TrackingError when the artifact store fails."""
    if not client.list_artifacts(run_id, path):
        raise DataError(f"{uri}: {missing}")
    try:
        return Path(client.download_artifacts(run_id, path, str(tmp)))
    except Exception as e:  # the artifact store's own errors (HTTP, S3, file system)
        raise TrackingError(f"{uri}: cannot download {path!r}: {e}") from None


def _download(client: Any, run_id: str, artifact_path: str, tmp: Path, uri: str) -> Path:
    missing = f"the run has no artifacts under {artifact_path!r}"
    local = _artifact(client, run_id, artifact_path, tmp, uri, missing)
    traj = tmp / TRAJECTORY
    if local != traj:
        local.rename(traj)
    return traj


def _fetch_classifier(
    client: Any, run_id: str, meta: dict[str, Any], traj: Path, tmp: Path, uri: str
) -> None:
    """Download the run's feature classifier and point the fetched copy's meta.json at it
    (`RunDir.problem` still checks its digest against the one the run recorded)."""
    missing = "an image run whose feature classifier was not logged with it"
    from ganinf_mlops.train.rundir import rewrite_meta

    local = _artifact(client, run_id, CLASSIFIER_ARTIFACT, tmp, uri, missing)
    rewrite_meta(traj, {**meta, "classifier_path": os.path.relpath(local, traj)})


def _fetch_version(inputs: list[Any], digest: str, dst: Path, uri: str) -> DatasetVersion:
    """Restore the logged input with `digest` from the best source that works."""
    from ganinf_mlops.tracking.datasets import input_source, restore_input

    candidates = []
    for d in inputs:
        tags = {t.key: t.value for t in d.tags}
        full = tags.get(T.DATASET_SHA256) or ""
        if full == digest or (not full and digest.startswith(d.dataset.digest)):
            kind = d.dataset.source_type
            if kind in _SOURCE_PREFERENCE:
                candidates.append((_SOURCE_PREFERENCE.index(kind), d))
    if not candidates:
        raise DataError(
            f"{uri}: the run logged no fetchable input with the trajectory's dataset digest "
            f"{digest[:12]} (record a DVC source with `ganinf push`)"
        )
    failures = []
    for _, d in sorted(candidates, key=lambda c: c[0]):
        if d.dataset.source_type == "local" and not Path(input_source(d).uri).is_dir():
            failures.append(f"{input_source(d).uri}: not on this machine")
            continue
        try:
            dst.mkdir(exist_ok=True)
            return restore_input(d, str(dst))
        except DataError as e:
            failures.append(str(e))
    raise DataError(
        f"{uri}: cannot fetch the dataset version: {'; '.join(dict.fromkeys(failures))} "
        "(record a DVC source with `ganinf push`)"
    )


def _score_sidecar(client: Any, run: Any, digest: str, tmp: Path) -> dict[str, Any] | None:
    """The sidecar of the score table the run logged for this trajectory's data, if exactly one
    (several: the one of the run's method tag)."""
    from ganinf_mlops.influence.scores import META_SUFFIX

    run_id = run.info.run_id
    sidecars = [a.path for a in client.list_artifacts(run_id, "scores") if
                a.path.endswith(META_SUFFIX)]  # fmt: skip
    found = []
    for path in sidecars:
        local = Path(client.download_artifacts(run_id, path, str(tmp / "scores")))
        meta = json.loads(local.read_text())
        if isinstance(meta, dict) and meta.get("dataset_digest") == digest:
            found.append(meta)
    if len(found) > 1:
        found = [m for m in found if m.get("method") == run.data.tags.get(T.METHOD)]
    return found[0] if len(found) == 1 else None
