"""The MLflow UI tells the cleansing story: a tiny loop's store opened in headless Chromium.

Needs Debian's `chromium` (`.ci/run` installs it and sets GANINF_REQUIRE_CHROMIUM=1, so CI
cannot skip this); elsewhere the test is skipped without it.
"""

from __future__ import annotations

import os
import urllib.parse

import mlflow
import pytest
from mlflow import MlflowClient

from ganinf_mlops.cli import main
from ganinf_mlops.tracking import notes, tags

from .browser import ERRORS, UI_HOST, chromium_path, page_text
from .servers import mlflow_server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        chromium_path() is None and os.environ.get("GANINF_REQUIRE_CHROMIUM") != "1",
        reason="needs Debian's chromium (apt-get install chromium)",
    ),
]


def _no_errors(text: str, where: str) -> None:
    found = [e for e in ERRORS if e.casefold() in text.casefold()]
    assert not found, f"{where}: {found}: {text[:500]}"


def test_runs_table_run_page_and_compare_view(tmp_path, monkeypatch):
    assert chromium_path() is not None, "chromium is required here (GANINF_REQUIRE_CHROMIUM=1)"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("GANINF_TRACKING", "1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    main(["-q", "loop", "--preset", "tiny", "--iterations", "1", "--loo", "4", "--out", "job"])
    mlflow.set_tracking_uri(None)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("ganinf")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    it1, it0, job = (
        runs["tiny · all · it1 v0→v1"],
        runs["tiny · all · it0 raw"],
        runs["tiny · all · job job"],
    )

    with mlflow_server(uri, tmp_path / "artifacts", ui_host=UI_HOST) as server:
        base = server.replace("127.0.0.1", UI_HOST)
        # The runs table with our default columns (the shared view the tracker stores).
        table = page_text(base + notes.ui_path(exp.experiment_id))
        _no_errors(table, "runs table")
        # The headline, its improvement and the verdict are columns; the headline metric names it.
        for text in ("job job", "Dataset", "headline", "improvement", "n_removed"):
            assert text in table, (text, table[:2000])
        for text in ("ganinf.headline_metric", "ganinf.verdict", it1.data.tags[tags.VERDICT]):
            assert text in table, (text, table[:2000])
        assert it1.data.tags[tags.VERDICT] in ("improved", "within_noise", "worse")
        assert "matching runs" in table  # the job's nested iteration runs
        # Sorted by name the tree is flat: every iteration is a row.
        flat = page_text(
            base + notes.ui_path(exp.experiment_id, shared_view=False)
            + "&orderByKey=attributes.run_name&orderByAsc=true"
        )  # fmt: skip
        _no_errors(flat, "runs list")
        assert "tiny · all · it0 raw" in flat and "tiny · all · it1 v0→v1" in flat
        # An iteration's page: its description, datasets and lineage tags.
        page = page_text(
            f"{base}/#/experiments/{exp.experiment_id}/runs/{it1.info.run_id}"
            "?workflowType=machine_learning"
        )
        _no_errors(page, "iteration run")
        for text in ("Iteration 1", "under fresh retraining", "Datasets", "v1 (", "headline"):
            assert text in page, (text, page[:2000])
        assert it1.data.tags[tags.VERDICT] in page
        # The job's page: the verdict, the lineage line and the headline series.
        page = page_text(
            f"{base}/#/experiments/{exp.experiment_id}/runs/{job.info.run_id}"
            "?workflowType=machine_learning"
        )
        _no_errors(page, "job run")
        for text in ("verdict:", "data: v0 (", "headline_raw", "total_improvement", "headline"):
            assert text in page, (text, page[:2000])
        assert it1.data.tags[tags.OUTPUT_VERSION] in page
        # Compare the two iterations.
        ids = urllib.parse.quote(str([it0.info.run_id, it1.info.run_id]))
        ids = ids.replace("%27", "%22")
        compare = page_text(
            f"{base}/#/compare-runs?runs={ids}&experiments=%5B%22{exp.experiment_id}%22%5D"
            "&workflowType=machine_learning"
        )
        _no_errors(compare, "compare view")
        assert "Comparing 2 Runs" in compare and "headline" in compare
        # The registered generator: its page lists the version with its aliases, and the
        # version's page carries the data version, verdict and headline it was registered with.
        (model,) = client.search_registered_models()
        mv = client.get_model_version_by_alias(model.name, "candidate")
        page = page_text(f"{base}/#/models/{urllib.parse.quote(model.name)}")
        _no_errors(page, "registered model")
        assert model.name in page and "candidate" in page, page[:2000]
        page = page_text(f"{base}/#/models/{urllib.parse.quote(model.name)}/versions/{mv.version}")
        _no_errors(page, "model version")
        for text in (tags.VERDICT, mv.tags[tags.VERDICT], tags.HEADLINE_METRIC, "candidate"):
            assert text in page, (text, page[:2000])
