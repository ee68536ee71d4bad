"""Click options derived from dataclass fields, and `overrides` that applies what was given.

A config dataclass (`JobOptions`, `TrainConfig`, `ScoringOptions`) states each field's help once,
in `field(metadata={"help": ...})`; `field_options` turns chosen fields into click options and
hands the command the given ones as one dict, which `overrides` applies to the config's value:

    @field_options(JobOptions, "loo", "seed", into="job", default="the config's job.{name}")
    def cmd(job: dict[str, Any], ...):
        options = overrides(config.job, job)

Field metadata the mapper reads (all but "help" optional):
  help     the option's help text (required: a field without it is refused)
  min      lower bound of an int or float option (click.IntRange / FloatRange)
  choices  the allowed strings (click.Choice)
  flag     a one-way flag instead of `--x/--no-x`: given, it sets the field to the opposite of
           its default (e.g. "--no-checkpointing" for `checkpointed: bool = True`)
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from ganinf_mlops.cli.common import PRESET_HELP, BlankOr, config_options, info, load_config
from ganinf_mlops.config import JobOptions, Preset

C = TypeVar("C")
Changes = dict[str, Any]  # the fields a command was given, by name (None: not given)


def overrides(cfg: C, values: Mapping[str, Any]) -> C:
    """`cfg` with the non-None `values` replacing its fields (None keeps the config's value).
    The dataclass checks the result in its `__post_init__`."""
    given = {k: v for k, v in values.items() if v is not None}
    return dataclasses.replace(cfg, **given) if given else cfg  # type: ignore[type-var]


def field_options(
    cls: type,
    *names: str,
    into: str,
    default: str | None = None,
    blank: bool = False,
    **custom: dict[str, Any],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding a click option per field `names` of dataclass `cls`, in that order.

    The command receives the given ones (not None) as one dict, keyword `into`; several
    decorators with the same `into` (e.g. around other options, to keep the help's order)
    merge into one dict. Each option is `--kebab-name` (bools `--x/--no-x`, or the field's
    metadata "flag"), typed by the field's type hint, with default None ("keep the config's").
    `default` is appended to the help as "Default: ....", formatted with the field's `name`;
    `blank` lets "" mean None (MLproject parameters default to ""). `custom[name]` adapts one
    option to a command: `decls` (its names), `type` (a click type) or `help` (formatted with
    the field's `help`, e.g. "{help} Both networks."); `key` renames its entry in the dict.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = (set(names) | set(custom)) - set(fields)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")
    specs = [
        _option(fields[n], hints[n], into, default, blank, custom.get(n, {}), cls) for n in names
    ]
    keys = {f"{into}__{n}": custom.get(n, {}).get("key", n) for n in names}

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def command(**kwargs: Any) -> Any:
            given = {key: kwargs.pop(dest) for dest, key in keys.items()}
            given = {k: v for k, v in given.items() if v is not None}
            kwargs[into] = {**kwargs.get(into, {}), **given}
            return f(**kwargs)

        for spec in reversed(specs):  # click lists options in the reverse order of decoration
            command = spec(command)
        return command

    return decorate


def _option(
    f: dataclasses.Field,
    hint: Any,
    into: str,
    default: str | None,
    blank: bool,
    custom: dict[str, Any],
    cls: type,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The click.option of one field (see `field_options`)."""
    meta = f.metadata
    if not meta.get("help"):
        raise TypeError(f"{cls.__name__}.{f.name} has no help metadata: the CLI needs it")
    flag = "--" + f.name.replace("_", "-")
    dest = f"{into}__{f.name}"
    help_text = custom.get("help", "{help}").format(help=meta["help"])
    kind = _strip_optional(hint)
    kwargs: dict[str, Any] = {"default": None}
    if kind is bool and "flag" in meta:  # one-way: given, the opposite of the default
        decls = custom.get("decls", (meta["flag"],))
        kwargs.update(is_flag=True, flag_value=not f.default)
    else:
        if default is not None:
            help_text += f" Default: {default.format(name=f.name)}."
        if kind is bool:
            decls = custom.get("decls", (f"{flag}/--no-{flag[2:]}",))
        else:
            decls = custom.get("decls", (flag,))
            param_type = custom.get("type") or _click_type(kind, meta, f, cls)
            kwargs["type"] = BlankOr(param_type) if blank else param_type
    return click.option(*decls, dest, help=help_text, **kwargs)


def _strip_optional(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) and args else hint


def _click_type(kind: Any, meta: Mapping[str, Any], f: dataclasses.Field, cls: type) -> Any:
    if "choices" in meta:
        return click.Choice(list(meta["choices"]))
    if kind is int:
        return click.IntRange(min=meta["min"]) if "min" in meta else click.INT
    if kind is float:
        return click.FloatRange(min=meta["min"]) if "min" in meta else click.FLOAT
    if kind is str:
        return click.STRING
    raise TypeError(f"{cls.__name__}.{f.name}: no click option for type {kind!r}")


def config_given() -> bool:
    """Whether the running command was given --preset or --params (not the default preset): a
    command on an existing run then uses that config instead of the one the run recorded."""
    ctx = click.get_current_context()
    source = ctx.get_parameter_source("preset")
    return ctx.params.get("params_file") is not None or source not in (
        None,
        click.core.ParameterSource.DEFAULT,
    )


def job_of_run(run: Path, config: Preset, *, fetched: bool = False) -> JobOptions:
    """The job settings of a command on an existing `run` (`influence.options.job_for_run`):
    --preset/--params when given, else the ones the run recorded, else (an older run) the
    default preset's, said in a note. A fetched run's logged scoring settings stand in for the
    record (cli/influence.py `_logged`): no note then."""
    from ganinf_mlops.influence.options import job_for_run
    from ganinf_mlops.train.rundir import RunDir

    given = config.job if config_given() else None
    job, note = job_for_run(RunDir(run), given, config.job, f"preset {config.name}")
    if note is not None and not fetched:
        info(note)
    return job


def with_config(f: Callable[..., Any] | None = None, *, preset_help: str = PRESET_HELP) -> Any:
    """`--preset` and `--params` (`common.config_options`), handing the command the loaded
    config as `config` (a `Preset`); `with_config(preset_help=...)` words --preset's help."""
    if f is None:
        return functools.partial(with_config, preset_help=preset_help)

    @functools.wraps(f)
    def command(preset: str, params_file: Path | None, **kwargs: Any) -> Any:
        return f(config=load_config(preset, params_file), **kwargs)

    return config_options(command, preset_help)
