"""Seed-ensemble influence: the mean of the members' exact influence, validated against
leave-one-out averaged over the same seeds."""

from __future__ import annotations

import numpy as np
import pytest

from ganinf_mlops.config import MetricConfig
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.evidence import member_changes
from ganinf_mlops.influence.loo import loo_changes
from ganinf_mlops.influence.methods import score, score_ensemble
from ganinf_mlops.influence.options import ScoringOptions
from ganinf_mlops.influence.validate import validate
from ganinf_mlops.optim import OptimConfig
from ganinf_mlops.problems.gan import GanConfig, ModelConfig
from ganinf_mlops.train.rundir import RunDir
from ganinf_mlops.train.trainer import seed_siblings, train

CFG = GanConfig(
    model=ModelConfig(latent_dim=3, g_hidden=(5,), d_hidden=(6,)),
    d_optim=OptimConfig("adam", lr=0.01),
    g_optim=OptimConfig("adam", lr=0.01),
    batch_size=4,
    epochs=2,
    checkpoint_every=3,
    seed=7,
)
METRIC = MetricConfig(n_gen=11)


def test_ensemble_is_the_mean_over_seed_siblings(tiny_version, tmp_path):
    run = train(tiny_version, CFG, METRIC, tmp_path / "r", progress=False)
    members = seed_siblings(run, tiny_version, 3, progress=False)
    assert [p.name for p in members] == ["r", "r-seed1", "r-seed2"]
    assert [RunDir(p).train_config.seed for p in members] == [7, 8, 9]
    assert seed_siblings(run, tiny_version, 3, progress=False) == members  # reused, not retrained
    table = score_ensemble(members, tiny_version, ScoringOptions("fd", progress=False))
    singles = [score(p, tiny_version, ScoringOptions("fd", progress=False)) for p in members]
    mean = np.mean([t.predicted_change for t in singles], axis=0)
    assert np.allclose(table.predicted_change, mean, rtol=1e-12, atol=0)
    assert np.allclose(table.harmfulness, -mean)  # fd: lower is better
    assert table.extra["ensemble"] == [str(p) for p in members]
    # each member's own estimate travels with the table, for the cleanse's agreement check
    got_members = member_changes(table)
    assert got_members is not None and got_members.shape == (3, tiny_version.n)
    for row, single in zip(got_members, singles, strict=True):
        assert np.array_equal(row, single.predicted_change)

    report = validate(run, tiny_version, table, k=4, progress=False)
    assert report["n_runs"] == 3
    positions = tiny_version.index_of([r["id"] for r in report["instances"]])
    truth = []
    for p in members:
        rd = RunDir(p)
        problem = rd.problem(tiny_version)
        truth.append(loo_changes(problem, rd, problem.target("fd"), positions, progress=False))
    expected = np.mean([t.numpy() for t in truth], axis=0)
    got = np.array([r["true_change"] for r in report["instances"]])
    assert np.allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_ensemble_refuses_baselines_and_single_runs(tiny_version, tmp_path):
    run = train(tiny_version, CFG, METRIC, tmp_path / "r", progress=False)
    with pytest.raises(ConfigError, match="baseline"):
        score_ensemble([run, run], tiny_version, ScoringOptions("random"))
    with pytest.raises(ConfigError, match="at least two"):
        score_ensemble([run], tiny_version, ScoringOptions("all"))


def test_score_run_of_a_baseline_ignores_the_ensemble(tiny_version, tmp_path):
    """job.ensemble applies to influence: a baseline under an ensemble config scores the run
    alone and trains no siblings; an influence method trains them into `members` if given."""
    from ganinf_mlops.influence.methods import score_run

    run = train(tiny_version, CFG, METRIC, tmp_path / "r", progress=False)
    before = {p.name for p in tmp_path.iterdir()}
    table = score_run(run, tiny_version, ScoringOptions("random", ensemble=3, progress=False))
    assert "ensemble" not in table.extra
    assert np.array_equal(
        table.harmfulness, score(run, tiny_version, ScoringOptions("random")).harmfulness
    )
    assert {p.name for p in tmp_path.iterdir()} == before
    table = score_run(
        run, tiny_version, ScoringOptions("fd", ensemble=2, progress=False), members=tmp_path / "m"
    )
    assert table.extra["ensemble"] == [str(run), str(tmp_path / "m" / "seed1")]
    assert {p.name for p in tmp_path.iterdir()} == before | {"m"}
