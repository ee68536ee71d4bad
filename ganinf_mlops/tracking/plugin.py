"""MLflow run-context plugin: every run started inside a ganinf project records where it came from.

MLflow loads `GaninfRunContextProvider` through the `mlflow.run_context_provider` entry point when
it builds its provider registry (on import of `mlflow.tracking.context.registry`), and calls
`in_context()` then `tags()` on every fluent `mlflow.start_run()`. Installing the package thus
affects every MLflow user in the environment: this module imports nothing heavy at load time
(numpy and our data code only once a dataset version is tagged), and neither method ever raises;
a failure is logged at debug level and drops only the tags it concerns.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml
from mlflow.tracking.context.abstract_context import RunContextProvider

from ganinf_mlops.tracking import tags as T

log = logging.getLogger(__name__)

MAX_TAG_KEY = 250  # mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH
_GIT_TIMEOUT_S = 5.0
# MLflow accepts tag keys of word characters, / . - space (and ':' except on Windows).
_BAD_KEY_CHARS = re.compile(r"[^/\w.\- ]")


def _is_project(path: Path) -> bool:
    """A ganinf project: dvc.yaml next to a params.yaml with `train` and `job` sections."""
    if not (path / "dvc.yaml").is_file() or not (path / "params.yaml").is_file():
        return False
    try:
        params = yaml.safe_load((path / "params.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        log.debug("ganinf plugin: unreadable %s: %s", path / "params.yaml", e)
        return False
    return isinstance(params, dict) and "train" in params and "job" in params


def find_project(cwd: Path | None = None) -> Path | None:
    """The project root: $GANINF_PROJECT if it names a directory, else the nearest project
    among the cwd and its ancestors; None outside a project."""
    marked = os.environ.get(T.ENV_PROJECT)
    if marked and Path(marked).is_dir():
        return Path(marked).resolve()
    start = (cwd or Path.cwd()).resolve()
    return next((p for p in (start, *start.parents) if _is_project(p)), None)


# A repository's config can name commands that git runs on `status` (core.fsmonitor); the plugin
# runs inside every MLflow user's start_run, so it never lets a repository run one, and never
# takes git's index lock.
_SAFE_GIT = ("-c", "core.fsmonitor=false", "-c", "core.untrackedCache=false")


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *_SAFE_GIT, *args],
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
            cwd=root,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as e:
        log.debug("ganinf plugin: git %s failed: %s", " ".join(args), e)
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_tags(root: Path) -> dict[str, str]:
    commit = _git(root, "rev-parse", "HEAD")
    if not commit:  # not a git repo, or one without commits
        return {}
    # Untracked files do not count (as in `git describe --dirty`): outputs such as mlflow.db or
    # ./mlruns would otherwise mark every run dirty.
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    # MLflow's own git context only sees the entry point's repository (the installed `ganinf`
    # script lives in the venv), so its Version field would stay empty: fill it from the project.
    out = {T.GIT_COMMIT: commit, "mlflow.source.git.commit": commit}
    if status is not None:
        out[T.GIT_DIRTY] = "true" if status else "false"
    return out


def dvc_tag_key(stage: str, path: str) -> str:
    """`ganinf.dvc.<stage>.<path>`, made a valid MLflow tag key of at most 250 characters."""
    # MLflow also rejects keys that normpath would change ('a/../b', './x', trailing '/').
    path = posixpath.normpath(path.replace("\\", "/")).lstrip("/")
    key = _BAD_KEY_CHARS.sub("_", f"{T.DVC_PREFIX}{stage}.{path}")  # e.g. foreach 'train@0'
    if len(key) > MAX_TAG_KEY:
        # Keep long keys distinct after truncation: the tail becomes a hash of the whole key.
        suffix = "-" + hashlib.sha256(key.encode()).hexdigest()[:8]
        key = key[: MAX_TAG_KEY - len(suffix)].rstrip("/") + suffix
    return key


def dvc_lock_tags(root: Path) -> dict[str, str]:
    """One tag per out of every stage in dvc.lock: its md5 (or etag/checksum for cloud outs)."""
    lock_path = root / "dvc.lock"
    if not lock_path.is_file():
        return {}
    lock = yaml.safe_load(lock_path.read_text(encoding="utf-8"))
    stages = lock.get("stages") if isinstance(lock, dict) else None
    out: dict[str, str] = {}
    for stage, body in (stages or {}).items():
        outs = body.get("outs") if isinstance(body, dict) else None
        for entry in outs or []:
            if not isinstance(entry, dict) or "path" not in entry:
                continue
            value = entry.get("md5") or entry.get("etag") or entry.get("checksum")
            if value:
                out[dvc_tag_key(str(stage), str(entry["path"]))] = str(value)
    return out


def dataset_tags(version_dir: Path) -> dict[str, str]:
    """Digest, parent and lineage depth of the version in $GANINF_DATA.

    The digests come from manifest.json as recorded (no re-hash of the head's data); the depth
    walks `lineage`, which verifies each ancestor, and is "broken" when that chain fails.
    """
    # Imported here so that loading the plugin stays cheap for every MLflow user.
    from ganinf_mlops.data.lineage import lineage
    from ganinf_mlops.data.version import load_version, read_manifest

    manifest = read_manifest(version_dir)
    out = T.input_tags(manifest.digest, manifest.parent_digest)
    try:
        depth: str = str(len(lineage(load_version(version_dir, verify=False))) - 1)
    except Exception as e:  # whatever stops the chain from verifying breaks it
        log.debug("ganinf plugin: lineage of %s: %s", version_dir, e)
        depth = "broken"
    out[T.LINEAGE_DEPTH] = depth
    return out


class GaninfRunContextProvider(RunContextProvider):
    """Tags a run with the project's git commit, dvc.lock hashes and current dataset version."""

    def in_context(self) -> bool:
        try:
            return find_project() is not None
        except Exception as e:  # a plugin must never break start_run
            log.debug("ganinf plugin: in_context failed: %s", e)
            return False

    def tags(self) -> dict[str, str]:
        try:
            root = find_project()
        except Exception as e:
            log.debug("ganinf plugin: no project: %s", e)
            return {}
        if root is None:
            return {}
        out: dict[str, str] = {}
        parts: list[tuple[str, Callable[[Path], dict[str, str]]]] = [
            ("git", git_tags),
            ("dvc.lock", dvc_lock_tags),
        ]
        for what, fn in parts:
            try:
                out.update(fn(root))
            except Exception as e:
                log.debug("ganinf plugin: %s tags skipped: %s", what, e)
        data = os.environ.get(T.ENV_DATA)
        if data:
            try:
                out.update(dataset_tags(Path(data)))  # relative to the cwd
            except Exception as e:
                log.debug("ganinf plugin: dataset tags skipped for %s: %s", data, e)
        return out
