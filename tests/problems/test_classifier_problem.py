"""The classifier problem (SGD-influence, Hara et al.): the pure step against torch.optim, the
reverse pass against autograd through naively unrolled training, and first-order estimates
against real leave-one-out retraining."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import kendalltau, pearsonr
from torch.func import functional_call

from ganinf_mlops import keys
from ganinf_mlops.config import MetricConfig, to_dict, train_config_from_dict
from ganinf_mlops.data.version import write_version
from ganinf_mlops.errors import ConfigError, DataError
from ganinf_mlops.influence.loo import loo_changes
from ganinf_mlops.influence.methods import score
from ganinf_mlops.influence.options import ScoringOptions
from ganinf_mlops.influence.reverse import reverse_pass
from ganinf_mlops.models import CLASSIFIER_MODELS
from ganinf_mlops.optim import OptimConfig
from ganinf_mlops.problems import create_problem
from ganinf_mlops.problems.classifier import (
    ClassifierConfig,
    ClassifierMetricConfig,
    ClassifierModelConfig,
)
from ganinf_mlops.problems.gan import GanConfig, ModelConfig
from ganinf_mlops.problems.schedule import make_schedule
from ganinf_mlops.train.rundir import RunDir
from ganinf_mlops.train.trainer import train

METRIC = ClassifierMetricConfig()
N, B = 24, 6


def _blobs(rng, n, flip=0):
    """Three Gaussian classes in 4-D; the first `flip` labels moved to the next class."""
    y = np.arange(n) % 3
    x = rng.normal(size=(n, 4)) * 0.7 + np.eye(3, 4)[y] * 2.0
    y = y.copy()
    y[:flip] = (y[:flip] + 1) % 3
    return x, y


@pytest.fixture
def labelled(tmp_path):
    rng = np.random.default_rng(4)
    x, y = _blobs(rng, N, flip=3)
    x_eval, y_eval = _blobs(rng, 30)
    return write_version(
        tmp_path / "v0", x, np.arange(N) + 100, x_eval, dataset="test", params={},
        y=y, y_eval=y_eval, is_anomaly_ids=[100, 101, 102],
    )  # fmt: skip


def _cfg(arch="mlp", opt="sgd", lr=0.1, epochs=3, standardize=False) -> ClassifierConfig:
    o = OptimConfig(name=opt, lr=lr, momentum=0.8, beta1=0.7, beta2=0.95, weight_decay=1e-3)
    return ClassifierConfig(
        model=ClassifierModelConfig(arch=arch, hidden=(5,), bias=True, activation="tanh",
        standardize=standardize), optim=o, batch_size=B, epochs=epochs, checkpoint_every=4,
        seed=2,
    )  # fmt: skip


@pytest.fixture
def scaled(tmp_path):
    """The blobs with columns in very different units (x1000, x0.01, +50): a table's case."""
    rng = np.random.default_rng(4)
    scale, shift = np.array([1000.0, 0.01, 1.0, 3.0]), np.array([0.0, 0.0, 50.0, 0.0])
    x, y = _blobs(rng, N, flip=3)
    x_eval, y_eval = _blobs(rng, 30)
    return write_version(
        tmp_path / "scaled", x * scale + shift, np.arange(N), x_eval * scale + shift,
        dataset="test", params={}, y=y, y_eval=y_eval, is_anomaly_ids=[0, 1, 2],
    )  # fmt: skip


def _torch_optimizer(o: OptimConfig, params):
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "momentum":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    return torch.optim.Adam(
        params, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps, weight_decay=o.weight_decay
    )


@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam"])
def test_pure_step_matches_torch_optim(labelled, opt):
    cfg = _cfg(opt=opt)
    v = labelled
    schedule = make_schedule(N, B, cfg.epochs, 9)
    problem = create_problem(cfg, METRIC, v.x, v.x_eval, schedule, v.y, v.y_eval)
    net = copy.deepcopy(problem.net)
    optimizer = _torch_optimizer(cfg.optim, list(net.parameters()))
    state = problem.initial_state()
    w_all = torch.rand(N, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for t in range(schedule.n_steps):
        inp = problem.inputs(t)
        w = w_all[inp.idx]
        state, (loss,) = problem.step(state, w, inp.data, t)
        xb, yb = inp.data
        optimizer.zero_grad()
        ref = (w * F.cross_entropy(net(xb), yb, reduction="none")).sum() / B
        ref.backward()
        optimizer.step()
        assert float(loss) == pytest.approx(float(ref.detach()), rel=1e-12)
    for name, p in net.named_parameters():
        torch.testing.assert_close(state["c"][name], p.detach(), rtol=1e-12, atol=1e-12)


def _unrolled_sgd_grad(problem, run: RunDir, lr: float) -> torch.Tensor:
    """d val_loss / dw by autograd through plain SGD written out here (no step(), no vjp)."""
    w = torch.ones(problem.n, dtype=torch.float64, requires_grad=True)
    params = {k: v.clone().requires_grad_() for k, v in run.load_state(0)["c"].items()}
    # A standardized net's statistics are its module buffers, computed from the training data
    # (functional_call takes them from the module: the recorded state's are not read here).
    for t in range(run.n_steps):
        inp = problem.inputs(t)
        xb, yb = inp.data
        logits = functional_call(problem.net, params, (xb,))
        loss = (w[inp.idx] * F.cross_entropy(logits, yb, reduction="none")).sum() / xb.shape[0]
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        params = {
            k: p - lr * (g + 1e-3 * p) for (k, p), g in zip(params.items(), grads, strict=True)
        }
    val = F.cross_entropy(functional_call(problem.net, params, (problem.x_val,)), problem.y_val)
    (grad,) = torch.autograd.grad(val, w)
    return grad


@pytest.mark.parametrize("arch", ["logreg", "mlp"])
def test_reverse_pass_equals_unrolled_autograd(labelled, tmp_path, arch):
    run = RunDir(train(labelled, _cfg(arch), METRIC, tmp_path / "run", progress=False))
    problem = run.problem(labelled)
    result = reverse_pass(problem, run, problem.target(keys.VAL_LOSS), progress=False)
    expected = _unrolled_sgd_grad(problem, run, lr=0.1)
    torch.testing.assert_close(result.grad_w, expected, rtol=1e-9, atol=1e-13)
    assert expected.abs().max() > 1e-4


@pytest.mark.parametrize("arch", ["logreg", "mlp"])
def test_standardized_reverse_pass_equals_unrolled_autograd(scaled, tmp_path, arch):
    """The statistics ride along in the state ("c_input") through the vjp replays unchanged;
    the result is still the derivative of plain unrolled SGD on standardized inputs."""
    cfg = _cfg(arch, standardize=True)
    run = RunDir(train(scaled, cfg, METRIC, tmp_path / "run", progress=False))
    problem = run.problem(scaled)
    result = reverse_pass(problem, run, problem.target(keys.VAL_LOSS), progress=False)
    expected = _unrolled_sgd_grad(problem, run, lr=0.1)
    torch.testing.assert_close(result.grad_w, expected, rtol=1e-9, atol=1e-13)
    assert expected.abs().max() > 1e-4


def test_standardize_uses_the_training_statistics_and_records_them(scaled, tmp_path):
    run = RunDir(
        train(scaled, _cfg("mlp", standardize=True), METRIC, tmp_path / "r", progress=False)
    )
    final = run.load_state(run.n_steps)
    x = torch.tensor(scaled.x)
    # Recorded in every checkpoint, equal at the start and the end (never trained).
    for state in (run.load_state(0), final):
        torch.testing.assert_close(state["c_input"]["0.mean"], x.mean(0), rtol=1e-12, atol=0)
        torch.testing.assert_close(state["c_input"]["0.std"], x.std(0, correction=0))
    # The fixed first layer maps the training inputs to mean 0, std 1 per column.
    problem = run.problem(scaled)
    z = problem.net[0](x)
    torch.testing.assert_close(z.mean(0), torch.zeros(4, dtype=z.dtype), rtol=0, atol=1e-12)
    torch.testing.assert_close(z.std(0, correction=0), torch.ones(4, dtype=z.dtype))
    # The recorded statistics are what a reloaded run evaluates with: same results as training.
    recorded = {k: run.results()[k] for k in problem.result_names}
    assert problem.evaluate(final) == pytest.approx(recorded, rel=1e-12)
    shifted = {**final, "c_input": {**final["c_input"], "0.mean": final["c_input"]["0.mean"] * 2}}
    assert problem.evaluate(shifted)[keys.VAL_LOSS] != pytest.approx(recorded[keys.VAL_LOSS])


def test_without_standardize_large_columns_dominate(scaled, tmp_path):
    """Why tables need it: on the scaled blobs, SGD on raw columns fails where standardized
    inputs learn (same network, steps and learning rate)."""
    acc = {}
    for flag in (False, True):
        cfg = _cfg("logreg", lr=0.05, epochs=20, standardize=flag)
        run = RunDir(train(scaled, cfg, METRIC, tmp_path / f"r{flag}", progress=False))
        acc[flag] = run.results()[keys.TEST_ACCURACY]
    # 15 test instances: 0.4 raw against 0.8 standardized when written.
    assert acc[True] >= 0.75 and acc[True] >= acc[False] + 0.3, acc


# Bounds checked on data seeds 4-9 (Pearson / tau at least 0.996 / 0.957 for SGD, 0.866 / 0.717
# for Adam, whose normalised steps make a removal's effect less linear).
@pytest.mark.parametrize(
    "opt,lr,r_min,tau_min", [("sgd", 0.05, 0.99, 0.9), ("adam", 0.01, 0.8, 0.6)]
)
def test_influence_agrees_with_leave_one_out_retraining(
    labelled, tmp_path, opt, lr, r_min, tau_min
):
    run = RunDir(
        train(labelled, _cfg("logreg", opt, lr, 4), METRIC, tmp_path / "r", progress=False)
    )
    table = score(run.path, labelled, ScoringOptions(keys.VAL_LOSS, progress=False))
    problem = run.problem(labelled)
    true = loo_changes(problem, run, problem.target(keys.VAL_LOSS), range(N), progress=False)
    est = table.predicted_change
    assert pearsonr(est, true.numpy()).statistic > r_min
    assert kendalltau(est, true.numpy()).statistic > tau_min
    # The three flipped labels hurt the validation loss: removing them is predicted to help.
    assert set(np.argsort(-table.harmfulness)[:3]) == {0, 1, 2} or opt == "adam"


def test_loss_baseline_ranks_flipped_labels_first(labelled, tmp_path):
    run = train(labelled, _cfg("logreg", epochs=6), METRIC, tmp_path / "r", progress=False)
    table = score(run, labelled, ScoringOptions("loss", progress=False))
    assert set(np.argsort(-table.harmfulness)[:3]) == {0, 1, 2}
    assert np.isnan(table.predicted_change).all()


def test_evaluate_splits_held_out_data_into_validation_and_test(labelled):
    problem = create_problem(
        _cfg(), METRIC, labelled.x, labelled.x_eval, make_schedule(N, B, 1, 0), labelled.y,
        labelled.y_eval,
    )  # fmt: skip
    assert len(problem.x_val) == 15 and len(problem.x_test) == 15
    out = problem.evaluate(problem.initial_state())
    assert set(out) == set(problem.result_names)
    # An accuracy over the 15 test points (a multiple of 1/15); before training, the mean
    # cross-entropy of near-uniform predictions over 3 classes: about ln 3.
    assert out[keys.TEST_ACCURACY] * 15 == pytest.approx(round(out[keys.TEST_ACCURACY] * 15))
    assert 0 <= out[keys.TEST_ACCURACY] <= 1
    assert 0.5 * math.log(3) < out[keys.VAL_LOSS] < 2 * math.log(3), out[keys.VAL_LOSS]


def test_classifier_needs_labels(tiny_version, tmp_path):
    with pytest.raises(DataError, match="needs class labels"):
        train(tiny_version, _cfg(), METRIC, tmp_path / "r", progress=False)


def test_labels_out_of_range_are_refused(labelled, tmp_path):
    v = write_version(
        tmp_path / "big", labelled.x, labelled.ids, labelled.x_eval, dataset="t", params={},
        y=labelled.y, y_eval=np.full(len(labelled.y_eval), 10**9),
    )  # fmt: skip
    with pytest.raises(DataError, match="class labels must lie in"):
        train(v, _cfg(), METRIC, tmp_path / "r", progress=False)


def test_gan_methods_and_archs_are_refused_for_classifiers(labelled, tmp_path):
    run = train(labelled, _cfg(), METRIC, tmp_path / "r", progress=False)
    with pytest.raises(ConfigError, match="unknown target of a classifier run 'all'"):
        score(run, labelled, ScoringOptions(keys.ALL, progress=False))
    with pytest.raises(ConfigError, match="classifier architecture 'dcgan'"):
        train(labelled, _cfg(arch="dcgan"), METRIC, tmp_path / "r2", progress=False)
    with pytest.raises(ConfigError, match="takes images"):
        CLASSIFIER_MODELS.get("cnn")(ClassifierModelConfig(), (4,), 3, 0, torch.float64, "cpu")
    # A classifier's config has no GAN fields: they are unknown keys, not silently ignored.
    written = to_dict(_cfg())
    for gan_only in ({"r1": 1.0}, {"reject_threshold": 0.1}, {"g_optim": written["optim"]}):
        with pytest.raises(ConfigError, match=f"unknown key train.{next(iter(gan_only))}"):
            train_config_from_dict({**written, **gan_only})
    with pytest.raises(ConfigError, match="takes a ClassifierMetricConfig as its metric config"):
        train(labelled, _cfg(), MetricConfig(), tmp_path / "r3", progress=False)
    with pytest.raises(ConfigError, match="takes a ClassifierConfig, got a GanConfig"):
        train(
            labelled,
            GanConfig(problem="classifier", batch_size=B),
            METRIC,
            tmp_path / "r3",
            progress=False,
        )


def test_gan_runs_have_no_per_instance_losses(tiny_version, tmp_path):
    cfg = GanConfig(batch_size=4, epochs=1, model=ModelConfig(g_hidden=(3,), d_hidden=(3,)))
    run = train(tiny_version, cfg, MetricConfig(), tmp_path / "r", progress=False)
    with pytest.raises(ConfigError, match="method 'loss' needs per-instance training losses"):
        score(run, tiny_version, ScoringOptions("loss", progress=False))
