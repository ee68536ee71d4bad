"""`ganinf push`: dataset versions to the DVC remote, and their DVC source into the MLflow runs."""

from __future__ import annotations

import re
from pathlib import Path

import click

from ganinf_mlops.cli.common import EXISTING_DIR, cli
from ganinf_mlops.errors import ConfigError

# The git URL forms --repo may take: a plain path, file://, https://, ssh:// or scp-like
# user@host:path. Others (ext::, fd::, an option-like "-u...") make git run commands.
_URL = re.compile(r"(?:file|https|ssh)://[^\s]+|[\w.-]+@[\w.-]+:[^\s]+")


def check_repo_url(url: str) -> str:
    """`url` when it is a plain path or a file, https, ssh or scp-like git URL (ConfigError)."""
    plain_path = "://" not in url and "::" not in url and ":" not in url.split("/")[0]
    if url.startswith("-") or not (_URL.fullmatch(url) or (plain_path and url.strip())):
        raise ConfigError(
            f"--repo {url!r}: give a path or a file://, https://, ssh:// or user@host:path URL"
        )
    return url


@cli.command("push")
@click.argument("versions", nargs=-1, required=True, type=EXISTING_DIR)
@click.option("--remote", help="DVC remote to push to (default: the repository's default remote).")
@click.option(
    "--repo",
    "repo_url",
    help="Git URL recorded for fetching (default: origin's URL, whose branches must hold HEAD; "
    "without origin, the repository's path).",
)
def push_cmd(versions: tuple[Path, ...], remote: str | None, repo_url: str | None) -> None:
    """Push committed dataset versions to the DVC remote and record, in every MLflow run that
    read one, where it can be fetched again (a dvc:// input at the commit).

    Commit the versions first (`dvc add DIR` or `dvc repro`, `git commit`, `git push`); then
    `ganinf influence --run runs:/<run_id>` works from any machine that reaches the tracking
    server, the git repository and the DVC remote.
    """
    from ganinf_mlops.tracking.publish import push_versions

    if repo_url is not None:
        check_repo_url(repo_url)
    from ganinf_mlops.tracking.run_log import reading_client

    pushed = push_versions(list(versions), remote=remote, repo_url=repo_url,
                           client=reading_client())  # fmt: skip
    for p in pushed:
        click.echo(f"{p.version.path}: {p.version.digest[:12]} -> {p.uri} "
                   f"({len(p.runs)} run(s) linked)")  # fmt: skip
