"""The command group and the options several commands share."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from ganinf_mlops.cli.guard import GuardedCommand, InputPath, RunRef  # noqa: F401 (RunRef)
from ganinf_mlops.config import Preset, get_preset
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.presets import PRESETS

EXISTING_DIR = InputPath(exists=True, file_okay=False, path_type=Path)


FORCE_OPTION = click.option("--force", is_flag=True, help="Replace the output if it exists.")


PRESET_HELP = "Named configuration that supplies the defaults."
# run/loop: with --input and no --preset/--params, the file's kind picks the preset.
PRESET_BY_INPUT_HELP = (
    "Named configuration that supplies the defaults (with --input and no --preset/--params: "
    "default for vectors, tabular for labelled vectors, an image preset for images)."
)


def config_options(f, preset_help: str = PRESET_HELP):
    """--preset NAME and --params FILE: where every default of the command comes from."""
    f = click.option(
        "--params",
        "params_file",
        type=InputPath(dir_okay=False, path_type=Path),
        help="params.yaml with every setting (see `ganinf params`); overrides --preset.",
    )(f)
    return click.option(
        "--preset",
        type=click.Choice(PRESETS.names()),
        default="default",
        show_default=True,
        help=preset_help,
    )(f)


def input_options(f):
    """--input FILE, --eval-input FILE and --label-column NAME: a user's own data file
    (`data.inputs.input_data`)."""
    f = click.option(
        "--label-column",
        metavar="NAME",
        help="The class-label column of a CSV/Parquet --input (integers or text, text mapped to "
        "0..C-1 in sorted order); every other column is a numeric feature.",
    )(f)
    f = click.option(
        "--eval-input",
        "eval_path",
        type=InputPath(exists=True, dir_okay=False, path_type=Path),
        help="A trusted evaluation set in the format of --input: the same feature columns or "
        "shape, labels iff --input has them (default: hold out 20% of --input, seed 0).",
    )(f)
    return click.option(
        "--input",
        "input_path",
        type=InputPath(exists=True, dir_okay=False, path_type=Path),
        help="Your data: an .npz (x [N, d] vectors, optional y [N] integer labels; or x [N, H, "
        "W] / [N, C, H, W] images), or a .csv/.parquet table. What it holds picks the source "
        "and, in run/loop without --preset/--params, the preset.",
    )(f)


def check_input_options(
    input_path: Path | None, eval_path: Path | None, label_column: str | None
) -> None:
    if input_path is None and (eval_path is not None or label_column is not None):
        given = "--eval-input" if eval_path is not None else "--label-column"
        raise ConfigError(f"{given} goes with --input FILE")


def load_config(preset: str, params_file: Path | None) -> Preset:
    from ganinf_mlops.params import load_params

    return load_params(params_file) if params_file is not None else get_preset(preset)


class GuardedGroup(click.Group):
    # Every command's path outputs are checked against its inputs before it runs (cli/guard.py).
    command_class = GuardedCommand


@click.group(
    cls=GuardedGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or info messages.")
@click.version_option(package_name="ganinf-mlops")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """Find the training instances that harm a GAN, remove them, and keep every step traceable.

    Typical flow: prepare -> train -> influence -> validate -> cleanse -> train --replay.
    `ganinf run` does all of it for a preset.
    """
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    ctx.obj = {"progress": not quiet}


def progress() -> bool:
    return click.get_current_context().find_root().obj["progress"]


def info(message: object) -> None:
    """An info line (a plan, a note) on stderr, keeping stdout for results; none with -q."""
    if progress():
        click.echo(str(message), err=True)


DEFAULT_TRACKING = "mlflow"  # the tracking backend that "on" means
OFF = ("0", "none", "false", "no", "off")  # GANINF_TRACKING values meaning off (any case)


def tracking_options(f):
    """--tracking/--no-tracking and --experiment: MLflow logging of the command."""
    f = click.option(
        "--experiment", default="ganinf", show_default=True, help="MLflow experiment name."
    )(f)
    return click.option(
        "--tracking/--no-tracking",
        default=None,
        help="Log to MLflow at MLFLOW_TRACKING_URI (default sqlite:///$PWD/mlflow.db). "
        "Default: on, unless the environment sets GANINF_TRACKING=0.",
    )(f)


def make_observer(tracking: bool | None, experiment: str):
    """The observer of the chosen tracking backend (`observer.OBSERVERS`), checked usable before
    any work: --no-tracking or GANINF_TRACKING=0 (or "none") chooses none; otherwise the backend
    GANINF_TRACKING names, else (GANINF_TRACKING=1, unset, any other value) MLflow."""
    import ganinf_mlops.tracking  # noqa: F401  (registers the backends; imports no mlflow)
    from ganinf_mlops.observer import NONE, OBSERVERS

    name = os.environ.get("GANINF_TRACKING", "1")
    if tracking is None:
        tracking = name.strip().lower() not in OFF
    name = name.strip().lower()
    if not tracking:
        name = NONE
    elif name == NONE or name not in OBSERVERS:
        name = DEFAULT_TRACKING
    return OBSERVERS.get(name)(experiment)


class BlankOr(click.ParamType):
    """`inner`, or None for an empty string: MLproject parameters default to "" so that an
    entry point passes no value of its own and the config's default applies."""

    def __init__(self, inner: click.ParamType) -> None:
        self.inner = inner
        self.name = inner.name

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value.strip() == "":
            return None
        return self.inner.convert(value, param, ctx)

    def get_metavar(self, param, ctx=None):  # click >= 8.2 passes ctx
        return self.inner.get_metavar(param, ctx) if ctx is not None else None


def parse_key_values(pairs: tuple[str, ...]) -> dict[str, object]:
    """KEY=VALUE pairs, VALUE parsed as JSON when it is JSON (numbers, lists), else a string."""
    import json

    from ganinf_mlops.bounded import check_json_depth

    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param expects KEY=VALUE, got {pair!r}")
        check_json_depth(value.encode("utf-8", "surrogatepass"), f"--param {key}", ConfigError)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def check_new_output(path: Path, force: bool) -> None:
    """Refuse an existing output before any work is done (unless --force)."""
    from ganinf_mlops.errors import OutputExistsError

    if path.exists() and not force:
        raise OutputExistsError(path)
    check_writable_location(path)


def check_writable_location(path: Path) -> None:
    """Refuse, before any work, an output whose directory cannot be made or written: its
    nearest existing ancestor must be a writable directory."""
    parent = Path(path).absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"cannot write {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        if os.statvfs(parent).f_flag & os.ST_RDONLY:
            raise ConfigError(f"cannot write {path}: Read-only file system ({parent})")
        raise ConfigError(f"cannot write {path}: its directory {parent} is not writable")
