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
    "evaluate-plot": lambda f: ("evaluate", "--run", f["run"],
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
