"""GanProblem: the pure step against torch.optim on real modules, targets, evaluate, registry."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ganinf_mlops import keys
from ganinf_mlops.config import MetricConfig
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.metrics.all import average_log_likelihood
from ganinf_mlops.metrics.moments import moment_errors
from ganinf_mlops.optim import OptimConfig
from ganinf_mlops.problems import Problem, create_problem
from ganinf_mlops.problems.gan import GanConfig, GanProblem, ModelConfig
from ganinf_mlops.problems.schedule import make_schedule

N, B = 10, 4
METRIC = MetricConfig(bandwidth=0.8, n_gen=13, seed=3)


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    return rng.normal(size=(N, 2)) + 0.5, rng.normal(size=(7, 2))


def _cfg(update: str, d_opt: OptimConfig, g_opt: OptimConfig, bias: bool = True) -> GanConfig:
    return GanConfig(
        model=ModelConfig(latent_dim=3, g_hidden=(5,), d_hidden=(6, 4), bias=bias),
        d_optim=d_opt,
        g_optim=g_opt,
        batch_size=B,
        epochs=2,
        update=update,
        seed=5,
    )


def _problem(cfg: GanConfig) -> Problem:
    x, x_eval = _data()
    return create_problem(cfg, METRIC, x, x_eval, make_schedule(N, cfg.batch_size, cfg.epochs, 9))


def _torch_optimizer(cfg: OptimConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr)
    if cfg.name == "momentum":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)
    assert cfg.name == "adam"
    return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)


class Reference:
    """The documented training step, written with nn.Modules, autograd and torch.optim."""

    def __init__(self, problem: GanProblem, cfg: GanConfig) -> None:
        self.gen, self.disc = copy.deepcopy(problem.gen), copy.deepcopy(problem.disc)
        self.d_opt = _torch_optimizer(cfg.d_optim, list(self.disc.parameters()))
        self.g_opt = _torch_optimizer(cfg.g_optim, list(self.gen.parameters()))
        self.alternating = cfg.update == "alternating"

    def d_loss(self, w: torch.Tensor, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        real = self.disc(x).squeeze(-1)
        fake = self.disc(self.gen(z)).squeeze(-1)
        return (w * F.softplus(-real)).sum() / x.shape[0] + F.softplus(fake).mean()

    def g_loss(self, z: torch.Tensor) -> torch.Tensor:
        return F.softplus(-self.disc(self.gen(z)).squeeze(-1)).mean()

    def step(self, w: torch.Tensor, x: torch.Tensor, z: torch.Tensor) -> tuple[float, float]:
        d_params, g_params = list(self.disc.parameters()), list(self.gen.parameters())
        ld = self.d_loss(w, x, z)
        d_grads = torch.autograd.grad(ld, d_params)
        if not self.alternating:  # G's gradient at (D_t, G_t)
            lg = self.g_loss(z)
            g_grads = torch.autograd.grad(lg, g_params)
        for p, gr in zip(d_params, d_grads, strict=True):
            p.grad = gr
        self.d_opt.step()
        if self.alternating:  # G's gradient at (D_{t+1}, G_t)
            lg = self.g_loss(z)
            g_grads = torch.autograd.grad(lg, g_params)
        for p, gr in zip(g_params, g_grads, strict=True):
            p.grad = gr
        self.g_opt.step()
        return float(ld.detach()), float(lg.detach())


def _assert_params_close(state: dict[str, Any], ref: Reference, tol: float = 1e-12) -> None:
    for key, module in (("d", ref.disc), ("g", ref.gen)):
        named = dict(module.named_parameters())
        assert set(state[key]) == set(named)
        for name, p in named.items():
            torch.testing.assert_close(state[key][name], p.detach(), rtol=tol, atol=tol)


CASES = [
    ("simultaneous", OptimConfig("sgd", lr=0.05), OptimConfig("momentum", lr=0.03, momentum=0.8)),
    ("alternating", OptimConfig("sgd", lr=0.05), OptimConfig("momentum", lr=0.03, momentum=0.8)),
    ("simultaneous", OptimConfig("adam", lr=0.02, beta1=0.6, beta2=0.99), OptimConfig("sgd")),
    (
        "alternating",
        OptimConfig("adam", lr=0.02, beta1=0.6, beta2=0.99, eps=1e-6),
        OptimConfig("adam", lr=0.01, beta1=0.3),
    ),
]


@pytest.mark.parametrize(("update", "d_opt", "g_opt"), CASES)
def test_pure_steps_match_torch_optim(update, d_opt, g_opt):
    cfg = _cfg(update, d_opt, g_opt)
    problem = _problem(cfg)
    assert isinstance(problem, GanProblem)
    ref = Reference(problem, cfg)
    state = problem.initial_state()
    # Non-uniform weights whose sum is not B: the loss divides by B, not by sum(w).
    w = torch.tensor([1.0, 0.25, 0.0, 2.0], dtype=torch.float64)
    moved = False
    for t in range(3):
        x, z = problem.inputs(t).data
        assert x.shape == (B, 2) and z.shape == (B, cfg.model.latent_dim)
        before = {k: v.clone() for k, v in state["d"].items()}
        state, (ld, lg) = problem.step(state, w, (x, z), t)
        ref_ld, ref_lg = ref.step(w, x, z)
        assert float(ld) == pytest.approx(ref_ld, rel=1e-12)
        assert float(lg) == pytest.approx(ref_lg, rel=1e-12)
        moved |= any(not torch.equal(before[k], state["d"][k]) for k in before)
        _assert_params_close(state, ref)
    assert moved


def test_update_orders_differ():
    opt = OptimConfig("sgd", lr=0.1)
    x_z: tuple[torch.Tensor, ...] | None = None
    results = []
    for update in ("simultaneous", "alternating"):
        problem = _problem(_cfg(update, opt, opt))
        x_z = problem.inputs(0).data
        state, _ = problem.step(problem.initial_state(), torch.ones(B, dtype=torch.float64), x_z, 0)
        results.append(state)
    sim, alt = results
    # D's update is the same; G's gradient is taken at different discriminators.
    for k in sim["d"]:
        assert torch.equal(sim["d"][k], alt["d"][k])
    assert any(not torch.allclose(sim["g"][k], alt["g"][k]) for k in sim["g"])


def test_zero_weight_removes_that_instance_real_term():
    opt = OptimConfig("sgd", lr=0.1)
    cfg = _cfg("simultaneous", opt, opt)
    problem = _problem(cfg)
    state0 = problem.initial_state()
    x, z = problem.inputs(0).data
    j = 2
    w = torch.ones(B, dtype=torch.float64)
    w[j] = 0.0
    new, (ld, _) = problem.step(state0, w, (x, z), 0)

    # Hand loss without instance j's real term, still normalised by the batch size B.
    disc, gen = copy.deepcopy(problem.disc), copy.deepcopy(problem.gen)
    keep = [i for i in range(B) if i != j]
    real = disc(x[keep]).squeeze(-1)
    fake = disc(gen(z)).squeeze(-1)
    loss = F.softplus(-real).sum() / B + F.softplus(fake).mean()
    grads = torch.autograd.grad(loss, list(disc.parameters()))
    assert float(ld) == pytest.approx(float(loss.detach()), rel=1e-13)
    for (name, p), g in zip(disc.named_parameters(), grads, strict=True):
        torch.testing.assert_close(new["d"][name], p.detach() - 0.1 * g, rtol=1e-13, atol=1e-13)

    # The removed instance's value no longer matters at all ...
    x_moved = x.clone()
    x_moved[j] = torch.tensor([1e3, -1e3], dtype=torch.float64)
    other, _ = problem.step(state0, w, (x_moved, z), 0)
    for k in ("d", "g"):
        for name in new[k]:
            assert torch.equal(new[k][name], other[k][name])
    # ... while with weight 1 it does.
    full, (ld_full, _) = problem.step(state0, torch.ones(B, dtype=torch.float64), (x, z), 0)
    assert float(ld_full) > float(ld)
    assert any(not torch.equal(full["d"][n], new["d"][n]) for n in new["d"])


def test_step_data_is_the_scheduled_minibatch_and_seeded_latents():
    opt = OptimConfig("sgd", lr=0.1)
    problem = _problem(_cfg("simultaneous", opt, opt))
    x_all, _ = _data()
    for t in (0, 3):
        inp = problem.inputs(t)
        x, z = inp.data
        assert np.array_equal(x.numpy(), x_all[problem.schedule.indices[t].numpy()])
        assert torch.equal(inp.mask, torch.ones(B, dtype=torch.float64))
        assert torch.equal(z, problem.inputs(t).data[1])  # same seed, same latents
    assert not torch.equal(problem.inputs(0).data[1], problem.inputs(1).data[1])


def test_targets_and_evaluate():
    opt = OptimConfig("momentum", lr=0.05)
    problem = _problem(_cfg("simultaneous", opt, opt))
    assert isinstance(problem, GanProblem)
    state = problem.initial_state()
    for t in range(2):
        inp = problem.inputs(t)
        state, _ = problem.step(state, inp.mask, inp.data, t)

    targets = problem.targets()
    assert {keys.ALL, keys.DISC_LOSS} <= set(targets) == set(GanProblem.target_names)
    for name, target in targets.items():
        assert target.name == name
        assert target.higher_is_better is keys.higher_is_better(name)
    assert targets[keys.ALL].higher_is_better is True
    assert targets[keys.DISC_LOSS].higher_is_better is False
    change = torch.tensor(0.5, dtype=torch.float64)
    assert float(targets[keys.ALL].harmfulness(change)) == 0.5
    assert float(targets[keys.DISC_LOSS].harmfulness(change)) == -0.5
    assert problem.target(keys.DISC_LOSS).name == keys.DISC_LOSS

    # Values by hand, on the modules with the state's parameters loaded.
    gen, disc = copy.deepcopy(problem.gen), copy.deepcopy(problem.disc)
    gen.load_state_dict(state["g"])
    disc.load_state_dict(state["d"])
    with torch.no_grad():
        generated = gen(problem.z_eval)
        assert generated.shape == (METRIC.n_gen, 2)
        all_value = average_log_likelihood(problem.x_eval, generated, METRIC.bandwidth)
        disc_value = F.softplus(-disc(problem.x_eval)).mean() + F.softplus(disc(generated)).mean()
    assert float(targets[keys.ALL].value(state)) == pytest.approx(float(all_value), rel=1e-13)
    assert float(targets[keys.DISC_LOSS].value(state)) == pytest.approx(
        float(disc_value), rel=1e-13
    )

    # The target is differentiable in the state (what the reverse pass needs).
    g_params = {k: v.clone().requires_grad_(True) for k, v in state["g"].items()}
    value = targets[keys.ALL].value({**state, "g": g_params})
    grads = torch.autograd.grad(value, list(g_params.values()))
    assert all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)

    results = problem.evaluate(state)
    assert list(results) == list(GanProblem.result_names)
    assert all(isinstance(v, float) for v in results.values())
    mean_err, cov_err = moment_errors(generated, problem.x_eval)
    assert results[keys.ALL] == pytest.approx(float(all_value), rel=1e-13)
    assert results[keys.DISC_LOSS] == pytest.approx(float(disc_value), rel=1e-13)
    assert results[keys.GEN_MEAN_ERROR] == pytest.approx(mean_err, rel=1e-13)
    assert results[keys.GEN_COV_ERROR] == pytest.approx(cov_err, rel=1e-13)

    samples = problem.samples(state)
    assert isinstance(samples, np.ndarray)
    assert np.allclose(samples, generated.numpy(), rtol=0, atol=1e-14)


def test_unknown_target_names_the_choices():
    opt = OptimConfig("sgd", lr=0.1)
    problem = _problem(_cfg("simultaneous", opt, opt))
    with pytest.raises(ConfigError, match="choose from") as info:
        problem.target("nope")
    assert "'nope'" in str(info.value) and keys.ALL in str(info.value)


def test_initial_state_is_the_modules_parameters_and_a_copy():
    cfg = _cfg("simultaneous", OptimConfig("adam", lr=0.1), OptimConfig("sgd", lr=0.1))
    problem = _problem(cfg)
    state = problem.initial_state()
    assert set(state) == {"d", "g", "d_opt", "g_opt"}
    assert state["g_opt"] == {}
    assert set(state["d_opt"]) == {"m", "v"}
    assert all(float(v.abs().sum()) == 0 for v in state["d_opt"]["m"].values())
    for name, p in problem.disc.named_parameters():
        assert torch.equal(state["d"][name], p.detach())
        assert state["d"][name].data_ptr() != p.data_ptr()
        assert state["d"][name].dtype == torch.float64
    # Same config, same seed: same initialisation; another seed: another one.
    again = _problem(cfg).initial_state()
    assert all(torch.equal(state["g"][k], again["g"][k]) for k in state["g"])
    other = _problem(dataclasses.replace(cfg, seed=6)).initial_state()
    assert not all(torch.equal(state["g"][k], other["g"][k]) for k in state["g"])
    # The step is pure: the input state is left as it was.
    snapshot = {k: v.clone() for k, v in state["d"].items()}
    inp = problem.inputs(0)
    problem.step(state, inp.mask, inp.data, 0)
    assert all(torch.equal(snapshot[k], state["d"][k]) for k in snapshot)


def test_generate_uses_the_fixed_latents():
    opt = OptimConfig("sgd", lr=0.1)
    problem = _problem(_cfg("simultaneous", opt, opt))
    assert isinstance(problem, GanProblem)
    state = problem.initial_state()
    out = problem.generate(state)
    assert torch.equal(out, functional_call(problem.gen, state["g"], (problem.z_eval,)))
    assert torch.equal(problem.generate(state), out)


def test_unknown_problem_kind():
    x, x_eval = _data()
    cfg = dataclasses.replace(_cfg("simultaneous", OptimConfig(), OptimConfig()), problem="nope")
    with pytest.raises(ConfigError, match="choose from: classifier, gan, image_gan"):
        create_problem(cfg, METRIC, x, x_eval, make_schedule(N, B, 1, 0))
