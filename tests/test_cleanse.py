from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ganinf_mlops import keys
from ganinf_mlops.cleanse import (
    Agreement,
    agreement,
    cleanse,
    recorded_agreement,
    removal_count,
)
from ganinf_mlops.config import DEFAULT_MIN_AGREEMENT, JobOptions, get_preset
from ganinf_mlops.data.lineage import lineage
from ganinf_mlops.data.version import (
    DatasetVersion,
    create_raw_version,
    load_version,
    write_version,
)
from ganinf_mlops.errors import (
    ConfigError,
    DataError,
    DigestMismatchError,
    NothingToRemoveError,
    OutputExistsError,
)
from ganinf_mlops.evidence import Evidence
from ganinf_mlops.hashing import sha256_file
from ganinf_mlops.influence.methods import score
from ganinf_mlops.influence.options import ScoringOptions
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
    assert removal_count(100, 0.005, None) == 1  # 0.5 rounds up
    with pytest.raises(ConfigError, match="removes no instance of 100"):
        removal_count(100, 0.001, None)  # issue 24: was silently one
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
    table = score(run, raw, ScoringOptions("injected", progress=False))
    write_scores(path := tmp_path / "inj.csv", table)
    child = cleanse(raw, path, tmp_path / "c", remove_count=10)  # policy positive: only those 4
    assert len(raw.manifest.is_anomaly_ids) == 4
    assert child.manifest.removed_ids == sorted(raw.manifest.is_anomaly_ids)
    assert child.manifest.is_anomaly_ids == []

    clean = write_version(tmp_path / "clean", raw.x, raw.ids, raw.x_eval, dataset="t", params={})
    run = train(clean, preset.train, preset.metric, tmp_path / "run2", progress=False)
    with pytest.raises(ConfigError, match="recorded the instances it injected"):
        score(run, clean, ScoringOptions("injected", progress=False))


def _ensemble_table(v: DatasetVersion, members: np.ndarray) -> ScoreTable:
    """Scores of an fd ensemble (lower is better) whose members predict `members` [K, n]."""
    mean = members.mean(axis=0)
    extra = {
        "higher_is_better": False,
        keys.MEMBERS: {"ids": v.ids.tolist(), "change": members.tolist()},
    }
    return ScoreTable(v.ids, -mean, mean, "fd", "fd", v.digest, "r", extra)


def test_agreement_holds_out_each_member_of_the_selection(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    # Every member predicts that removing instance 0 lowers fd: each held-out member agrees.
    members = np.full((4, raw.n), 0.01)
    members[:, 0] = -1.0
    assert agreement(_ensemble_table(raw, members), 1) == Agreement(4, 4)
    # Each member alone calls "its" instance harmful and the others' helpful: the mean of the
    # other three picks an instance the held-out member says helps; nobody agrees, although the
    # mean of all four selects instances predicted to help.
    members = np.full((4, raw.n), 0.01)
    for m in range(4):
        members[m, m] = -1.0
        members[m, [j for j in range(4) if j != m]] = 0.05
    table = _ensemble_table(raw, members)
    assert (table.harmfulness[:4] > 0).all()
    assert agreement(table, 1) == Agreement(0, 4)
    # Two of four: members 0 and 1 see the harm, 2 and 3 predict the opposite.
    members = np.zeros((4, raw.n))
    members[:2, 5] = -1.0
    members[2:, 5] = 0.2
    members[2:, 6] = -0.1
    assert agreement(_ensemble_table(raw, members), 1) == Agreement(2, 4)
    # the direction is fd's registered one; a sidecar of a metric not registered here needs the
    # flag it records; a sidecar whose members are broken, or without a direction, is refused
    bad = _ensemble_table(raw, members)
    only = {keys.MEMBERS: bad.extra[keys.MEMBERS]}
    assert agreement(ScoreTable(raw.ids, bad.harmfulness, bad.predicted_change, "fd", "fd", "d",
                                extra=only), 1) == Agreement(2, 4)  # fmt: skip
    assert agreement(ScoreTable(raw.ids, bad.harmfulness, bad.predicted_change, "x", "x", "d",
                                extra=bad.extra), 1) == Agreement(2, 4)  # fmt: skip
    with pytest.raises(DataError, match="higher_is_better"):
        agreement(ScoreTable(raw.ids, bad.harmfulness, bad.predicted_change, "x", "x", "d",
                             extra=only), 1)  # fmt: skip
    broken = {
        keys.MEMBERS: {"ids": raw.ids.tolist(), "change": [[0.0] * raw.n]},
        "higher_is_better": False,
    }
    with pytest.raises(DataError, match="shape"):
        agreement(ScoreTable(raw.ids, bad.harmfulness, bad.predicted_change, "fd", "fd", "d",
                             extra=broken), 1)  # fmt: skip
    # the scores of one run have no members to ask
    assert (
        agreement(ScoreTable(raw.ids, np.ones(raw.n), np.ones(raw.n), "fd", "fd", "d"), 1) is None
    )


def test_min_agreement_gates_the_cleanse(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    members = np.zeros((4, raw.n))
    members[:3, 5] = -1.0  # three of four members: removing 5 lowers fd
    members[3, 5] = 0.1  # the fourth: it raises fd, a little
    path = tmp_path / "ens.csv"
    write_scores(path, _ensemble_table(raw, members))
    with pytest.raises(NothingToRemoveError, match=r"only 3 of 4 ensemble members") as exc:
        cleanse(raw, path, tmp_path / "c", remove_count=1, min_agreement=1.0)
    assert exc.value.agreement == Agreement(3, 4)
    assert not (tmp_path / "c").exists()
    child = cleanse(raw, path, tmp_path / "c", remove_count=1, min_agreement=0.75)
    assert child.manifest.removed_ids == [int(raw.ids[5])]
    assert recorded_agreement(child.manifest) == Agreement(3, 4)
    assert child.manifest.params["min_agreement"] == 0.75
    # without the gate the agreement is still recorded; the scores of one run record none
    free = cleanse(raw, path, tmp_path / "free", remove_count=1)
    assert (
        recorded_agreement(free.manifest) == Agreement(3, 4)
        and "min_agreement" not in free.manifest.params
    )
    single = _scores(tmp_path, raw)
    assert (
        recorded_agreement(cleanse(raw, single, tmp_path / "one", remove_count=1).manifest) is None
    )
    # one run's scores: unverified (used) by default, refused when the check is asked for
    assert cleanse(raw, single, tmp_path / "c3", remove_count=1, min_agreement=0.5).n == raw.n - 1
    with pytest.raises(ConfigError, match="one run's"):
        cleanse(raw, single, tmp_path / "c2", remove_count=1, min_agreement=0.5,
                require_ensemble=True)  # fmt: skip
    assert not (tmp_path / "c2").exists()


def test_held_out_evidence_needs_a_positive_mean() -> None:
    """Enough members agree, but the one that disagrees outweighs them: the evidence fails."""
    ev = Evidence((0.1, 0.1, 0.1, -5.0), np.array([3]), 0.2)
    assert ev.agreeing == 3 and ev.needed(0.75) == 3 and ev.mean < 0
    assert not ev.holds(0.75) and "not beyond its noise" in ev.why_not(0.75)
    # a positive mean that is within its noise: agreement is not enough
    noisy = Evidence((0.1, 0.1, 0.1, -0.2), np.array([3]), 0.2)
    assert 0.05 < noisy.p_value < 0.5 and not noisy.holds(0.75)
    clear = Evidence((0.1, 0.12, 0.09, 0.11, -0.01), np.array([3]), 0.2)
    assert clear.p_value < 0.05 and clear.holds(0.75) and clear.why_not(0.75) == ""
    assert "only 4 of 5" in clear.why_not(1.0)


def test_min_agreement_config_rules() -> None:
    assert JobOptions(method="fd").min_agreement == DEFAULT_MIN_AGREEMENT  # one run: unverified
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        JobOptions(method="fd", ensemble=4, min_agreement=0.0)
    assert JobOptions(method="fd", ensemble=4, min_agreement=0.75).min_agreement == 0.75
