"""Metric specs: one registration per metric, and everything that reads a direction, an MLflow
name or its wording derived from it (keys, targets, methods, score tables, figure words)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganinf_mlops import keys
from ganinf_mlops.config import MetricConfig
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.influence.methods import METHODS, influence_methods
from ganinf_mlops.influence.scores import ScoreTable
from ganinf_mlops.metrics import specs
from ganinf_mlops.metrics.specs import METRICS, Metric, axis_label, direction_phrase, register
from ganinf_mlops.optim import OptimConfig
from ganinf_mlops.problems import PROBLEMS, Target, create_problem
from ganinf_mlops.problems.classifier import (
    ClassifierConfig,
    ClassifierMetricConfig,
    ClassifierModelConfig,
)
from ganinf_mlops.problems.gan import GanConfig, ModelConfig
from ganinf_mlops.problems.schedule import make_schedule

# What keys.py spelled out by hand before the registry: the derived views must not differ.
OLD_LOWER_IS_BETTER = {
    keys.FD, keys.FID, keys.FID_TORCH_FIDELITY, keys.DISC_LOSS, keys.VAL_LOSS, keys.TEST_LOSS,
    keys.GEN_MEAN_ERROR, keys.GEN_COV_ERROR,
}  # fmt: skip


# The run results keys.py knew then (a metric added since may go either way).
KNOWN = (
    keys.ALL, keys.FD, keys.DISC_LOSS, keys.FID, keys.IS, keys.FID_TORCH_FIDELITY,
    keys.IS_TORCH_FIDELITY, keys.CLASSIFIER_ACCURACY, keys.COPYING_CT, keys.VAL_LOSS,
    keys.VAL_ACCURACY, keys.TEST_LOSS, keys.TEST_ACCURACY, keys.GEN_MEAN_ERROR, keys.GEN_COV_ERROR,
)  # fmt: skip


def test_derived_views_equal_the_former_hand_written_ones() -> None:
    assert keys.LOWER_IS_BETTER & set(KNOWN) == OLD_LOWER_IS_BETTER
    assert keys.TRACKING_NAMES == {keys.ALL: "avg_log_likelihood"}
    for name in KNOWN:
        assert specs.spec(name) is not None, name
        assert keys.higher_is_better(name) is (name not in OLD_LOWER_IS_BETTER)
    assert keys.improvement(keys.FD, 0.5) == -0.5
    assert keys.improvement(keys.ALL, 0.5) == 0.5
    # names that are no metric (a count, a validation statistic, a baseline) keep the old default
    for name in (keys.N_INSTANCES, keys.KENDALL_TAU, "random", "isolation_forest"):
        assert specs.spec(name) is None
        assert keys.higher_is_better(name) is True
    assert keys.tracking_name(keys.ALL) == "avg_log_likelihood"
    assert keys.tracking_name("all_best") == "avg_log_likelihood_best"
    assert keys.tracking_name("allx") == "allx"
    assert keys.tracking_name(keys.FD) == keys.FD
    with pytest.raises(AttributeError):
        _ = keys.NOT_A_KEY  # type: ignore[attr-defined]


def test_a_second_registration_of_a_name_is_refused() -> None:
    original = METRICS.get(keys.FD)
    with pytest.raises(ConfigError, match="metric 'fd' is already registered"):
        register(Metric(keys.FD, higher_is_better=True, meaning="a second owner"))
    assert METRICS.get(keys.FD) is original
    assert keys.higher_is_better(keys.FD) is False


def test_a_new_registration_is_all_it_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Direction, MLflow name and wording of a new metric follow from its one registration."""
    assert "toy_error" not in METRICS
    new = Metric("toy_error", False, "a toy", tracking_name="toy_err")
    monkeypatch.setitem(METRICS._items, new.name, new)
    assert "toy_error" in keys.LOWER_IS_BETTER
    assert keys.improvement("toy_error", 1.0) == -1.0
    assert keys.tracking_name("toy_error_best") == "toy_err_best"
    assert axis_label("toy_error") == "toy_error (lower is better)"


def test_every_target_and_result_of_every_problem_kind_is_a_registered_metric() -> None:
    registered = specs.registered()
    for kind_name, kind in PROBLEMS.items():
        assert kind.target_names, kind_name
        for name in kind.target_names:
            assert name in registered, (kind_name, name)
            assert registered.get(name).higher_is_better is not None, (kind_name, name)
            assert registered.get(name).influence, (kind_name, name)
        for name in kind.result_names:
            assert name in registered, (kind_name, name)


def _gan_problem():
    rng = np.random.default_rng(1)
    cfg = GanConfig(
        model=ModelConfig(latent_dim=2, g_hidden=(4,), d_hidden=(4,)),
        d_optim=OptimConfig("sgd", lr=0.05), g_optim=OptimConfig("sgd", lr=0.05),
        batch_size=4, epochs=1, seed=1,
    )  # fmt: skip
    metric = MetricConfig(bandwidth=0.8, n_gen=9, seed=1)
    x, x_eval = rng.normal(size=(8, 2)), rng.normal(size=(6, 2))
    return create_problem(cfg, metric, x, x_eval, make_schedule(8, 4, 1, 3))


def _classifier_problem():
    rng = np.random.default_rng(2)
    cfg = ClassifierConfig(
        model=ClassifierModelConfig(arch="mlp", hidden=(4,)),
        optim=OptimConfig("sgd", lr=0.1), batch_size=4, epochs=1, seed=1,
    )  # fmt: skip
    x, y = rng.normal(size=(8, 3)), np.arange(8) % 2
    x_eval, y_eval = rng.normal(size=(6, 3)), np.arange(6) % 2
    schedule = make_schedule(8, 4, 1, 3)
    return create_problem(cfg, ClassifierMetricConfig(), x, x_eval, schedule, y, y_eval)


@pytest.mark.parametrize("make", [_gan_problem, _classifier_problem])
def test_targets_refer_to_their_registered_metric(make) -> None:
    problem = make()
    targets = problem.targets()
    assert set(targets) == set(type(problem).target_names)
    for name, target in targets.items():
        assert target.metric is METRICS.get(name)
        assert target.name == name
        assert target.higher_is_better is keys.higher_is_better(name)
        sign = 1.0 if target.higher_is_better else -1.0
        assert float(target.harmfulness(torch.tensor(0.25))) == sign * 0.25


def test_an_undirected_metric_cannot_be_a_target() -> None:
    ct = METRICS.get(keys.COPYING_CT)
    assert ct.higher_is_better is None and ct.better == "near 0"
    with pytest.raises(ConfigError, match="no direction"):
        _ = Target(ct, lambda state: torch.tensor(0.0)).higher_is_better


def test_influence_methods_are_the_targets_of_the_problem_kinds() -> None:
    targets = {t for _, kind in PROBLEMS.items() for t in kind.target_names}
    assert set(influence_methods()) == targets
    for name in targets:
        assert METHODS.get(name).target == name
        assert METHODS.get(name).description == METRICS.get(name).influence
    assert METHODS.get(keys.ALL).description == "influence on ALL (average log-likelihood)"


def test_wording() -> None:
    assert direction_phrase(keys.FD) == "lower is better"
    assert direction_phrase(keys.ALL) == "higher is better"
    assert direction_phrase(keys.FD, True) == "higher is better"  # a table's recorded flag
    assert axis_label(keys.FID) == "fid (lower is better)"
    assert METRICS.get(keys.IS).better == "higher"
    assert METRICS.get(keys.VAL_LOSS).better == "lower"


def _table(metric: str | None, **extra) -> ScoreTable:
    ids = np.arange(3)
    return ScoreTable(ids, np.zeros(3), np.zeros(3), metric or "random", metric, "d", extra=extra)


def test_score_tables_read_the_direction_of_their_metric() -> None:
    assert _table(keys.FD).higher_is_better() is False  # derived, nothing recorded
    assert _table(keys.FD, higher_is_better=True).higher_is_better() is False  # spec wins
    assert _table("elsewhere", higher_is_better=False).higher_is_better() is False  # recorded
    assert _table("elsewhere").higher_is_better() is None
    assert _table(None).higher_is_better() is None  # a baseline's table
