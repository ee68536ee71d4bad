"""Chunked cleansing: the budget in re-scored chunks, one version with the union."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ganinf_mlops import keys
from ganinf_mlops.chunks import chunk_sizes, chunked_cleanse
from ganinf_mlops.config import get_preset
from ganinf_mlops.data.lineage import lineage
from ganinf_mlops.data.version import create_raw_version
from ganinf_mlops.influence.methods import score
from ganinf_mlops.influence.options import ScoringOptions
from ganinf_mlops.influence.scores import meta_path, read_scores, write_scores
from ganinf_mlops.layout import JobLayout
from ganinf_mlops.train.trainer import train


def test_chunk_sizes() -> None:
    assert chunk_sizes(10, 3) == [4, 3, 3]
    assert chunk_sizes(2, 3) == [1, 1]
    assert sum(chunk_sizes(101, 7)) == 101


def test_chunked_cleanse_rescores_on_each_replay(tmp_path) -> None:
    tiny = get_preset("tiny")
    preset = dataclasses.replace(
        tiny,
        train=dataclasses.replace(tiny.train, epochs=2, steps=None),
        job=dataclasses.replace(tiny.job, chunks=3, policy="top", remove_frac=0.05),
    )
    raw = create_raw_version(tmp_path / "data" / "v0", preset.dataset, **preset.data_params)
    run = train(raw, preset.train, preset.metric, tmp_path / "runs" / "r0", progress=False)
    table = score(run, raw, ScoringOptions("all", progress=False))
    scores = tmp_path / "scores" / "it1.csv"
    write_scores(scores, table)
    new, records = chunked_cleanse(1, tmp_path, preset, raw, run, table, scores, progress=False)

    assert [r[keys.N_REMOVED] for r in records] == [4, 3, 3]
    removed = new.manifest.removed_ids
    assert len(removed) == 10 and new.n == raw.n - 10
    # One version from the parent (no intermediate versions in its lineage).
    assert [v.digest for v in lineage(new)] == [raw.digest, new.digest]
    assert new.manifest.predicted_change == pytest.approx(
        sum(r[keys.PREDICTED_CHANGE] for r in records)
    )
    # Chunk 1 is the parent's top 4; chunk 2 is scored on chunk 1's counterfactual replay.
    assert set(table.top_ids(4)) <= set(removed)
    second = read_scores(tmp_path / "chunks" / "it1" / "scores_c2.csv")
    assert second.run.endswith("replay_c1") and second.n == raw.n - 4
    assert np.isin(second.top_ids(3), removed).all()
    for r in records:
        assert np.sign(r[keys.ACTUAL_CHANGE]) == np.sign(r[keys.PREDICTED_CHANGE])
    # What the chunks leave is where the job's layout says, and the cleansed version is v1.
    layout = JobLayout(tmp_path)
    assert new.path == layout.version(1)
    rescored = [layout.chunk_scores(1, c) for c in (2, 3)]
    assert set(layout.chunks(1).iterdir()) == {
        *(layout.chunk_version(1, c) for c in (1, 2, 3)),
        *(layout.chunk_replay(1, c) for c in (1, 2, 3)),
        *rescored,
        *map(meta_path, rescored),
    }


def test_chunks_of_an_ensemble_follow_every_member(tmp_path) -> None:
    """Ensemble scores: each member replays every chunk on its own schedule, the next chunk is
    scored by the ensemble of those replays, and a chunk's actual change is their mean."""
    from ganinf_mlops.influence.methods import score_run
    from ganinf_mlops.train.rundir import RunDir

    tiny = get_preset("tiny")
    preset = dataclasses.replace(
        tiny,
        train=dataclasses.replace(tiny.train, epochs=2, steps=None),
        job=dataclasses.replace(
            tiny.job, chunks=2, policy="top", remove_frac=0.04, ensemble=2, min_agreement=None
        ),
    )
    raw = create_raw_version(tmp_path / "data" / "v0", preset.dataset, **preset.data_params)
    run = train(raw, preset.train, preset.metric, tmp_path / "runs" / "r0", progress=False)
    table = score_run(run, raw, ScoringOptions("all", ensemble=2, progress=False))
    scores = tmp_path / "scores" / "it1.csv"
    write_scores(scores, table)
    new, records = chunked_cleanse(1, tmp_path, preset, raw, run, table, scores, progress=False)

    assert [r[keys.N_REMOVED] for r in records] == [4, 4] and new.n == raw.n - 8
    chunks = tmp_path / "chunks" / "it1"
    second = read_scores(chunks / "scores_c2.csv")
    assert second.extra["ensemble"] == [str(chunks / "replay_c1"), str(chunks / "replay_c1-seed1")]
    member = RunDir(chunks / "replay_c1-seed1")
    assert member.train_config.seed == preset.train.seed + 1
    first_actual = [
        RunDir(chunks / name).metrics()[keys.ACTUAL_CHANGE]
        for name in ("replay_c1", "replay_c1-seed1")
    ]
    assert records[0][keys.ACTUAL_CHANGE] == pytest.approx(np.mean(first_actual))
    assert first_actual[0] != first_actual[1]  # two schedules, two changes
