"""benchmarks/influence_cost.py runs end to end on the smoke-test presets, vectors and images."""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from pathlib import Path

import pytest

from ganinf_mlops.config import get_preset

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def cost(monkeypatch):
    # Imported by name from a path on sys.path: the spawned memory children import it alike.
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    module = importlib.import_module("influence_cost")
    yield module
    sys.modules.pop("influence_cost", None)


def test_scoring_method_follows_the_preset(cost):
    assert cost.scoring_method(get_preset("default")) == "fd"
    assert cost.scoring_method(get_preset("ring-2d")) == "all"
    assert cost.scoring_method(get_preset("digits")) == "fid"
    assert cost.scoring_method(get_preset("digits"), "is") == "is"
    # A baseline job method: the problem's headline target instead.
    digits = get_preset("digits-tiny")
    baseline = dataclasses.replace(digits, job=dataclasses.replace(digits.job, method="random"))
    assert cost.scoring_method(baseline) == "fid"
    with pytest.raises(SystemExit):
        cost.scoring_method(digits, "all")  # not a target of image_gan


@pytest.mark.integration
def test_image_preset_end_to_end(cost, tmp_path, capsys):
    out = tmp_path / "cost.json"
    assert cost.main(["--preset", "digits-tiny", "--repeats", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["method"] == "fid"
    assert "score(fid)" in capsys.readouterr().out
    assert result["time"]["score_wall"] > 0 and result["time"]["train_wall"] > 0
    assert result["time"]["last1_avg_pass"] > 0  # a GAN: also averaged over minibatch orders
    memory = result["memory"]
    assert set(memory) == {"target_grad", "checkpointed", "uncheckpointed"}
    for m in memory.values():
        assert "error" not in m, m
        # The children load the run's feature classifier from its directory.
        assert m["classifier"] == str(Path(result["metric_config"]["classifier"]).resolve())
    assert result["disk"]["ratio"] > 1


@pytest.mark.integration
def test_vector_preset_end_to_end(cost, tmp_path):
    out = tmp_path / "cost.json"
    argv = ["--preset", "tiny", "--repeats", "1", "--memory", "checkpointed", "--json", str(out)]
    assert cost.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["method"] == "all"
    assert all("error" not in m and m["classifier"] is None for m in result["memory"].values())


def _bench(monkeypatch, name: str):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module(name)


def test_classifier_cleansing_end_to_end(monkeypatch, tmp_path, capsys):
    bench = _bench(monkeypatch, "classifier_cleansing")
    out = tmp_path / "c.json"
    argv = ["--seeds", "0,1", "--loo", "4", "--retrain-seeds", "1", "--epochs", "3"]
    assert bench.main([*argv, "--json", str(out)]) == 0
    s = json.loads(out.read_text())["summary"]
    assert s["n_seeds"] == 2 and s["bytes_final_only"] < s["bytes_exact_checkpoints"]
    assert s["val_loss"]["precision_at_k"] > s["random"]["precision_at_k"]
    # Every baseline of the study is in the table and in val_loss's paired comparisons.
    for other in ("random", "loss", "instance_selection", "val_loss_se"):
        assert 0 <= s[other]["precision_at_k"] <= 1 and f"val_loss_vs_{other}" in s
    out = capsys.readouterr().out
    assert "Kendall tau vs leave-one-out" in out and "val_loss vs instance_selection" in out


@pytest.mark.integration
def test_gan_cleansing_study_includes_instance_selection(monkeypatch, tmp_path):
    """benchmarks/cleansing.py by default runs every baseline and judges the influence methods
    against instance selection too; seed 0 runs (its job seed would be -1); a baseline removes
    the full budget (on the tiny preset its 10 anomalies, which lie far out)."""
    monkeypatch.setenv("GANINF_TRACKING", "0")
    bench = _bench(monkeypatch, "cleansing")
    try:
        out = tmp_path / "c.json"
        argv = ["--preset", "tiny", "--seeds", "1", "--retrain-seeds", "1", "--json", str(out)]
        assert bench.main(argv) == 0
        result = json.loads(out.read_text())
        assert result["settings"]["methods"] == ["fd", "all", "isolation_forest",
                                                 "instance_selection", "random"]  # fmt: skip
        (row,) = result["results"]
        sel = row["methods"]["instance_selection"]
        assert sel["n_removed"] == 10 and sel["predicted_change"] is None
        assert sel["anomalies_removed"] == 10 == row["n_anomalies"]
        for verdict in result["summary"]["verdict"].values():
            assert verdict["vs"]["instance_selection"] is not None
    finally:
        sys.modules.pop("cleansing", None)


def test_memorization_end_to_end(monkeypatch, tmp_path):
    bench = _bench(monkeypatch, "memorization")
    out = tmp_path / "m.json"
    argv = ["--preset", "digits-tiny", "--train-size", "20", "--steps", "10", "--seeds", "0"]
    assert bench.main([*argv, "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())
    assert 0 <= row["reject_rate_last_epoch"] <= 1 and row["threshold"] >= 0
    assert {"copying_ct", "fid"} <= set(row["plain"]) and {"copying_ct"} <= set(row["rejected"])


def test_fidelity_ceiling_and_train_params(monkeypatch, tmp_path):
    """benchmarks/fidelity.py with an ensemble: the split-half ceiling of the seed-averaged set
    replays, a --train-param override (r1) reaching the training, --loo 0 skipping tau."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    fidelity = importlib.import_module("fidelity")
    try:
        out = tmp_path / "f.json"
        args = ["--preset", "tiny", "--method", "fd", "--seeds", "1", "--first-seed", "5",
                "--loo", "0", "--chaos", "0", "--group", "3", "--ensemble", "2",
                "--train-param", "r1=0.5", "--json", str(out)]  # fmt: skip
        assert fidelity.main(args) == 0
        (row,) = json.loads(out.read_text())["preset"]
        assert "tau" not in row and "chaos" not in row
        assert {"ceiling_5pct", "ceiling_20pct", "ensemble_vs_avg_5pct"} <= set(row)
        assert all(-1 <= row[k] <= 1 for k in ("ceiling_5pct", "ceiling_20pct"))
        with pytest.raises(SystemExit):
            fidelity.parse_args(["--train-param", "r1"])
        preset = fidelity.with_overrides(get_preset("tiny"), fidelity.parse_args(args))
        assert preset.train.r1 == 0.5
        # order-averaged scores over the last epoch; the chaos floor keeps the plain derivative
        args = ["--preset", "tiny", "--method", "fd", "--seeds", "1", "--first-seed", "5",
                "--loo", "4", "--chaos", "2", "--group", "0", "--average-order",
                "--last-epochs", "1", "--json", str(out)]  # fmt: skip
        assert fidelity.main(args) == 0
        (row,) = json.loads(out.read_text())["preset"]
        assert -1 <= row["tau"] <= 1 and row["chaos"] > 0
    finally:
        sys.modules.pop("fidelity", None)


def test_cost_on_another_dataset_and_the_synthetic_mnist(cost, tmp_path, monkeypatch):
    """--dataset/--data-param replace the preset's data; synthetic_mnist.py writes an MNIST
    stand-in that the real `mnist` loader (torchvision's layout) reads."""
    from ganinf_mlops.data.images import mnist

    args = cost.parse_args(
        ["--preset", "paper-mnist", "--dataset", "mnist", "--data-param", f"root={tmp_path}",
         "--data-param", "n_eval=7"]
    )  # fmt: skip
    preset = cost.with_data(get_preset("paper-mnist"), args)
    assert (preset.dataset, preset.data_params) == ("mnist", {"root": str(tmp_path), "n_eval": 7})
    kept = cost.with_data(get_preset("digits"), cost.parse_args(["--data-param", "seed=3"]))
    assert kept.dataset == "digits" and kept.data_params == {**get_preset("digits").data_params,
                                                              "seed": 3}  # fmt: skip

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    synthetic = importlib.import_module("synthetic_mnist")
    assert synthetic.main(["--out", str(tmp_path), "--train", "30", "--test", "12"]) == 0
    raw = mnist(tmp_path, n_eval=7)
    assert raw.x.shape == (30, 1, 28, 28) and raw.x_eval.shape == (7, 1, 28, 28)
    assert raw.x.min() >= -1 and raw.x.max() <= 1 and raw.x.std() > 0.1
    assert set(raw.y.tolist()) <= set(range(10))
    # the digit sits in the middle: the border rows are (near) black, the centre is not
    assert raw.x[:, 0, 0].mean() < -0.9 and raw.x[:, 0, 10:18, 10:18].mean() > -0.9


def test_key_values_refuses_malformed_values_with_a_usage_line(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    seeds = importlib.import_module("seeds")
    import argparse

    p = argparse.ArgumentParser(prog="bench")
    assert seeds.key_values(p, ["n=3", 'layout="cluster"'], "--data-param") == {
        "n": 3,
        "layout": "cluster",
    }
    for bad in (["n"], ["layout=cluster"]):
        with pytest.raises(SystemExit) as exc:
            seeds.key_values(p, bad, "--data-param")
        assert exc.value.code == 2
    assert "layout=cluster: VALUE must be JSON" in capsys.readouterr().err


@pytest.mark.integration
def test_decisions_study_end_to_end(monkeypatch, tmp_path, capsys):
    """benchmarks/decisions.py on the tiny preset: the per-seed table and the rates, with the
    decision computed from the job's own scores."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setenv("GANINF_TRACKING", "0")
    decisions = importlib.import_module("decisions")
    out = tmp_path / "d.json"
    argv = ["--preset", "tiny", "--seeds", "0", "--ensemble", "3", "--work", str(tmp_path / "w"),
            "--clean", "anomaly_frac=0.0", "--json", str(out)]  # fmt: skip
    assert decisions.main(argv) == 0
    result = json.loads(out.read_text())
    rows = {r["condition"]: r for r in result["rows"]}
    assert set(rows) == {"clean", "contaminated"}
    for r in rows.values():
        assert r["members"] == 3 and 0 <= r["p_value"] <= 1
        assert r["gate_passed"] == (not r["cleansed"])  # the same evidence, the same F here
    assert "gate passes" in capsys.readouterr().out
    sys.modules.pop("decisions", None)
