"""`cli.options`: click options derived from dataclass fields, and `overrides`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import click
import pytest
from click.testing import CliRunner

from ganinf_mlops.cli.options import field_options, overrides
from ganinf_mlops.config import JobOptions, get_preset
from ganinf_mlops.errors import ConfigError


@dataclass(frozen=True)
class Opts:
    count: int = field(default=3, metadata={"help": "How many.", "min": 1})
    frac: float = field(default=0.5, metadata={"help": "Which fraction."})
    fast: bool = field(default=False, metadata={"help": "Go fast."})
    keep: bool = field(default=True, metadata={"help": "Keep it.", "flag": "--no-keep"})
    last: int | None = field(default=None, metadata={"help": "Only the last K."})
    name: str = field(default="a", metadata={"help": "A name.", "choices": ("a", "b")})
    note: str = field(default="", metadata={})


def _command(**custom):
    @click.command()
    @field_options(Opts, "count", "frac", "fast", into="opts", default="the config's {name}")
    @click.option("--other", default=0, type=int)
    @field_options(Opts, "keep", "last", "name", into="opts", **custom)
    def cmd(opts, other):
        click.echo(repr((overrides(Opts(), opts), other)))

    return cmd


def _run(args, **custom):
    result = CliRunner().invoke(_command(**custom), args)
    assert result.exit_code == 0, result.output
    return result.output


def test_nothing_given_keeps_every_field():
    assert _run([]) == repr((Opts(), 0)) + "\n"


def test_given_values_replace_fields_of_their_types():
    args = ["--count", "5", "--frac", "0.25", "--fast", "--no-keep", "--last", "2", "--name", "b"]
    expected = Opts(count=5, frac=0.25, fast=True, keep=False, last=2, name="b")
    assert _run([*args, "--other", "7"]) == repr((expected, 7)) + "\n"
    assert _run(["--no-fast"]) == repr((Opts(fast=False), 0)) + "\n"


def test_help_comes_from_the_metadata_in_the_fields_order():
    text = _run(["--help"])
    assert text.index("--count") < text.index("--frac") < text.index("--fast / --no-fast")
    assert text.index("--fast") < text.index("--other") < text.index("--no-keep")
    assert "How many. Default: the config's count." in text
    assert "Keep it." in text and "--keep" not in text.replace("--no-keep", "")
    assert "[a|b]" in text and "[x>=1]" in text


def test_types_are_checked_by_click():
    result = CliRunner().invoke(_command(), ["--count", "0"])
    assert result.exit_code == 2 and "0 is not in the range x>=1" in result.output
    result = CliRunner().invoke(_command(), ["--name", "c"])
    assert result.exit_code == 2


def test_custom_names_types_help_and_keys():
    custom = {"last": {"decls": ("--tail",), "type": click.IntRange(min=4), "key": "tail_k"}}
    cmd = _command(name={"help": "{help} Here: b."}, **custom)
    result = CliRunner().invoke(cmd, ["--help"])
    assert "--tail INTEGER RANGE" in result.output and "A name. Here: b." in result.output

    @click.command()
    @field_options(Opts, "last", into="opts", last={"key": "tail_k"})
    def keyed(opts):
        click.echo(repr(opts))

    assert CliRunner().invoke(keyed, ["--last", "5"]).output == "{'tail_k': 5}\n"


def test_a_field_without_help_or_unknown_is_refused():
    with pytest.raises(TypeError, match="Opts.note has no help"):
        field_options(Opts, "note", into="opts")
    with pytest.raises(TypeError, match="no field 'nope'"):
        field_options(Opts, "nope", into="opts")


def test_every_job_option_has_help():
    for f in dataclasses.fields(JobOptions):
        assert f.metadata.get("help"), f.name


def test_overrides_replaces_only_given_values_and_checks_the_result():
    job = get_preset("tiny").job
    changed = overrides(job, {"iterations": 7, "loo": None, "method": "disc_loss"})
    assert changed == dataclasses.replace(job, iterations=7, method="disc_loss")
    assert changed.loo == job.loo == 12 and job.iterations == 2  # the original is untouched
    assert overrides(job, {}) is job
    assert overrides(job, {"stop_when_worse": False}).stop_when_worse is False
    with pytest.raises(ConfigError, match="remove_frac"):
        overrides(job, {"remove_frac": 2.0})
    with pytest.raises(ConfigError, match="remove_frac"):
        overrides(JobOptions(), {"remove_frac": 2.0})
