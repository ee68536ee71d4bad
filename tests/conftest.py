from __future__ import annotations

import os

# The tests' models are tiny: one thread is faster than two fighting over a busy 2-core machine.
# (Set before torch is imported; subprocesses inherit it.)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest

from ganinf_mlops.data.version import DatasetVersion, write_version

# CLI tests run without MLflow unless a test turns it on (monkeypatch GANINF_TRACKING=1).
os.environ["GANINF_TRACKING"] = "0"


@pytest.fixture
def tiny_version(tmp_path) -> DatasetVersion:
    """12 instances of a 2D normal (ids offset so ids != positions), 9 held-out points."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(12, 2)) + 1.0
    x_eval = rng.normal(size=(9, 2)) + 1.0
    ids = np.arange(100, 112, dtype=np.int64)
    return write_version(tmp_path / "tiny", x, ids, x_eval, dataset="test", params={"seed": 7})
