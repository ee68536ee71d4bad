"""One overlap guard for every command: before a command does any work, no output path may
equal, contain or lie inside one of its input paths (with --force, writing it would destroy or
alter what the command reads).

Every path option says which it is by its type: `InputPath` (read), `OutputPath` (written) or
`RunRef` (a run directory or an MLflow `runs:/` URI, read). `GuardedCommand`, the command class
of the `ganinf` group, checks them all once the options are parsed; a bare `click.Path` is a
mistake that `tests/hostile/test_guard.py` finds in the click definitions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ganinf_mlops.errors import ConfigError
from ganinf_mlops.io import check_disjoint


class InputPath(click.Path):
    """A path the command reads."""

    role = "input"


class OutputPath(click.Path):
    """A path the command writes (a file, or a directory it creates or replaces)."""

    role = "output"


class RunRef(click.ParamType):
    """A run directory, or `runs:/<run_id>[/<artifact path>]` on the MLflow tracking server."""

    name = "RUN"
    role = "input"

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value.startswith("runs:/"):
            if ".." in value[len("runs:/") :].split("/"):
                raise ConfigError(f"{value}: a runs:/ URI may not climb out of its run (..)")
            return value
        return InputPath(exists=True, file_okay=False, path_type=Path).convert(value, param, ctx)


def role(param: click.Parameter) -> str | None:
    """ "input", "output" or None (not a path) for one of a command's parameters."""
    return getattr(param.type, "role", None)


def _paths(value: Any) -> list[Path]:
    values = value if isinstance(value, list | tuple) else [value]
    # MLflow URIs name no local path; the fetched copy goes to an OutputPath (--fetch-dir).
    return [Path(v) for v in values if v is not None and not str(v).startswith("runs:/")]


def check_command_paths(command: click.Command, params: dict[str, Any]) -> None:
    """Refuse any output of `command` (given `params`, as click parsed them) that overlaps one
    of its inputs or another of its outputs."""
    inputs: list[Path] = []
    outputs: list[tuple[str, Path]] = []
    for p in command.params:
        if p.name is None or p.name not in params:
            continue
        r = role(p)
        if r == "input":
            inputs += _paths(params[p.name])
        elif r == "output":
            outputs += [(p.name, path) for path in _paths(params[p.name])]
    for i, (_, out) in enumerate(outputs):
        others = [o for _, o in outputs[i + 1 :]]
        check_disjoint(out, *inputs, *others)


class GuardedCommand(click.Command):
    """A click command whose path outputs are checked against its inputs before it runs."""

    def invoke(self, ctx: click.Context) -> Any:
        check_command_paths(self, ctx.params)
        return super().invoke(ctx)
