"""A 32x32 colour job from the command line: `ganinf run --preset cifar10-dcgan` on a tiny fake
CIFAR-10 root (torchvision's format), made small by its params file; and a missing root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import write_cifar10
from test_cli import fails, ganinf


def _tiny_params(tmp_path: Path, root: Path) -> Path:
    """cifar10-dcgan's params with the tiny fake root and a smoke-test budget."""
    params = tmp_path / "params.yaml"
    ganinf("params", "--preset", "cifar10-dcgan", "--out", params)
    p = yaml.safe_load(params.read_text())
    assert p["data"]["dataset"] == "cifar10" and p["train"]["model"]["g_hidden"] == [64, 32, 16]
    p["data"]["params"].update(root=str(root), train_size=None, n_eval=None)
    model = p["train"]["model"]
    model.update(latent_dim=8, g_hidden=[8, 4, 4], d_hidden=[4, 4, 8])
    p["train"].update(steps=12, batch_size=50, checkpoint_every=6)
    p["metric"]["n_gen"] = 100
    p["job"].update(retrain_seeds=1, ensemble=1, iterations=1)
    params.write_text(yaml.safe_dump(p, sort_keys=False))
    return params


@pytest.mark.integration
def test_cifar10_job_end_to_end(tmp_path, capsys):
    """200 training and 60 test images of 3x32x32: prepare, the feature classifier, training,
    FID influence over the run, a cleanse and a fresh retraining, with a fit line and a summary."""
    write_cifar10(tmp_path / "cifar", n_train=200, n_test=60)
    params = _tiny_params(tmp_path, tmp_path / "cifar")
    out = tmp_path / "work"
    capsys.readouterr()
    # 12 steps do not fit the data: the cleanse goes ahead anyway, to run the whole loop.
    ganinf("run", "--params", params, "--out", out, "--allow-unfitted")
    printed = capsys.readouterr().out
    fit_lines = [line for line in printed.splitlines() if line.startswith("model ")]
    assert len(fit_lines) == 1 and " vs data floor " in fit_lines[0], printed
    assert fit_lines[0].startswith("model fitted: fid ") or "did not fit: fid " in fit_lines[0]
    summary = json.loads((out / "summary.json").read_text())
    it0, it1 = summary["iterations"]["0"], summary["iterations"]["1"]
    assert it0["n_instances"] == 200 and it0["n_anomalies"] == 10  # 5% noise images
    assert it1["method"] == "fid" and it1["n_removed"] == 10  # remove_frac 0.05
    manifest = json.loads((out / "data" / "v0" / "manifest.json").read_text())
    assert manifest["dataset"] == "cifar10" and manifest["shape"][1:] == [3, 32, 32]
    clf = json.loads((out / "classifier" / "classifier.json").read_text())
    assert clf["input_shape"] == [3, 32, 32] and clf["n_classes"] == 10


def test_a_missing_cifar10_root_is_one_error_line(tmp_path, capsys):
    params = _tiny_params(tmp_path, tmp_path / "nowhere")
    err = fails(capsys, "run", "--params", params, "--out", tmp_path / "work",
                match="error: CIFAR-10 not found: expected data_batch_1")  # fmt: skip
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in err
    assert "Nothing is downloaded" in err and len(err.strip().splitlines()) == 1
