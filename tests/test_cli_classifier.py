"""The classifier flow from the command line (SGD-influence, storage-efficient influence, the loss
baseline, cleanse, validate, gate) and its bad input: one line, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_cli import fails, ganinf


@pytest.fixture(scope="module")
def clf(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clf")
    p = {"raw": d / "raw", "run": d / "run", "params": d / "params.yaml"}
    ganinf("params", "--preset", "digits-labelnoise", "--out", p["params"])
    text = p["params"].read_text().replace("epochs: 20", "epochs: 3")
    p["params"].write_text(text.replace("storage: checkpoints", "storage: final"))
    ganinf("prepare", "--params", p["params"], "--out", p["raw"])
    ganinf("train", "--params", p["params"], "--data", p["raw"], "--out", p["run"])
    return p


def _scores(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = path.read_text().splitlines()
    header = rows[0].split(",")
    table = np.array([[float(v) for v in r.split(",")] for r in rows[1:]])
    return table[:, header.index("id")].astype(int), table[:, header.index("harmfulness")]


def test_classifier_flow(clf, tmp_path, capsys):
    raw, run = clf["raw"], clf["run"]
    manifest = json.loads((raw / "manifest.json").read_text())
    flipped = set(manifest["is_anomaly_ids"])
    assert len(flipped) == 120 and manifest["params"]["label_noise"] == 0.1
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"val_loss", "test_accuracy"} <= set(metrics)
    assert len(list((run / "checkpoints").iterdir())) == 2  # storage: final

    for method, extra in (("val_loss", []), ("val_loss", ["--storage-efficient"]), ("loss", [])):
        out = tmp_path / f"{method}{len(extra)}.csv"
        ganinf("influence", "--params", clf["params"], "--run", run, "--method", method,
               "--out", out, *extra)  # fmt: skip
        ids, harm = _scores(out)
        top = set(ids[np.argsort(-harm)[:120]].tolist())
        assert len(top & flipped) > 60, (method, extra)  # far above random's ~12
    meta = json.loads((tmp_path / "val_loss1.csv.meta.json").read_text())
    assert meta["extra"]["storage_efficient"] is True

    ganinf(
        "cleanse", "--params", clf["params"], "--data", raw, "--scores", tmp_path / "val_loss0.csv",
        "--out", tmp_path / "v1",
    )  # fmt: skip
    v1 = json.loads((tmp_path / "v1" / "manifest.json").read_text())
    assert v1["n_instances"] == 1080 and len(set(v1["removed_ids"]) & flipped) > 60
    ganinf(
        "validate", "--run", run, "--scores", tmp_path / "val_loss0.csv", "--loo", "8",
        "--group", "0", "--out", tmp_path / "validate.json",
    )  # fmt: skip
    assert json.loads((tmp_path / "validate.json").read_text())["kendall_tau"] > 0.5
    with pytest.raises(SystemExit) as gate:
        ganinf(
            "gate", "--data", raw, "--run", run, "--method", "val_loss", "--max-harmful-frac",
            "0.05", "--ensemble", "3", "--report", tmp_path / "gate.json",
        )  # fmt: skip
    # 10% flipped labels: a set of at most 5% that every seed predicts to help
    assert gate.value.code == 1
    found = json.loads((tmp_path / "gate.json").read_text())["set"]
    assert found["n_agreeing"] == 3 and len(set(found["ids"]) & flipped) > found["n"] / 2
    capsys.readouterr()


def test_classifier_bad_input(clf, tiny_run, tmp_path, capsys):
    fails(
        capsys, "influence", "--run", clf["run"], "--method", "fid", "--out", tmp_path / "s.csv",
        match="unknown target of a classifier run 'fid'",
    )  # fmt: skip
    fails(
        capsys, "gate", "--data", clf["raw"], "--run", clf["run"], "--max-copying", "3",
        "--report", tmp_path / "g.json", match="needs the run's copying_ct",
    )  # fmt: skip
    unlabelled = tiny_run["raw"]
    fails(
        capsys, "train", "--params", clf["params"], "--data", unlabelled, "--out", tmp_path / "r",
        match="a classifier needs class labels",
    )  # fmt: skip
    fails(
        capsys, "prepare", "--dataset", "digits", "--param", "label_noise=1.5",
        "--out", tmp_path / "bad", match="label_noise must be in [0, 1)",
    )  # fmt: skip
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        clf["params"]
        .read_text()
        .replace("  problem: classifier", "  problem: classifier\n  r1: 1.0")
    )
    fails(  # a GAN's field is no classifier setting
        capsys, "train", "--params", bad, "--data", clf["raw"], "--out", tmp_path / "r2",
        match="unknown key train.r1",
    )  # fmt: skip
    fails(
        capsys, "train", "--params", clf["params"], "--data", clf["raw"], "--out", tmp_path / "r2",
        "--update", "alternating", match="a 'classifier' run has no training option 'update'",
    )  # fmt: skip
    assert not any((tmp_path / n).exists() for n in ("r", "r2", "bad", "s.csv", "g.json"))


def test_wine_labelnoise_run_end_to_end(tmp_path, capsys):
    """`ganinf run` on the table preset at a tiny budget: the flipped labels are recorded, the
    standardization statistics are in the run's checkpoints, a cleanse removes remove_frac, and
    re-scoring the kept run (a reload) gives the job's scores exactly."""
    params, out = tmp_path / "params.yaml", tmp_path / "work"
    ganinf("params", "--preset", "wine-labelnoise", "--out", params)
    text = params.read_text()
    assert "standardize: true" in text and "dataset: wine" in text
    params.write_text(text.replace("epochs: 30", "epochs: 4"))
    ganinf("run", "--params", params, "--out", out, "--loo", "4")
    summary = json.loads((out / "summary.json").read_text())["iterations"]
    assert summary["0"]["n_anomalies"] == 10 and summary["0"]["n_instances"] == 100
    assert summary["1"]["n_removed"] <= 10 and summary["1"]["method"] == "val_loss"
    run = out / "runs" / "r0"
    from safetensors.torch import load_file

    ckpt = load_file(str(sorted((run / "checkpoints").iterdir())[-1]))
    raw = np.load(out / "data" / "v0" / "data.npz")
    np.testing.assert_allclose(ckpt["c_input/0.mean"].numpy(), raw["x"].mean(0), rtol=1e-12)
    again = tmp_path / "again.csv"
    ganinf("influence", "--params", params, "--run", run, "--method", "val_loss", "--out", again)
    ids, harm = _scores(again)
    ids0, harm0 = _scores(out / "scores" / "it1_val_loss.csv")
    np.testing.assert_array_equal(np.sort(ids), np.sort(ids0))
    np.testing.assert_allclose(
        harm[np.argsort(ids)], harm0[np.argsort(ids0)], rtol=1e-12, atol=1e-15
    )
    assert np.abs(harm).max() > 0
    capsys.readouterr()
