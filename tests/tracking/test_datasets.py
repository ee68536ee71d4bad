"""Dataset versions as MLflow shows them: `name (digest)` like the version tags, a profile with
the parent and the removals, and the first rows (tracking/datasets.py)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from ganinf_mlops.data.version import DatasetVersion, Provenance, write_version
from ganinf_mlops.tracking import notes
from ganinf_mlops.tracking import tags as T
from ganinf_mlops.tracking.datasets import (
    DIGEST_CHARS,
    PREVIEW_COORDS,
    input_source,
    log_version,
    preview,
    version_dataset,
)
from ganinf_mlops.tracking.dvc_source import DvcDatasetSource


@pytest.fixture
def client(tracking_uri: str, monkeypatch: pytest.MonkeyPatch):
    for name in ("MLFLOW_TRACKING_URI", T.ENV_PROJECT, T.ENV_DATA):
        monkeypatch.delenv(name, raising=False)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(Path(__file__).stem)
    yield MlflowClient()
    mlflow.end_run()
    mlflow.set_tracking_uri(None)


def _child(parent: DatasetVersion, out: Path, removed: list[int]) -> DatasetVersion:
    keep = ~np.isin(parent.ids, removed)
    return write_version(
        out, parent.x[keep], parent.ids[keep], parent.x_eval, dataset="test", params={},
        provenance=Provenance(parent, removed_ids=removed, method="all"),
        is_anomaly_ids=[int(parent.ids[keep][1])],
    )  # fmt: skip


def test_the_ui_shows_the_version_label(tiny_version):
    """MLflow shows `name (digest)`: for a local version exactly `notes.version_label`."""
    ds = version_dataset(tiny_version)
    assert (
        f"{ds.name} ({ds.digest})"
        == notes.version_label(tiny_version)
        == "tiny (" + (tiny_version.digest[:12] + ")")
    )
    assert ds.digest == tiny_version.digest[:DIGEST_CHARS] and ds.full_digest == tiny_version.digest
    dvc = version_dataset(tiny_version, DvcDatasetSource("r", "c0ffee", "data/tiny"))
    assert (dvc.name, dvc.digest) == ("tiny@dvc", ds.digest)  # a name of its own beside local
    assert version_dataset(tiny_version, name="mine").name == "mine"


def test_profile_names_the_parent_and_the_removals(tiny_version, tmp_path):
    child = _child(tiny_version, tmp_path / "v1", [100, 104])
    profile = version_dataset(child).profile
    assert profile["parent"] == notes.version_label(tiny_version)
    assert profile["n_removed"] == 2 and profile["removed_by"] == "all"
    assert profile["n_instances"] == 10 and profile["n_injected_anomalies"] == 1
    raw = version_dataset(tiny_version).profile
    assert raw["parent"] == "none (raw data)" and raw["n_removed"] == 0
    assert "removed_by" not in raw and "n_injected_anomalies" not in raw


def test_preview_holds_the_first_rows(tiny_version, tmp_path):
    child = _child(tiny_version, tmp_path / "v1", [100])
    rows = preview(child)
    assert list(rows.columns) == ["id", "x0", "x1", "injected_anomaly"]
    assert rows["id"].tolist() == child.ids[:5].tolist()
    np.testing.assert_array_equal(rows[["x0", "x1"]].to_numpy(), child.x[:5])
    assert rows["injected_anomaly"].tolist() == [False, True, False, False, False]
    profile = version_dataset(child).profile
    first, second = (int(i) for i in child.ids[:2])
    assert profile[f"id_{first}"] == f"x0={child.x[0, 0]:.4g} x1={child.x[0, 1]:.4g}"
    assert profile[f"id_{second}"].endswith(" injected_anomaly")
    # The drawer cuts a profile value at 80 characters: a 2-D row fits.
    assert all(len(str(v)) <= 80 for k, v in profile.items() if k.startswith("id_"))


def test_preview_of_wide_vectors_shows_the_first_coordinates(tmp_path):
    x = np.arange(60.0).reshape(3, 20)
    v = write_version(tmp_path / "wide", x, np.arange(3), x[:1], dataset="t", params={})
    rows = preview(v)
    assert list(rows.columns) == ["id", *(f"x{d}" for d in range(PREVIEW_COORDS))]
    assert len(rows) == 3 and rows["x7"].tolist() == [7.0, 27.0, 47.0]
    assert version_dataset(v).profile["shape"] == [3, 20]


def test_image_preview_describes_each_image(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(8, 1, 4, 4))
    v = write_version(
        tmp_path / "img", x, np.arange(8), x[:3], dataset="test", params={},
        y=np.arange(8) % 3, y_eval=np.arange(3),
    )  # fmt: skip
    rows = preview(v, rows=3)
    assert list(rows.columns) == ["id", "pixel_mean", "pixel_std", "label"]
    np.testing.assert_allclose(rows["pixel_mean"], x[:3].reshape(3, -1).mean(axis=1))
    np.testing.assert_allclose(rows["pixel_std"], x[:3].reshape(3, -1).std(axis=1))
    assert rows["label"].tolist() == [0, 1, 2]
    types = {c.name: c.type.name for c in version_dataset(v).schema.inputs}
    assert types == {"id": "long", "pixel_mean": "double", "pixel_std": "double", "label": "long"}


def test_logged_dataset_carries_schema_table_and_preview(tiny_version, client):
    """What the drawer reads from the store: a column schema (shown as a table; a tensor schema
    shows none) and the profile with the first rows."""
    with mlflow.start_run() as run:
        log_version(tiny_version)
    (d,) = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert (d.dataset.name, d.dataset.digest) == ("tiny", tiny_version.digest[:12])
    schema = json.loads(d.dataset.schema)["mlflow_colspec"]
    assert [(c["name"], c["type"]) for c in schema] == [
        ("id", "long"), ("x0", "double"), ("x1", "double"),
    ]  # fmt: skip
    profile = json.loads(d.dataset.profile)
    assert [k for k in profile if k.startswith("id_")] == [f"id_{i}" for i in range(100, 105)]
    tags = {t.key: t.value for t in d.tags}
    assert tags[T.DATASET_SHA256] == tiny_version.digest
    assert tags[T.DATASET_PATH] == str(tiny_version.path.resolve())


def test_a_path_too_long_for_an_input_tag_is_left_to_the_source(tmp_path, client):
    deep = tmp_path.joinpath(*["d" * 60] * 8, "v0")
    version = write_version(deep, np.ones((3, 2)), np.arange(3), np.ones((2, 2)), dataset="t",
                            params={})  # fmt: skip
    with mlflow.start_run() as run:
        log_version(version)  # MLflow refuses input tags over 500 characters
    (d,) = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert T.DATASET_PATH not in {t.key for t in d.tags}
    assert input_source(d).to_dict() == {"uri": str(deep.resolve())}


def test_a_dataset_entry_inserted_at_the_same_moment_by_another_job_is_linked(
    tiny_version, client, monkeypatch
):
    """Jobs on the same data race to insert one (name, digest) entry; the store refuses the
    second insert (PostgreSQL: UniqueViolation) and the call, made again, links to it."""
    calls = []
    real = mlflow.log_input

    def racing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise mlflow.exceptions.MlflowException(
                "BAD_REQUEST: (psycopg2.errors.UniqueViolation) duplicate key value violates "
                'unique constraint "dataset_pk"'
            )
        return real(*args, **kwargs)

    monkeypatch.setattr(mlflow, "log_input", racing)
    with mlflow.start_run() as run:
        log_version(tiny_version)
    (d,) = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(calls) == 2 and d.dataset.digest == tiny_version.digest[:12]

    def refuses(*args, **kwargs):
        raise mlflow.exceptions.MlflowException("INVALID_PARAMETER_VALUE: nope")

    monkeypatch.setattr(mlflow, "log_input", refuses)  # any other refusal is the user's to see
    with mlflow.start_run(), pytest.raises(mlflow.exceptions.MlflowException, match="nope"):
        log_version(tiny_version)
