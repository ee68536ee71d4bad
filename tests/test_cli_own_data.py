"""`ganinf prepare/run/loop --input FILE`: a team's own data end to end, and bad files refused
in one line before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ganinf_mlops.cli import main
from ganinf_mlops.data.version import load_version


def ganinf(*args: str | Path) -> None:
    main(["-q", *map(str, args)])


def _points(n: int = 200, d: int = 2) -> np.ndarray:
    return np.random.default_rng(3).normal(size=(n, d))


def test_run_on_my_npz(tmp_path: Path, capsys) -> None:
    """`ganinf run --input mine.npz --out w` on 200 2D points: the kind picks the default
    preset, the split is printed and recorded (one training seed, one run scored: seconds)."""
    np.savez(tmp_path / "mine.npz", x=_points())
    ganinf("run", "--input", tmp_path / "mine.npz", "--out", tmp_path / "w",
           "--ensemble", "1", "--retrain-seeds", "1")  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{tmp_path / 'mine.npz'}: vectors, preset default"
    assert out[1] == "160 train / 40 held out for evaluation (20%, seed 0)"
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert summary["job"]["preset"] == "default" and summary["iterations"]["1"]
    raw = load_version(tmp_path / "w" / "data" / "v0")
    params = raw.manifest.params
    assert (params["eval_source"], params["eval_frac"], params["seed"]) == ("split", 0.2, 0)
    assert raw.manifest.dataset == "npz" and raw.n == 160
    # `prepare --input` writes the same version as the job's first one.
    ganinf("prepare", "--input", tmp_path / "mine.npz", "--out", tmp_path / "v")
    lines = capsys.readouterr().out.splitlines()
    assert load_version(tmp_path / "v").digest == raw.digest
    assert lines[1] == "160 train / 40 held out for evaluation (20%, seed 0)"


def _table(n: int = 50) -> pd.DataFrame:
    x = _points(n, 3)
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2],
                         "label": np.where(x[:, 0] > 0, "up", "down")})  # fmt: skip


def test_prepare_a_labelled_csv_with_an_evaluation_file(tmp_path: Path, capsys) -> None:
    _table().to_csv(tmp_path / "t.csv", index=False)
    _table(12).to_csv(tmp_path / "e.csv", index=False)
    ganinf("prepare", "--input", tmp_path / "t.csv", "--label-column", "label",
           "--eval-input", tmp_path / "e.csv", "--out", tmp_path / "v")  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == f"50 train / 12 evaluation rows from {tmp_path / 'e.csv'}"
    v = load_version(tmp_path / "v")
    assert v.manifest.dataset == "table" and v.manifest.params["class_names"] == ["down", "up"]
    assert v.y.tolist() == (_table()["label"] == "up").astype(int).tolist()
    # The API reads the file through the same function: the same version.
    import ganinf_mlops as gi

    api = gi.prepare(tmp_path / "api", path=tmp_path / "t.csv", label_column="label",
                     eval_path=tmp_path / "e.csv")  # fmt: skip
    assert api.digest == v.digest and api.manifest.params == v.manifest.params
    ganinf("prepare", "--input", tmp_path / "t.csv", "--label-column", "label",
           "--param", "eval_frac=0.1", "--param", "seed=3", "--out", tmp_path / "v2")  # fmt: skip
    assert capsys.readouterr().out.splitlines()[1] == (
        "45 train / 5 held out for evaluation (10%, seed 3)"
    )


def test_run_chooses_tabular_for_a_labelled_table(tmp_path: Path, capsys, monkeypatch) -> None:
    """Labelled vectors -> the classifier (`tabular`); stopped at its first training, which is
    what the choice decides (the job's classifier runs are tested elsewhere)."""
    import ganinf_mlops.pipeline as pipeline

    seen = {}

    def stop(workdir, preset, **kwargs):
        seen["preset"] = preset
        raise SystemExit(0)

    monkeypatch.setattr(pipeline, "run_job", stop)
    _table().to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(SystemExit):
        ganinf("loop", "--input", tmp_path / "t.csv", "--label-column", "label",
               "--out", tmp_path / "w")  # fmt: skip
    preset = seen["preset"]
    assert preset.name == "tabular" and preset.train.problem == "classifier"
    assert preset.dataset == "table"
    assert preset.data_params == {"path": str(tmp_path / "t.csv"), "label_column": "label"}
    assert "labelled vectors, preset tabular" in capsys.readouterr().out


def _bad_cases(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (arguments after `--out`, the text of the error line)."""
    np.savez(tmp / "nan.npz", x=np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]]))
    np.savez(tmp / "no-x.npz", points=_points())
    np.savez(tmp / "short-y.npz", x=_points(), y=np.zeros(199, int))
    np.savez(tmp / "float-y.npz", x=_points(), y=np.full(200, 0.5))
    np.savez(tmp / "text-y.npz", x=_points(), y=np.array(["a"] * 200))
    np.savez(tmp / "ok.npz", x=_points())
    np.savez(tmp / "e3.npz", x=_points(10, 3))
    t = _table()
    t.to_csv(tmp / "t.csv", index=False)
    t.assign(c=["x"] * 50).to_csv(tmp / "text.csv", index=False)
    t.assign(b=[np.nan] * 50).to_csv(tmp / "nan.csv", index=False)
    t.drop(columns="c").to_csv(tmp / "e2.csv", index=False)
    (tmp / "ragged.csv").write_text("a,b\n1,2\n3\n")
    return {
        "npz-nan": (["--input", "nan.npz"], "non-finite values (NaN/inf)"),
        "npz-no-x": (["--input", "no-x.npz"], "missing array 'x' (found: points)"),
        "npz-y-length": (["--input", "short-y.npz"], "'y' expected shape (200,)"),
        "npz-y-float": (["--input", "float-y.npz"], "'y' must hold integer class labels"),
        "npz-y-text": (["--input", "text-y.npz"], "'y' must hold integer class labels"),
        "npz-eval-columns": (
            ["--input", "ok.npz", "--eval-input", "e3.npz"],
            "has 3 features per row but the input",
        ),
        "npz-label-column": (["--input", "ok.npz", "--label-column", "y"], "array 'y'"),
        "csv-text": (["--input", "text.csv", "--label-column", "label"], "not numeric: c"),
        "csv-nan": (["--input", "nan.csv", "--label-column", "label"], "feature columns b (50)"),
        "csv-missing-field": (["--input", "ragged.csv"], "feature columns b (1)"),
        "csv-label-column": (["--input", "t.csv", "--label-column", "y"], "no column 'y'"),
        "csv-eval-columns": (
            ["--input", "t.csv", "--label-column", "label", "--eval-input", "e2.csv"],
            "has 2 feature columns but the input",
        ),
        "eval-without-input": (["--eval-input", "e2.csv"], "--eval-input goes with --input"),
        "labelled-into-gan-on-images": (
            ["--input", "t.csv", "--label-column", "label", "--preset", "digits"],
            "'image_gan' problem on images",
        ),
    }


BAD_CASES = [
    "npz-nan", "npz-no-x", "npz-y-length", "npz-y-float", "npz-y-text", "npz-eval-columns",
    "npz-label-column", "csv-text", "csv-nan", "csv-missing-field", "csv-label-column",
    "csv-eval-columns", "eval-without-input", "labelled-into-gan-on-images",
]  # fmt: skip


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> tuple[Path, dict[str, tuple[list[str], str]]]:
    tmp = tmp_path_factory.mktemp("bad")
    return tmp, _bad_cases(tmp)


@pytest.mark.parametrize("command", ["run", "loop", "prepare"])
@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_one_error_line_nothing_written(
    bad_files, command: str, case: str, tmp_path: Path, capsys
) -> None:
    tmp, cases = bad_files
    assert sorted(cases) == sorted(BAD_CASES)
    args, match = cases[case]
    if command == "prepare" and "--preset" in args:
        pytest.skip("prepare writes data only: any preset reads any file")
    args = [str(tmp / a) if (tmp / a).exists() else a for a in args]
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        ganinf(command, *args, "--out", out)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and match in err[0], err
    assert not out.exists()
