"""Where a chain stops (stopping.py): the loop's rule for a worse iteration, and a cleanse that
passes its input through instead of failing, as a version that still chains."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ganinf_mlops import keys, stopping
from ganinf_mlops.cleanse import Agreement, recorded_agreement
from ganinf_mlops.config import get_preset
from ganinf_mlops.data.lineage import find_version, lineage
from ganinf_mlops.data.manifest import content_digest, passthrough_digest
from ganinf_mlops.data.version import DatasetVersion, create_raw_version, load_version
from ganinf_mlops.errors import ConfigError, DataError, DigestMismatchError, NothingToRemoveError
from ganinf_mlops.influence.scores import ScoreTable, write_scores
from ganinf_mlops.train.trainer import train


@pytest.mark.parametrize(
    ("metric", "change", "improved"),
    [
        (keys.ALL, 0.1, True),
        (keys.ALL, -0.1, False),
        (keys.ALL, 0.0, False),
        (keys.DISC_LOSS, -0.1, True),
        (keys.DISC_LOSS, 0.1, False),
        (keys.DISC_LOSS, 0.0, False),
        (keys.GEN_MEAN_ERROR, -1e-9, True),
    ],
)
def test_improved_follows_the_metric_direction(metric, change, improved):
    assert stopping.improved({"metric": metric, keys.FRESH_CHANGE: change}) is improved


def test_not_improved_without_a_fresh_change():
    assert stopping.improved({"metric": keys.ALL}) is False


def _ensemble_scores(v: DatasetVersion, path: Path, agreeing: int) -> Path:
    """fd scores of a 4-member ensemble: removing instance 5 lowers fd for `agreeing` members."""
    members = np.full((4, v.n), 0.01)
    members[:agreeing, 5] = -1.0
    members[agreeing:, 5] = 0.1
    mean = members.mean(axis=0)
    members_record = {"ids": v.ids.tolist(), "change": members.tolist()}
    extra = {"higher_is_better": False, keys.MEMBERS: members_record}
    write_scores(path, ScoreTable(v.ids, -mean, mean, "fd", "fd", v.digest, "r", extra))
    return path


def test_an_abstaining_cleanse_passes_its_input_through_and_the_chain_stays_stopped(
    tmp_path: Path,
) -> None:
    raw = create_raw_version(tmp_path / "raw", "gaussian2d", n=20, n_eval=5, anomaly_frac=0.2)
    gate = {"remove_count": 1, "policy": "positive", "min_agreement": 1.0}
    weak = _ensemble_scores(raw, tmp_path / "raw.csv", agreeing=3)
    # Failing is the default: nothing written.
    with pytest.raises(NothingToRemoveError, match="only 3 of 4"):
        stopping.cleanse_or_stop(raw, weak, tmp_path / "v1", **gate)
    assert not (tmp_path / "v1").exists()

    v1, why = stopping.cleanse_or_stop(raw, weak, tmp_path / "v1", on_abstain="pass", **gate)
    assert why is not None and why.startswith("iteration 1: nothing to cleanse") and "3 of 4" in why
    m = v1.manifest
    assert m.stopped == why == m.params["stopped"] and m.removed_ids == [] and v1.n == raw.n
    assert recorded_agreement(m) == Agreement(3, 4) and m.params[keys.N_REMOVED] == 0
    assert m.predicted_change == 0.0 and m.is_anomaly_ids == raw.manifest.is_anomaly_ids
    # Same arrays, yet its own digest, chained to the parent's: a lineage of distinct versions.
    assert np.array_equal(v1.x, raw.x) and np.array_equal(v1.ids, raw.ids)
    assert content_digest(v1.x, v1.ids, v1.x_eval) == raw.digest != v1.digest
    assert m.parent_digest == raw.digest
    assert [v.digest for v in lineage(v1)] == [raw.digest, v1.digest]
    assert find_version(v1.digest[:12], tmp_path).path == v1.path

    # The next cleanse has scores that would cleanse, but the chain stays stopped.
    strong = _ensemble_scores(v1, tmp_path / "v1.csv", agreeing=4)
    v2, again = stopping.cleanse_or_stop(v1, strong, tmp_path / "v2", on_abstain="pass", **gate)
    assert (
        again == why and v2.manifest.removed_ids == [] and v2.digest not in (raw.digest, v1.digest)
    )
    assert [v.path for v in lineage(v2)] == [raw.path, v1.path, v2.path]
    with pytest.raises(NothingToRemoveError, match="stopped at iteration 1"):
        stopping.cleanse_or_stop(v1, strong, tmp_path / "v2b", **gate)
    # Without the stop the same scores cleanse.
    cleansed, none = stopping.cleanse_or_stop(raw, _ensemble_scores(raw, tmp_path / "s.csv", 4),
                                              tmp_path / "c", **gate)  # fmt: skip
    assert none is None and cleansed.manifest.removed_ids == [int(raw.ids[5])]


def test_a_pass_through_version_must_hold_its_parents_data(tmp_path: Path) -> None:
    raw = create_raw_version(tmp_path / "raw", "gaussian2d", n=20, n_eval=5, anomaly_frac=0.2)
    scores = _ensemble_scores(raw, tmp_path / "raw.csv", agreeing=3)
    v1, _ = stopping.cleanse_or_stop(raw, scores, tmp_path / "v1", on_abstain="pass",
                                     remove_count=1, min_agreement=1.0)  # fmt: skip
    manifest = json.loads((v1.path / "manifest.json").read_text())
    # Its digest is not its content's: recorded as the content digest, it fails to verify.
    bad = tmp_path / "bad"
    shutil.copytree(v1.path, bad)
    (bad / "manifest.json").write_text(json.dumps({**manifest, "digest": raw.digest}))
    with pytest.raises(DigestMismatchError):
        load_version(bad)
    # A child that removes nothing says why.
    (bad / "manifest.json").write_text(json.dumps({**manifest, "params": {}}))
    with pytest.raises(DataError, match="must say why"):
        load_version(bad)
    # Other data under a pass-through manifest: the lineage refuses it.
    other = create_raw_version(tmp_path / "other", "gaussian2d", n=20, n_eval=5, seed=1)
    content = content_digest(other.x, other.ids, other.x_eval)
    shutil.copy(other.path / "data.npz", bad / "data.npz")
    (bad / "manifest.json").write_text(
        json.dumps({**manifest, "digest": passthrough_digest(content, raw.digest),
                    "is_anomaly_ids": None})
    )  # fmt: skip
    with pytest.raises(DataError, match="removes nothing"):
        lineage(load_version(bad))


def test_previous_run_needs_the_run_of_the_data(tmp_path: Path) -> None:
    raw = create_raw_version(tmp_path / "raw", "gaussian2d", n=20, n_eval=5)
    scores = _ensemble_scores(raw, tmp_path / "raw.csv", agreeing=4)
    with pytest.raises(ConfigError, match="judged against --run"):
        stopping.cleanse_or_stop(raw, scores, tmp_path / "v1", stop_when_worse=True,
                                 previous_run=tmp_path, remove_count=1)  # fmt: skip
    with pytest.raises(ConfigError, match="raw version"):
        stopping.cleanse_or_stop(raw, scores, tmp_path / "v1", stop_when_worse=True,
                                 previous_run=tmp_path, run=tmp_path, remove_count=1)  # fmt: skip
    assert not (tmp_path / "v1").exists()


def test_stop_when_worse_judges_the_iteration_before_as_the_loop_does(tmp_path: Path) -> None:
    """Real runs: the run of v1 against the run of raw, on the metric v1's cleanse scored (fd).
    A generator trained 2 steps is worse than one trained 50; swapped, it improved."""
    preset = get_preset("tiny")
    raw = create_raw_version(tmp_path / "raw", "gaussian2d", n=40, n_eval=20)
    v1, _ = stopping.cleanse_or_stop(raw, _ensemble_scores(raw, tmp_path / "raw.csv", 4),
                                     tmp_path / "v1", remove_count=1)  # fmt: skip
    short = dataclasses.replace(preset.train, steps=2)
    runs = {
        (name, steps): train(v, cfg, preset.metric, tmp_path / f"{name}-{steps}", progress=False)
        for name, v in (("raw", raw), ("v1", v1))
        for steps, cfg in ((2, short), (50, preset.train))
    }
    scores = _ensemble_scores(v1, tmp_path / "v1.csv", 4)
    gate = {"on_abstain": "pass", "stop_when_worse": True, "remove_count": 1}

    def judge(out: str, run: Path, previous: Path) -> str | None:
        return stopping.cleanse_or_stop(v1, scores, tmp_path / out, run=run,
                                        previous_run=previous, **gate)[1]  # fmt: skip

    worse = judge("a", runs["v1", 2], runs["raw", 50])
    assert worse == "iteration 1: fd did not improve under fresh retraining"
    assert load_version(tmp_path / "a").manifest.stopped == worse
    assert judge("b", runs["v1", 50], runs["raw", 2]) is None
    assert load_version(tmp_path / "b").manifest.removed_ids == [int(v1.ids[5])]
    # The same pair, without job.stop_when_worse: not judged.
    unjudged = stopping.cleanse_or_stop(
        v1, scores, tmp_path / "c", run=runs["v1", 2], previous_run=runs["raw", 50], remove_count=1
    )
    assert unjudged[1] is None
    # Runs of other versions are refused.
    with pytest.raises(DigestMismatchError, match="not trained on --data"):
        judge("d", runs["raw", 50], runs["raw", 2])
    with pytest.raises(DigestMismatchError, match="not trained on the parent"):
        judge("d", runs["v1", 50], runs["v1", 2])
    assert not (tmp_path / "d").exists()
