from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# The tests' models are tiny: one thread is faster than two fighting over a busy 2-core machine.
# (Set before torch is imported; subprocesses inherit it.)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest

from ganinf_mlops.data.version import DatasetVersion, write_version
from ganinf_mlops.hashing import sha256_file

# CLI tests run without MLflow unless a test turns it on (monkeypatch GANINF_TRACKING=1).
os.environ["GANINF_TRACKING"] = "0"
# ... and serially: a developer's RAY_ADDRESS would send the trainings to Ray (job.executor
# auto), out of reach of the tests' monkeypatches; tests/test_executor.py starts its own cluster.
os.environ.pop("RAY_ADDRESS", None)


@pytest.fixture
def tiny_version(tmp_path) -> DatasetVersion:
    """12 instances of a 2D normal (ids offset so ids != positions), 9 held-out points."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(12, 2)) + 1.0
    x_eval = rng.normal(size=(9, 2)) + 1.0
    ids = np.arange(100, 112, dtype=np.int64)
    return write_version(tmp_path / "tiny", x, ids, x_eval, dataset="test", params={"seed": 7})


def _file_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Iterator[dict[str, Path]]:
    """prepare -> train -> influence (method all) on the tiny preset, through the in-process CLI,
    laid out as the DVC pipeline does: `root`/data/raw, runs/raw, scores/raw.csv.

    One for the whole session, shared: read it, never write into it (a test that needs to
    change it copies `root` with shutil.copytree; runs record their data relative to
    themselves). Teardown fails if a test changed a file of it.
    """
    from ganinf_mlops.cli import main

    root = tmp_path_factory.mktemp("tiny-run")
    p = {
        "root": root,
        "raw": root / "data" / "raw",
        "run": root / "runs" / "raw",
        "scores": root / "scores" / "raw.csv",
    }
    main(["-q", "prepare", "--preset", "tiny", "--out", str(p["raw"])])
    main(["-q", "train", "--preset", "tiny", "--data", str(p["raw"]), "--out", str(p["run"])])
    main(["-q", "influence", "--preset", "tiny", "--run", str(p["run"]), "--method", "all",
          "--out", str(p["scores"])])  # fmt: skip
    before = _file_digests(root)
    yield p
    after = _file_digests(root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"tests changed the shared tiny run: {changed}"
