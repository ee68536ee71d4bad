"""The CLI end to end, and its answers to bad input: one line on stderr, exit 2, nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ganinf_mlops.cli import main


def ganinf(*args: str | Path) -> None:
    main(["-q", *map(str, args)])


def influence(flow: dict[str, Path], *args: str | Path) -> None:
    """`ganinf influence` of the flow's run under the tiny preset's job, which scores one run (the
    default preset's averages over 8 training seeds)."""
    ganinf("influence", "--preset", "tiny", "--run", flow["run"], *args)


def fails(capsys, *args: str | Path, match: str) -> str:
    with pytest.raises(SystemExit) as exc:
        ganinf(*args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert match in err, err
    return err


@pytest.fixture(scope="module")
def flow(tiny_run, tmp_path_factory) -> dict[str, Path]:
    """prepare -> train -> influence on the tiny preset (tests/conftest.py), copied for this
    module: commands here may leave ensemble members beside the run."""
    root = tmp_path_factory.mktemp("flow") / "flow"
    shutil.copytree(tiny_run["root"], root)
    return {k: root / v.relative_to(tiny_run["root"]) for k, v in tiny_run.items()}


def test_flow_with_cleanse_replay_and_validate(flow, tmp_path, capsys):
    new = tmp_path / "v1"
    ganinf(
        "cleanse",
        "--data",
        flow["raw"],
        "--scores",
        flow["scores"],
        "--remove-frac",
        "0.05",
        "--out",
        new,
    )
    manifest = json.loads((new / "manifest.json").read_text())
    assert len(manifest["removed_ids"]) == 10 and manifest["method"] == "all"
    ganinf("train", "--data", new, "--out", tmp_path / "replay", "--replay", flow["run"])
    metrics = json.loads((tmp_path / "replay" / "metrics.json").read_text())
    assert metrics["predicted_change"] == pytest.approx(manifest["predicted_change"])
    # Removing 5% at once is far from one instance, but the sign and size must still hold.
    assert metrics["actual_change"] == pytest.approx(metrics["predicted_change"], rel=0.5)
    ganinf(
        "validate",
        "--run",
        flow["run"],
        "--scores",
        flow["scores"],
        "--loo",
        "12",
        "--out",
        tmp_path / "report.json",
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["n_instances"] == 12 and report["kendall_tau"] > 0.8
    for method in ("disc_loss", "isolation_forest", "instance_selection", "random"):
        influence(flow, "--method", method, "--out", tmp_path / f"{method}.csv")
        lines = (tmp_path / f"{method}.csv").read_text().splitlines()
        assert lines[0] == "id,predicted_change,harmfulness,rank" and len(lines) == 201


def test_instance_selection_scores_cleanses_and_gates_as_a_baseline(flow, tmp_path, capsys):
    """`influence --method instance_selection` on a vector run: the Gaussian density of the raw
    coordinates, no predicted change; `cleanse` removes its top 5% (every harmfulness is
    positive, so policy positive removes the full budget); the gate's set check refuses it, the
    absolute check takes it."""
    from ganinf_mlops.data.version import load_version
    from ganinf_mlops.influence.baselines import instance_selection_harmfulness
    from ganinf_mlops.influence.scores import read_scores

    scores = tmp_path / "sel.csv"
    influence(flow, "--method", "instance_selection", "--out", scores)
    table = read_scores(scores)
    raw = load_version(flow["raw"])
    assert table.method == "instance_selection" and table.metric is None
    assert np.isnan(table.predicted_change).all()
    np.testing.assert_allclose(table.aligned_to(raw.ids)[0], instance_selection_harmfulness(raw.x))
    ganinf("cleanse", "--data", flow["raw"], "--scores", scores, "--remove-frac", "0.05",
           "--out", tmp_path / "v1")  # fmt: skip
    manifest = json.loads((tmp_path / "v1" / "manifest.json").read_text())
    assert manifest["method"] == "instance_selection"
    assert sorted(manifest["removed_ids"]) == sorted(table.ids[table.order()[:10]].tolist())
    gate = ("gate", "--data", flow["raw"], "--run", flow["run"], "--preset", "tiny", "--report",
            tmp_path / "g.json", "--force")  # fmt: skip
    method = ("--method", "instance_selection")
    fails(capsys, *gate, *method, "--max-harmful-frac", "0.05", "--ensemble", "2",
          match="is a baseline")  # fmt: skip
    fails(capsys, *gate, "--scores", scores, "--max-harmful-frac", "0.05", match="is a baseline")
    assert not (tmp_path / "g.json").exists()
    with pytest.raises(SystemExit) as exc:
        ganinf(*gate, *method, "--threshold", str(np.median(table.harmfulness)))
    assert exc.value.code == 1
    report = json.loads((tmp_path / "g.json").read_text())
    assert (
        report["method"] == "instance_selection" and report["threshold_check"]["n_harmful"] == 100
    )


def test_missing_and_corrupt_data(flow, tmp_path, capsys):
    fails(
        capsys,
        "train",
        "--data",
        tmp_path / "nope",
        "--out",
        tmp_path / "r",
        match="does not exist",
    )
    broken = tmp_path / "broken"
    shutil.copytree(flow["raw"], broken)
    (broken / "data.npz").write_bytes(b"not a zip")
    fails(capsys, "train", "--data", broken, "--out", tmp_path / "r", match="error:")
    assert not (tmp_path / "r").exists()


def test_tampered_data_is_refused(flow, tmp_path, capsys):
    tampered = tmp_path / "tampered"
    shutil.copytree(flow["raw"], tampered)
    arrays = dict(np.load(tampered / "data.npz"))
    arrays["x"][3, 0] += 1e-9
    np.savez(tampered / "data.npz", **arrays)
    fails(capsys, "train", "--data", tampered, "--out", tmp_path / "r", match="digest mismatch")


@pytest.mark.parametrize(
    "x,match",
    [(np.arange(10.0), "shape"), (np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]]), "NaN")],
    ids=["one-dim", "nan-value"],  # not the expected text, which the tmp path would then hold
)
def test_bad_npz_input(tmp_path, capsys, x, match):
    np.savez(tmp_path / "in.npz", x=x)
    fails(
        capsys,
        "prepare",
        "--dataset",
        "npz",
        "--input",
        tmp_path / "in.npz",
        "--out",
        tmp_path / "v",
        match=match,
    )
    assert not (tmp_path / "v").exists()


def test_run_on_another_version_is_refused(flow, tmp_path, capsys):
    other = tmp_path / "other"
    ganinf("prepare", "--preset", "tiny", "--param", "seed=1", "--out", other)
    fails(
        capsys,
        "influence",
        "--run",
        flow["run"],
        "--data",
        other,
        "--out",
        tmp_path / "s.csv",
        match="digest mismatch",
    )
    assert not (tmp_path / "s.csv").exists()


@pytest.mark.parametrize(
    "opts,match",
    [
        (["--remove-frac", "0"], "(0, 1)"),
        (["--remove-frac", "1.5"], "(0, 1)"),
        (["--remove-count", "200"], "leave no data"),
        (["--min-agreement", "0.5"], "these scores are one run's"),  # not an ensemble's
        (["--min-agreement", "0"], "0<x<=1"),
    ],
)
def test_bad_cleanse_amounts(flow, tmp_path, capsys, opts, match):
    fails(
        capsys,
        "cleanse",
        "--data",
        flow["raw"],
        "--scores",
        flow["scores"],
        *opts,
        "--out",
        tmp_path / "v",
        match=match,
    )
    assert not (tmp_path / "v").exists()


def test_existing_outputs_need_force(flow, tmp_path, capsys):
    fails(capsys, "prepare", "--preset", "tiny", "--out", flow["raw"], match="--force")
    fails(capsys, "influence", "--run", flow["run"], "--out", flow["scores"], match="--force")


def test_unknown_method_is_a_usage_error(flow, tmp_path, capsys):
    for option in ("--method", "--metric"):
        with pytest.raises(SystemExit) as exc:
            influence(flow, option, "fid", "--out", tmp_path / "s")
        assert exc.value.code == 2
        assert "fid" in capsys.readouterr().err


def test_deprecated_metric_option_still_scores(flow, tmp_path, capsys):
    with pytest.warns(FutureWarning, match="--metric is deprecated"):
        influence(flow, "--metric", "all", "--out", tmp_path / "s.csv")
    assert "use --method" in capsys.readouterr().err
    assert (tmp_path / "s.csv").read_bytes() == flow["scores"].read_bytes()
    fails(
        capsys, "influence", "--run", flow["run"], "--metric", "all", "--method", "random",
        "--out", tmp_path / "t.csv", match="give --method only",
    )  # fmt: skip


def test_validate_defaults_come_from_the_config(flow, tmp_path, capsys):
    """No --method/--loo: the preset's job.method (all) and job.loo (tiny: 12)."""
    ganinf("validate", "--preset", "tiny", "--run", flow["run"], "--out", tmp_path / "r.json")
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["method"] == "all" and report["n_instances"] == 12
    params = tmp_path / "params.yaml"
    ganinf("params", "--preset", "tiny", "--out", params)
    params.write_text(params.read_text().replace("loo: 12", "loo: 0"))
    fails(
        capsys, "validate", "--params", params, "--run", flow["run"], "--out", tmp_path / "x",
        match="job.loo is 0",
    )  # fmt: skip


def test_params_file_round_trip_and_errors(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    ganinf("params", "--preset", "tiny", "--out", params)
    text = params.read_text()
    ganinf("prepare", "--params", params, "--out", tmp_path / "raw")
    assert json.loads((tmp_path / "raw" / "manifest.json").read_text())["n_instances"] == 200
    params.write_text(text.replace("  epochs: null\n", ""))
    fails(
        capsys,
        "train",
        "--params",
        params,
        "--data",
        tmp_path / "raw",
        "--out",
        tmp_path / "run",
        match="missing key train.epochs",
    )
    params.write_text(text.replace("  epochs: null\n", "  epochs: null\n  epoch: 5\n"))
    fails(
        capsys,
        "train",
        "--params",
        params,
        "--data",
        tmp_path / "raw",
        "--out",
        tmp_path / "run",
        match="unknown key train.epoch",
    )
    params.write_text(text.replace("method: all", "method: magic"))
    fails(capsys, "run", "--params", params, "--out", tmp_path / "job", match="unknown method")
    assert not (tmp_path / "job").exists()
    fails(
        capsys,
        "train",
        "--params",
        tmp_path / "nope.yaml",
        "--data",
        tmp_path / "raw",
        "--out",
        tmp_path / "run",
        match="does not exist",
    )
    assert not (tmp_path / "run").exists()


def test_run_job_tiny(tmp_path, capsys):
    ganinf("loop", "--preset", "tiny", "--out", tmp_path / "job", "--loo", "8", "--iterations", "2")
    out = capsys.readouterr().out
    assert "Kendall tau" in out and "removed 10" in out
    summary = json.loads((tmp_path / "job" / "summary.json").read_text())
    its = summary["iterations"]
    assert [its[k]["n_instances"] for k in ("0", "1", "2")] == [200, 190, 180]
    rows = [its["1"], its["2"]]
    assert rows[0]["validation"]["n_instances"] == 8
    for r in rows:
        assert r["predicted_change"] == pytest.approx(r["actual_change"], rel=0.5)
    assert (tmp_path / "job" / "data" / "v2" / "manifest.json").exists()
    # Finished: a resume has nothing to do; a second run needs --force.
    fails(capsys, "loop", "--preset", "tiny", "--out", tmp_path / "job", "--resume",
          match="finished already")  # fmt: skip
    fails(capsys, "loop", "--preset", "tiny", "--out", tmp_path / "new", "--resume",
          match="holds no started job")  # fmt: skip
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("out", ["raw", ".", "raw/run"])
def test_train_output_may_not_overlap_its_input(flow, tmp_path, capsys, out):
    """`train --out` the dataset version, a directory holding it, or a path inside it is
    refused even with --force, and the version stays intact."""
    raw = flow["raw"]
    target = {"raw": raw, ".": raw.parent, "raw/run": raw / "run"}[out]
    before = sorted(p.name for p in raw.iterdir())
    fails(
        capsys, "train", "--preset", "tiny", "--data", raw, "--out", target, "--force",
        match="overlaps the input",
    )  # fmt: skip
    assert sorted(p.name for p in raw.iterdir()) == before
    ganinf("train", "--data", raw, "--replay", flow["run"], "--out", tmp := tmp_path / "r2")
    fails(
        capsys, "train", "--data", raw, "--replay", flow["run"], "--out", flow["run"],
        "--force", match="overlaps the input",
    )  # fmt: skip
    assert tmp.exists()


@pytest.mark.parametrize(
    "opts,match",
    [
        (["--device", "foo"], "not a torch device"),
        (["--device", "cuda:7"], "cuda:7"),
        (["--seed", "99999999999999999999"], "seed must be in"),
    ],
)
def test_bad_training_values_are_one_line(flow, tmp_path, capsys, opts, match):
    fails(
        capsys, "train", "--preset", "tiny", "--data", flow["raw"], "--out", tmp_path / "r",
        *opts, match=match,
    )  # fmt: skip
    assert not (tmp_path / "r").exists()


def test_os_errors_are_one_line(flow, tmp_path, capsys):
    """A file where a directory should be: `error: ...`, exit 2, no traceback."""
    (tmp_path / "afile").write_text("")
    err = fails(
        capsys, "train", "--preset", "tiny", "--data", flow["raw"],
        "--out", tmp_path / "afile" / "run", match="afile",
    )  # fmt: skip
    assert err.startswith("error: ") and "Traceback" not in err


@pytest.mark.integration
def test_disk_full_leaves_nothing(tmp_path):
    """Writes beyond RLIMIT_FSIZE fail (EFBIG, as on a full disk): one line, exit 2, no output
    and no temp directory."""
    import resource
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ganinf"), "-q", "prepare", "--preset", "tiny",
            "--param", "n=50000", "--out", str(tmp_path / "v"),
        ],
        preexec_fn=limit, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def read_only_dir(tmp_path):
    """`tmp_path/ro`: a read-only bind mount of `tmp_path/src` (needs root and mount rights)."""
    import subprocess

    src, ro = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    ro.mkdir()
    mount = ["mount", "--bind", str(src), str(ro)]
    if subprocess.run(mount, capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot bind-mount here (needs root and CAP_SYS_ADMIN)")
    try:
        remount = ["mount", "-o", "remount,bind,ro", str(ro)]
        if subprocess.run(remount, capture_output=True, check=False).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield ro
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True, check=False)


def test_read_only_file_system(flow, read_only_dir, capsys):
    """Every writer on a read-only file system: one line naming the path, exit 2, nothing left."""
    ro = read_only_dir
    fails(capsys, "prepare", "--preset", "tiny", "--out", ro / "v", match="Read-only file system")
    fails(capsys, "train", "--preset", "tiny", "--data", flow["raw"], "--out", ro / "run",
          match="Read-only file system")  # fmt: skip
    fails(capsys, "influence", "--preset", "tiny", "--run", flow["run"], "--method", "all",
          "--out", ro / "s.csv", match="Read-only file system")  # fmt: skip
    fails(capsys, "cleanse", "--data", flow["raw"], "--scores", flow["scores"], "--out", ro / "v1",
          match="Read-only file system")  # fmt: skip
    assert list(ro.iterdir()) == []


def test_influence_averaged_over_minibatch_orders(flow, tmp_path, capsys):
    from ganinf_mlops.data.version import load_version
    from ganinf_mlops.influence.methods import score
    from ganinf_mlops.influence.options import ScoringOptions
    from ganinf_mlops.influence.scores import read_scores

    out = tmp_path / "avg.csv"
    influence(flow, "--method", "all", "--last-epochs", "1", "--average-order", "--out", out)
    table = read_scores(out)
    assert table.extra["average_order"] is True and table.extra["last_epochs"] == 1
    options = ScoringOptions("all", last_epochs=1, average_order=True, progress=False)
    expected = score(flow["run"], load_version(flow["raw"]), options)
    assert np.array_equal(table.aligned_to(expected.ids)[1], expected.predicted_change)
    drawn = read_scores(flow["scores"])
    assert drawn.extra["average_order"] is False
    # the Suzuki estimate has no trajectory to average over
    fails(capsys, "influence", "--preset", "tiny", "--run", flow["run"], "--method", "all",
          "--average-order", "--storage-efficient", "--out", tmp_path / "x.csv",
          match="order averaging needs the recorded trajectory")  # fmt: skip
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    "args, match",
    [(["--data", "OTHER"], "digest mismatch"), (["--method", "fid"], "target of a gan run")],
    ids=["other-data", "fid-of-vectors"],
)
def test_refused_influence_trains_no_ensemble_members(tiny_run, tmp_path, capsys, args, match):
    root = tmp_path / "copy"
    shutil.copytree(tiny_run["root"], root)
    if "OTHER" in args:
        args = [tmp_path / "other" if a == "OTHER" else a for a in args]
        ganinf("prepare", "--preset", "tiny", "--param", "seed=1", "--out", tmp_path / "other")
    fails(
        capsys, "influence", "--run", root / "runs" / "raw", *args, "--ensemble", "2",
        "--out", tmp_path / "s.csv", match=match,
    )  # fmt: skip
    assert sorted(p.name for p in (root / "runs").iterdir()) == ["raw"]


def test_cleanse_refuses_the_scores_of_an_unfitted_model(flow, tmp_path, capsys):
    """The tiny run's fd stays far from its data's floor: its fd influence is not acted on
    (exit 2, nothing written) unless --allow-unfitted."""
    scores = tmp_path / "fd.csv"
    influence(flow, "--method", "fd", "--out", scores)
    meta = json.loads((tmp_path / "fd.csv.meta.json").read_text())
    assert meta["extra"]["fit"]["fit"] == "unfitted"
    args = ("cleanse", "--data", flow["raw"], "--scores", scores, "--remove-count", "3")
    err = fails(capsys, *args, "--out", tmp_path / "v1", match="nothing cleansed: the model did")
    assert "raise train.steps (now 50)" in err and "--allow-unfitted" in err
    assert not (tmp_path / "v1").exists()
    ganinf(*args, "--out", tmp_path / "v1", "--allow-unfitted")
    assert (tmp_path / "v1" / "manifest.json").exists()


def test_train_and_run_say_whether_the_model_fitted(flow, tmp_path, capsys):
    ganinf("train", "--preset", "tiny", "--data", flow["raw"], "--out", tmp_path / "r",
           "--steps", "5")  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("model ") and " vs data floor " in out[-1]  # judged by tiny's ALL
    ganinf("run", "--preset", "tiny", "--method", "fd", "--iterations", "1",
           "--out", tmp_path / "j")  # fmt: skip
    out = capsys.readouterr().out
    assert out.count("did not fit") == 1
    assert "(iteration 1: nothing cleansed: the model did not fit: fd" in out
