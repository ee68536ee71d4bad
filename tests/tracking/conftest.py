from __future__ import annotations

import os
import shutil

import pytest
from mlflow import MlflowClient


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh sqlite store per module, copied from one migrated template per session.

    Creating a sqlite store runs MLflow's migrations (1.5 s idle, 8 s on a busy 2-core box).
    """
    template = tmp_path_factory.getbasetemp() / "ganinf-mlflow-template.db"
    if not template.exists():
        tmp = template.with_suffix(".tmp")
        MlflowClient(f"sqlite:///{tmp}").search_experiments()
        os.replace(tmp, template)
    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    shutil.copyfile(template, db)
    return f"sqlite:///{db}"
