"""Load: four tiny loops at once against MLflow on PostgreSQL with artifacts in S3
(benchmarks/load.py): all finish, every run FINISHED with its artifacts, each input's source
its own loop's directory."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest

from .servers import moto_available, postgres_bin

pytestmark = pytest.mark.integration

REQUIRED = os.environ.get("GANINF_REQUIRE_POSTGRES") == "1"
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.skipif(
    (postgres_bin() is None or not moto_available()) and not REQUIRED,
    reason="PostgreSQL or moto not installed",
)
def test_four_concurrent_loops(tmp_path, monkeypatch, capsys):
    pytest.importorskip("psycopg2")
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    load = importlib.import_module("load")
    code = load.main(["--loops", "4", "--json", str(tmp_path / "load.json")])
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "load.json").read_text())
    assert code == 0, out
    assert result["runs_finished"] == result["runs_expected"] == 12 and not result["problems"]
    assert "runs finished 12 / expected 12" in out
    print(out)  # the finished / expected line and the wall time, in the CI log with -s or -rA
