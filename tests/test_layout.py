"""The job's directory and file names (the README and resumed jobs depend on them)."""

from __future__ import annotations

from pathlib import Path

from ganinf_mlops.layout import JobLayout


def test_names_under_the_root() -> None:
    w = JobLayout("work")  # a str root is taken as a Path
    assert w.root == Path("work") and w == JobLayout(Path("work"))
    assert w.config == Path("work/config.json")
    assert w.summary == Path("work/summary.json")
    assert w.version(0) == Path("work/data/v0")
    assert w.run(2) == Path("work/runs/r2")
    assert w.replay(1) == Path("work/runs/replay1")
    assert w.scores(1, "all") == Path("work/scores/it1_all.csv")
    assert w.validation(3) == Path("work/reports/validate_it3.json")
    assert w.chunk_report(3) == Path("work/reports/chunks_it3.json")
    assert w.chunks(1) == Path("work/chunks/it1")
    assert w.chunk_version(1, 2) == Path("work/chunks/it1/v_c2")
    assert w.chunk_scores(1, 2) == Path("work/chunks/it1/scores_c2.csv")
    assert w.chunk_replay(1, 2) == Path("work/chunks/it1/replay_c2")
