"""`ganinf evaluate` and ganinf_mlops.report on one tiny cleanse iteration (in-process CLI)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from ganinf_mlops import keys, plotdata
from ganinf_mlops.cli import main
from ganinf_mlops.report import outcome, verdict, verdict_state


def ganinf(*args: str | Path) -> None:
    main(["-q", *map(str, args)])


@pytest.fixture(scope="module")
def chain(tmp_path_factory, tiny_run) -> Path:
    """raw -> run raw -> scores -> v1 -> replay + fresh run, laid out as the DVC pipeline does
    (the first three copied from the shared tiny run)."""
    d = tmp_path_factory.mktemp("chain") / "chain"
    shutil.copytree(tiny_run["root"], d)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: 5-10x faster than 2 threads on a busy 2-core machine
    try:
        _make_chain(d)
    finally:
        torch.set_num_threads(threads)
    return d


def _make_chain(d: Path) -> None:
    ganinf(
        "cleanse", "--preset", "tiny", "--data", d / "data/raw",
        "--scores", d / "scores/raw.csv", "--out", d / "data/v1",
    )  # fmt: skip
    ganinf(
        "train", "--data", d / "data/v1", "--replay", d / "runs/raw", "--out", d / "runs/v1-replay"
    )
    ganinf("train", "--preset", "tiny", "--data", d / "data/v1", "--out", d / "runs/v1")


def evaluate_args(d: Path, out: Path) -> list[str | Path]:
    return [
        "evaluate", "--run", d / "runs/raw", "--run", d / "runs/v1",
        "--replay", d / "runs/v1-replay", "--out", out / "summary.json",
        "--plot-data", out / "iterations.csv", "--changes-data", out / "changes.csv",
        "--scores-hist", out / "hist.csv", "--bins", "7",
    ]  # fmt: skip


def fails(capsys, *args: str | Path, match: str) -> None:
    with pytest.raises(SystemExit) as exc:
        ganinf(*args)
    assert exc.value.code == 2
    assert match in capsys.readouterr().err


def test_evaluate_writes_metrics_and_plot_data(chain: Path, tmp_path: Path) -> None:
    ganinf(*evaluate_args(chain, tmp_path))
    summary = json.loads((tmp_path / "summary.json").read_text())
    base = json.loads((chain / "runs/raw/metrics.json").read_text())
    fresh = json.loads((chain / "runs/v1/metrics.json").read_text())
    replay = json.loads((chain / "runs/v1-replay/metrics.json").read_text())
    manifest = json.loads((chain / "data/v1/manifest.json").read_text())
    it0, it1 = summary["iterations"]["0"], summary["iterations"]["1"]
    for key in ("all", "disc_loss", "gen_mean_error", "gen_cov_error", "n_instances"):
        assert it0[key] == base[key] and it1[key] == summary[key] == fresh[key]
        assert it1["replay"][key] == replay[key]
    assert "train_seconds" not in summary and "train_seconds" not in it1["replay"]
    assert it1["predicted_change"] == manifest["predicted_change"] == replay["predicted_change"]
    assert it1["actual_change"] == replay["actual_change"]
    assert it1["fresh_change"] == fresh["all"] - base["all"]
    assert (it0["n_removed"], it1["n_removed"], summary["n_removed_total"]) == (0, 10, 10)
    assert it0["n_anomalies"] - it1["n_anomalies"] == it1["n_anomalies_removed"]

    # The headline: the scored metric (one seed here), on every row and in the summary.
    m = summary["headline_metric"]
    assert m == it1["metric"] == "all"
    assert (it0["headline"], it1["headline"]) == (base[m], fresh[m]) and "headline_std" not in it0
    assert (summary["headline_raw"], summary["headline_final"]) == (base[m], fresh[m])
    assert (
        it1["improvement"] == summary["total_improvement"] == fresh[m] - base[m]
    )  # higher: better
    best = 1 if fresh[m] > base[m] else 0
    assert (summary["best_iteration"], summary["headline_best"]) == (best, max(base[m], fresh[m]))
    assert summary["verdict"] == it1["verdict"] == ("improved" if best else "worse")
    assert summary["verdict"] == verdict_state(summary)

    rows = (tmp_path / "iterations.csv").read_text().splitlines()
    assert rows[0].split(",")[:3] == ["iteration", "headline", "all"] and len(rows) == 3
    assert rows[2].split(",")[1] == repr(fresh["all"])  # full precision
    changes = (tmp_path / "changes.csv").read_text().splitlines()
    assert changes[0] == "iteration,predicted_change,actual_change,fresh_change,improvement"
    assert len(changes) == 2
    hist = plotdata.score_histogram([chain / "data/v1"], bins=7)
    assert sum(r["count_1"] for r in hist) == 200 and sum(r["removed_1"] for r in hist) == 10
    assert len((tmp_path / "hist.csv").read_text().splitlines()) == 8


def test_evaluate_refuses_bad_input_and_writes_nothing(chain: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    args = evaluate_args(chain, out)
    fails(
        capsys, "evaluate", "--run", chain / "runs/v1", "--run", chain / "runs/raw",
        "--out", out / "s.json", match="lineage order",
    )  # fmt: skip
    fails(
        capsys, "evaluate", "--run", chain / "runs/raw", "--run", chain / "runs/v1",
        "--replay", chain / "runs/v1", "--out", out / "s.json", match="not a replay",
    )  # fmt: skip
    fails(
        capsys, "evaluate", "--run", chain / "runs/raw", "--replay", chain / "runs/v1-replay",
        "--out", out / "s.json", match="not trained on the version of any --run",
    )  # fmt: skip
    assert not out.exists()
    out.mkdir()
    (out / "summary.json").write_text("{}")
    fails(capsys, *args, match="already exists")
    assert (out / "summary.json").read_text() == "{}"
    ganinf(*args, "--force")
    assert json.loads((out / "summary.json").read_text())["n_removed_total"] == 10


def _summary(first: dict[str, float], last: dict[str, float], std: dict[str, float]) -> dict:
    row = {keys.N_SEEDS: 3, keys.N_REMOVED_TOTAL: 0, "metric": keys.ALL}
    return {
        "job": {},
        "iterations": {
            "0": {**row, keys.SEED_MEAN: first, keys.SEED_STD: std},
            "1": {**row, keys.SEED_MEAN: last, keys.SEED_STD: std, keys.N_REMOVED_TOTAL: 100},
        },
    }


def test_verdict_says_when_another_metric_got_worse_beyond_its_seed_spread() -> None:
    std = {keys.ALL: 0.01, keys.FD: 0.01}
    # ALL improved, fd (lower is better) worsened by 0.02 > its spread 0.01: the collapse check.
    s = _summary({keys.ALL: -2.9, keys.FD: 0.02}, {keys.ALL: -2.85, keys.FD: 0.04}, std)
    text = verdict(s)
    assert text.startswith("verdict: all (higher is better) IMPROVED: -2.9 -> -2.85 (spread 0.01)")
    assert "fd got WORSE beyond its seed spread: 0.02 -> 0.04 (spread 0.01)" in text
    assert [o["worse"] for o in outcome(s)["others"]] == [True]
    # Worse by less than the spread, or better: within.
    s = _summary({keys.ALL: -2.9, keys.FD: 0.02}, {keys.ALL: -2.85, keys.FD: 0.025}, std)
    assert "fd got worse within its seed spread: 0.02 -> 0.025" in verdict(s)
    s = _summary({keys.ALL: -2.9, keys.FD: 0.02}, {keys.ALL: -2.95, keys.FD: 0.001}, std)
    text = verdict(s)
    assert "got WORSE: -2.9 -> -2.95" in text and "fd improved too: 0.02 -> 0.001" in text
    # The scored metric against the same yardstick: a change inside its spread says so.
    s = _summary({keys.ALL: -2.9, keys.FD: 0.02}, {keys.ALL: -2.895, keys.FD: 0.02}, std)
    assert verdict(s).startswith("verdict: all (higher is better) improved only within its seed "
                                 "spread: -2.9 -> -2.895 (spread 0.01)")  # fmt: skip
    assert outcome(s)["within"] and outcome(s)["improved"]
    s = _summary({keys.ALL: -2.9, keys.FD: 0.02}, {keys.ALL: -2.905, keys.FD: 0.02}, std)
    assert "all (higher is better) got worse only within its seed spread" in verdict(s)
    # One training seed: no spread to judge by, so no collapse check.
    one = {"job": {}, "iterations": {"0": {keys.ALL: -2.9, "metric": keys.ALL},
           "1": {keys.ALL: -2.8, "metric": keys.ALL, keys.N_REMOVED_TOTAL: 5}}}  # fmt: skip
    assert outcome(one)["others"] == [] and "spread" not in verdict(one)
    assert outcome(one)["spread"] is None and not outcome(one)["within"]


def test_a_classifier_cleanse_is_judged_on_its_test_split_not_the_selection_split() -> None:
    """val_loss chose the removals, so the verdict is test accuracy's (the user's case: the
    validation loss fell while test accuracy fell too), with the scored metric beside it."""
    one = {"job": {}, "iterations": {
        "0": {keys.VAL_LOSS: 0.354, keys.TEST_ACCURACY: 0.912, "metric": keys.VAL_LOSS},
        "1": {keys.VAL_LOSS: 0.261, keys.TEST_ACCURACY: 0.842, "metric": keys.VAL_LOSS,
              keys.N_REMOVED_TOTAL: 46}}}  # fmt: skip
    o = outcome(one)
    assert o["metric"] == keys.TEST_ACCURACY and not o["improved"]
    assert o["scored"] == {"metric": keys.VAL_LOSS, "ends": (0.354, 0.261)}
    text = verdict(one)
    assert text.startswith("verdict: test_accuracy (higher is better) got WORSE: 0.912 -> 0.842")
    assert "(judged on held-out data; the scored val_loss: 0.354 -> 0.261)" in text
    # Runs without a test split: the scored metric judges, as before.
    bare = {"job": {}, "iterations": {k: {kk: v for kk, v in r.items() if kk != keys.TEST_ACCURACY}
                                      for k, r in one["iterations"].items()}}  # fmt: skip
    assert outcome(bare)["metric"] == keys.VAL_LOSS and outcome(bare)["scored"] is None


def test_an_unchanged_result_is_said_so() -> None:
    same = {"job": {}, "iterations": {
        "0": {keys.VAL_LOSS: 0.35, keys.TEST_ACCURACY: 0.956, "metric": keys.VAL_LOSS},
        "1": {keys.VAL_LOSS: 0.21, keys.TEST_ACCURACY: 0.956, "metric": keys.VAL_LOSS,
              keys.N_REMOVED_TOTAL: 120}}}  # fmt: skip
    assert outcome(same)["unchanged"] and not outcome(same)["improved"]
    assert verdict(same).startswith("verdict: test_accuracy (higher is better) did not change")


def test_the_verdict_has_three_states() -> None:
    """improved / worse only beyond the raw seed spread; within it, or equal: within_noise."""
    std = {keys.ALL: 0.01}
    assert verdict_state(_summary({keys.ALL: -2.9}, {keys.ALL: -2.85}, std)) == "improved"
    assert verdict_state(_summary({keys.ALL: -2.9}, {keys.ALL: -2.95}, std)) == "worse"
    assert verdict_state(_summary({keys.ALL: -2.9}, {keys.ALL: -2.895}, std)) == "within_noise"
    assert verdict_state(_summary({keys.ALL: -2.9}, {keys.ALL: -2.9}, std)) == "within_noise"
    only_raw = {"job": {}, "iterations": {"0": {keys.ALL: -2.9}}}
    assert verdict_state(only_raw) is None
