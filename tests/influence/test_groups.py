"""Group replays equal real counterfactual retraining on the cleansed version; group fidelity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganinf_mlops.config import MetricConfig
from ganinf_mlops.data.version import Provenance, write_version
from ganinf_mlops.influence.groups import group_fidelity, group_metrics, pct
from ganinf_mlops.influence.loo import loo_changes, removal_changes
from ganinf_mlops.influence.methods import score
from ganinf_mlops.influence.options import ScoringOptions
from ganinf_mlops.influence.validate import validate
from ganinf_mlops.optim import OptimConfig
from ganinf_mlops.problems.gan import GanConfig, ModelConfig
from ganinf_mlops.train.rundir import RunDir
from ganinf_mlops.train.trainer import train

CFG = GanConfig(
    model=ModelConfig(latent_dim=3, g_hidden=(5,), d_hidden=(6,)),
    d_optim=OptimConfig("sgd", lr=0.05),
    g_optim=OptimConfig("sgd", lr=0.05),
    batch_size=4,
    epochs=3,
    checkpoint_every=4,
)
METRIC = MetricConfig(n_gen=11)


@pytest.fixture
def run(tiny_version, tmp_path):
    return RunDir(train(tiny_version, CFG, METRIC, tmp_path / "run", progress=False))


def test_set_replay_equals_retraining_on_the_cleansed_version(tiny_version, run, tmp_path):
    problem = run.problem(tiny_version)
    target = problem.target("fd")
    subset = np.array([1, 4, 7])
    (batched,) = removal_changes(problem, run, target, [subset], progress=False).tolist()
    keep = np.setdiff1d(np.arange(tiny_version.n), subset)
    child = write_version(
        tmp_path / "child",
        tiny_version.x[keep],
        tiny_version.ids[keep],
        tiny_version.x_eval,
        dataset="test",
        params={},
        provenance=Provenance(tiny_version, removed_ids=tiny_version.ids[subset]),
    )
    replay = RunDir(train(child, CFG, METRIC, tmp_path / "replay", replay=run.path, progress=False))
    actual = replay.metrics()["fd"] - run.metrics()["fd"]
    assert batched == pytest.approx(actual, rel=1e-9, abs=1e-12)


def test_singletons_are_leave_one_out(tiny_version, run):
    problem = run.problem(tiny_version)
    target = problem.target("all")
    a = removal_changes(problem, run, target, [[2], [5]], progress=False)
    b = loo_changes(problem, run, target, [2, 5], progress=False)
    assert torch.equal(a, b)


def test_group_fidelity_report(tiny_version, run):
    table = score(run.path, tiny_version, ScoringOptions("all", progress=False))
    harm, change = table.aligned_to(tiny_version.ids)
    problem = run.problem(tiny_version)

    def actual(subsets):
        return removal_changes(problem, run, problem.target("all"), subsets, progress=False).numpy()

    report = group_fidelity(
        problem.n, actual, harm, change, n_subsets=5, fracs=(0.1, 0.3), top_fracs=(0.1, 0.25)
    )
    assert set(report["random"]) == {pct(0.1), pct(0.3)} == {"10pct", "30pct"}
    r = report["random"]["30pct"]
    assert r["size"] == 4 and len(r["predicted"]) == len(r["actual"]) == 5
    # Short SGD on 12 points responds about linearly to removals: the predicted changes of the
    # random groups rank like the retrained ones (1.0 here; 0.7 allows two swaps of neighbours).
    assert r["spearman"] >= 0.7, r
    top = report["top"]["25pct"]
    # The top-3 set by harmfulness: its prediction is the sum of the top 3 predicted changes.
    order = np.argsort(-harm, kind="stable")
    assert top["predicted"] == pytest.approx(change[order[:3]].sum())
    assert top["ratio"] == pytest.approx(top["actual"] / top["predicted"])
    assert set(group_metrics(report)) == {
        "group_spearman_10pct", "group_spearman_30pct", "top_10pct_ratio", "top_25pct_ratio",
    }  # fmt: skip


def test_validate_with_groups(tiny_version, run):
    table = score(run.path, tiny_version, ScoringOptions("all", progress=False))
    report = validate(run.path, tiny_version, table, k=4, group_subsets=4, progress=False)
    assert report["groups"]["n_subsets"] == 4
    assert "group_spearman_5pct" in report and report["group_seconds"] > 0
