"""Run integrity and manifest metadata (issue 24, items 6 and 7 and the low items on lineage and
`.partial` checkpoints): a finished run records the digests of its files (integrity.json) and
every use verifies them; a version's metadata outside its content digest is validated on read.
Each refusal is one `error:` line, exit 2, and the inputs are left byte for byte."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from ganinf_mlops.cli import main


def ganinf(*args: str | Path) -> None:
    main(["-q", *map(str, args)])


def digest_tree(path: Path) -> dict[str, str]:
    """Every file under `path` (or `path` itself) by its sha256: what "left intact" means."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("integrity")
    p = {"raw": d / "raw", "run": d / "run", "scores": d / "scores.csv", "v1": d / "v1"}
    ganinf("prepare", "--preset", "tiny", "--out", p["raw"])
    ganinf("train", "--preset", "tiny", "--data", p["raw"], "--out", p["run"])
    ganinf("influence", "--preset", "tiny", "--run", p["run"], "--method", "fd",
           "--out", p["scores"])  # fmt: skip
    # tiny's 50 steps leave fd far from its floor: cleansing by fd needs --allow-unfitted
    ganinf("cleanse", "--data", p["raw"], "--scores", p["scores"], "--out", p["v1"],
           "--allow-unfitted")  # fmt: skip
    return p


@pytest.fixture
def flow(built, tmp_path) -> dict[str, Path]:
    """A copy of the built flow for each case (the copies are writable)."""
    shutil.copytree(built["raw"].parent, tmp_path / "flow")
    for p in (tmp_path / "flow").rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return {k: tmp_path / "flow" / v.name for k, v in built.items()}


def refused(capsys, flow: dict[str, Path], match: str, *args: str | Path) -> str:
    before = {k: digest_tree(v) for k, v in flow.items()}
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        ganinf(*args)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2, err
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert match in err, err
    assert {k: digest_tree(v) for k, v in flow.items()} == before
    return err


def edit_json(path: Path, edit) -> None:
    obj = json.loads(path.read_text())
    edit(obj)
    path.write_text(json.dumps(obj, indent=2))


CHANGED = "was changed after it was written"


# ---- item 6: an edited or swapped run ----------------------------------------------------------
def test_influence_refuses_an_edited_steps_per_epoch(flow, capsys):
    edit_json(flow["run"] / "meta.json", lambda m: m.update(steps_per_epoch=0))
    out = flow["run"].parent / "s.csv"
    err = refused(capsys, flow, CHANGED, "influence", "--preset", "tiny", "--run", flow["run"],
                  "--method", "fd", "--last-epochs", "1", "--out", out)  # fmt: skip
    assert "meta.json" in err and str(flow["run"]) in err


def test_replay_refuses_an_edited_learning_rate(flow, capsys):
    edit_json(flow["run"] / "meta.json", lambda m: m["train"]["d_optim"].update(lr=0.5))
    refused(capsys, flow, CHANGED, "train", "--data", flow["v1"], "--replay", flow["run"],
            "--out", flow["run"].parent / "replay")  # fmt: skip


def test_retrain_of_refuses_an_edited_run(flow, capsys):
    edit_json(flow["run"] / "meta.json", lambda m: m["train"].update(epochs=50))
    refused(capsys, flow, CHANGED, "train", "--preset", "tiny", "--data", flow["v1"],
            "--retrain-of", flow["run"], "--out", flow["run"].parent / "r1")  # fmt: skip


def test_influence_refuses_a_swapped_checkpoint(flow, capsys):
    ckpts = sorted((flow["run"] / "checkpoints").iterdir())
    shutil.copyfile(ckpts[-1], ckpts[0])  # same shapes and dtypes: only the digest tells
    err = refused(capsys, flow, CHANGED, "influence", "--preset", "tiny", "--run", flow["run"],
                  "--method", "fd", "--out", flow["run"].parent / "s.csv")  # fmt: skip
    assert ckpts[0].name in err


def test_evaluate_refuses_edited_metrics(flow, capsys):
    edit_json(flow["run"] / "metrics.json", lambda m: m.update(fd=0.0))
    refused(capsys, flow, CHANGED, "evaluate", "--run", flow["run"],
            "--out", flow["run"].parent / "m.json")  # fmt: skip


def test_a_run_without_its_integrity_file_is_refused(flow, capsys):
    (flow["run"] / "integrity.json").unlink()
    refused(capsys, flow, "integrity.json", "influence", "--preset", "tiny", "--run", flow["run"],
            "--method", "fd", "--out", flow["run"].parent / "s.csv")  # fmt: skip


def test_a_run_written_before_integrity_files_is_used_with_a_warning(flow, caplog):
    """Runs in users' hands from before this change stay usable: no integrity file and no
    `integrity` key in meta.json -> a warning, then the run is used as before."""
    (flow["run"] / "integrity.json").unlink()
    edit_json(flow["run"] / "meta.json", lambda m: m.pop("integrity"))
    with caplog.at_level(logging.WARNING):
        main(["influence", "--preset", "tiny", "--run", str(flow["run"]), "--method", "fd",
              "--out", str(flow["run"].parent / "s.csv")])  # fmt: skip
    assert "no integrity record" in caplog.text
    assert (flow["run"].parent / "s.csv").is_file()


def test_resume_refuses_an_edited_partial_checkpoint(flow, capsys, monkeypatch):
    from ganinf_mlops.train import rundir
    from ganinf_mlops.train.partial import partial_dir

    out = flow["run"].parent / "r-partial"
    real = rundir.RunWriter.checkpoint

    def killed_at_20(self, step, state):
        if step == 20:
            raise KeyboardInterrupt
        real(self, step, state)

    monkeypatch.setattr(rundir.RunWriter, "checkpoint", killed_at_20)
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        ganinf("train", "--preset", "tiny", "--data", flow["raw"], "--out", out)
    monkeypatch.undo()
    ckpt = partial_dir(out) / "checkpoints" / "step_00000010.safetensors"
    flat = load_file(str(ckpt))
    key = sorted(flat)[0]
    flat[key] = flat[key] + 0.25
    save_file(flat, str(ckpt))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        ganinf("train", "--preset", "tiny", "--data", flow["raw"], "--out", out, "--resume")
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert CHANGED in err and "step_00000010" in err, err
    assert not out.exists()


# ---- item 7 and the low items: manifest metadata and lineage ----------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("is_anomaly_ids", [10**9]),  # not an id of the version
        ("is_anomaly_ids", [-1]),
        ("is_anomaly_ids", "dup"),
    ],
)
def test_anomaly_ids_are_validated_on_read(flow, capsys, field, value):
    """`influence --method injected` flagged whatever ids an edited manifest listed."""
    manifest = flow["raw"] / "manifest.json"
    obj = json.loads(manifest.read_text())
    ids = obj["is_anomaly_ids"]
    obj[field] = [ids[0], *ids] if value == "dup" else value
    manifest.write_text(json.dumps(obj))
    err = refused(capsys, flow, field, "influence", "--preset", "tiny", "--run", flow["run"],
                  "--method", "injected", "--out", flow["raw"].parent / "s.csv")  # fmt: skip
    assert "manifest.json" in err


@pytest.mark.parametrize(
    ("field", "text"),
    [("method", '"evil"'), ("predicted_change", "NaN"), ("predicted_change", "Infinity")],
)
def test_manifest_metadata_is_validated_on_read(flow, capsys, field, text):
    manifest = flow["v1"] / "manifest.json"
    obj = json.loads(manifest.read_text())
    obj[field] = "@"
    manifest.write_text(json.dumps(obj).replace('"@"', text))  # NaN as Python's json writes it
    err = refused(capsys, flow, field, "lineage", flow["v1"])
    assert "manifest.json" in err


def test_cleanse_refuses_an_unknown_method_from_the_sidecar(flow, capsys):
    sidecar = flow["scores"].with_name(flow["scores"].name + ".meta.json")
    edit_json(sidecar, lambda m: m.update(method="evil"))
    refused(capsys, flow, "evil", "cleanse", "--data", flow["raw"], "--scores", flow["scores"],
            "--out", flow["raw"].parent / "v2", "--allow-unfitted")  # fmt: skip
    assert not (flow["raw"].parent / "v2").exists()


def test_lineage_refuses_a_parent_path_that_escapes(flow, capsys):
    edit_json(flow["v1"] / "manifest.json", lambda m: m.update(parent_path="../../.."))
    refused(capsys, flow, "parent_path", "lineage", flow["v1"])


def test_lineage_refuses_a_symlinked_parent(flow, capsys):
    elsewhere = flow["raw"].parent.parent / "elsewhere"
    shutil.copytree(flow["raw"], elsewhere)
    os.symlink(elsewhere, flow["raw"].parent / "link")
    edit_json(flow["v1"] / "manifest.json", lambda m: m.update(parent_path="../link"))
    refused(capsys, flow, "symlink", "lineage", flow["v1"])


def test_lineage_after_the_parent_was_overwritten_says_parent_digest_mismatch(flow, capsys):
    ganinf("prepare", "--preset", "tiny", "--param", "seed=5", "--out", flow["raw"], "--force")
    err = refused(capsys, flow, "parent digest mismatch", "lineage", flow["v1"])
    assert "broken lineage" in err and str(flow["raw"]) in err


def test_lineage_after_a_run_replaced_the_parent_is_one_line(flow, capsys):
    ganinf("train", "--preset", "tiny", "--data", flow["v1"], "--out", flow["raw"], "--force")
    refused(capsys, flow, "broken lineage", "lineage", flow["v1"])


def test_loop_resume_reverifies_kept_versions(tmp_path, capsys, monkeypatch):
    """Item 7: a version edited after the kill (one removed id dropped from its manifest) was
    kept by `loop --resume`, which reported 9 removed instead of 10."""
    monkeypatch.chdir(tmp_path)
    ganinf("loop", "--preset", "tiny", "--iterations", "1", "--loo", "0", "--out", "job",
           "--no-tracking")  # fmt: skip
    (tmp_path / "job" / "summary.json").unlink()  # as if killed at the very end
    manifest = tmp_path / "job" / "data" / "v1" / "manifest.json"
    manifest.chmod(0o644)
    edit_json(manifest, lambda m: m.update(removed_ids=m["removed_ids"][1:]))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        ganinf("loop", "--preset", "tiny", "--iterations", "1", "--loo", "0", "--out", "job",
               "--no-tracking", "--resume")  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert "v1" in err and "removed_ids" in err, err
    assert not (tmp_path / "job" / "summary.json").exists()


def test_loop_resume_reverifies_kept_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ganinf("loop", "--preset", "tiny", "--iterations", "1", "--loo", "0", "--out", "job",
           "--no-tracking")  # fmt: skip
    (tmp_path / "job" / "summary.json").unlink()
    meta = tmp_path / "job" / "runs" / "r1" / "meta.json"
    meta.chmod(0o644)
    edit_json(meta, lambda m: m.update(steps_per_epoch=0))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        ganinf("loop", "--preset", "tiny", "--iterations", "1", "--loo", "0", "--out", "job",
               "--no-tracking", "--resume")  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and CHANGED in err and len(err.splitlines()) == 1, err


def test_the_integrity_record_lists_every_file_of_the_run(built):
    run = built["run"]
    record = json.loads((run / "integrity.json").read_text())
    files = {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()}
    assert set(record["files"]) == files - {"integrity.json"}
    assert json.loads((run / "meta.json").read_text())["integrity"] == "integrity.json"
    for name, digest in record["files"].items():
        assert hashlib.sha256((run / name).read_bytes()).hexdigest() == digest
