"""One overlap guard for every command: no output may equal, contain or lie inside an input
(issue 24, items 1-4). Each refusal is one line, exit 2, and the inputs are left byte for byte."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from ganinf_mlops.cli import main


def ganinf(*args: str | Path) -> None:
    main(["-q", *map(str, args)])


def digest_tree(path: Path) -> dict[str, str]:
    """Every file under `path` (or `path` itself) by its sha256: what "left intact" means."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("guard")
    p = {"raw": d / "raw", "run": d / "run", "scores": d / "scores.csv"}
    ganinf("prepare", "--preset", "tiny", "--out", p["raw"])
    ganinf("train", "--preset", "tiny", "--data", p["raw"], "--out", p["run"])
    ganinf("influence", "--preset", "tiny", "--run", p["run"], "--method", "all",
           "--out", p["scores"])  # fmt: skip
    return p


@pytest.fixture
def flow(built, tmp_path) -> dict[str, Path]:
    """A copy of the built flow for each case: a guard that fails must not break the next."""
    shutil.copytree(built["raw"].parent, tmp_path / "flow")
    return {k: tmp_path / "flow" / v.name for k, v in built.items()}


def refused(capsys, flow: dict[str, Path], *args: str | Path) -> str:
    before = {k: digest_tree(v) for k, v in flow.items()}
    with pytest.raises(SystemExit) as exc:
        ganinf(*args, "--force")
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "overlaps" in err and len(err.splitlines()) == 1, err
    assert {k: digest_tree(v) for k, v in flow.items()} == before
    return err


CASES = {
    # 1: influence's --out onto its run or its data
    "influence-meta": lambda f: ("influence", "--preset", "tiny", "--run", f["run"],
                                 "--out", f["run"] / "meta.json"),
    "influence-data": lambda f: ("influence", "--preset", "tiny", "--run", f["run"],
                                 "--data", f["raw"], "--out", f["raw"] / "data.npz"),
    "influence-checkpoint": lambda f: (
        "influence", "--preset", "tiny", "--run", f["run"],
        "--out", next((f["run"] / "checkpoints").iterdir()),
    ),
    # 2: cleanse onto its own scores
    "cleanse-scores": lambda f: ("cleanse", "--data", f["raw"], "--scores", f["scores"],
                                 "--out", f["scores"]),
    # 3: report outputs onto the command's inputs
    "gate-report": lambda f: ("gate", "--preset", "tiny", "--data", f["raw"], "--run", f["run"],
                              "--scores", f["scores"], "--report", f["raw"] / "manifest.json"),
    "validate-out": lambda f: ("validate", "--preset", "tiny", "--run", f["run"],
                               "--scores", f["scores"], "--loo", "4",
                               "--out", f["run"] / "meta.json"),
    "evaluate-out": lambda f: ("evaluate", "--run", f["run"], "--out", f["run"] / "metrics.json"),
    "evaluate-plot": lambda f: ("evaluate", "--run", f["run"], "--out", f["raw"].parent / "m.json",
                                "--plot-data", f["run"] / "losses.csv"),
    # 4: train onto the run it retrains; members inside the scored run
    "train-retrain-of": lambda f: ("train", "--preset", "tiny", "--data", f["raw"],
                                   "--retrain-of", f["run"], "--out", f["run"]),
    "influence-members": lambda f: ("influence", "--preset", "tiny", "--run", f["run"],
                                    "--members", f["run"], "--out", f["raw"].parent / "m.csv"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_output_onto_an_input_is_refused_before_any_work(flow, capsys, case):
    refused(capsys, flow, *CASES[case](flow))


def _commands():
    from ganinf_mlops.cli import cli

    return sorted(cli.commands.items())


# Words of a parameter name that say it holds a path (a path option typed as text is found too).
PATHLIKE = ("out", "path", "dir", "file", "data", "run", "runs", "report", "root", "input",
            "members", "scores", "replay", "replays", "of", "classifier", "versions",
            "hist")  # fmt: skip


@pytest.mark.parametrize("name, command", _commands())
def test_every_path_option_says_whether_it_is_read_or_written(name, command):
    """A new path option cannot skip the guard: it must be an InputPath, OutputPath or RunRef
    (a bare click.Path, or a path typed as plain text, fails here)."""
    import click

    from ganinf_mlops.cli.guard import role

    for p in command.params:
        words = set((p.name or "").split("_"))
        numeric = (click.types.IntParamType, click.types.FloatParamType, click.Choice)
        if isinstance(p.type, numeric) or p.is_flag if isinstance(p, click.Option) else False:
            continue  # counts, fractions, choices and flags name no path
        if isinstance(p.type, click.Path) or words & set(PATHLIKE):
            assert role(p) in ("input", "output"), f"ganinf {name} {p.opts}: {p.type!r}"


@pytest.mark.parametrize("name, command", _commands())
def test_each_output_of_each_command_is_checked_against_each_input(name, command, tmp_path):
    from ganinf_mlops.cli.guard import check_command_paths, role
    from ganinf_mlops.errors import ConfigError

    inputs = [p for p in command.params if role(p) == "input"]
    outputs = [p for p in command.params if role(p) == "output"]
    x = tmp_path / "x"
    for out in outputs:
        for src in inputs + [o for o in outputs if o is not out]:
            for given in (x, x / "inside"):  # the same path, and one inside the input
                values = {src.name: (x,) if src.multiple or src.nargs == -1 else x,
                          out.name: given}  # fmt: skip
                with pytest.raises(ConfigError, match="overlaps"):
                    check_command_paths(command, values)
        check_command_paths(command, {out.name: tmp_path / "elsewhere"})  # alone: fine
