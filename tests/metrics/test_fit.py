"""The fit check: each metric's reference from the data, its rule, the record and the refusal."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganinf_mlops import keys
from ganinf_mlops.config import MetricConfig
from ganinf_mlops.errors import NothingToRemoveError, UnfittedError
from ganinf_mlops.metrics.all import average_log_likelihood
from ganinf_mlops.metrics.fit import FitCheck, check_fitted, fit_check, fit_metric
from ganinf_mlops.metrics.frechet import GaussianFit, frechet_distance
from ganinf_mlops.metrics.specs import FitRule
from ganinf_mlops.optim import OptimConfig
from ganinf_mlops.problems import create_problem
from ganinf_mlops.problems.classifier import (
    ClassifierConfig,
    ClassifierMetricConfig,
    ClassifierModelConfig,
)
from ganinf_mlops.problems.gan import GanConfig, ModelConfig
from ganinf_mlops.problems.schedule import make_schedule

RNG = np.random.default_rng(5)
X, X_EVAL = RNG.normal(size=(600, 2)), RNG.normal(size=(400, 2))


def _gan(metric: MetricConfig | None = None):
    metric = metric or MetricConfig(n_gen=500)
    cfg = GanConfig(model=ModelConfig(latent_dim=2, g_hidden=(4,), d_hidden=(4,)), batch_size=50)
    return create_problem(cfg, metric, X, X_EVAL, make_schedule(len(X), 50, 1, 0))


def _generated(shift: float) -> torch.Tensor:
    """A generator's samples: fresh draws of the data's distribution, moved by `shift`."""
    return torch.tensor(np.random.default_rng(9).normal(size=(500, 2)) + shift)


@pytest.mark.parametrize("metric", [keys.FD, keys.ALL])
def test_a_generator_equal_to_the_data_fits_and_one_far_away_does_not(metric):
    problem = _gan()
    floor = problem.fit_references()[metric]
    x_eval = torch.tensor(X_EVAL)

    def value(samples: torch.Tensor) -> float:
        if metric == keys.FD:
            return float(frechet_distance(samples, GaussianFit.of(x_eval)))
        return float(average_log_likelihood(x_eval, samples, problem.metric.bandwidth))

    near, far = (
        fit_check(metric, value(_generated(0.0)), floor),
        fit_check(metric, value(_generated(3.0)), floor),
    )
    assert near is not None and near.fitted and near.floor == floor
    assert far is not None and not far.fitted and far.ratio > near.ratio


def test_the_floor_is_between_two_halves_of_the_training_data_and_seeded():
    problem = _gan()
    a, b = problem.halves()
    assert len(a) == len(b) == 300
    assert not set(map(tuple, a.tolist())) & set(map(tuple, b.tolist()))
    refs = problem.fit_references()
    assert refs[keys.FD] == pytest.approx(float(frechet_distance(a, GaussianFit.of(b))))
    assert refs == _gan().fit_references()  # deterministic
    assert refs != _gan(MetricConfig(n_gen=500, seed=1)).fit_references()


def test_a_classifier_is_judged_against_the_constant_predictor():
    rng = np.random.default_rng(2)
    y, y_eval = rng.integers(0, 3, 90), rng.integers(0, 3, 40)
    cfg = ClassifierConfig(
        model=ClassifierModelConfig(arch="logreg"), optim=OptimConfig("sgd", lr=0.1), batch_size=10
    )
    problem = create_problem(
        cfg, ClassifierMetricConfig(), rng.normal(size=(90, 4)), rng.normal(size=(40, 4)),
        make_schedule(90, 10, 1, 0), y, y_eval,
    )  # fmt: skip
    ref = problem.fit_references()[keys.VAL_LOSS]
    freq = (np.bincount(y, minlength=3) + 1) / (90 + 3)
    assert ref == pytest.approx(-np.log(freq[y_eval[0::2]]).mean())
    constant = float(F.cross_entropy(torch.tensor(np.log(freq)).expand(20, 3), problem.y_val))
    assert not fit_check(keys.VAL_LOSS, constant, ref).fitted  # ratio 1: learnt nothing
    assert fit_check(keys.VAL_LOSS, 0.1 * ref, ref).fitted


def test_ratio_per_kind_of_metric():
    lower, log = FitRule("floor", 10.0), FitRule("floor", 3.0, log=True)
    assert lower.ratio(2.0, 0.5, higher_is_better=False) == 4.0
    assert lower.ratio(2.0, 8.0, higher_is_better=True) == 4.0  # IS: reference / value
    assert log.ratio(-3.5, -3.0, higher_is_better=True) == pytest.approx(math.exp(0.5))
    assert lower.ratio(1.0, 0.0, higher_is_better=False) is None  # no floor, no ratio
    assert fit_check(keys.FD, 1.0, 0.0) is None
    assert fit_check(keys.DISC_LOSS, 1.0, 1.0) is None  # a metric without a rule


def test_the_fit_metric_is_the_scored_one_where_it_has_a_rule():
    gan = (keys.ALL, keys.FD, keys.DISC_LOSS)
    assert fit_metric(gan, keys.FD) == keys.FD
    assert fit_metric(gan, "isolation_forest") == keys.ALL  # a baseline: the first with a rule
    assert fit_metric(gan, keys.DISC_LOSS) == keys.ALL
    assert fit_metric((keys.DISC_LOSS,)) is None


def test_record_line_and_refusal():
    bad = fit_check(keys.FD, 2.61, 0.012)
    assert bad is not None and FitCheck.from_record(bad.record()) == bad
    assert FitCheck.from_record(None) is None and FitCheck.from_record({"x": 1}) is None
    assert bad.line(200) == (
        f"model did not fit: fd 2.61 vs data floor 0.012 (x217; fitted within "
        f"x{bad.max_ratio:g}); raise train.steps (now 200) or the learning rate"
    )
    with pytest.raises(UnfittedError, match="nothing cleansed: the model did not fit") as e:
        check_fitted(bad, allow_unfitted=False, n_steps=200)
    assert isinstance(e.value, NothingToRemoveError) and "--allow-unfitted" in str(e.value)
    check_fitted(bad, allow_unfitted=True)
    check_fitted(None, allow_unfitted=False)  # a run from before the check
    check_fitted(fit_check(keys.FD, 0.02, 0.012), allow_unfitted=False)
