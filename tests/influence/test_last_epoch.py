"""Storage-efficient influence (Suzuki et al.): runs that keep no checkpoint history, and the
last-epoch pass linearised at the final state."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.func import vjp

from ganinf_mlops import keys
from ganinf_mlops.data.version import write_version
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.influence.last_epoch import last_epoch_pass
from ganinf_mlops.influence.methods import score, score_run
from ganinf_mlops.influence.options import ScoringOptions
from ganinf_mlops.influence.reverse import reverse_pass
from ganinf_mlops.optim import OptimConfig
from ganinf_mlops.problems.classifier import (
    ClassifierConfig,
    ClassifierMetricConfig,
    ClassifierModelConfig,
)
from ganinf_mlops.train.rundir import CHECKPOINTS, RunDir
from ganinf_mlops.train.trainer import train

N, B = 22, 5  # 4 minibatches an epoch: 2 instances sit out each epoch
METRIC = ClassifierMetricConfig()


@pytest.fixture
def labelled(tmp_path):
    rng = np.random.default_rng(1)
    y, y_eval = np.arange(N) % 2, np.arange(20) % 2
    x = rng.normal(size=(N, 3)) + y[:, None]
    x_eval = rng.normal(size=(20, 3)) + y_eval[:, None]
    return write_version(
        tmp_path / "v", x, np.arange(N), x_eval, dataset="t", params={}, y=y, y_eval=y_eval
    )


def _cfg(lr: float, storage: str = "final") -> ClassifierConfig:
    return ClassifierConfig(
        model=ClassifierModelConfig(arch="logreg"),
        optim=OptimConfig(name="sgd", lr=lr), batch_size=B, epochs=3, checkpoint_every=2,
        seed=3, storage=storage,
    )  # fmt: skip


def test_final_storage_keeps_the_initial_and_final_states_only(labelled, tmp_path):
    final = RunDir(train(labelled, _cfg(0.1), METRIC, tmp_path / "f", progress=False))
    full = RunDir(
        train(
            labelled,
            _cfg(0.1, "checkpoints"),
            METRIC,
            tmp_path / "c",
            progress=False,
        )
    )
    assert final.checkpoint_steps == [0, final.n_steps]
    assert len(list((final.path / CHECKPOINTS).iterdir())) == 2
    assert len(full.checkpoint_steps) == 1 + -(-full.n_steps // 2)
    # Same training either way: storage changes what is kept, not what is learnt.
    assert final.results() == full.results()
    # The exact pass still works on a final-only run (one segment replayed from step 0).
    exact_f = reverse_pass(final.problem(labelled), final, _target(final, labelled), progress=False)
    exact_c = reverse_pass(full.problem(labelled), full, _target(full, labelled), progress=False)
    torch.testing.assert_close(exact_f.grad_w, exact_c.grad_w, rtol=1e-12, atol=1e-15)


def _target(run, version):
    return run.problem(version).target(keys.VAL_LOSS)


def test_last_epoch_pass_is_the_documented_linearisation(labelled, tmp_path):
    run = RunDir(train(labelled, _cfg(0.1), METRIC, tmp_path / "r", progress=False))
    problem = run.problem(labelled)
    target = problem.target(keys.VAL_LOSS)
    got = last_epoch_pass(problem, run, target, progress=False)

    # Written out: the cotangent walked back through the last epoch, every vjp at s_T.
    final = run.load_state(run.n_steps)
    cot = torch.func.grad(target.value)(final)
    expected = torch.zeros(N, dtype=torch.float64)
    for t in reversed(range(run.n_steps - run.steps_per_epoch, run.n_steps)):
        inp = problem.inputs(t)
        _, fn, _ = vjp(lambda s, w, inp=inp, t=t: problem.step(s, w, inp.data, t), final,
                       inp.mask, has_aux=True)  # fmt: skip
        cot, cw = fn(cot)
        expected[inp.idx] += cw
    torch.testing.assert_close(got.grad_w, expected, rtol=1e-12, atol=1e-15)
    assert got.first_step == run.n_steps - run.steps_per_epoch
    # Instances that sat out the last epoch have no estimate.
    last = problem.schedule.indices[got.first_step :].flatten().unique()
    assert (got.grad_w[np.setdiff1d(np.arange(N), last.numpy())] == 0).all()


def test_last_epoch_pass_approaches_the_exact_pass_when_parameters_settle(labelled, tmp_path):
    # With a tiny learning rate the states of the last epoch are all close to the final one,
    # so linearising at s_T is nearly exact; at lr 1 it is not.
    for lr, tol in ((1e-4, 1e-3), (1.0, None)):
        run = RunDir(train(labelled, _cfg(lr), METRIC, tmp_path / f"{lr}", progress=False))
        problem = run.problem(labelled)
        target = problem.target(keys.VAL_LOSS)
        approx = last_epoch_pass(problem, run, target, progress=False).grad_w
        first = run.n_steps - run.steps_per_epoch
        exact = reverse_pass(problem, run, target, first_step=first, progress=False).grad_w
        rel = float((approx - exact).norm() / exact.norm())
        if tol is not None:
            assert rel < tol
        else:
            assert rel > 1e-2


def test_score_and_cli_options(labelled, tmp_path):
    run = train(labelled, _cfg(0.1), METRIC, tmp_path / "r", progress=False)
    table = score(
        run, labelled, ScoringOptions(keys.VAL_LOSS, storage_efficient=True, progress=False)
    )
    assert table.extra["storage_efficient"] is True
    # The last epoch's 4 minibatches hold 20 of the 22 instances: the 2 that sit it out have no
    # influence on a pass over that epoch alone; every other one has some.
    assert np.count_nonzero(table.harmfulness) == 4 * B, table.harmfulness
    two = score(
        run,
        labelled,
        ScoringOptions(keys.VAL_LOSS, storage_efficient=True, last_epochs=2, progress=False),
    )
    assert two.extra["first_step"] < table.extra["first_step"]
    with pytest.raises(ConfigError, match="--storage-efficient needs --ensemble 1"):
        score_run(run, labelled, ScoringOptions(keys.VAL_LOSS, ensemble=2, storage_efficient=True))


def test_storage_is_checked(labelled):
    with pytest.raises(ConfigError, match="unknown storage 'none'"):
        dataclasses.replace(_cfg(0.1), storage="none")
