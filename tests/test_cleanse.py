from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ganinf_mlops.cleanse import cleanse, removal_count
from ganinf_mlops.config import get_preset
from ganinf_mlops.data.lineage import lineage
from ganinf_mlops.data.version import (
    DatasetVersion,
    create_raw_version,
    load_version,
    write_version,
)
from ganinf_mlops.errors import ConfigError, DataError, DigestMismatchError, OutputExistsError
from ganinf_mlops.hashing import sha256_file
from ganinf_mlops.influence.methods import score
from ganinf_mlops.influence.scores import ScoreTable, write_scores
from ganinf_mlops.train.trainer import train


def _raw(tmp_path: Path, n: int = 20) -> DatasetVersion:
    return create_raw_version(tmp_path / "raw", "gaussian2d", n=n, n_eval=5, anomaly_frac=0.2)


def _scores(
    tmp_path: Path, v: DatasetVersion, name: str = "s.csv", change: np.ndarray | None = None
) -> Path:
    harm = np.random.default_rng(v.n).permutation(v.n).astype(np.float64)  # distinct values
    table = ScoreTable(
        ids=v.ids,
        harmfulness=harm,
        predicted_change=-harm / 100 if change is None else change,
        method="all",
        metric="all",
        dataset_digest=v.digest,
        run="r1",
        extra={},
    )
    path = tmp_path / name
    write_scores(path, table)
    return path


def test_removes_exact_top_k_and_records_provenance(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    scores = _scores(tmp_path, raw)
    harm = np.random.default_rng(raw.n).permutation(raw.n).astype(np.float64)
    top = raw.ids[np.argsort(-harm)[:3]]

    child = cleanse(raw, scores, tmp_path / "c1", remove_count=3)
    m = child.manifest
    assert m.removed_ids == sorted(top.tolist())
    np.testing.assert_array_equal(child.ids, np.setdiff1d(raw.ids, top))
    np.testing.assert_array_equal(child.x, raw.x[raw.index_of(child.ids)])
    np.testing.assert_array_equal(child.x_eval, raw.x_eval)
    assert m.parent_digest == raw.digest and m.parent_path == "../raw"
    assert (m.dataset, m.method, m.metric) == ("cleanse", "all", "all")
    assert m.predicted_change == pytest.approx(-harm[np.argsort(-harm)[:3]].sum() / 100)
    assert m.scores_ref == {"path": f"../{scores.name}", "sha256": sha256_file(scores)}
    assert (child.path / m.scores_ref["path"]).resolve() == scores.resolve()
    assert m.is_anomaly_ids == sorted(set(raw.manifest.is_anomaly_ids) - set(top.tolist()))
    assert load_version(child.path).digest == child.digest


def test_frac_rounds_and_nan_change_gives_none(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    change = np.full(raw.n, np.nan)
    child = cleanse(raw, _scores(tmp_path, raw, change=change), tmp_path / "c", remove_frac=0.125)
    assert len(child.manifest.removed_ids) == 3  # 2.5 rounds up
    assert child.manifest.predicted_change is None


def test_removal_count_rules() -> None:
    assert removal_count(100, 0.001, None) == 1  # at least one
    assert removal_count(10, None, 9) == 9
    for frac in (0, 0.0, 1, 1.0, 1.5, -0.2, float("nan")):
        with pytest.raises(ConfigError, match=r"--remove-frac must be in \(0, 1\)"):
            removal_count(10, frac, None)
    with pytest.raises(ConfigError, match="--remove-count must be >= 1"):
        removal_count(10, None, 0)
    with pytest.raises(ConfigError, match="exactly one"):
        removal_count(10, 0.5, 2)
    with pytest.raises(ConfigError, match="exactly one"):
        removal_count(10, None, None)
    with pytest.raises(ConfigError, match="leave no data"):
        removal_count(10, None, 10)
    with pytest.raises(ConfigError, match="leave no data"):
        removal_count(2, 0.9, None)


def test_rejects_bad_fractions_before_writing(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    scores = _scores(tmp_path, raw)
    for frac in (0.0, 1.0, 1.5):
        with pytest.raises(ConfigError, match="--remove-frac"):
            cleanse(raw, scores, tmp_path / "c", remove_frac=frac)
    assert not (tmp_path / "c").exists()


def test_rejects_scores_of_another_version(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    other = create_raw_version(tmp_path / "other", "gaussian2d", n=20, n_eval=5, seed=9)
    with pytest.raises(DigestMismatchError, match="another dataset version"):
        cleanse(raw, _scores(tmp_path, other), tmp_path / "c", remove_count=1)
    # Right digest but the wrong ids (a hand-made or truncated table).
    table = ScoreTable(
        ids=raw.ids[:-1],
        harmfulness=np.arange(raw.n - 1.0),
        predicted_change=np.zeros(raw.n - 1),
        method="all",
        metric="all",
        dataset_digest=raw.digest,
    )
    write_scores(tmp_path / "short.csv", table)
    with pytest.raises(DataError, match="1 missing, 0 unknown"):
        cleanse(raw, tmp_path / "short.csv", tmp_path / "c", remove_count=1)
    assert not (tmp_path / "c").exists()


def test_output_rules(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    scores = _scores(tmp_path, raw)
    cleanse(raw, scores, tmp_path / "c", remove_count=1)
    with pytest.raises(OutputExistsError):
        cleanse(raw, scores, tmp_path / "c", remove_count=2)
    assert len(cleanse(raw, scores, tmp_path / "c", remove_count=2, force=True).ids) == 18
    for target in (raw.path, tmp_path, raw.path / "inside"):
        with pytest.raises(ConfigError, match="overlaps the input"):
            cleanse(raw, scores, target, remove_count=1, force=True)
    assert load_version(raw.path).digest == raw.digest


def test_two_generations_lineage_and_broken_parent(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    c1 = cleanse(raw, _scores(tmp_path, raw, "s0.csv"), tmp_path / "c1", remove_count=2)
    c2 = cleanse(c1, _scores(tmp_path, c1, "s1.csv"), tmp_path / "c2", remove_frac=0.1)
    chain = lineage(load_version(c2.path))
    assert [v.digest for v in chain] == [raw.digest, c1.digest, c2.digest]
    removed = set(c1.manifest.removed_ids) | set(c2.manifest.removed_ids)
    assert len(removed) == 4 and removed.isdisjoint(c2.ids.tolist())

    shutil.rmtree(c1.path)
    with pytest.raises(DataError, match="broken lineage: parent .*c1 .*missing"):
        lineage(c2)


def test_injected_reference_removes_exactly_the_injected_instances(tmp_path: Path) -> None:
    raw = _raw(tmp_path)  # 4 of 20 injected
    preset = get_preset("tiny")
    run = train(raw, preset.train, preset.metric, tmp_path / "run", progress=False)
    table = score(run, raw, "injected", progress=False)
    write_scores(path := tmp_path / "inj.csv", table)
    child = cleanse(raw, path, tmp_path / "c", remove_count=10)  # policy positive: only those 4
    assert len(raw.manifest.is_anomaly_ids) == 4
    assert child.manifest.removed_ids == sorted(raw.manifest.is_anomaly_ids)
    assert child.manifest.is_anomaly_ids == []

    clean = write_version(tmp_path / "clean", raw.x, raw.ids, raw.x_eval, dataset="t", params={})
    run = train(clean, preset.train, preset.metric, tmp_path / "run2", progress=False)
    with pytest.raises(ConfigError, match="recorded the instances it injected"):
        score(run, clean, "injected", progress=False)
