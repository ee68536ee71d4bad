"""Finding the runs that wrote and read a dataset version by its digest tags (tracking/lookup.py),
on a local sqlite store."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from ganinf_mlops.tracking import tags as T
from ganinf_mlops.tracking.lookup import experiment_ids, runs_for_digest

A, B = "a" * 64, "b" * 64


@pytest.fixture(scope="module")
def store(tracking_uri: str) -> dict:
    """Runs in two experiments (one of them deleted afterwards) that wrote or read A or B."""
    client = MlflowClient(tracking_uri)
    e1 = client.create_experiment("lookup-1")
    e2 = client.create_experiment("lookup-2")

    def run(exp: str, **tags: str) -> str:
        r = client.create_run(exp, tags=tags)
        client.set_terminated(r.info.run_id)
        return r.info.run_id

    ids = {
        "prepare_a": run(e1, **{T.OUTPUT_DIGEST: A}),
        "train_a": run(e1, **{T.DATASET_DIGEST: A}),
        "cleanse_a_to_b": run(e1, **{T.DATASET_DIGEST: A, T.OUTPUT_DIGEST: B}),
        "train_b": run(e1, **{T.DATASET_DIGEST: B}),
        "deleted_train_a": run(e1, **{T.DATASET_DIGEST: A}),
        "old_train_a": run(e2, **{T.DATASET_DIGEST: A}),
        "untagged": run(e1),
    }
    client.delete_run(ids["deleted_train_a"])
    client.delete_experiment(e2)
    return {"client": client, "ids": ids, "experiments": (e1, e2)}


def test_experiment_ids_include_deleted_experiments(store):
    ids = experiment_ids(store["client"])
    assert set(store["experiments"]) <= set(ids)
    assert "0" in ids  # MLflow's Default experiment


def test_runs_for_digest(store):
    client, ids = store["client"], store["ids"]
    assert runs_for_digest(client, A) == {
        "produced_by": [ids["prepare_a"]],
        # Sorted; a deleted run does not count.
        "used_by": sorted([ids["train_a"], ids["cleanse_a_to_b"]]),
    }
    assert runs_for_digest(client, B) == {
        "produced_by": [ids["cleanse_a_to_b"]],
        "used_by": [ids["train_b"]],
    }


def test_unknown_digest_and_prefixes_match_nothing(store):
    client = store["client"]
    assert runs_for_digest(client, "c" * 64) == {"produced_by": [], "used_by": []}
    # Tags are compared whole: a prefix of a digest names no version.
    assert runs_for_digest(client, A[:12]) == {"produced_by": [], "used_by": []}


@pytest.mark.xfail(
    strict=True,
    reason="experiment_ids includes deleted experiments so that their runs count, but a database "
    "store marks those runs deleted too and runs_for_digest searches active runs only",
)
def test_runs_of_a_deleted_experiment_still_hold_lineage(store):
    assert store["ids"]["old_train_a"] in runs_for_digest(store["client"], A)["used_by"]
