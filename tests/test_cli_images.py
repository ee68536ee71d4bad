"""The image flow from the command line, and bad image input: one line, exit 2, nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_cli import fails, ganinf


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    """prepare -> classifier -> train -> influence --method fid on the digits-tiny preset."""
    d = tmp_path_factory.mktemp("images")
    p = {"raw": d / "raw", "clf": d / "classifier", "run": d / "run", "scores": d / "fid.csv"}
    ganinf("prepare", "--preset", "digits-tiny", "--out", p["raw"])
    ganinf("classifier", "--data", p["raw"], "--out", p["clf"], "--epochs", "2")
    params = d / "params.yaml"
    ganinf("params", "--preset", "digits-tiny", "--out", params)
    text = params.read_text().replace("classifier: classifier", f"classifier: {p['clf']}")
    params.write_text(text)
    p["params"] = params
    ganinf("train", "--params", params, "--data", p["raw"], "--out", p["run"])
    ganinf("influence", "--run", p["run"], "--method", "fid", "--out", p["scores"])
    return p


@pytest.mark.integration
def test_image_flow(images, tmp_path, capsys):
    capsys.readouterr()
    ganinf("influence", "--run", images["run"], "--method", "is", "--out", tmp_path / "is.csv")
    meta = json.loads((tmp_path / "is.csv.meta.json").read_text())
    assert meta["method"] == "is"
    ganinf(
        "cleanse", "--data", images["raw"], "--scores", images["scores"], "--remove-frac", "0.1",
        "--policy", "top", "--allow-unfitted", "--out", tmp_path / "v1",
    )  # fmt: skip
    manifest = json.loads((tmp_path / "v1" / "manifest.json").read_text())
    assert len(manifest["removed_ids"]) == 30 and manifest["shape"][1:] == [1, 8, 8]
    # The classifier of the raw version serves its cleansed child (lineage check passes).
    ganinf("train", "--data", tmp_path / "v1", "--replay", images["run"], "--out", tmp_path / "r")
    out = capsys.readouterr().out
    assert "fid=" in out and "change of fid" in out
    ganinf(
        "validate", "--run", images["run"], "--scores", images["scores"], "--loo", "4",
        "--group", "2", "--out", tmp_path / "validate.json",
    )  # fmt: skip
    report = json.loads((tmp_path / "validate.json").read_text())
    assert report["metric"] == "fid" and report["n_instances"] == 4
    with pytest.raises(SystemExit) as gate:
        ganinf(
            "gate", "--data", images["raw"], "--run", images["run"], "--method", "fid",
            "--threshold", "1e9", "--report", tmp_path / "gate.json",
        )  # fmt: skip
    assert gate.value.code == 0
    assert json.loads((tmp_path / "gate.json").read_text())["method"] == "fid"


def test_instance_selection_scores_the_fid_features(images, tmp_path):
    """On images the Gaussian is fitted to the feature classifier's 128-d features, the space
    FID is measured in (the problem's reference is the fit of the held-out images' features)."""
    from ganinf_mlops.data.version import load_version
    from ganinf_mlops.influence.baselines import instance_selection_harmfulness
    from ganinf_mlops.influence.scores import read_scores
    from ganinf_mlops.train.rundir import RunDir

    out = tmp_path / "sel.csv"
    ganinf("influence", "--run", images["run"], "--method", "instance_selection", "--out", out)
    table = read_scores(out)
    raw = load_version(images["raw"])
    problem = RunDir(images["run"]).problem(raw)
    features = problem.features(raw.x)
    assert features.shape == (raw.n, 128)
    ref = problem.features(raw.x_eval).mean(axis=0)
    np.testing.assert_allclose(ref, problem.ref.mean.cpu().numpy(), rtol=1e-5, atol=1e-6)
    harm = table.aligned_to(raw.ids)[0]
    np.testing.assert_allclose(harm, instance_selection_harmfulness(features), rtol=1e-10)
    assert table.metric is None and (harm > 0).all()


def test_gate_on_data_copying(images, tmp_path, capsys):
    """C_T is a result of every image run; --max-copying fails a run below -C (alone: no
    scoring)."""
    results = json.loads((images["run"] / "metrics.json").read_text())
    ct = results["copying_ct"]
    # Three epochs of a tiny DCGAN underfit: its samples sit farther from the training images
    # than held-out images do (C_T > 0; copying would be < -3). A z-score of 200 generated
    # against 200 test distances is at most sqrt(3 * 200 * 200 / 401) in size.
    assert 3 < ct <= np.sqrt(3 * 200 * 200 / 401), ct
    for limit, code in ((abs(ct) + 1.0, 0), (-ct - 0.5, 1)):
        with pytest.raises(SystemExit) as gate:
            ganinf(
                "gate", "--data", images["raw"], "--run", images["run"], "--max-copying",
                str(limit), "--report", tmp_path / f"g{code}.json",
            )  # fmt: skip
        assert gate.value.code == code
        report = json.loads((tmp_path / f"g{code}.json").read_text())
        assert report["copying"]["copying_ct"] == ct and "method" not in report
    assert "data copying C_T" in capsys.readouterr().out


def test_fid_of_a_vector_run_is_refused(tiny_run, tmp_path, capsys):
    # A copy: the default preset's ensemble trains seed siblings beside the run before refusing.
    shutil.copytree(tiny_run["root"], tmp_path / "tiny")
    fails(
        capsys, "influence", "--run", tmp_path / "tiny" / "runs" / "raw", "--method", "fid",
        "--out", tmp_path / "s.csv", match="target of a gan run",
    )  # fmt: skip
    assert not (tmp_path / "s.csv").exists()


def test_classifier_of_another_version_is_refused(images, tmp_path, capsys):
    other = tmp_path / "other"
    ganinf("prepare", "--preset", "digits-tiny", "--param", "seed=1", "--out", other)
    fails(
        capsys, "train", "--params", images["params"], "--data", other, "--out", tmp_path / "r",
        match="neither",
    )  # fmt: skip
    assert not (tmp_path / "r").exists()


def test_classifier_needs_labelled_images(tiny_run, tmp_path, capsys):
    fails(
        capsys, "classifier", "--data", tiny_run["raw"], "--out", tmp_path / "c",
        match="not images",
    )  # fmt: skip
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("size,match", [(12, "takes images (1, 8, 8)"), (10, "divisible by 4")])
def test_images_of_another_size_are_refused_by_the_run(images, tmp_path, capsys, size, match):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "big.npz", x=rng.integers(0, 256, (80, size, size), dtype=np.uint8),
        y=rng.integers(0, 10, 80),
    )  # fmt: skip
    ganinf(
        "prepare", "--dataset", "images_npz", "--input", tmp_path / "big.npz",
        "--out", tmp_path / "big",
    )  # fmt: skip
    fails(
        capsys, "train", "--params", images["params"], "--data", tmp_path / "big",
        "--out", tmp_path / "r", match=match,
    )  # fmt: skip
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "x,match",
    [
        (np.zeros((10, 2, 8, 8)), "C in (1, 3)"),
        (np.full((10, 8, 8), np.nan), "NaN"),
        (np.full((10, 8, 8), 3.0), "[-1, 1]"),
        (np.zeros((10, 8)), "source 'npz' does"),
    ],
    # ids that do not contain the expected text: it would be found in the tmp path otherwise
    ids=["two-channels", "nan-pixels", "out-of-range", "vectors"],
)
def test_bad_images_npz(tmp_path, capsys, x, match):
    np.savez(tmp_path / "in.npz", x=x)
    fails(
        capsys, "prepare", "--dataset", "images_npz", "--input", tmp_path / "in.npz",
        "--out", tmp_path / "v", match=match,
    )  # fmt: skip
    assert not (tmp_path / "v").exists()
