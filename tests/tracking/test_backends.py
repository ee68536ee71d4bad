"""The tracking package's backends (tracking/__init__.py): "mlflow" builds the MLflow tracker."""

from __future__ import annotations

import mlflow

from ganinf_mlops.cli.common import make_observer
from ganinf_mlops.tracking.mlflow_runs import MlflowTracker


def test_tracking_on_is_the_mlflow_tracker(tracking_uri, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("GANINF_TRACKING", "1")
    try:
        obs = make_observer(None, "backends")
        assert isinstance(obs, MlflowTracker) and obs.uri == tracking_uri
        assert mlflow.get_experiment(obs.experiment_id).name == "backends"
    finally:
        mlflow.set_tracking_uri(None)
