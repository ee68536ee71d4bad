"""Memorization rejection (Bai et al.): the generator learns only from generated samples that are
not too close to a training instance, and the step stays pure and replayable."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganinf_mlops import keys
from ganinf_mlops.config import MetricConfig
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.influence.reverse import reverse_pass
from ganinf_mlops.optim import OptimConfig
from ganinf_mlops.problems import create_problem
from ganinf_mlops.problems.gan import GanConfig, ModelConfig
from ganinf_mlops.problems.schedule import make_schedule
from ganinf_mlops.train.rundir import RunDir
from ganinf_mlops.train.trainer import train

METRIC = MetricConfig(bandwidth=0.8, n_gen=13, seed=3)
SGD = OptimConfig("sgd", lr=0.1)


def _cfg(threshold: float | None) -> GanConfig:
    return GanConfig(
        model=ModelConfig(latent_dim=3, g_hidden=(5,), d_hidden=(6,), bias=True),
        d_optim=SGD, g_optim=SGD, batch_size=4, epochs=2, update="alternating", seed=5,
        checkpoint_every=2, reject_threshold=threshold,
    )  # fmt: skip


def _problem(cfg: GanConfig, x: np.ndarray):
    return create_problem(cfg, METRIC, x, x[:5], make_schedule(len(x), 4, 2, 9))


def test_generator_loss_averages_over_kept_samples_only():
    x = np.random.default_rng(0).normal(size=(12, 3))
    cfg = _cfg(0.05)
    problem = _problem(cfg, x)
    state = problem.initial_state()
    xb, z = problem.inputs(0).data
    new, (ld, lg, rate) = problem.step(state, torch.ones(4, dtype=torch.float64), (xb, z), 0)

    # By hand: cosine distance of each G(z_i) to its nearest training point, kept if >= 0.05;
    # G's loss over the kept ones, its gradient at the updated D (alternating).
    gen, disc = copy.deepcopy(problem.gen), copy.deepcopy(problem.disc)
    for name, p in disc.named_parameters():
        p.data = new["d"][name].clone()
    fake = gen(z)
    bank = F.normalize(torch.as_tensor(x), dim=1)
    dist = 1 - (F.normalize(fake.detach(), dim=1) @ bank.T).max(1).values
    keep = dist >= 0.05
    assert 0 < keep.sum() < 4, "the case should reject some and keep some samples"
    loss = F.softplus(-disc(fake[keep]).squeeze(-1)).mean()
    grads = torch.autograd.grad(loss, list(gen.parameters()))
    assert float(lg) == pytest.approx(float(loss.detach()), rel=1e-12)
    assert float(rate) == pytest.approx(1 - float(keep.double().mean()))
    for (name, p), g in zip(gen.named_parameters(), grads, strict=True):
        torch.testing.assert_close(new["g"][name], p.detach() - 0.1 * g, rtol=1e-12, atol=1e-13)


def test_every_rejected_sample_leaves_the_generator_unchanged():
    x = np.random.default_rng(0).normal(size=(12, 3))
    problem = _problem(_cfg(2.0), x)  # cosine distance is never >= 2 (but at exact antipodes)
    state = problem.initial_state()
    new, (_, lg, rate) = problem.step(state, torch.ones(4, dtype=torch.float64),
                                      problem.inputs(0).data, 0)  # fmt: skip
    assert float(rate) == 1.0 and float(lg) == 0.0
    for name in state["g"]:
        assert torch.equal(new["g"][name], state["g"][name])


def test_rejection_runs_log_the_rate_and_influence_stays_exact(tiny_version, tmp_path):
    run = RunDir(train(tiny_version, _cfg(0.02), METRIC, tmp_path / "r", progress=False))
    losses = (run.path / "losses.csv").read_text().splitlines()
    assert losses[0].split(",")[-1] == "reject_rate"
    problem = run.problem(tiny_version)
    target = problem.target(keys.ALL)
    result = reverse_pass(problem, run, target, progress=False)  # replays check the recording
    w = torch.ones(problem.n, dtype=torch.float64, requires_grad=True)
    state = problem.initial_state()
    for t in range(run.n_steps):
        inp = problem.inputs(t)
        state, _ = problem.step(state, w[inp.idx] * inp.mask, inp.data, t)
    (expected,) = torch.autograd.grad(target.value(state), w)
    torch.testing.assert_close(result.grad_w, expected, rtol=1e-10, atol=1e-14)


def test_rejection_settings_are_checked(tiny_version, tmp_path):
    with pytest.raises(ConfigError, match=r"cosine distance in \[0, 2\]"):
        _cfg(2.5)
    with pytest.raises(ConfigError, match="unknown reject_embedding"):
        dataclasses.replace(_cfg(0.1), reject_embedding="inception")
    cfg = dataclasses.replace(_cfg(0.1), reject_embedding="classifier")
    with pytest.raises(ConfigError, match="needs an image_gan run's feature classifier"):
        train(tiny_version, cfg, METRIC, tmp_path / "r", progress=False)
