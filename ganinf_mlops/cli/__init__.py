"""The `ganinf` command line: parses options, builds configs, calls the library, prints results.

Errors from bad input (our GaninfError types) print one line and exit with status 2.
"""

from __future__ import annotations

import signal
import sys
import threading

import click

# Commands register themselves on `cli` when their modules are imported.
from ganinf_mlops.cli import (  # noqa: F401
    data,
    evaluate,
    features,
    gate,
    influence,
    job,
    lineage,
    push,
    train,
)
from ganinf_mlops.cli.common import cli
from ganinf_mlops.errors import GaninfError, Terminated


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> None:
    # SIGTERM unwinds like Ctrl-C: temp outputs removed, a training run kept for --resume,
    # MLflow runs marked KILLED.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        cli.main(args=argv, prog_name="ganinf", standalone_mode=False)
    except GaninfError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        # Disk full, read-only file system, a file where a directory should be: one line, and
        # atomic writes have already removed their temp files.
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"error: {exc.strerror or exc}{where}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Terminated:
        command = _command(sys.argv[1:] if argv is None else argv)
        hint = ""
        if command in _RESUMABLE:  # the others leave nothing to continue
            hint = f"; `ganinf {command} --resume` continues it"
        click.echo(f"error: terminated (SIGTERM){hint}", err=True)
        sys.exit(143)


_RESUMABLE = ("train", "loop", "run")


def _command(argv: list[str]) -> str | None:
    """The subcommand named in `argv` (its first word that is one)."""
    return next((a for a in argv if a in cli.commands), None)


if __name__ == "__main__":
    main()
