"""`ganinf lineage` and `ganinf gate` on a tiny cleanse chain (tracking off)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ganinf_mlops import keys
from ganinf_mlops.cli import main
from ganinf_mlops.data.version import load_version
from ganinf_mlops.influence.scores import ScoreTable, write_scores


def ganinf(*args) -> None:
    main(["-q", *map(str, args)])


def code(*args) -> int:
    with pytest.raises(SystemExit) as exc:
        ganinf(*args)
    return exc.value.code


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    d = tmp_path_factory.mktemp("chain")
    ganinf("loop", "--preset", "tiny", "--out", d / "job", "--loo", "0", "--iterations", "2")
    return d / "job"


def test_lineage_by_dir_and_digest(chain, capsys):
    capsys.readouterr()
    ganinf("lineage", chain / "data" / "v2", "--json")
    entries = json.loads(capsys.readouterr().out)
    assert [e["n_instances"] for e in entries] == [180, 190, 200]
    assert [e["n_removed"] for e in entries] == [10, 10, 0]
    assert entries[0]["parent_digest"] == entries[1]["digest"]
    assert entries[-1]["parent_digest"] is None and entries[0]["method"] == "all"
    ganinf("lineage", entries[1]["digest"][:10], "--root", chain)
    text = capsys.readouterr().out.splitlines()
    assert len(text) == 2 and text[1].split()[0] == entries[2]["digest"][:12]


def test_lineage_errors(chain, tmp_path, capsys):
    assert code("lineage", "deadbeefdead", "--root", chain) == 2
    assert "no dataset version" in capsys.readouterr().err
    assert code("lineage", "xyz") == 2
    broken = tmp_path / "job"
    shutil.copytree(chain, broken)
    shutil.rmtree(broken / "data" / "v1")
    assert code("lineage", broken / "data" / "v2") == 2
    assert "lineage" in capsys.readouterr().err


def _ensemble_scores(path, version, run, members: np.ndarray) -> None:
    """An ALL ensemble's scores (higher is better) of `version` from `run`: member m predicts
    the change `members[m]`."""
    mean = members.mean(axis=0)
    extra = {keys.MEMBERS: {"ids": version.ids.tolist(), "change": members.tolist()}}
    table = ScoreTable(version.ids, mean, mean, "all", "all", version.digest, str(run), extra)
    write_scores(path, table)


def test_gate_fails_only_on_a_set_beyond_seed_noise(chain, tmp_path, capsys):
    data, run = chain / "data" / "v1", chain / "runs" / "r1"
    version = load_version(data)
    report, scores = tmp_path / "gate.json", tmp_path / "s.csv"
    args = ("gate", "--data", data, "--run", run, "--report", report, "--force", "--scores",
            scores, "--max-harmful-frac", "0.05")  # fmt: skip
    rng = np.random.default_rng(0)
    # Seed noise: each member calls other instances harmful; held out, about half agree.
    noise = rng.normal(0, 0.01, (8, version.n))
    _ensemble_scores(scores, version, run, noise)
    assert code(*args) == 0
    result = json.loads(report.read_text())
    assert result["passed"] and result["max_set"] == round(0.05 * version.n)
    assert result["set"]["n_agreeing"] < 6 and "no set of at most" in result["reason"]
    assert "PASS: no set" in capsys.readouterr().out
    # Three instances every member calls harmful: a set beyond the noise.
    bad = noise.copy()
    bad[:, :3] += 0.05
    _ensemble_scores(scores, version, run, bad)
    assert code(*args) == 1
    result = json.loads(report.read_text())
    assert not result["passed"] and result["set"]["n_agreeing"] == 8
    assert set(version.ids[:3].tolist()) <= set(result["set"]["ids"])
    assert result["set"]["predicted_improvement"] > 0.15
    assert {o["id"] for o in result["top_offending"][:3]} == set(version.ids[:3].tolist())
    # ...unless every member must agree and one is made to disagree
    bad[0, :3] -= 1.0
    _ensemble_scores(scores, version, run, bad)
    assert code(*args, "--min-agreement", "1") == 0


def test_gate_scores_an_ensemble_and_checks_usage(chain, tmp_path, capsys):
    data, run = chain / "data" / "v1", chain / "runs" / "r1"
    report = tmp_path / "gate.json"
    args = ("gate", "--data", data, "--run", run, "--report", report, "--force", "--preset", "tiny")
    # One run's scores cannot tell a set from seed noise: the tiny config's ensemble is 1.
    assert code(*args, "--max-harmful-frac", "0.05") == 2
    assert "--ensemble K" in capsys.readouterr().err
    assert code(*args, "--max-harmful-frac", "0.5", "--ensemble", "2") in (0, 1)
    result = json.loads(report.read_text())
    assert result["set"]["n_members"] == 2 and result["max_set"] == 95
    assert (chain / "runs" / "r1-seed1").is_dir()  # the sibling, trained beside the run
    # The absolute check works on one run's scores.
    assert code(*args, "--threshold", "0") == 1
    result = json.loads(report.read_text())
    assert not result["passed"] and 0 < result["threshold_check"]["n_harmful"] < 190
    top = result["top_offending"][0]["harmfulness"]
    assert code(*args, "--threshold", str(top * 2)) == 0
    assert code(*args, "--threshold", str(top / 2)) == 1
    # usage and input errors: exit 2
    assert code("gate", "--data", data, "--run", run, "--report", report) == 2
    assert code(*args[:2], chain / "data" / "v0", *args[3:], "--threshold", "0") == 2
    assert "digest mismatch" in capsys.readouterr().err
    assert code("gate", "--data", data, "--run", run, "--method", "nope", "--threshold", "0") == 2


def test_gate_checks_its_arguments_before_scoring(chain, tmp_path, capsys):
    data, run = chain / "data" / "v1", chain / "runs" / "r1"
    report = tmp_path / "gate.json"
    report.write_text("{}")
    # An existing report, a fraction outside [0, 1]: refused at once, the report untouched.
    assert code("gate", "--data", data, "--run", run, "--threshold", "0", "--report", report) == 2
    assert "already exists" in capsys.readouterr().err and report.read_text() == "{}"
    args = ("gate", "--data", data, "--run", run, "--report", report, "--force")
    assert code(*args, "--max-harmful-frac", "1") == 2
    assert "(0, 1)" in capsys.readouterr().err and report.read_text() == "{}"
    # A run of another version, or scores computed from another run: refused.
    assert code(*args[:4], chain / "runs" / "r0", *args[5:], "--threshold", "0") == 2
    assert "another dataset version" in capsys.readouterr().err
    scores = chain / "scores" / "it2_all.csv"
    other_run = tmp_path / "r1-copy"
    shutil.copytree(run, other_run)
    assert code(*args[:4], other_run, *args[5:], "--scores", scores, "--threshold", "0") == 2
    assert "were computed from run" in capsys.readouterr().err


def test_copying_check():
    from ganinf_mlops.errors import ConfigError
    from ganinf_mlops.gate import check_gate_options, copying_report

    assert copying_report({"copying_ct": -2.0}, 3.0)["passed"]
    assert not copying_report({"copying_ct": -4.0}, 3.0)["passed"]
    with pytest.raises(ConfigError, match="needs the run's copying_ct"):
        copying_report({"all": 1.0}, 3.0)
    with pytest.raises(ConfigError, match="--max-copying must be finite"):
        check_gate_options(None, None, float("nan"))
    with pytest.raises(ConfigError, match="and/or --max-copying"):
        check_gate_options(None, None, None)
