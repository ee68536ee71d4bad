"""The Python API (`import ganinf_mlops as gi`): the same library the CLI calls, plain results."""

from __future__ import annotations

import runpy
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import ganinf_mlops as gi
from ganinf_mlops import keys
from ganinf_mlops.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    d = tmp_path_factory.mktemp("api")
    raw = gi.prepare(d / "raw", preset="tiny")
    run = gi.train(raw, d / "run", preset="tiny")
    scores = gi.influence(run, method="all", out=d / "scores.csv")
    return {"dir": d, "raw": raw, "run": run, "scores": scores}


def test_prepare_from_arrays_holds_out_a_seeded_split_and_keeps_labels(tmp_path):
    x = np.arange(100, dtype=float).reshape(50, 2)
    y = np.arange(50) % 3
    v = gi.prepare(tmp_path / "v", x=x, y=y, eval_frac=0.2, seed=1)
    assert (v.n, len(v.x_eval)) == (40, 10)
    assert v.manifest.params == {"source": "arrays", "eval_frac": 0.2, "seed": 1,
                                 "n_train": 40, "n_eval": 10}  # fmt: skip
    # Rows keep their labels and ids (the id is the row number here: x[i] = (2i, 2i + 1)).
    np.testing.assert_array_equal(v.x[:, 0], 2 * v.ids)
    np.testing.assert_array_equal(v.y, v.ids % 3)
    np.testing.assert_array_equal(np.sort(np.r_[v.x[:, 0], v.x_eval[:, 0]]), x[:, 0])
    again = gi.prepare(tmp_path / "again", x=x, y=y, eval_frac=0.2, seed=1)
    assert again.digest == v.digest
    other = gi.prepare(tmp_path / "other", x=x, y=y, eval_frac=0.2, seed=2)
    assert other.digest != v.digest


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"y": np.zeros(7)}, ConfigError, "y has 7 labels for 50 rows"),
        ({"eval_frac": 1.0}, ConfigError, "eval_frac must be in"),
        ({"dataset": "gaussian2d"}, ConfigError, "not both"),
        ({"x_eval": np.zeros((5, 3))}, DataError, "x_eval"),
    ],
)
def test_prepare_refuses_bad_arrays_and_writes_nothing(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        gi.prepare(tmp_path / "v", x=np.zeros((50, 2)), **kwargs)
    assert not (tmp_path / "v").exists()


def test_influence_is_a_ranked_dataframe_of_the_run(flow):
    s = flow["scores"]
    assert list(s.columns[:4]) == [keys.ID, keys.PREDICTED_CHANGE, keys.HARMFULNESS, keys.RANK]
    assert list(s[keys.RANK]) == list(range(1, len(s) + 1)) and len(s) == flow["raw"].n
    assert s[keys.HARMFULNESS].is_monotonic_decreasing
    # ALL is higher-is-better: harmfulness is the predicted change itself.
    np.testing.assert_allclose(s[keys.HARMFULNESS], s[keys.PREDICTED_CHANGE])
    assert {"x0", "x1", "injected"} <= set(s.columns)
    assert s["injected"].sum() == len(flow["raw"].manifest.is_anomaly_ids)
    assert s.attrs["scores_path"] == str(flow["dir"] / "scores.csv")
    assert (s.attrs["method"], s.attrs["metric"]) == ("all", "all")
    # The default method is the run's first target, and the run is scored alone.
    default = gi.influence(flow["run"])
    assert default.attrs["method"] == "all"
    np.testing.assert_allclose(default[keys.HARMFULNESS], s[keys.HARMFULNESS])


def test_cleanse_and_gate_take_the_dataframe(flow, tmp_path):
    v1 = gi.cleanse(flow["raw"], flow["scores"], tmp_path / "v1", remove_frac=0.05)
    assert v1.manifest.parent_digest == flow["raw"].digest
    assert len(v1.manifest.removed_ids) == 10
    assert set(v1.manifest.removed_ids) <= set(flow["scores"][keys.ID].head(10))
    unwritten = flow["scores"].copy()
    unwritten.attrs = {}
    with pytest.raises(ConfigError, match=r"gi.influence\(..., out=PATH\) first"):
        gi.cleanse(flow["raw"], unwritten, tmp_path / "v2")
    report = gi.gate(flow["raw"], flow["run"], scores=flow["scores"], threshold=1e9)
    assert report.passed and bool(report)
    strict = gi.gate(flow["raw"], flow["run"], method="all", threshold=0.0)
    checked = strict.report["threshold_check"]
    assert not strict and checked[keys.N_HARMFUL] > 0
    assert checked[keys.HARMFUL_FRAC] == pytest.approx(
        (flow["scores"][keys.HARMFULNESS] > 0).mean()
    )
    # The set check weighs a set against seed noise: one run's scores cannot.
    with pytest.raises(ConfigError, match="ensemble"):
        gi.gate(flow["raw"], flow["run"], scores=flow["scores"], max_harmful_frac=0.05)
    ens = gi.gate(flow["raw"], flow["run"], method="all", max_harmful_frac=0.05, ensemble=2)
    assert ens.report["set"][keys.N_MEMBERS] == 2 and ens.report["max_set"] == 10
    assert ens.passed == (not ens.report["reason"].startswith("removing"))


def test_api_names_that_are_submodules_still_reach_them():
    """gi.train / gi.cleanse / gi.gate / gi.influence call the API, while dotted imports and
    mock.patch targets through them reach the submodules."""
    from unittest import mock

    import ganinf_mlops.train.trainer as trainer

    assert trainer.__name__ == "ganinf_mlops.train.trainer"
    assert gi.train.__doc__.startswith("Train on a dataset version")
    with mock.patch("ganinf_mlops.train.trainer.sibling_path") as patched:
        assert trainer.sibling_path is patched
    assert gi.gate.gate_report.__module__ == "ganinf_mlops.gate"
    assert callable(gi.prepare) and gi.prepare.__module__ == "ganinf_mlops.api"


def test_the_docs_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["python_api.py", str(tmp_path / "w")])
    runpy.run_path(str(ROOT / "docs" / "examples" / "python_api.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "240 training instances, 60 held out" in out
    assert "v1: removed 12" in out and "gate: " in out
    assert (tmp_path / "w" / "v1" / "manifest.json").is_file()


def test_an_ensemble_says_what_it_will_train_before_it_does(flow, tmp_path, caplog):
    import logging

    def plans() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("plan: ")]

    with caplog.at_level(logging.INFO, logger="ganinf_mlops"):
        two = gi.influence(flow["run"], ensemble=2, members=tmp_path / "m")
    (plan,) = plans()
    assert plan.startswith(f"plan: trains 1 seed sibling of {flow['run'].path} (")
    assert "and 2 reverse passes; --ensemble 1 skips the siblings" in plan
    # said before the sibling's training was
    messages = [r.getMessage() for r in caplog.records]
    assert messages.index(plan) < next(i for i, m in enumerate(messages) if "trained" in m)
    assert (tmp_path / "m" / "seed1" / "meta.json").is_file() and len(two) == flow["raw"].n
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ganinf_mlops"):
        gi.influence(flow["run"], ensemble=2, members=tmp_path / "m")  # reused: trains nothing
    assert plans() == [f"plan: 2 reverse passes over {flow['run'].path} and its 1 seed "
                       "siblings (kept); trains nothing"]  # fmt: skip


def test_influence_uses_the_settings_the_run_was_trained_under(flow, tmp_path, caplog):
    """The fixture's run recorded the tiny preset's job (method all, one run); a given preset
    replaces it (default: fd, an ensemble of 8, here cut to one); a run without the record is
    scored alone with its first target, said in a note."""
    import logging

    from ganinf_mlops.train.rundir import RunDir, rewrite_meta

    assert flow["run"].recorded_job.method == "all" and flow["run"].recorded_job.ensemble == 1
    default = gi.influence(flow["run"], preset="default", ensemble=1)
    assert default.attrs["method"] == "fd"
    old = tmp_path / "old"
    shutil.copytree(flow["run"].path, old)
    meta = dict(RunDir(old).meta)
    meta.pop("job")
    rewrite_meta(old, meta)
    with caplog.at_level(logging.INFO, logger="ganinf_mlops"):
        scores = gi.influence(old, data=flow["raw"])
    assert scores.attrs["method"] == "all" and [p.name for p in tmp_path.iterdir()] == ["old"]
    assert any("records no job settings" in r.getMessage() for r in caplog.records)
