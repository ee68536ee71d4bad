"""Commands on an existing run use the job settings it was trained under, and print their plan
before they train anything (influence, validate, gate; the job's plan is in test_pipeline.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ganinf_mlops.cli import main
from ganinf_mlops.influence.scores import read_scores
from ganinf_mlops.train.rundir import RunDir, rewrite_meta


def ganinf(*args: str | Path) -> None:
    main([*map(str, args)])  # not -q: the plan and notes are info lines


@pytest.fixture
def tiny(tiny_run, tmp_path) -> dict[str, Path]:
    """A copy of the session's tiny run (trained with --preset tiny: method all, one run; the
    default preset's job scores fd over an ensemble of 8): commands here may train siblings."""
    root = tmp_path / "copy"
    shutil.copytree(tiny_run["root"], root)
    return {k: root / v.relative_to(tiny_run["root"]) for k, v in tiny_run.items()}


def _siblings(run: Path) -> list[str]:
    return sorted(p.name for p in run.parent.iterdir() if p.name != run.name)


def test_influence_scores_a_run_with_the_settings_it_recorded(tiny, tmp_path, capsys):
    assert RunDir(tiny["run"]).recorded_job.method == "all"
    ganinf("influence", "--run", tiny["run"], "--out", tmp_path / "s.csv")
    err = capsys.readouterr().err
    assert f"plan: 1 reverse pass over {tiny['run']}; trains nothing" in err
    assert "note:" not in err
    table = read_scores(tmp_path / "s.csv")
    sidecar = json.loads((tmp_path / "s.csv.meta.json").read_text())
    assert table.method == "all" and "ensemble" not in sidecar["extra"]
    assert _siblings(tiny["run"]) == []  # the default preset's ensemble would train 7


def test_an_explicit_preset_wins_over_the_record(tiny, tmp_path, capsys):
    ganinf("influence", "--run", tiny["run"], "--preset", "default", "--out", tmp_path / "s.csv")
    err = capsys.readouterr().err
    run = tiny["run"]
    assert f"plan: trains 7 seed siblings of {run} (" in err
    assert "and 8 reverse passes; --ensemble 1 skips the siblings" in err
    table = read_scores(tmp_path / "s.csv")
    assert table.method == "fd" and len(table.extra["ensemble"]) == 8
    assert _siblings(run) == [f"{run.name}-seed{r}" for r in range(1, 8)]
    # an option given still overrides the config
    ganinf("influence", "--run", run, "--preset", "default", "--ensemble", "1", "--method",
           "all", "--out", tmp_path / "t.csv")  # fmt: skip
    assert "ensemble" not in read_scores(tmp_path / "t.csv").extra


def test_a_run_without_the_record_falls_back_to_the_preset_with_a_note(tiny, tmp_path, capsys):
    rd = RunDir(tiny["run"])
    meta = dict(rd.meta)
    del meta["job"]
    rewrite_meta(rd.path, meta)
    ganinf("influence", "--run", tiny["run"], "--ensemble", "1", "--out", tmp_path / "s.csv")
    err = capsys.readouterr().err
    assert f"note: {tiny['run']} records no job settings" in err
    assert "using preset default's" in err
    assert read_scores(tmp_path / "s.csv").method == "fd"  # the default preset's job.method


def test_the_plan_is_printed_before_any_training(tiny, tmp_path, capsys, monkeypatch):
    import ganinf_mlops.train.trainer as trainer
    from ganinf_mlops.errors import GaninfError

    def fail(*args, **kwargs):
        raise GaninfError("training a sibling failed")

    monkeypatch.setattr(trainer, "train", fail)
    with pytest.raises(SystemExit) as exc:
        ganinf("influence", "--run", tiny["run"], "--ensemble", "2", "--out", tmp_path / "s.csv")
    assert exc.value.code == 2
    err = capsys.readouterr().err
    plan = err.index(f"plan: trains 1 seed sibling of {tiny['run']}")
    assert plan < err.index("error: training a sibling failed")
    assert not (tmp_path / "s.csv").exists()


def test_quiet_prints_no_plan(tiny, tmp_path, capsys):
    ganinf("-q", "influence", "--run", tiny["run"], "--out", tmp_path / "s.csv")
    assert "plan:" not in capsys.readouterr().err


def test_validate_and_gate_use_the_recorded_settings(tiny, tmp_path, capsys):
    # tiny's job.loo is 12 (the default preset's is 0: validate would refuse)
    ganinf("validate", "--run", tiny["run"], "--out", tmp_path / "v.json")
    err = capsys.readouterr().err
    assert "plan: 1 reverse pass, then 12 leave-one-out and 16 group-removal replays" in err
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["method"] == "all" and report["n_instances"] == 12
    with pytest.raises(SystemExit) as exc:
        ganinf("gate", "--data", tiny["raw"], "--run", tiny["run"], "--threshold", "1e9",
               "--report", tmp_path / "g.json")  # fmt: skip
    assert exc.value.code == 0
    assert f"plan: 1 reverse pass over {tiny['run']}; trains nothing" in capsys.readouterr().err
    assert json.loads((tmp_path / "g.json").read_text())["method"] == "all"
    # the set check needs an ensemble, and tiny's job.ensemble is 1: said before any scoring
    with pytest.raises(SystemExit) as exc:
        ganinf("gate", "--data", tiny["raw"], "--run", tiny["run"], "--max-harmful-frac", "0.05",
               "--report", tmp_path / "g2.json")  # fmt: skip
    assert exc.value.code == 2 and "run's job.ensemble is 1" in capsys.readouterr().err
