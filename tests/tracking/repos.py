"""A git+DVC project for tests: the commands, a fresh project, committing a job's versions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any


def run(cwd: Path, *cmd: str) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"{cmd}: {done.stdout}{done.stderr}"
    return done.stdout.strip()


def git(cwd: Path, *args: str) -> str:
    return run(cwd, "git", "-c", "user.name=t", "-c", "user.email=t@t", *args)


def dvc(cwd: Path, *args: str) -> str:
    return run(cwd, sys.executable, "-m", "dvc", *args)


def init_project(
    proj: Path, remote: str, endpoint: str | None = None, origin: Path | None = None
) -> None:
    """git + DVC in `proj` (created) with default DVC remote `store` at `remote` (an S3 one
    served at `endpoint`), and `origin` as its git remote when given."""
    proj.mkdir()
    git(proj, "init", "-q", "-b", "main")
    if origin is not None:
        git(proj, "remote", "add", "origin", origin.as_uri())
    dvc(proj, "init", "-q")
    dvc(proj, "remote", "add", "-d", "store", remote)
    if endpoint is not None:
        dvc(proj, "remote", "modify", "store", "endpointurl", endpoint)


def commit_versions(proj: Path, *versions: str) -> None:
    """`dvc add` the job's versions (`job/data/<name>`) and commit what tracks them."""
    paths = [f"job/data/{v}" for v in versions]
    dvc(proj, "add", "-q", *paths)
    git(proj, "add", ".dvc", *(f"{p}.dvc" for p in paths), "job/data/.gitignore")
    git(proj, "commit", "-q", "-m", f"dataset versions {', '.join(versions)}")


def loop_iteration_one(client: Any, experiment: str, command: str = "loop") -> Any:
    """Run a one-iteration tiny job (`ganinf loop`, or `run`) into `job/` (cwd) under MLflow
    `experiment`; its iteration-1 run, as `client` reads it."""
    from ganinf_mlops.cli import main
    from ganinf_mlops.tracking import tags

    main(["-q", command, "--preset", "tiny", "--iterations", "1", "--loo", "0",
          "--out", "job", "--experiment", experiment])  # fmt: skip
    exp = client.get_experiment_by_name(experiment)
    (it1,) = client.search_runs([exp.experiment_id], f"tags.`{tags.ITERATION}` = '1'")
    return it1
